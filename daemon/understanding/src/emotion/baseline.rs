//! The caller's own resting voice: the mean prosody of the call's first
//! [`BASELINE_TURNS`] turns with enough speech. Later turns are compared with
//! it, so a naturally loud or high-pitched caller is not read as agitated.
//!
//! Limit: a caller who is already angry in the first turns sets an angry
//! baseline; until then (and for such callers) the fixed typical values of
//! [`super::arousal`] are the reference.
//!
//! Invariants: constant memory; non-finite features are ignored.

use super::acoustic::{AcousticFeatures, SILENCE_DBFS};
use super::arousal::MIN_SPEECH_SECONDS;

/// Turns averaged into the baseline.
pub const BASELINE_TURNS: u32 = 2;

#[derive(Debug, Clone, Copy, Default)]
struct Mean {
    sum: f32,
    count: u32,
}

impl Mean {
    fn add(&mut self, value: Option<f32>) {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            self.sum += v;
            self.count += 1;
        }
    }

    fn get(&self) -> Option<f32> {
        (self.count > 0).then(|| self.sum / self.count as f32)
    }
}

/// Accumulates a call's baseline; observe each turn after estimating it.
#[derive(Debug, Clone, Default)]
pub struct CallBaseline {
    turns: u32,
    energy: Mean,
    pitch: Mean,
    range: Mean,
    rate: Mean,
    voiced: Mean,
    speech: Mean,
}

impl CallBaseline {
    pub fn new() -> CallBaseline {
        CallBaseline::default()
    }

    /// Adds a turn while the baseline is still forming; returns whether it
    /// was used (turns with too little speech are not).
    pub fn observe(&mut self, turn: &AcousticFeatures) -> bool {
        let usable = turn.speech_seconds >= MIN_SPEECH_SECONDS
            && turn.energy_dbfs.is_finite()
            && turn.energy_dbfs > SILENCE_DBFS;
        if self.turns >= BASELINE_TURNS || !usable {
            return false;
        }
        self.turns += 1;
        self.energy.add(Some(turn.energy_dbfs));
        self.pitch.add(turn.pitch_median_hz);
        self.range.add(turn.pitch_range_semitones);
        self.rate.add(turn.speaking_rate_wps);
        self.voiced.add(Some(turn.voiced_seconds));
        self.speech.add(Some(turn.speech_seconds));
        true
    }

    /// The baseline, once at least one turn was observed.
    pub fn features(&self) -> Option<AcousticFeatures> {
        Some(AcousticFeatures {
            energy_dbfs: self.energy.get()?,
            pitch_median_hz: self.pitch.get(),
            pitch_range_semitones: self.range.get(),
            speaking_rate_wps: self.rate.get(),
            voiced_seconds: self.voiced.get().unwrap_or(0.0),
            speech_seconds: self.speech.get().unwrap_or(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(energy_dbfs: f32, pitch: Option<f32>, speech_seconds: f32) -> AcousticFeatures {
        AcousticFeatures {
            energy_dbfs,
            pitch_median_hz: pitch,
            pitch_range_semitones: pitch.map(|_| 5.0),
            speaking_rate_wps: Some(3.0),
            voiced_seconds: speech_seconds * 0.6,
            speech_seconds,
        }
    }

    #[test]
    fn averages_the_first_turns_and_then_stops() {
        let mut baseline = CallBaseline::new();
        assert!(baseline.features().is_none());
        assert!(baseline.observe(&turn(-30.0, Some(180.0), 2.0)));
        assert!(baseline.observe(&turn(-26.0, None, 2.0)));
        assert!(!baseline.observe(&turn(-10.0, Some(300.0), 2.0)));
        let features = baseline.features().expect("formed");
        assert_eq!(features.energy_dbfs, -28.0);
        assert_eq!(features.pitch_median_hz, Some(180.0));
    }

    #[test]
    fn turns_without_speech_are_skipped() {
        let mut baseline = CallBaseline::new();
        assert!(!baseline.observe(&turn(SILENCE_DBFS, None, 0.0)));
        assert!(!baseline.observe(&turn(f32::NAN, None, 2.0)));
        assert!(baseline.features().is_none());
    }
}
