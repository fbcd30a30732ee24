//! Emotion of one caller turn: a 5-level valence (-2 very negative ..= +2 very
//! positive), an arousal in 0..=1 and a label (`angry`, `anxious`,
//! `frustrated`, `neutral`, `satisfied`), from the transcript and, when there
//! is audio, the caller's voice.
//!
//! How it works:
//! - **Text.** English runs through a compact port of VADER (`vader.rs`, MIT
//!   lexicon loaded at run time) with hotline adaptations (`lexicon_en.rs`);
//!   Chinese through the same rules over our own lexicon (`lexicon_zh.rs`,
//!   longest match, since Chinese has no spaces). Both give a compound score
//!   in -1..=1 and anger, worry and repetition cues.
//! - **Voice.** [`analyze`] measures energy, pitch (YIN) and speaking rate of
//!   a turn; [`arousal`] compares them with the call's [`CallBaseline`] (its
//!   first turns) or typical values.
//! - **Fusion.** [`fusion`] maps the compound to a valence level, lets the
//!   voice raise arousal and intensify (never set) the valence, and applies
//!   the documented label rules.
//! - **Course of the call.** [`Trajectory`] keeps the last turns and says
//!   whether the caller is getting angrier.
//!
//! Per call: create a [`Trajectory`] and a [`CallBaseline`]; per turn:
//! `let voice = analyze(&pcm, spoken_word_count(&text));`, then
//! `estimator.estimate(&text, &lang, Some(&voice), baseline.features().as_ref())`,
//! `trajectory.push(emotion)` and `baseline.observe(&voice)`.
//!
//! Limits, honestly: there is no trained emotion model here (none that runs
//! on the device for English and Mandarin was available); this is a lexicon
//! plus prosody heuristics. It misses sarcasm, politeness that masks anger,
//! and words outside its lexicons; the typical voice values are rough
//! population figures, so the voice counts for half until a baseline exists;
//! a caller angry from the first turn sets an angry baseline; the pitch
//! tracker assumes one voice and is fooled by loud music or crosstalk. Other
//! languages than English and Mandarin get a neutral text reading (Han text is
//! still read as Chinese), and their voice only moves arousal.
//!
//! Invariants: deterministic; never panics on any input (empty or very long
//! text, empty or NaN audio); text beyond [`MAX_TEXT_BYTES`] and audio beyond
//! [`acoustic::MAX_SECONDS`] are ignored, so a turn costs well under a
//! millisecond for text and a few milliseconds for seconds of audio.

pub mod acoustic;
pub mod arousal;
pub mod baseline;
mod chinese;
pub mod fusion;
mod lexicon_en;
mod lexicon_zh;
mod pitch;
mod reading;
pub mod trajectory;
mod vader;

use std::fmt;

use serde::Serialize;
use voicebot_core::language::{Language, is_han};

pub use acoustic::{AcousticFeatures, analyze, spoken_word_count};
pub use baseline::CallBaseline;
pub use trajectory::Trajectory;
pub use vader::LexiconError;

use lexicon_zh::ZhLexicon;
use reading::TextReading;
use vader::Lexicon;

/// Text beyond this many bytes (at a character boundary) is not read.
pub const MAX_TEXT_BYTES: usize = 4096;

/// The emotional state read from one caller turn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Emotion {
    /// -2 very negative ..= +2 very positive.
    pub valence: i8,
    /// 0 calm ..= 1 agitated.
    pub arousal: f32,
    pub label: EmotionLabel,
    /// The text's compound sentiment in -1..=1, before the voice.
    pub score: f32,
    /// The voice's activation relative to its reference, -1 ..= +1; `None`
    /// without usable audio.
    pub prosody: Option<f32>,
}

/// The label the dialog reacts to; see [`fusion`] for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmotionLabel {
    Angry,
    Anxious,
    Frustrated,
    Neutral,
    Satisfied,
}

impl EmotionLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            EmotionLabel::Angry => "angry",
            EmotionLabel::Anxious => "anxious",
            EmotionLabel::Frustrated => "frustrated",
            EmotionLabel::Neutral => "neutral",
            EmotionLabel::Satisfied => "satisfied",
        }
    }
}

impl fmt::Display for EmotionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lexicons, loaded once per process and shared by all calls.
pub struct EmotionEstimator {
    english: Lexicon,
    chinese: ZhLexicon,
}

impl fmt::Debug for EmotionEstimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmotionEstimator")
            .field("english_entries", &self.english.len())
            .finish_non_exhaustive()
    }
}

impl EmotionEstimator {
    /// Builds the estimator from the text of `vader_lexicon.txt`.
    ///
    /// # Errors
    /// [`LexiconError`] naming the first malformed line, or an empty lexicon.
    pub fn new(vader_lexicon: &str) -> Result<EmotionEstimator, LexiconError> {
        let mut english = vader::parse_lexicon(vader_lexicon)?;
        lexicon_en::adapt(&mut english);
        Ok(EmotionEstimator { english, chinese: ZhLexicon::new() })
    }

