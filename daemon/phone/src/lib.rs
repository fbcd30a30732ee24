//! The phone line: every answered SIP call gets its own conversation.
//!
//! [`serve`] takes the calls the SIP user agent answers and runs one
//! [`call_task`] each, on the daemon's task tracker with a child cancellation
//! token. Inside a call, the sans-IO [`voicebot_dialog::call::Call`] decides;
//! the engines run on the call's own worker threads ([`workers`]) so the
//! reactor never waits on inference; bot speech is paced by the SIP media task.
//!
//! Hand-over: the ticket goes to the [`TicketSink`] (the durable outbox, then
//! MQTT) and only when it is stored does the SIP transfer carry its id.

mod call_task;
mod workers;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;
use voicebot_core::config::Config;
use voicebot_dialog::ticket::Ticket;
use voicebot_engines::loader::Engines;
use voicebot_sip::IncomingCall;
use voicebot_understanding::analysis::Analyzer;

pub use call_task::{CallSummary, serve_call};

/// Where hand-over tickets go before a transfer (the fleet's outbox).
#[async_trait::async_trait]
pub trait TicketSink: Send + Sync {
    /// Stores the ticket durably (and queues it for publication).
    ///
    /// # Errors
    /// A description of why it could not be stored.
    async fn hand_over(&self, ticket: &Ticket) -> Result<(), String>;

    /// Waits (boundedly) until the stored ticket has reached the agents' side
    /// (the MQTT broker). `true`: published, or there is no broker to wait for
    /// (tickets stay local). `false`: the broker is down or slow; the transfer
    /// goes ahead anyway (never dead air) and the ticket follows from the outbox.
    async fn wait_published(&self, _ticket_id: &str) -> bool {
        true
    }
}

/// What every call shares.
pub struct PhoneDeps {
    pub config: Config,
    pub engines: Engines,
    /// The analyzer for the pack in use; a call keeps the one it started with.
    pub analyzer: Arc<dyn Fn() -> Arc<Analyzer> + Send + Sync>,
    pub tickets: Arc<dyn TicketSink>,
    /// Called when a call is answered (metrics).
    pub on_call_start: Arc<dyn Fn() + Send + Sync>,
    /// Called with each finished call (metrics, call events).
    pub on_call_end: Arc<dyn Fn(&CallSummary) + Send + Sync>,
}

/// Runs a conversation for every incoming call until `cancel`.
///
/// # Cancel safety
/// Returns when `cancel` fires or the user agent stops; calls in progress get
/// their own child token and finish (closing politely) on the tracker.
pub async fn serve(
    mut calls: mpsc::Receiver<IncomingCall>,
    deps: Arc<PhoneDeps>,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    loop {
        let call = tokio::select! {
            call = calls.recv() => match call {
                Some(call) => call,
                None => return,
            },
            () = cancel.cancelled() => return,
        };
        info!(call_id = %call.info.call_id, peer = %call.info.peer, "call answered");
        (deps.on_call_start)();
        tracker.spawn(serve_call(call, Arc::clone(&deps), cancel.child_token()));
    }
}
