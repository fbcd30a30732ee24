//! The engine boundary: traits the native engines implement, and the one error
//! type they report through.
//!
//! Engines are loaded once per process and shared (`Arc<dyn …>`); anything that
//! carries per-call state (a Whisper decoder state, a VAD's recurrent state) is a
//! stream created per call. All methods block: callers run them on their own
//! threads or in `spawn_blocking`, never on an async reactor.

use std::path::PathBuf;

use crate::language::{Language, LanguageChoice};

/// What went wrong in an engine, with enough context for an operator.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model file {path} is missing: run `voicebotd models fetch`")]
    ModelMissing { path: PathBuf },
    #[error(
        "model file {path} is corrupt: sha256 {actual}, expected {expected}; run `voicebotd models fetch` to replace it"
    )]
    ChecksumMismatch { path: PathBuf, expected: String, actual: String },
    #[error("cannot read model file {path}: {source}")]
    ModelRead { path: PathBuf, source: std::io::Error },
    #[error("ONNX Runtime library {path} cannot be loaded: {reason}")]
    RuntimeLibrary { path: PathBuf, reason: String },
    #[error("{engine} failed to load {path}: {reason}")]
    Load { engine: &'static str, path: PathBuf, reason: String },
    #[error("{engine} failed: {reason}")]
    Inference { engine: &'static str, reason: String },
    #[error("{engine} cannot handle language {language}")]
    UnsupportedLanguage { engine: &'static str, language: String },
}

/// Options for one recognition.
#[derive(Debug, Clone, Default)]
pub struct RecognitionOptions {
    pub language: LanguageChoice,
}

/// The text of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub language: Language,
    /// Mean probability that the audio held no speech, as the model judged it.
    pub no_speech_probability: f32,
    /// Mean probability of the words' tokens (0 when nothing was heard): low
    /// values mean the recogniser was unsure of what it wrote.
    pub confidence: f32,
}

/// A speech recogniser, loaded once per process.
pub trait SpeechRecognizer: Send + Sync {
    /// Creates the per-call decoding state.
    ///
    /// # Errors
    /// Fails when the engine cannot allocate its state.
    fn new_stream(&self) -> Result<Box<dyn RecognizerStream>, EngineError>;
}

/// Per-call recognition state.
pub trait RecognizerStream: Send {
    /// Allocates what recognising `language` will need, so the first turn does
    /// not pay for it. Channels call this when a call starts.
    ///
    /// # Errors
    /// Fails when the engine cannot allocate its state.
    fn prepare(&mut self, _language: &LanguageChoice) -> Result<(), EngineError> {
        Ok(())
    }

    /// Transcribes 16 kHz mono audio. Silence yields an empty text, not a guess.
    ///
    /// # Errors
    /// Fails when inference fails or the language is not served.
    fn transcribe(
        &mut self,
        pcm_16k: &[f32],
        options: &RecognitionOptions,
    ) -> Result<Transcript, EngineError>;
}

/// A voice activity model, loaded once per process.
pub trait VoiceActivityModel: Send + Sync {
    /// The number of 16 kHz samples each frame must hold.
    fn frame_len(&self) -> usize;

    /// Creates the per-call recurrent state.
    ///
    /// # Errors
    /// Fails when the engine cannot allocate its state.
    fn new_stream(&self) -> Result<Box<dyn VadStream>, EngineError>;
}

/// Per-call voice activity state.
pub trait VadStream: Send {
    /// The probability that `frame` (exactly `frame_len` samples at 16 kHz) is speech.
    ///
    /// # Errors
    /// Fails when inference fails or the frame has the wrong length.
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, EngineError>;
}

/// A sentence-embedding model, loaded once per process.
pub trait SentenceEmbedder: Send + Sync {
    /// L2-normalised embeddings, one per text.
    ///
    /// # Errors
    /// Fails when inference fails.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError>;

    /// The languages the model was trained for; others are not embedded.
    fn languages(&self) -> &[Language];
}

/// Synthesised speech.
#[derive(Debug, Clone)]
pub struct SynthesizedAudio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl SynthesizedAudio {
    pub fn duration_seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate.max(1))
    }
}

/// A text-to-speech engine, loaded once per process.
pub trait SpeechSynthesizer: Send + Sync {
    /// Speaks `text` in `language`. `rate` 1.0 is normal speed; below 1.0 is slower.
    ///
    /// # Errors
    /// Fails when the language has no voice or synthesis fails.
    fn synthesize(&self, text: &str, language: &Language, rate: f32)
    -> Result<SynthesizedAudio, EngineError>;
}
