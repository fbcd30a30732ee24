//! The clock rules of a conversation: when a turn ends, when the caller is
//! taken to be speaking over the bot, how long silence is tolerated.
//!
//! Invariant (checked by [`Timing::validate`]): barge-in is decided within
//! 200 ms of the caller starting to speak, and the tentative end of a turn
//! comes before the real one.

use std::time::Duration;

/// Timer settings for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Speech shorter than this is a click or a cough, not the start of a turn.
    pub min_speech: Duration,
    /// Silence that ends a turn.
    pub end_of_turn: Duration,
    /// Silence that ends a turn while the caller reads out digits (the bot asked for a number).
    pub end_of_turn_digits: Duration,
    /// Silence after which the utterance is sent to recognition speculatively, so
    /// the answer is ready when the turn really ends. Speech that resumes discards it.
    pub early_end_of_turn: Duration,
    /// A turn is cut after this much speech, however the caller goes on.
    pub max_utterance: Duration,
    /// Caller speech over the bot for this long pauses the bot (a barge-in).
    pub barge_in_after: Duration,
    /// Speech over the bot no longer than this may be a backchannel ("ok", "mm"),
    /// after which the bot resumes.
    pub backchannel_max: Duration,
    /// Silence after a question before the caller is reprompted.
    pub no_input: Duration,
    /// The same on an elder line: more time to answer.
    pub no_input_elder: Duration,
    /// Reprompts after silence before the bot says goodbye and hangs up.
    pub max_no_input_reprompts: u32,
    /// Keypad entry ends this long after the last digit (or at `#`).
    pub digit_timeout: Duration,
    /// Echo gate: how far below the bot's own output level its echo arrives (dB).
    pub echo_return_loss_db: f32,
    /// Echo gate: how far above the expected echo the caller must be to count (dB).
    pub echo_margin_db: f32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            min_speech: Duration::from_millis(100),
            end_of_turn: Duration::from_millis(600),
            end_of_turn_digits: Duration::from_millis(1500),
            early_end_of_turn: Duration::from_millis(200),
            max_utterance: Duration::from_secs(20),
            barge_in_after: Duration::from_millis(160),
            backchannel_max: Duration::from_millis(800),
            no_input: Duration::from_secs(7),
            no_input_elder: Duration::from_secs(10),
            max_no_input_reprompts: 2,
            digit_timeout: Duration::from_secs(3),
            echo_return_loss_db: 6.0,
            echo_margin_db: 3.0,
        }
    }
}

/// The longest a barge-in may take to stop the bot.
pub const BARGE_IN_LIMIT: Duration = Duration::from_millis(200);

impl Timing {
    /// The `[dialog]` section's timers (the rest keep their defaults).
    pub fn from_config(config: &voicebot_core::config::DialogConfig) -> Timing {
        Timing {
            end_of_turn: config.end_of_turn,
            end_of_turn_digits: config.end_of_turn_digits,
            early_end_of_turn: config.early_end_of_turn,
            barge_in_after: config.barge_in_after,
            backchannel_max: config.backchannel_max,
            no_input: config.no_input,
            no_input_elder: config.no_input_elder,
            max_no_input_reprompts: config.max_no_input_reprompts,
            ..Timing::default()
        }
    }

    /// # Errors
    /// A description of the first rule the settings break.
    pub fn validate(&self) -> Result<(), String> {
        // Frames are up to 40 ms long; the decision must still land within the limit.
        if self.barge_in_after + Duration::from_millis(40) > BARGE_IN_LIMIT {
            return Err(format!(
                "barge_in_after {:?} is too long: with 40 ms frames the bot must stop within {BARGE_IN_LIMIT:?}",
                self.barge_in_after
            ));
        }
        if self.early_end_of_turn >= self.end_of_turn {
            return Err("early_end_of_turn must be shorter than end_of_turn".into());
        }
        if self.end_of_turn_digits < self.end_of_turn {
            return Err("end_of_turn_digits must not be shorter than end_of_turn".into());
        }
        if self.min_speech > self.barge_in_after {
            return Err("min_speech must not be longer than barge_in_after".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_keep_their_own_rules() {
        Timing::default().validate().unwrap();
    }

    #[test]
    fn the_default_config_gives_the_default_timers() {
        let config = voicebot_core::config::Config::embedded_default().unwrap();
        assert_eq!(Timing::from_config(&config.dialog), Timing::default());
    }

    #[test]
    fn a_slow_barge_in_is_rejected() {
        let slow = Timing { barge_in_after: Duration::from_millis(190), ..Timing::default() };
        assert!(slow.validate().unwrap_err().contains("barge_in_after"));
    }
}
