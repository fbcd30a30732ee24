//! From evidence to an [`Emotion`]: the valence level, the voice's effect on
//! it, and the label rules.
//!
//! Valence: the text's compound score `c` becomes ±2 when `|c| ≥`
//! [`STRONG_VALENCE`], ±1 when `|c| ≥` [`MILD_VALENCE`], else 0. The text
//! decides the sign: the voice never turns a neutral text negative or
//! positive, and moves a non-zero valence at most one level further from zero,
//! only when its prosody score reaches [`VOICE_INTENSIFIES_AT`].
//!
//! Label rules, first match wins:
//! 1. valence < 0 and arousal ≥ [`HIGH_AROUSAL`] → `angry`, unless the text
//!    has worry cues and no anger cue (fear is as activated as anger; words,
//!    not arousal, tell them apart);
//! 2. valence < 0 with worry cues (stolen, fraud, worried, 担心, 被盗) →
//!    `anxious`;
//! 3. valence < 0 otherwise: repetition or obstacle cues (again, still, third
//!    time, 又, 一直), a mild complaint, or a strong but calm one →
//!    `frustrated`;
//! 4. valence ≥ +1 → `satisfied`;
//! 5. otherwise `neutral`.

use super::arousal::{HIGH_AROUSAL, text_arousal, with_voice};
use super::reading::{Cues, TextReading};
use super::{Emotion, EmotionLabel};

/// `|compound|` from which the valence is ±1: VADER's published cut for
/// "positive"/"negative" (its authors' ±0.05). The hotline layer already
/// zeroes polite words ("please", "help"), so courtesy does not read as joy.
pub const MILD_VALENCE: f32 = 0.05;
/// `|compound|` from which the valence is ±2.
pub const STRONG_VALENCE: f32 = 0.55;
/// Prosody score from which the voice adds one level to a non-zero valence.
pub const VOICE_INTENSIFIES_AT: f32 = 0.5;

/// The 5-level valence of a compound score.
pub(crate) fn valence_level(compound: f32) -> i8 {
    let magnitude = compound.abs();
    let level = if magnitude >= STRONG_VALENCE {
        2
    } else if magnitude >= MILD_VALENCE {
        1
    } else {
        0
    };
    if compound < 0.0 { -level } else { level }
}

/// What the caller wants says something about how they feel: a complaint is
/// at least mildly negative, a fraud or security report at least anxious.
/// Applied only when the words alone read as neutral: it never overrides
/// what the caller actually said.
pub fn with_intent(emotion: Emotion, intent: &str) -> Emotion {
    if emotion.valence != 0 {
        return emotion;
    }
    let label = match intent {
        "complaint" if emotion.arousal >= HIGH_AROUSAL => EmotionLabel::Angry,
        "complaint" => EmotionLabel::Frustrated,
        "account_security" => EmotionLabel::Anxious,
        _ => return emotion,
    };
    Emotion { valence: -1, label, ..emotion }
}

/// Combines the text reading with the voice's prosody score.
pub(crate) fn fuse(reading: &TextReading, prosody: Option<f32>) -> Emotion {
    let text_valence = valence_level(reading.compound);
    let intensified = prosody.is_some_and(|p| p >= VOICE_INTENSIFIES_AT);
    let valence = match text_valence {
        v if intensified && v > 0 => (v + 1).min(2),
        v if intensified && v < 0 => (v - 1).max(-2),
        v => v,
    };
    let arousal = with_voice(text_arousal(reading), prosody);
    Emotion {
        valence,
        arousal,
        label: label(valence, arousal, reading.cues),
        score: if reading.compound.is_finite() { reading.compound } else { 0.0 },
        prosody,
    }
}

