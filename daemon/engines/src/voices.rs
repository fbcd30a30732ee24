//! One synthesiser for every language: Piper for English (and any language
//! without a voice of its own), espeak-ng for Mandarin.

use voicebot_core::engine::SynthesizedAudio;
use voicebot_core::{EngineError, Language, SpeechSynthesizer};

use crate::espeak_tts::EspeakTts;
use crate::piper_tts::PiperTts;

/// Routes text to the voice for its language.
pub struct VoiceRouter {
    pub english: Option<PiperTts>,
    pub mandarin: Option<EspeakTts>,
}

impl SpeechSynthesizer for VoiceRouter {
    fn synthesize(
        &self,
        text: &str,
        language: &Language,
        rate: f32,
    ) -> Result<SynthesizedAudio, EngineError> {
        let missing = |language: &Language| EngineError::UnsupportedLanguage {
            engine: "TTS",
            language: language.code().to_owned(),
        };
        match language {
            Language::Zh => self.mandarin.as_ref().ok_or_else(|| missing(language))?.synthesize(text, rate),
            _ => self.english.as_ref().ok_or_else(|| missing(language))?.synthesize(text, rate),
        }
    }
}
