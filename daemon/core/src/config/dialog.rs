//! `[dialog]`: turn-taking timers, the escalation policy's thresholds and the
//! per-line and per-caller policies (elder lines, VIP callers).
//!
//! Stage two of loading: every value checked against the rules the call
//! state machine relies on (barge-in decided within 200 ms, the speculative
//! end of turn before the real one).

use std::time::Duration;

use super::ConfigError;
use super::raw::RawDialog;

/// The validated `[dialog]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct DialogConfig {
    pub end_of_turn: Duration,
    pub end_of_turn_digits: Duration,
    pub early_end_of_turn: Duration,
    pub barge_in_after: Duration,
    pub backchannel_max: Duration,
    pub no_input: Duration,
    pub no_input_elder: Duration,
    pub max_no_input_reprompts: u32,
    pub max_failed_turns: u32,
    pub confidence_floor: f32,
    pub valence_limit: i8,
    pub hand_over_on_worsening: bool,
    /// Dialled numbers (SIP user part) that are elder lines.
    pub elder_lines: Vec<String>,
    /// Caller numbers given priority (VIP).
    pub vip_callers: Vec<String>,
}

fn error(origin: &str, key: &'static str, value: String, problem: &str) -> ConfigError {
    ConfigError::Value { origin: origin.to_owned(), key, value, problem: problem.to_owned() }
}

/// Validates `[dialog]`.
///
/// # Errors
/// A value out of its range, or timers that break the turn-taking rules.
pub(crate) fn validate_dialog(raw: &RawDialog, origin: &str) -> Result<DialogConfig, ConfigError> {
    let ms = |key: &'static str, value: Option<u32>, range: std::ops::RangeInclusive<u32>| {
        let v = value.ok_or_else(|| error(origin, key, "(missing)".into(), "no value and no default"))?;
        if range.contains(&v) {
            Ok(Duration::from_millis(u64::from(v)))
        } else {
            Err(error(origin, key, v.to_string(), &format!("must be {} to {}", range.start(), range.end())))
        }
    };
    let end_of_turn = ms("dialog.end_of_turn_ms", raw.end_of_turn_ms, 200..=5_000)?;
    let end_of_turn_digits = ms("dialog.end_of_turn_digits_ms", raw.end_of_turn_digits_ms, 200..=10_000)?;
    let early_end_of_turn = ms("dialog.early_end_of_turn_ms", raw.early_end_of_turn_ms, 60..=5_000)?;
    let barge_in_after = ms("dialog.barge_in_ms", raw.barge_in_ms, 40..=160)?;
    let backchannel_max = ms("dialog.backchannel_max_ms", raw.backchannel_max_ms, 200..=3_000)?;
    let no_input = ms("dialog.no_input_ms", raw.no_input_ms, 1_000..=60_000)?;
    let no_input_elder = ms("dialog.no_input_elder_ms", raw.no_input_elder_ms, 1_000..=60_000)?;
    if early_end_of_turn >= end_of_turn {
        return Err(error(
            origin,
            "dialog.early_end_of_turn_ms",
            early_end_of_turn.as_millis().to_string(),
            "must be shorter than dialog.end_of_turn_ms",
        ));
    }
    if end_of_turn_digits < end_of_turn {
        return Err(error(
            origin,
            "dialog.end_of_turn_digits_ms",
            end_of_turn_digits.as_millis().to_string(),
            "must not be shorter than dialog.end_of_turn_ms",
        ));
    }
    let count = |key: &'static str, value: Option<u32>, max: u32| {
        let v = value.ok_or_else(|| error(origin, key, "(missing)".into(), "no value and no default"))?;
        if (1..=max).contains(&v) {
            Ok(v)
        } else {
            Err(error(origin, key, v.to_string(), &format!("must be 1 to {max}")))
        }
    };
    let max_no_input_reprompts = count("dialog.max_no_input_reprompts", raw.max_no_input_reprompts, 10)?;
    let max_failed_turns = count("dialog.max_failed_turns", raw.max_failed_turns, 20)?;
    let confidence_floor = raw.confidence_floor.unwrap_or(0.55);
    if !(0.0..=1.0).contains(&confidence_floor) {
        return Err(error(
            origin,
            "dialog.confidence_floor",
            confidence_floor.to_string(),
            "must be between 0 and 1",
        ));
    }
    let valence = raw.valence_limit.unwrap_or(-2);
    if !(-2..=0).contains(&valence) {
        return Err(error(origin, "dialog.valence_limit", valence.to_string(), "must be -2, -1 or 0"));
    }
    Ok(DialogConfig {
        end_of_turn,
        end_of_turn_digits,
        early_end_of_turn,
        barge_in_after,
        backchannel_max,
        no_input,
        no_input_elder,
        max_no_input_reprompts,
        max_failed_turns,
        confidence_floor,
        valence_limit: i8::try_from(valence).unwrap_or(-2),
        hand_over_on_worsening: raw.hand_over_on_worsening.unwrap_or(true),
        elder_lines: raw.elder_lines.clone().unwrap_or_default(),
        vip_callers: raw.vip_callers.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let d = Config::embedded_default().unwrap().dialog;
        assert_eq!(d.end_of_turn.as_millis(), 600);
        assert_eq!(d.barge_in_after.as_millis(), 160);
        assert_eq!((d.max_failed_turns, d.valence_limit), (3, -2));
    }

    #[test]
    fn timers_that_break_turn_taking_are_refused_by_key() {
        let err = Config::from_toml("[dialog]\nearly_end_of_turn_ms = 700\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("dialog.early_end_of_turn_ms"), "{err}");
        let err = Config::from_toml("[dialog]\nbarge_in_ms = 300\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("dialog.barge_in_ms"), "{err}");
        let err = Config::from_toml("[dialog]\nvalence_limit = 1\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("dialog.valence_limit"), "{err}");
    }
}
