//! Voice wake-up while the kiosk is idle (sans-IO): someone has started to
//! speak to it once the VAD has heard a short run of speech frames. A short
//! run keeps clicks and single words from a passer-by from starting a visit.

use std::time::Duration;

use voicebot_dialog::call::VoiceFrame;

/// Speech needed, without a gap, to wake the kiosk.
pub(crate) const WAKE_SPEECH: Duration = Duration::from_millis(300);

/// Counts consecutive speech; says when it reaches [`WAKE_SPEECH`].
#[derive(Debug, Default)]
pub(crate) struct VoiceWake {
    speech: Duration,
}

impl VoiceWake {
    /// Feeds one VAD frame; `true` once the run of speech is long enough (then it starts over).
    pub(crate) fn push(&mut self, frame: &VoiceFrame) -> bool {
        if !frame.speech {
            self.speech = Duration::ZERO;
            return false;
        }
        self.speech += frame.duration;
        if self.speech >= WAKE_SPEECH {
            self.speech = Duration::ZERO;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(speech: bool) -> VoiceFrame {
        VoiceFrame { duration: Duration::from_millis(32), speech, level_db: -20.0, playout_db: None }
    }

    #[test]
    fn a_run_of_speech_wakes_and_a_gap_starts_over() {
        let mut wake = VoiceWake::default();
        // 9 × 32 ms = 288 ms: not yet; a gap resets.
        assert!(!(0..9).any(|_| wake.push(&frame(true))));
        assert!(!wake.push(&frame(false)));
        assert!(!(0..9).any(|_| wake.push(&frame(true))));
        // The tenth frame of an unbroken run reaches 300 ms.
        assert!(wake.push(&frame(true)));
        // And it starts over.
        assert!(!wake.push(&frame(true)));
    }
}
