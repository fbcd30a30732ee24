//! The phone line in the daemon: the SIP user agent, one conversation per
//! answered call, tickets through the fleet's outbox, call outcomes into the
//! fleet's metrics and call events.

use std::sync::Arc;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;
use voicebot_dialog::outcome::Outcome;
use voicebot_dialog::ticket::Ticket;
use voicebot_fleet::Fleet;
use voicebot_fleet::telemetry::CallEnd;
use voicebot_phone::{CallSummary, PhoneDeps, TicketSink};
use voicebot_sip::UserAgent;

use super::Brain;
use crate::error::CliError;

struct Outbox(Fleet);

#[async_trait::async_trait]
impl TicketSink for Outbox {
    async fn hand_over(&self, ticket: &Ticket) -> Result<(), String> {
        self.0.hand_over(ticket).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Starts the SIP user agent and the per-call conversations; `None` when SIP is off.
///
/// # Errors
/// The SIP ports cannot be bound, or the `[sip]` settings are refused.
pub(super) async fn start(
    brain: &Arc<Brain>,
    fleet: &Fleet,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Option<UserAgent>, CliError> {
    let sip = brain.config.sip.clone();
    if sip.listen_udp.is_none() && sip.listen_tcp.is_none() {
        info!("SIP is off ([sip] listen_udp and listen_tcp are empty)");
        return Ok(None);
    }
    let (agent, calls) = UserAgent::start(sip, shutdown.child_token())
        .await
        .map_err(|e| CliError::Failed(format!("cannot start the phone line: {e}")))?;
    info!(udp = ?agent.udp_addr(), tcp = ?agent.tcp_addr(), "phone line listening");
    let analyzer_brain = Arc::clone(brain);
    let started = fleet.clone();
    let ended = fleet.clone();
    let deps = Arc::new(PhoneDeps {
        config: brain.config.clone(),
        engines: brain.engines.clone(),
        analyzer: Arc::new(move || analyzer_brain.current_analyzer()),
        tickets: Arc::new(Outbox(fleet.clone())),
        on_call_start: Arc::new(move || started.metrics().call_started()),
        on_call_end: Arc::new(move |summary: &CallSummary| record(&ended, summary)),
    });
    tracker.spawn(voicebot_phone::serve(calls, deps, tracker.clone(), shutdown));
    Ok(Some(agent))
}

fn record(fleet: &Fleet, summary: &CallSummary) {
    let end = match summary.outcome {
        Outcome::Resolved => CallEnd::Resolved,
        Outcome::Escalated(_) => CallEnd::HandedOver,
        Outcome::Abandoned | Outcome::Timeout | Outcome::Error => CallEnd::Abandoned,
    };
    fleet.metrics().call_ended(end);
    fleet.call_event(json!({
        "call_id": summary.call_id,
        "channel": "phone",
        "outcome": summary.outcome.code(),
        "reason": summary.outcome.reason().map(|r| r.code()),
        "ticket_id": summary.ticket_id,
        "intents": summary.intents,
        "duration_ms": u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX),
        "dropped_frames": summary.dropped_frames,
    }));
}
