//! The phone line: every answered SIP call gets its own conversation.
//!
//! [`serve`] takes the calls the SIP user agent answers and runs one
//! [`serve_call`] each, on the daemon's task tracker with a child cancellation
//! token. A call is a [`voicebot_live::Line`] ([`sip_line`]): G.711 audio at
//! 8 kHz widened to 16 kHz for the engines, bot speech narrowed back, RFC 4733
//! keys, and the hand-over as a REFER or a bridged INVITE carrying the ticket's
//! id. The conversation itself is [`voicebot_live::run_conversation`].

mod sip_line;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span};
use voicebot_dialog::call::Channel;
use voicebot_live::{Caller, ConversationSummary, LiveDeps};
use voicebot_sip::{IncomingCall, MediaStats};

pub use sip_line::handover_for;
pub use voicebot_live::TicketSink;

/// What every call shares.
pub struct PhoneDeps {
    pub live: LiveDeps,
    /// Called when a call is answered (metrics).
    pub on_call_start: Arc<dyn Fn() + Send + Sync>,
    /// Called with each finished call (metrics, call events).
    pub on_call_end: Arc<dyn Fn(&CallSummary) + Send + Sync>,
}

/// How a call went, for metrics and call events.
#[derive(Debug, Clone)]
pub struct CallSummary {
    pub call_id: String,
    pub conversation: ConversationSummary,
    /// The call's RTP counters at its end.
    pub media: MediaStats,
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

/// Runs the conversation for one answered call until it ends.
///
/// # Cancel safety
/// `cancel` closes the call politely (a closing prompt, then hang-up) rather
/// than dropping it; the future itself should be run to completion.
pub async fn serve_call(call: IncomingCall, deps: Arc<PhoneDeps>, cancel: CancellationToken) {
    let ticket_id = ulid::Ulid::new().to_string();
    let span = info_span!("call", call_id = %call.info.call_id, ticket_id = %ticket_id);
    async move {
        let call_id = call.info.call_id.clone();
        let info = &call.info;
        let caller = Caller {
            channel: Channel::Phone,
            line: (!info.dialled.is_empty()).then(|| info.dialled.clone()),
            number: (!info.caller.is_empty()).then(|| info.caller.clone()),
        };
        let setup = deps.live.setup(caller, ticket_id);
        let mut line = sip_line::SipLine::new(call);
        let conversation =
            voicebot_live::run_conversation(&mut line, setup, &deps.live, cancel, &call_id).await;
        let summary = CallSummary { call_id, media: line.media_stats(), conversation };
        info!(
            outcome = summary.conversation.outcome.code(),
            reason = summary.conversation.outcome.reason().map(|r| r.code()),
            turns = summary.conversation.intents.len(),
            "call ended"
        );
        (deps.on_call_end)(&summary);
    }
    .instrument(span)
    .await;
}
