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
use voicebot_live::{ConversationSummary, LiveDeps, TicketSink};
use voicebot_phone::{CallSummary, PhoneDeps};
use voicebot_sip::UserAgent;

use super::Brain;
use crate::error::CliError;

/// The fleet's outbox as the conversations' ticket sink (phone and kiosk).
pub(super) struct Outbox(pub(super) Fleet);

#[async_trait::async_trait]
impl TicketSink for Outbox {
    async fn hand_over(&self, ticket: &Ticket) -> Result<(), String> {
        self.0.hand_over(ticket).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn wait_published(&self, ticket_id: &str) -> bool {
        // Long enough for a broker on the LAN; the hand-over promise plays meanwhile.
        !self.0.online() || self.0.wait_delivered(ticket_id, std::time::Duration::from_secs(3)).await
    }
}

/// The running phone line.
pub(super) struct PhoneLine {
    pub(super) agent: UserAgent,
    /// The task handing answered calls to conversations (for health).
    pub(super) serving: tokio::task::AbortHandle,
    /// That task and every call's task.
    calls: TaskTracker,
}

impl PhoneLine {
    /// The kiosk's way to a person: calls to the agent queue from this user agent.
    pub(super) fn agent_desk(&self) -> Arc<dyn voicebot_kiosk::agent::AgentDesk> {
        super::agent_desk::SipAgentDesk::shared(self.agent.agent_dialer())
    }

    /// The graceful stop, once `shutdown` (given to [`start`]) has fired and
    /// the calls are closing politely: new INVITEs get 503, running calls get
    /// up to `deadline` to say their closing message or finish their transfer,
    /// then the user agent hangs up whatever is left.
    pub(super) async fn drain(self, deadline: std::time::Duration) {
        self.agent.drain();
        self.calls.close();
        let active = self.agent.active_calls();
        if active > 0 {
            info!(calls = active, deadline = ?deadline, "waiting for calls to close");
        }
        if tokio::time::timeout(deadline, self.calls.wait()).await.is_err() {
            tracing::warn!(deadline = ?deadline, "calls still up after the drain deadline; hanging up");
        }
        if !self.agent.shutdown(std::time::Duration::from_secs(2)).await {
            tracing::warn!("SIP call tasks did not end in time");
        }
    }
}

/// Starts the SIP user agent and the per-call conversations; `None` when SIP is off.
///
/// The user agent has its own token, not a child of `shutdown`: on shutdown the
/// calls close politely first, and [`PhoneLine::drain`] stops the agent after.
///
/// # Errors
/// The SIP ports cannot be bound, or the `[sip]` settings are refused.
pub(super) async fn start(
    brain: &Arc<Brain>,
    fleet: &Fleet,
    observability: &voicebot_http::Observability,
    shutdown: CancellationToken,
) -> Result<Option<PhoneLine>, CliError> {
    let sip = brain.config.sip.clone();
    if sip.listen_udp.is_none() && sip.listen_tcp.is_none() {
        info!("SIP is off ([sip] listen_udp and listen_tcp are empty)");
        return Ok(None);
    }
    let (agent, calls) = UserAgent::start(sip, CancellationToken::new())
        .await
        .map_err(|e| CliError::Failed(format!("cannot start the phone line: {e}")))?;
    info!(udp = ?agent.udp_addr(), tcp = ?agent.tcp_addr(), "phone line listening");
    let started = fleet.clone();
    let ended = fleet.clone();
    let observed = observability.clone();
    let deps = Arc::new(PhoneDeps {
        live: live_deps(brain, fleet),
        on_call_start: Arc::new(move || started.metrics().call_started()),
        on_call_end: Arc::new(move |summary: &CallSummary| {
            record(&ended, "phone", &summary.call_id, &summary.conversation);
            let rtp = super::observe::rtp_record(&summary.media);
            observed.call_ended(super::observe::call_record(
                &summary.call_id,
                &summary.conversation,
                Some(rtp),
            ));
        }),
    });
    let tracker = TaskTracker::new();
    let serving = tracker.spawn(voicebot_phone::serve(calls, deps, tracker.clone(), shutdown)).abort_handle();
    Ok(Some(PhoneLine { agent, serving, calls: tracker }))
}

/// What every live conversation (phone or kiosk) shares from the daemon.
pub(super) fn live_deps(brain: &Arc<Brain>, fleet: &Fleet) -> LiveDeps {
    let analyzer_brain = Arc::clone(brain);
    LiveDeps {
        config: brain.config.clone(),
        dialog: Arc::clone(&brain.dialog),
        // Each conversation opens its streams on the engines in use when it starts.
        engines: super::engines::proxies(&brain.engines),
        analyzer: Arc::new(move || analyzer_brain.current_analyzer()),
        tickets: Arc::new(Outbox(fleet.clone())),
    }
}

/// A finished conversation into the fleet's metrics and call events.
pub(super) fn record(fleet: &Fleet, channel: &str, call_id: &str, summary: &ConversationSummary) {
    let end = match summary.outcome {
        Outcome::Resolved => CallEnd::Resolved,
        Outcome::Escalated(_) => CallEnd::HandedOver,
        Outcome::Abandoned | Outcome::Timeout | Outcome::Error => CallEnd::Abandoned,
    };
    fleet.metrics().call_ended(end);
    fleet.call_event(json!({
        "call_id": call_id,
        "channel": channel,
        "outcome": summary.outcome.code(),
        "reason": summary.outcome.reason().map(|r| r.code()),
        "ticket_id": summary.ticket_id,
        "intents": summary.intents,
        "duration_ms": u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX),
        "dropped_frames": summary.dropped_frames,
    }));
}
