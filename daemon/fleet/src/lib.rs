//! voicebotd's fleet layer: how a box becomes a good fleet citizen.
//!
//! - [`outbox`]: the durable SQLite outbox every hand-over ticket passes through.
//! - [`topics`]: the `voicebot/v1/<site>/<device>/…` topic contract.
//! - [`connection`]: MQTT options (TLS, credentials, last will).
//! - [`jobs`]: signed provisioning jobs and their lifecycle.
//! - [`backoff`], [`delivery`]: sans-IO pieces of the connection.
//! - [`Fleet`]: the daemon's handle; the tokio driver behind it is private.
//!
//! Everything but the driver is sans IO or plain blocking SQLite/file code.
//! See the crate's README for the message formats and the signature scheme.

pub mod backoff;
pub mod connection;
pub mod delivery;
mod driver;
mod fleet;
pub mod jobs;
pub mod messages;
pub mod outbox;
pub mod telemetry;
pub mod topics;

pub use backoff::Backoff;
pub use driver::{MAX_TICKETS_IN_FLIGHT, REQUEST_QUEUE};
pub use fleet::{Fleet, FleetError, FleetSettings, enqueue_ticket, job_context};

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
