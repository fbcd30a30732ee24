//! Hearing one turn: speech gate (VAD) then recognition.
//!
//! Audio without speech gives an empty transcript without running ASR at all,
//! so silence and noise cannot become text. Only the span from the first to
//! the last speech segment reaches Whisper, which also saves decoding time.

use voicebot_core::engine::{RecognitionOptions, RecognizerStream, VadStream};
use voicebot_core::speech_segments::{SegmenterConfig, detect_speech, speech_span};
use voicebot_core::{EngineError, Language, LanguageChoice, Transcript};

use crate::loader::Engines;

/// Per-call listening state: a VAD stream and an ASR stream.
pub struct Ear {
    vad: Box<dyn VadStream>,
    frame_len: usize,
    asr: Box<dyn RecognizerStream>,
    segmenter: SegmenterConfig,
}

impl Ear {
    /// # Errors
    /// `Load` when the VAD or ASR engine was not loaded; stream creation errors.
    pub fn new(engines: &Engines, segmenter: SegmenterConfig) -> Result<Ear, EngineError> {
        let missing = |what: &'static str| EngineError::Load {
            engine: what,
            path: Default::default(),
            reason: "engine not loaded".into(),
        };
        let vad_model = engines.vad.as_deref().ok_or_else(|| missing("VAD"))?;
        let asr = engines.asr.as_ref().ok_or_else(|| missing("ASR"))?.new_stream()?;
        Ok(Ear { vad: vad_model.new_stream()?, frame_len: vad_model.frame_len(), asr, segmenter })
    }

    /// Allocates per-call state before the first turn (see [`RecognizerStream::prepare`]).
    ///
    /// # Errors
    /// Fails when the engine cannot allocate its state.
    pub fn prepare(&mut self, language: &LanguageChoice) -> Result<(), EngineError> {
        self.asr.prepare(language)
    }

    /// Recognises one turn of 16 kHz mono audio.
    ///
    /// # Errors
    /// VAD or ASR inference failures.
    pub fn hear(&mut self, pcm_16k: &[f32], language: &LanguageChoice) -> Result<Transcript, EngineError> {
        let segments = detect_speech(self.vad.as_mut(), self.frame_len, pcm_16k, self.segmenter)?;
        let speech = speech_span(pcm_16k, &segments);
        if speech.is_empty() {
            let language = match language {
                LanguageChoice::Fixed(l) => l.clone(),
                LanguageChoice::Auto => Language::En,
            };
            return Ok(Transcript {
                text: String::new(),
                language,
                no_speech_probability: 1.0,
                confidence: 0.0,
            });
        }
        self.asr.transcribe(speech, &RecognitionOptions { language: language.clone() })
    }
}
