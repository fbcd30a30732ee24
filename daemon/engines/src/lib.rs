//! The native speech engines of voicebotd, behind `voicebot-core`'s traits.
//!
//! - ASR: whisper.cpp through whisper-rs ([`whisper_asr`]).
//! - VAD: Silero through ONNX Runtime (`ort`, loaded dynamically) ([`silero_vad`]), on
//!   the GPU when the runtime offers TensorRT or CUDA ([`accelerator`]).
//! - TTS: Piper voices through sherpa-onnx (sherpa-rs) for English, and
//!   espeak-ng's `cmn` voice for Mandarin, for which no neural voice ships
//!   ([`piper_tts`], [`espeak_tts`], [`voices`]).
//!
//! Every model file is checked against the manifest before a native library
//! sees it, so corrupt weights give an [`EngineError`], not a crash.
//! Each engine is loaded once and shared; per-call state lives in streams.

pub mod accelerator;
pub mod espeak_tts;
pub mod hearing;
pub mod loader;
pub mod minilm;
pub mod onnx_runtime;
pub mod piper_tts;
pub mod silero_vad;
pub mod voices;
pub mod whisper_asr;

pub use voicebot_core::EngineError;