    /// Reads one caller turn. `language` is what ASR reported; text with Han
    /// characters is read as Chinese whatever it says (Cantonese, mislabelled
    /// turns), Latin text as English for `en` and `zh` (a Mandarin turn
    /// transcribed as "OK"), and as neutral for other languages. `audio` is
    /// this turn's prosody and `baseline` the call's (see [`CallBaseline`]).
    pub fn estimate(
        &self,
        text: &str,
        language: &Language,
        audio: Option<&AcousticFeatures>,
        baseline: Option<&AcousticFeatures>,
    ) -> Emotion {
        let reading = self.read(text, language);
        let prosody = audio.and_then(|turn| arousal::prosody_score(turn, baseline));
        fusion::fuse(&reading, prosody)
    }

    fn read(&self, text: &str, language: &Language) -> TextReading {
        let text = &text[..char_floor(text, MAX_TEXT_BYTES)];
        if text.chars().any(is_han) {
            chinese::read_chinese(&self.chinese, &self.english, text)
        } else if matches!(language, Language::En | Language::Zh) {
            vader::read_english(&self.english, text)
        } else {
            TextReading::default()
        }
    }
}

/// The largest character boundary at or below `max`.
fn char_floor(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimator() -> EmotionEstimator {
        EmotionEstimator::new(vader::tests::EXCERPT).expect("excerpt parses")
    }

    fn text_only(text: &str, language: Language) -> Emotion {
        estimator().estimate(text, &language, None, None)
    }

    #[test]
    fn brief_chinese_cases_get_their_labels() {
        let cases = [
            ("非常满意", 2, EmotionLabel::Satisfied),
            ("不满意", -1, EmotionLabel::Frustrated),
            ("太慢了气死我了", -2, EmotionLabel::Angry),
            ("我的卡被盗了很着急", -2, EmotionLabel::Anxious),
            ("我的快递怎么还没到", -1, EmotionLabel::Frustrated),
            ("我想查一下订单", 0, EmotionLabel::Neutral),
        ];
        for (text, valence, label) in cases {
            let emotion = text_only(text, Language::Zh);
            assert_eq!((emotion.valence, emotion.label), (valence, label), "{text}: {emotion:?}");
        }
    }

    #[test]
    fn english_cases_get_their_labels() {
        let cases = [
            ("I am very angry!!", -2, EmotionLabel::Angry),
            ("My card was stolen, I'm really worried", -2, EmotionLabel::Anxious),
            ("It still hasn't arrived", -1, EmotionLabel::Frustrated),
            ("Thanks, that's great", 2, EmotionLabel::Satisfied),
            ("I want to check my order status", 0, EmotionLabel::Neutral),
        ];
        for (text, valence, label) in cases {
            let emotion = text_only(text, Language::En);
            assert_eq!((emotion.valence, emotion.label), (valence, label), "{text}: {emotion:?}");
        }
    }

    #[test]
    fn han_text_is_read_as_chinese_whatever_the_reported_language() {
        let yue = text_only("太慢了气死我了", Language::from_code("yue"));
        assert_eq!(yue.label, EmotionLabel::Angry);
        assert_eq!(text_only("non è buono, terrible", Language::from_code("it")).valence, 0);
    }

    #[test]
    fn a_raised_voice_against_the_baseline_turns_a_complaint_angry() {
        let calm = AcousticFeatures {
            energy_dbfs: -30.0,
            pitch_median_hz: Some(180.0),
            pitch_range_semitones: Some(5.0),
            speaking_rate_wps: Some(2.8),
            voiced_seconds: 1.2,
            speech_seconds: 2.0,
        };
        let raised = AcousticFeatures {
            energy_dbfs: -22.0,
            pitch_median_hz: Some(240.0),
            pitch_range_semitones: Some(10.0),
            speaking_rate_wps: Some(3.8),
            ..calm
        };
        let estimator = estimator();
        let text = "It still hasn't arrived";
        let quiet = estimator.estimate(text, &Language::En, Some(&calm), Some(&calm));
        let loud = estimator.estimate(text, &Language::En, Some(&raised), Some(&calm));
        assert_eq!(quiet.label, EmotionLabel::Frustrated);
        assert_eq!((loud.valence, loud.label), (-2, EmotionLabel::Angry));
        let neutral = estimator.estimate("order status", &Language::En, Some(&raised), Some(&calm));
        assert_eq!((neutral.valence, neutral.label), (0, EmotionLabel::Neutral));
    }

    #[test]
    fn empty_odd_and_very_long_input_does_not_panic() {
        let estimator = estimator();
        for text in ["", " ", "!!!???", "\u{0}\u{FFFF}", "😡😡", "ÀÉÎ õü"] {
            let emotion = estimator.estimate(text, &Language::En, None, None);
            assert_eq!(emotion.valence, 0, "{text:?}");
        }
        let long = "气死我了，太慢了，".repeat(10_000) + &"terrible service ".repeat(10_000);
        let emotion = estimator.estimate(&long, &Language::Zh, None, None);
        assert_eq!(emotion.label, EmotionLabel::Angry);
        let nan = analyze(&[f32::NAN; 48_000], 10);
        let _ = estimator.estimate(&long, &Language::En, Some(&nan), Some(&nan));
    }

    #[test]
    fn serialises_with_snake_case_labels() {
        let json = serde_json::to_value(text_only("非常满意", Language::Zh)).expect("serialises");
        assert_eq!(json["label"], "satisfied");
        assert_eq!(json["valence"], 2);
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        let text = "满".repeat(MAX_TEXT_BYTES);
        assert_eq!(char_floor(&text, MAX_TEXT_BYTES) % 3, 0);
        assert_eq!(char_floor("abc", MAX_TEXT_BYTES), 3);
    }
}
