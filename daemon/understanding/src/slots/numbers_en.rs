//! Spoken English numbers to digits.
//!
//! Two spoken forms matter on a hotline:
//! - digit strings read one by one: "four five seven one two", "oh", "double
//!   five", "triple zero" → `45712`, `0`, `55`, `000`;
//! - quantities: "twenty dollars", "one hundred and twenty five",
//!   "three thousand four hundred" → `20`, `125`, `3400`.
//!
//! [`normalize_numbers`] rewrites both into digits and leaves all other words
//! alone, so slot extraction only has to look for digits.

const UNITS: [(&str, u64); 20] = [
    ("zero", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
];
const TENS: [(&str, u64); 8] = [
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
];

fn unit(word: &str) -> Option<u64> {
    match word {
        "oh" | "o" | "nought" => Some(0),
        _ => UNITS.iter().find(|(w, _)| *w == word).map(|&(_, v)| v),
    }
}

fn tens(word: &str) -> Option<u64> {
    TENS.iter().find(|(w, _)| *w == word).map(|&(_, v)| v)
}

/// A single spoken digit ("oh" counts only inside digit strings).
fn digit(word: &str) -> Option<u64> {
    unit(word).filter(|&v| v < 10)
}

fn repeat_count(word: &str) -> Option<usize> {
    match word {
        "double" => Some(2),
        "triple" => Some(3),
        _ => None,
    }
}

/// Splits "twenty-five" into its parts; keeps other words whole.
fn pieces(text: &str) -> Vec<String> {
    text.split_whitespace()
        .flat_map(|w| {
            let lower = w.to_lowercase();
            let parts: Vec<&str> = lower.split('-').collect();
            if parts.len() == 2 && tens(parts[0]).is_some() && unit(parts[1]).is_some() {
                vec![parts[0].to_owned(), parts[1].to_owned()]
            } else {
                vec![w.to_owned()]
            }
        })
        .collect()
}

/// Strips surrounding punctuation for matching, remembering it to put back.
fn core_of(word: &str) -> (&str, &str, &str) {
    let start = word.find(|c: char| c.is_alphanumeric()).unwrap_or(word.len());
    let end =
        word.char_indices().rev().find(|(_, c)| c.is_alphanumeric()).map_or(start, |(i, c)| i + c.len_utf8());
    (&word[..start], &word[start..end], &word[end..])
}

/// Reads a digit string starting at `i`; returns the digits and words consumed.
fn read_digit_string(words: &[String]) -> Option<(String, usize)> {
    let mut digits = String::new();
    let mut used = 0;
    while used < words.len() {
        let (_, core, tail) = core_of(&words[used]);
        let core = core.to_lowercase();
        if let Some(n) = repeat_count(&core) {
            let Some(next) = words.get(used + 1) else { break };
            let (_, next_core, next_tail) = core_of(next);
            let Some(d) = digit(&next_core.to_lowercase()) else { break };
            digits.push_str(&d.to_string().repeat(n));
            used += 2;
            if !next_tail.is_empty() && next_tail != "-" {
                break;
            }
            continue;
        }
        let Some(d) = digit(&core) else { break };
        digits.push_str(&d.to_string());
        used += 1;
        if !tail.is_empty() && tail != "-" {
            break;
        }
    }
    // "one" or "two" alone is a quantity, not a digit string.
    (digits.len() >= 2).then_some((digits, used))
}

/// Reads a cardinal ("one hundred and twenty five thousand") at the start of `words`.
fn read_cardinal(words: &[String]) -> Option<(u64, usize)> {
    let mut total: u64 = 0;
    let mut current: u64 = 0;
    let mut used = 0;
    let mut any = false;
    let mut last_used = 0;
    while used < words.len() {
        let (_, core, tail) = core_of(&words[used]);
        let core = core.to_lowercase();
        let word = core.as_str();
        if let Some(v) = unit(word).filter(|_| word != "oh" && word != "o") {
            current += v;
        } else if let Some(v) = tens(word) {
            current += v;
        } else if word == "hundred" && any {
            current = current.max(1) * 100;
        } else if word == "thousand" && any {
            total += current.max(1) * 1000;
            current = 0;
        } else if word == "million" && any {
            total += current.max(1) * 1_000_000;
            current = 0;
        } else if word == "and" && any && used + 1 < words.len() {
            used += 1;
            continue;
        } else if (word == "a" || word == "an") && !any {
            // "a hundred", "a thousand"
            let next = words.get(used + 1).map(|w| core_of(w).1.to_lowercase());
            if matches!(next.as_deref(), Some("hundred" | "thousand")) {
                current = 1;
                any = true;
                used += 1;
                last_used = used;
                continue;
            }
            break;
        } else {
            break;
        }
        any = true;
        used += 1;
        last_used = used;
        if !tail.is_empty() {
            break;
        }
    }
    any.then_some((total + current, last_used))
}

/// True when the words at the start read as single digits one after another
/// ("four five seven"), rather than a quantity ("twenty five").
fn starts_digit_string(words: &[String]) -> bool {
    let first = words.first().map(|w| core_of(w).1.to_lowercase());
    let second = words.get(1).map(|w| core_of(w).1.to_lowercase());
    match (first.as_deref(), second.as_deref()) {
        (Some(a), Some(b)) => {
            (digit(a).is_some() || repeat_count(a).is_some())
                && (digit(b).is_some() || repeat_count(b).is_some())
        }
        _ => false,
    }
}

/// Rewrites spoken numbers in `text` as digits.
pub fn normalize_numbers(text: &str) -> String {
    let words = pieces(text);
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let rest = &words[i..];
        let (lead, _, _) = core_of(&rest[0]);
        if starts_digit_string(rest)
            && let Some((digits, used)) = read_digit_string(rest)
        {
            {
                let (_, _, tail) = core_of(&rest[used - 1]);
                out.push(format!("{lead}{digits}{tail}"));
                i += used;
                continue;
            }
        }
        if let Some((value, used)) = read_cardinal(rest) {
            let (_, _, tail) = core_of(&rest[used - 1]);
            out.push(format!("{lead}{value}{tail}"));
            i += used;
            continue;
        }
        out.push(rest[0].clone());
        i += 1;
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalize_numbers as n;

    #[test]
    fn digit_strings_read_one_by_one_become_digits() {
        assert_eq!(n("four five seven one two"), "45712");
        assert_eq!(n("my order is four five seven one two."), "my order is 45712.");
        assert_eq!(n("oh one two three"), "0123");
        assert_eq!(n("double five six triple zero"), "556000");
    }

    #[test]
    fn quantities_become_numbers() {
        assert_eq!(n("twenty dollars"), "20 dollars");
        assert_eq!(n("one hundred and twenty five"), "125");
        assert_eq!(n("twenty-five pounds"), "25 pounds");
        assert_eq!(n("three thousand four hundred"), "3400");
        assert_eq!(n("a hundred bucks"), "100 bucks");
    }

    #[test]
    fn ordinary_words_are_untouched() {
        assert_eq!(n("I want to return one item"), "I want to return 1 item");
        assert_eq!(n("oh no, and then"), "oh no, and then");
        assert_eq!(n("someone stole my card"), "someone stole my card");
    }

    #[test]
    fn digits_already_written_stay() {
        assert_eq!(n("order 45712 please"), "order 45712 please");
    }
}
