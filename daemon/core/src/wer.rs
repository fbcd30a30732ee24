//! Word error rate, for tests, benchmarks and model self-tests.
//!
//! Text is normalised before comparison: lower case, punctuation removed, and
//! Chinese compared character by character (it has no spaces between words).

use crate::language::is_han;

/// Splits text into comparable tokens: lower-cased words, and single Han characters.
pub fn normalized_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if is_han(c) {
            flush(&mut word, &mut tokens);
            tokens.push(c.to_string());
        } else if c.is_alphanumeric() || c == '\'' {
            word.extend(c.to_lowercase());
        } else {
            flush(&mut word, &mut tokens);
        }
    }
    flush(&mut word, &mut tokens);
    tokens
}

fn flush(word: &mut String, tokens: &mut Vec<String>) {
    let trimmed = word.trim_matches('\'');
    if !trimmed.is_empty() {
        tokens.push(trimmed.to_owned());
    }
    word.clear();
}

/// Edit distance between token sequences (substitutions, insertions, deletions).
pub fn edit_distance<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> usize {
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    let mut current = vec![0; hypothesis.len() + 1];
    for (i, r) in reference.iter().enumerate() {
        current[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(r != h);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[hypothesis.len()]
}

/// Errors and reference length, so rates can be pooled over many sentences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCount {
    pub errors: usize,
    pub reference_words: usize,
}

impl ErrorCount {
    pub fn of(reference: &str, hypothesis: &str) -> Self {
        let reference = normalized_tokens(reference);
        let hypothesis = normalized_tokens(hypothesis);
        ErrorCount { errors: edit_distance(&reference, &hypothesis), reference_words: reference.len() }
    }

    /// The error rate; 0 for an empty reference matched by an empty hypothesis.
    pub fn rate(&self) -> f64 {
        if self.reference_words == 0 {
            return if self.errors == 0 { 0.0 } else { 1.0 };
        }
        self.errors as f64 / self.reference_words as f64
    }
}

impl std::ops::Add for ErrorCount {
    type Output = ErrorCount;

    fn add(self, other: ErrorCount) -> ErrorCount {
        ErrorCount {
            errors: self.errors + other.errors,
            reference_words: self.reference_words + other.reference_words,
        }
    }
}

/// The word error rate of one hypothesis.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    ErrorCount::of(reference, hypothesis).rate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_text_up_to_case_and_punctuation_has_no_errors() {
        assert_eq!(word_error_rate("And so, my fellow Americans.", "and so my fellow americans"), 0.0);
    }

    #[test]
    fn one_substitution_in_four_words_is_a_quarter() {
        assert_eq!(word_error_rate("where is my order", "where is my border"), 0.25);
    }

    #[test]
    fn insertions_and_deletions_count() {
        assert_eq!(word_error_rate("a b c", "a c"), 1.0 / 3.0);
        assert_eq!(word_error_rate("a b", "a b c d"), 1.0);
    }

    #[test]
    fn chinese_is_compared_per_character() {
        assert_eq!(normalized_tokens("我的订单"), vec!["我", "的", "订", "单"]);
        assert_eq!(word_error_rate("我的订单", "我的定单"), 0.25);
    }

    #[test]
    fn apostrophes_inside_words_are_kept() {
        assert_eq!(normalized_tokens("Don't 'quote'"), vec!["don't", "quote"]);
    }

    #[test]
    fn pooled_counts_weight_by_length() {
        let total = ErrorCount::of("a b c d", "a b c d") + ErrorCount::of("e f", "x f");
        assert_eq!(total, ErrorCount { errors: 1, reference_words: 6 });
    }
}
