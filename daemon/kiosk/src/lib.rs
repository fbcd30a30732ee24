//! The kiosk channel: an in-branch kiosk with a local microphone and speaker.
//!
//! [`devices`], [`microphone`] and [`speaker`] are the sound card through cpal
//! (ALSA), converted to and from the engines' 16 kHz mono. [`visit::serve`]
//! waits for someone (voice, a typed key, a GPIO button, a fleet command:
//! [`triggers`]), holds the same conversation as the phone line
//! ([`voicebot_live`]) on a [`kiosk_line`] with half-duplex echo gating, and on
//! a hand-over calls the agent queue ([`agent::AgentDesk`]) and bridges the
//! microphone and speaker to the agent, while the ticket goes out over MQTT and
//! the screen says "an agent is joining".

pub mod agent;
mod half_duplex;
mod kiosk_line;
pub mod triggers;
pub mod visit;
mod wake;

mod clip_queue;
mod convert;
pub mod devices;
pub mod microphone;
pub mod speaker;
mod stream_thread;
