//! Keypad input: 0 for a person, * to repeat, 1–9 for the menu, and numbers
//! keyed in when the bot asked for one (ended by # or a pause).
//!
//! While a number is being keyed in, 0 is a digit of it, not a request for a
//! person; * still repeats.

use std::time::{Duration, Instant};

/// What a key press (or the pause after digits) means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeypadEvent {
    Zero,
    Star,
    Choice(char),
    Digits(String),
}

/// Digits being keyed in.
#[derive(Debug, Default)]
pub(crate) struct Keypad {
    digits: String,
    deadline: Option<Instant>,
}

/// Longest number accepted from the keypad (a card number is 19).
const MAX_DIGITS: usize = 24;

impl Keypad {
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// One key; `collecting` when the bot waits for a number.
    pub(crate) fn press(
        &mut self,
        key: char,
        collecting: bool,
        now: Instant,
        timeout: Duration,
    ) -> Option<KeypadEvent> {
        match key {
            '*' => {
                *self = Keypad::default();
                Some(KeypadEvent::Star)
            }
            '#' => self.finish(),
            '0'..='9' if collecting || !self.digits.is_empty() => {
                if self.digits.len() < MAX_DIGITS {
                    self.digits.push(key);
                }
                self.deadline = Some(now + timeout);
                None
            }
            '0' => Some(KeypadEvent::Zero),
            '1'..='9' => Some(KeypadEvent::Choice(key)),
            _ => None,
        }
    }

    /// The pause after keyed digits ends the number.
    pub(crate) fn timeout(&mut self, now: Instant) -> Option<KeypadEvent> {
        if self.deadline.is_some_and(|d| now >= d) { self.finish() } else { None }
    }

    fn finish(&mut self) -> Option<KeypadEvent> {
        let digits = std::mem::take(&mut self.digits);
        self.deadline = None;
        (!digits.is_empty()).then_some(KeypadEvent::Digits(digits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(3);

    #[test]
    fn outside_a_number_keys_are_commands() {
        let mut k = Keypad::default();
        let now = Instant::now();
        assert_eq!(k.press('0', false, now, WAIT), Some(KeypadEvent::Zero));
        assert_eq!(k.press('2', false, now, WAIT), Some(KeypadEvent::Choice('2')));
        assert_eq!(k.press('*', false, now, WAIT), Some(KeypadEvent::Star));
        assert_eq!(k.press('#', false, now, WAIT), None);
    }

    #[test]
    fn a_number_ends_with_hash_or_a_pause_and_may_contain_zero() {
        let mut k = Keypad::default();
        let now = Instant::now();
        for key in ['4', '0', '7'] {
            assert_eq!(k.press(key, true, now, WAIT), None);
        }
        assert_eq!(k.press('#', true, now, WAIT), Some(KeypadEvent::Digits("407".into())));
        k.press('9', true, now, WAIT);
        assert_eq!(k.timeout(now + Duration::from_secs(2)), None);
        assert_eq!(k.timeout(now + WAIT), Some(KeypadEvent::Digits("9".into())));
        assert_eq!(k.deadline(), None);
    }
}
