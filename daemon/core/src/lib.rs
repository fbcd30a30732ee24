//! Pure types and logic of voicebotd.
//!
//! Nothing in this crate does IO beyond reading files it is pointed at, and nothing
//! links a native engine or tokio: the dialog, SIP and MQTT layers build and test
//! on it alone. The native engines implement the traits in [`engine`].

pub mod config;
pub mod engine;
pub mod language;
pub mod manifest;
pub mod speech_segments;
pub mod wer;

pub use engine::{EngineError, SpeechRecognizer, SpeechSynthesizer, Transcript, VoiceActivityModel};
pub use language::{Language, LanguageChoice};
