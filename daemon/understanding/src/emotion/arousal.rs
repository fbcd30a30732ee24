//! Arousal: how activated the caller is, from 0 (calm) to 1 (agitated).
//!
//! The text gives a first estimate: a resting level, plus the strength of the
//! sentiment, `!`, SHOUTED words and anger words. The voice then moves it by
//! up to ±[`VOICE_AROUSAL_GAIN`]: the *prosody score* in -1..=1 compares the
//! turn's energy, pitch range, pitch level and speaking rate with the call's
//! baseline (its first turns), or, before there is one, with typical
//! telephone speech. Absolute levels depend on the microphone's gain and on
//! the speaker, so a cue measured against a typical value counts half
//! ([`UNCALIBRATED_CONFIDENCE`]), and pitch level is only compared with a
//! baseline (a typical F0 would differ by an octave between speakers).
//!
//! Invariants: every function returns a finite value in its documented range
//! for any input, including NaN features.

use super::acoustic::{AcousticFeatures, SILENCE_DBFS};
use super::reading::TextReading;

/// Arousal of a neutral, unemphatic sentence.
pub const AROUSAL_AT_REST: f32 = 0.2;
/// Added per unit of |compound| (strong sentiment is rarely calm).
pub const AROUSAL_PER_INTENSITY: f32 = 0.35;
/// Added per `!`, for at most three.
pub const AROUSAL_PER_EXCLAMATION: f32 = 0.08;
const MAX_COUNTED_EXCLAMATIONS: usize = 3;
/// Added when a sentiment word is SHOUTED.
pub const AROUSAL_SHOUTING: f32 = 0.15;
/// Added when the text has an anger word (furious, 气死, ...).
pub const AROUSAL_ANGER_CUE: f32 = 0.25;
/// Arousal at or above this is "high" for the label rules.
pub const HIGH_AROUSAL: f32 = 0.6;

/// Nominal active speech level of telephone speech (ITU-T P.56 practice).
pub const TYPICAL_SPEECH_DBFS: f32 = -26.0;
/// A calm speaker's 10th-90th percentile F0 span.
pub const TYPICAL_PITCH_RANGE_SEMITONES: f32 = 6.0;
/// Words (English) or 1.5-character units (Mandarin) per second of speech.
pub const TYPICAL_RATE_WPS: f32 = 3.0;
/// A level this much above the reference saturates the energy cue.
pub const ENERGY_SPAN_DB: f32 = 6.0;
/// A pitch range this much wider than the reference saturates its cue.
pub const PITCH_RANGE_SPAN_SEMITONES: f32 = 4.0;
/// A median F0 this much above the baseline's saturates its cue.
pub const PITCH_LEVEL_SPAN_SEMITONES: f32 = 3.0;
/// A rate this fraction faster than the reference saturates its cue.
pub const RATE_SPAN: f32 = 0.3;
/// Weights of the energy, pitch-range, pitch-level and rate cues.
pub const CUE_WEIGHTS: [f32; 4] = [0.4, 0.25, 0.15, 0.2];
/// Confidence of a cue measured against a typical value, not a baseline.
pub const UNCALIBRATED_CONFIDENCE: f32 = 0.5;
/// The most the voice moves arousal, either way.
pub const VOICE_AROUSAL_GAIN: f32 = 0.4;
/// Turns with less speech than this give no prosody score.
pub const MIN_SPEECH_SECONDS: f32 = 0.3;

/// Arousal from the text alone.
pub(crate) fn text_arousal(reading: &TextReading) -> f32 {
    let mut arousal = AROUSAL_AT_REST + AROUSAL_PER_INTENSITY * reading.compound.abs();
    arousal += AROUSAL_PER_EXCLAMATION * reading.exclamations.min(MAX_COUNTED_EXCLAMATIONS) as f32;
    if reading.shouted {
        arousal += AROUSAL_SHOUTING;
    }
    if reading.cues.anger {
        arousal += AROUSAL_ANGER_CUE;
    }
    clamp_unit(arousal)
}

/// Text arousal moved by the prosody score.
pub(crate) fn with_voice(text_arousal: f32, prosody: Option<f32>) -> f32 {
    clamp_unit(text_arousal + VOICE_AROUSAL_GAIN * prosody.unwrap_or(0.0))
}

fn clamp_unit(x: f32) -> f32 {
    if x.is_finite() { x.clamp(0.0, 1.0) } else { AROUSAL_AT_REST }
}

