//! Masking personal data in any text that leaves the process: logs,
//! tickets, MQTT, printed output.
//!
//! - card numbers (13–19 digits passing the Luhn check, or after a card cue) → `[card number]`
//! - national ID numbers (China's 18-character ID, a US SSN) → `[national id]`
//! - phone numbers → all but the last four digits masked: `*******8000`
//!
//! Spoken numbers are normalised first, so "four one one one one one …" is
//! caught too. Text with nothing to mask is returned unchanged.

use voicebot_core::Language;

use crate::slots::{DigitRun, digit_runs, normalize_numbers};

const CARD_CUES: [&str; 6] = ["card", "visa", "mastercard", "amex", "卡号", "银行卡"];
const ID_CUES: [&str; 5] = ["social security", "ssn", "身份证", "national id", "id number"];

/// Masks PII in `text`.
pub fn mask(text: &str, language: &Language) -> String {
    let normalized = normalize_numbers(text, language);
    let lower = normalized.to_lowercase();
    let runs = digit_runs(&normalized);
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    for run in &runs {
        let end_with_x = extend_id_checksum(&normalized, run);
        if is_national_id(run, &lower, end_with_x) {
            replacements.push((run.start, end_with_x, "[national id]".into()));
        } else if is_card(run, &lower) {
            replacements.push((run.start, run.end, "[card number]".into()));
        } else if crate::slots::scan_is_phone(run, &lower) {
            replacements.push((run.start, run.end, mask_phone(&run.digits)));
        }
    }
    if replacements.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(normalized.len());
    let mut at = 0;
    for (start, end, replacement) in replacements {
        out.push_str(&normalized[at..start]);
        out.push_str(&replacement);
        at = end;
    }
    out.push_str(&normalized[at..]);
    out
}

/// A phone number with all but its last four digits replaced by `*`.
pub fn mask_phone(digits: &str) -> String {
    let keep = digits.len().saturating_sub(4);
    digits.chars().enumerate().map(|(i, c)| if i < keep { '*' } else { c }).collect()
}

/// The end of a Chinese ID whose check character is `X`.
fn extend_id_checksum(text: &str, run: &DigitRun) -> usize {
    match text[run.end..].chars().next() {
        Some('X' | 'x') if run.digits.len() == 17 => run.end + 1,
        _ => run.end,
    }
}

fn is_national_id(run: &DigitRun, lower: &str, end: usize) -> bool {
    let n = run.digits.len() + (end - run.end);
    let cue = cue_before(lower, run, &ID_CUES);
    let chinese_id = n == 18 && looks_like_birth_date(&run.digits[6..14]);
    let ssn = run.digits.len() == 9 && cue;
    chinese_id || ssn || (cue && (9..=18).contains(&n))
}

fn looks_like_birth_date(yyyymmdd: &str) -> bool {
    let year: u32 = yyyymmdd[..4].parse().unwrap_or(0);
    let month: u32 = yyyymmdd[4..6].parse().unwrap_or(0);
    let day: u32 = yyyymmdd[6..].parse().unwrap_or(0);
    (1900..=2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn is_card(run: &DigitRun, lower: &str) -> bool {
    let n = run.digits.len();
    (13..=19).contains(&n) && (luhn_valid(&run.digits) || cue_before(lower, run, &CARD_CUES))
}

fn cue_before(lower: &str, run: &DigitRun, cues: &[&str]) -> bool {
    let mut from = run.start.saturating_sub(30);
    while !lower.is_char_boundary(from) {
        from += 1;
    }
    let context = &lower[from..run.start];
    cues.iter().any(|c| context.contains(c))
}

/// The Luhn checksum used by payment cards.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else { return false };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_masked_written_or_spoken() {
        assert_eq!(mask("my card is 4111 1111 1111 1111", &Language::En), "my card is [card number]");
        let spoken = "card number four one one one one one one one one one one one one one one one";
        assert_eq!(mask(spoken, &Language::En), "card number [card number]");
    }

    #[test]
    fn phones_keep_only_their_last_four_digits() {
        assert_eq!(mask("call me on 020 7946 0958", &Language::En), "call me on *******0958");
        assert_eq!(mask("我的手机是13800138000", &Language::Zh), "我的手机是*******8000");
    }

    #[test]
    fn national_ids_are_masked() {
        assert_eq!(mask("身份证号11010519491231002X", &Language::Zh), "身份证号[national id]");
        assert_eq!(
            mask("my social security number is 123-45-6789", &Language::En),
            "my social security number is [national id]"
        );
    }

    #[test]
    fn order_numbers_and_amounts_are_not_pii() {
        let text = "order 45712 cost twenty dollars";
        assert_eq!(mask(text, &Language::En), text);
    }

    #[test]
    fn luhn_accepts_test_cards_and_rejects_typos() {
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid("4111111111111112"));
    }
}
