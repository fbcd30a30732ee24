//! Hearing and understanding one stretch of caller audio (or a typed turn):
//! recognition, intent/slots/emotion from words and voice, with the call's
//! voice baseline.

use std::sync::Arc;

use voicebot_core::language::detect_text_language;
use voicebot_core::{EngineError, LanguageChoice};
use voicebot_engines::hearing::Ear;
use voicebot_understanding::analysis::{Analysis, Analyzer};
use voicebot_understanding::emotion::{self, CallBaseline};

/// Per-call understanding state.
pub struct Understanding {
    analyzer: Arc<Analyzer>,
    ear: Option<Ear>,
    language: LanguageChoice,
    baseline: CallBaseline,
}

impl Understanding {
    /// `ear` may be `None` when every turn is typed.
    pub fn new(analyzer: Arc<Analyzer>, ear: Option<Ear>, language: LanguageChoice) -> Understanding {
        Understanding { analyzer, ear, language, baseline: CallBaseline::new() }
    }

    /// Recognises and understands 16 kHz audio; returns the analysis and the
    /// recogniser's confidence.
    ///
    /// # Errors
    /// VAD/ASR/embedding failures, or no ASR loaded.
    pub fn hear(&mut self, pcm_16k: &[f32]) -> Result<(Analysis, f32), EngineError> {
        let ear = self.ear.as_mut().ok_or_else(|| EngineError::Load {
            engine: "ASR",
            path: Default::default(),
            reason: "engine not loaded".into(),
        })?;
        let transcript = ear.hear(pcm_16k, &self.language)?;
        let voice = emotion::analyze(pcm_16k, emotion::spoken_word_count(&transcript.text));
        let analysis = self.analyzer.analyze(
            &transcript.text,
            &transcript.language,
            Some(&voice),
            self.baseline.features().as_ref(),
        )?;
        if !transcript.text.is_empty() {
            self.baseline.observe(&voice);
        }
        Ok((analysis, transcript.confidence))
    }

    /// Understands a typed turn (language from the text unless fixed).
    ///
    /// # Errors
    /// Embedding failures.
    pub fn read(&mut self, text: &str) -> Result<Analysis, EngineError> {
        let language = match &self.language {
            LanguageChoice::Fixed(l) => l.clone(),
            LanguageChoice::Auto => detect_text_language(text),
        };
        self.analyzer.analyze(text, &language, None, None)
    }
}