/// How much more (+) or less (-) activated the voice is than the reference,
/// in -1..=1; `None` without enough speech.
pub(crate) fn prosody_score(turn: &AcousticFeatures, baseline: Option<&AcousticFeatures>) -> Option<f32> {
    if turn.speech_seconds.is_nan() || turn.speech_seconds < MIN_SPEECH_SECONDS {
        return None;
    }
    let baseline = baseline.filter(|b| b.speech_seconds >= MIN_SPEECH_SECONDS);
    let finite = |x: Option<f32>| x.filter(|v| v.is_finite());

    let energy = finite(Some(turn.energy_dbfs)).filter(|&e| e > SILENCE_DBFS).map(|e| {
        let reference = baseline.and_then(|b| finite(Some(b.energy_dbfs)).filter(|&r| r > SILENCE_DBFS));
        cue((e - reference.unwrap_or(TYPICAL_SPEECH_DBFS)) / ENERGY_SPAN_DB, reference.is_some())
    });
    let range = finite(turn.pitch_range_semitones).map(|r| {
        let reference = baseline.and_then(|b| finite(b.pitch_range_semitones));
        let span = r - reference.unwrap_or(TYPICAL_PITCH_RANGE_SEMITONES);
        cue(span / PITCH_RANGE_SPAN_SEMITONES, reference.is_some())
    });
    let level = finite(turn.pitch_median_hz).filter(|&f| f > 0.0).and_then(|f| {
        let reference = baseline.and_then(|b| finite(b.pitch_median_hz)).filter(|&r| r > 0.0)?;
        Some(cue(12.0 * (f / reference).log2() / PITCH_LEVEL_SPAN_SEMITONES, true))
    });
    let rate = finite(turn.speaking_rate_wps).filter(|&r| r > 0.0).map(|r| {
        let reference = baseline.and_then(|b| finite(b.speaking_rate_wps)).filter(|&r| r > 0.0);
        let ratio = r / reference.unwrap_or(TYPICAL_RATE_WPS) - 1.0;
        cue(ratio / RATE_SPAN, reference.is_some())
    });

    let mut weighted = 0.0;
    let mut total_weight = 0.0;
    for (value, weight) in [energy, range, level, rate].into_iter().zip(CUE_WEIGHTS) {
        if let Some(value) = value {
            weighted += value * weight;
            total_weight += weight;
        }
    }
    (total_weight > 0.0)
        .then(|| weighted / total_weight)
        .filter(|s| s.is_finite())
        .map(|s| s.clamp(-1.0, 1.0))
}

fn cue(value: f32, calibrated: bool) -> f32 {
    let confidence = if calibrated { 1.0 } else { UNCALIBRATED_CONFIDENCE };
    if value.is_finite() { value.clamp(-1.0, 1.0) * confidence } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::super::reading::Cues;
    use super::*;

    fn voice(energy_dbfs: f32, range: f32, median: f32, rate: f32) -> AcousticFeatures {
        AcousticFeatures {
            energy_dbfs,
            pitch_median_hz: Some(median),
            pitch_range_semitones: Some(range),
            speaking_rate_wps: Some(rate),
            voiced_seconds: 1.5,
            speech_seconds: 2.0,
        }
    }

    #[test]
    fn an_unemphatic_neutral_text_rests_low() {
        assert_eq!(text_arousal(&TextReading::default()), AROUSAL_AT_REST);
    }

    #[test]
    fn anger_words_and_exclamations_raise_text_arousal_above_high() {
        let reading = TextReading {
            compound: -0.6,
            exclamations: 2,
            shouted: false,
            cues: Cues { anger: true, ..Cues::default() },
        };
        assert!(text_arousal(&reading) >= HIGH_AROUSAL);
    }

    #[test]
    fn a_louder_wider_faster_voice_than_the_baseline_scores_high() {
        let calm = voice(-30.0, 5.0, 180.0, 2.8);
        let raised = voice(-22.0, 10.0, 230.0, 3.8);
        let score = prosody_score(&raised, Some(&calm)).expect("score");
        assert!(score > 0.9, "{score}");
        assert!(prosody_score(&calm, Some(&raised)).expect("score") < -0.9);
        assert!(prosody_score(&calm, Some(&calm)).expect("score").abs() < 1e-6);
    }

    #[test]
    fn without_a_baseline_the_voice_counts_at_most_half() {
        let raised = voice(-10.0, 20.0, 300.0, 8.0);
        let score = prosody_score(&raised, None).expect("score");
        assert!((score - UNCALIBRATED_CONFIDENCE).abs() < 1e-6, "{score}");
    }

    #[test]
    fn too_little_speech_or_nan_features_give_no_or_a_finite_score() {
        let mut short = voice(-20.0, 8.0, 200.0, 3.0);
        short.speech_seconds = 0.1;
        assert_eq!(prosody_score(&short, None), None);
        let nan = voice(f32::NAN, f32::NAN, f32::NAN, f32::NAN);
        assert_eq!(prosody_score(&nan, None), None);
        assert!(with_voice(f32::NAN, Some(f32::NAN)).is_finite());
    }
}