/// The label rules of the module documentation.
pub(crate) fn label(valence: i8, arousal: f32, cues: Cues) -> EmotionLabel {
    let fearful = cues.worry && !cues.anger;
    if valence < 0 {
        if arousal >= HIGH_AROUSAL && !fearful {
            EmotionLabel::Angry
        } else if cues.worry {
            EmotionLabel::Anxious
        } else {
            EmotionLabel::Frustrated
        }
    } else if valence >= 1 {
        EmotionLabel::Satisfied
    } else {
        EmotionLabel::Neutral
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Cues = Cues { anger: false, worry: false, repetition: false };
    const WORRY: Cues = Cues { anger: false, worry: true, repetition: false };
    const ANGER: Cues = Cues { anger: true, worry: false, repetition: false };
    const REPEAT: Cues = Cues { anger: false, worry: false, repetition: true };

    #[test]
    fn high_arousal_negative_is_angry() {
        assert_eq!(label(-1, 0.7, NONE), EmotionLabel::Angry);
        assert_eq!(label(-2, 0.9, REPEAT), EmotionLabel::Angry);
    }

    #[test]
    fn negative_with_worry_cues_is_anxious_even_when_aroused() {
        assert_eq!(label(-2, 0.4, WORRY), EmotionLabel::Anxious);
        assert_eq!(label(-2, 0.8, WORRY), EmotionLabel::Anxious);
        let both = Cues { anger: true, worry: true, repetition: false };
        assert_eq!(label(-2, 0.8, both), EmotionLabel::Angry);
    }

    #[test]
    fn calm_negative_with_repetition_or_mild_is_frustrated() {
        assert_eq!(label(-1, 0.3, REPEAT), EmotionLabel::Frustrated);
        assert_eq!(label(-1, 0.3, NONE), EmotionLabel::Frustrated);
        assert_eq!(label(-2, 0.5, ANGER), EmotionLabel::Frustrated);
    }

    #[test]
    fn positive_is_satisfied_and_zero_is_neutral() {
        assert_eq!(label(1, 0.3, NONE), EmotionLabel::Satisfied);
        assert_eq!(label(2, 0.9, ANGER), EmotionLabel::Satisfied);
        assert_eq!(label(0, 0.9, ANGER), EmotionLabel::Neutral);
    }

    #[test]
    fn a_complaint_or_fraud_report_is_never_read_as_neutral() {
        let calm =
            Emotion { valence: 0, arousal: 0.2, label: EmotionLabel::Neutral, score: 0.0, prosody: None };
        assert_eq!(with_intent(calm, "complaint").label, EmotionLabel::Frustrated);
        assert_eq!(with_intent(calm, "account_security").valence, -1);
        assert_eq!(with_intent(calm, "account_security").label, EmotionLabel::Anxious);
        assert_eq!(with_intent(calm, "store_hours"), calm);
        let angry = Emotion { valence: -2, label: EmotionLabel::Angry, ..calm };
        assert_eq!(with_intent(angry, "complaint"), angry);
        let pleased = Emotion { valence: 2, label: EmotionLabel::Satisfied, ..calm };
        assert_eq!(with_intent(pleased, "complaint"), pleased);
    }

    #[test]
    fn valence_levels_follow_the_thresholds() {
        assert_eq!(valence_level(0.0), 0);
        assert_eq!(valence_level(0.04), 0);
        assert_eq!(valence_level(-0.05), -1);
        assert_eq!(valence_level(0.54), 1);
        assert_eq!(valence_level(0.6), 2);
        assert_eq!(valence_level(-1.0), -2);
        assert_eq!(valence_level(f32::NAN), 0);
    }

    #[test]
    fn the_voice_intensifies_but_never_sets_the_sign() {
        let mild = TextReading { compound: -0.35, ..TextReading::default() };
        assert_eq!(fuse(&mild, Some(1.0)).valence, -2);
        assert_eq!(fuse(&mild, Some(0.2)).valence, -1);
        let neutral = TextReading::default();
        let loud = fuse(&neutral, Some(1.0));
        assert_eq!((loud.valence, loud.label), (0, EmotionLabel::Neutral));
        assert!(loud.arousal > fuse(&neutral, None).arousal);
    }

    #[test]
    fn a_raised_voice_pushes_a_mild_complaint_to_angry() {
        let mild = TextReading { compound: -0.35, ..TextReading::default() };
        assert_eq!(fuse(&mild, None).label, EmotionLabel::Frustrated);
        assert_eq!(fuse(&mild, Some(1.0)).label, EmotionLabel::Angry);
    }
}
