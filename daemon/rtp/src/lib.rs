//! Pure media logic for voicebotd's phone lines: no tokio, no sockets, no clocks.
//!
//! Everything here takes input (bytes, samples, `now`) and returns output, so the
//! per-call media task in `voicebot-sip` stays a thin driver and every behaviour is
//! tested here with a virtual clock.
//!
//! Units: the wire runs at 8 kHz; one frame is 20 ms = [`FRAME_SAMPLES`] samples.
//! PCM crossing this crate's API is 8 kHz mono `i16` unless a name says otherwise
//! ([`telephone_band`] converts to and from the engines' 16 kHz `f32`).

pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod packet;
pub mod playout;
pub mod sender;
pub mod telephone_band;

pub use dtmf::{DtmfDetector, DtmfDigit, DtmfSender, TelephoneEvent};
pub use g711::G711;
pub use jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
pub use packet::{RtpError, RtpPacket};
pub use playout::{ClipId, PlayoutQueue};
pub use sender::RtpSender;

/// Samples per second on the wire (G.711 and RFC 4733 events at 8000 Hz).
pub const WIRE_RATE: u32 = 8_000;
/// Samples in one 20 ms frame at [`WIRE_RATE`].
pub const FRAME_SAMPLES: usize = 160;
/// One frame's duration.
pub const FRAME_DURATION: std::time::Duration = std::time::Duration::from_millis(20);
