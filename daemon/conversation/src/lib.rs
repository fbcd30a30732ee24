//! One call's conversation through the real engines.
//!
//! `voicebot-dialog`'s [`Call`](voicebot_dialog::call::Call) decides; this
//! crate carries its actions out with the engines: a VAD decision per frame,
//! recognition and understanding of the stretches it asks for, speech for
//! what it says (first sentence first). [`session::run_call`] drives a scripted
//! caller (WAV turns or typed turns) on a virtual clock (`simulate`) or in
//! real time (the latency benchmark). Channel drivers (SIP, kiosk) reuse the
//! same pieces: [`FrameVad`], [`CallerAudio`], [`Mouth`], [`Understanding`].

mod caller_audio;
mod frame_vad;
mod mouth;
pub mod session;
mod understanding;

pub use caller_audio::CallerAudio;
pub use frame_vad::{FrameVad, level_db};
pub use mouth::{Mouth, Utterance, first_sentence_split};
pub use understanding::Understanding;

/// Why a call could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error(transparent)]
    Engine(#[from] voicebot_core::EngineError),
    #[error(transparent)]
    Audio(#[from] voicebot_audio::AudioError),
    #[error("{0}")]
    Setup(String),
}
