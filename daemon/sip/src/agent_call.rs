//! The kiosk's call to a human agent: the box itself calls the agent queue, and
//! the kiosk's microphone and speaker take the place of a caller leg.
//!
//! [`AgentDialer::call_agent`] dials with the bridged transfer's `bridge::dial`
//! (same INVITE, SDP offer, ticket headers, timeout and failure mapping), then
//! joins the agent leg's media task to a one-way bridge fed by [`AgentVoice`]
//! ([`crate::media`]). One tracked task per call dials, then watches the agent's
//! dialog, [`AgentCallControl::hang_up`] and the user agent's shutdown.
//!
//! Overload policy, written down:
//! - `events` is bounded; the agent's audio frames are dropped (counted in
//!   [`MediaStats::caller_frames_dropped`]) when the kiosk falls behind, while key
//!   presses and the end always find room (as for a phone call);
//! - the voice queue is bounded (160 ms); a full queue refuses the frame at once
//!   ([`VoiceError::QueueFull`], counted in [`MediaStats::bridge_frames_dropped`])
//!   so the audio thread never blocks, and more than 80 ms waiting to be sent
//!   drops the oldest (counted there too).
//!
//! Admission: an agent call counts in [`crate::UserAgent::active_calls`] from
//! the INVITE to its end, but is not capped by `max_calls`, which guards the
//! conversation engines against phone callers; a kiosk escalating has already
//! left its conversation. Draining does not refuse it either: it is the
//! transfer of a running conversation, not a new call.
//!
//! Lifetime invariant: as for a phone call, once `events` yields `None` the
//! media and signalling tasks have ended and the RTP socket is closed.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ezk_sip_core::Endpoint;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use voicebot_core::config::TransferConfig;
use voicebot_rtp::{FRAME_SAMPLES, G711, JitterConfig};

use crate::agent::random_u64;
use crate::bridge::{self, AgentLeg, DialPlan};
use crate::call::{CallEvent, EndReason, TransferError};
use crate::handover::Handover;
use crate::media::{BridgeFrame, BridgePort, MediaControl, MediaCounters, MediaStats, RESERVED_EVENTS};

/// Agent audio frames `events` holds beyond the reserved slots: 1.28 s.
const AGENT_AUDIO_EVENTS: usize = 64;

/// Places agent calls; cheap to clone, so a kiosk can keep one while the
/// [`crate::UserAgent`] stays with its owner. From [`crate::UserAgent::agent_dialer`].
#[derive(Clone)]
pub struct AgentDialer {
    pub(crate) endpoint: Endpoint,
    pub(crate) transfer: TransferConfig,
    /// `[sip] advertised_address`.
    pub(crate) advertised: Option<IpAddr>,
    /// Our SIP port for the Contact.
    pub(crate) sip_port: u16,
    pub(crate) jitter: JitterConfig,
    pub(crate) tracker: TaskTracker,
    /// The user agent's token: cancelled on shutdown.
    pub(crate) cancel: CancellationToken,
    /// Agent calls being dialled or up.
    pub(crate) active: Arc<AtomicUsize>,
}

impl std::fmt::Debug for AgentDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentDialer")
            .field("default_queue", &self.transfer.default_queue)
            .field("sip_port", &self.sip_port)
            .field("active", &self.active.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// An answered call to a human agent, for a kiosk.
#[derive(Debug)]
pub struct AgentCall {
    pub info: AgentCallInfo,
    /// The agent's side, in order: [`CallEvent::CallerAudio`] (the agent's voice,
    /// 160 samples at 8 kHz every 20 ms, silence included), [`CallEvent::Dtmf`],
    /// and last [`CallEvent::Ended`] with [`EndReason::AgentHungUp`],
    /// [`EndReason::HungUp`], [`EndReason::Shutdown`] or [`EndReason::Failed`].
    /// Dropping it hangs up.
    pub events: mpsc::Receiver<CallEvent>,
    /// The kiosk's microphone, to the agent.
    pub voice: AgentVoice,
    pub control: AgentCallControl,
}

/// Facts of an answered agent call, for logs and the kiosk's screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCallInfo {
    /// Call-ID of our INVITE's dialog.
    pub call_id: String,
    /// The agent-queue URI dialled (the handover's skill group's, or the default).
    pub queue: String,
    pub ticket_id: String,
    /// The status the agent answered with (2xx).
    pub agent_status: u16,
    pub codec: G711,
}

/// Why a frame of kiosk voice was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VoiceError {
    #[error("a voice frame is 160 samples (20 ms at 8 kHz), not {0}")]
    FrameLength(usize),
    #[error("the agent call's voice queue is full: frame dropped")]
    QueueFull,
    #[error("the agent call has ended")]
    CallGone,
}

/// Sends the kiosk's microphone to the agent; usable from any thread.
#[derive(Debug, Clone)]
pub struct AgentVoice {
    frames: mpsc::Sender<BridgeFrame>,
    counters: Arc<MediaCounters>,
}

impl AgentVoice {
    /// Queues 20 ms of microphone audio (160 samples, 8 kHz mono) for the agent,
    /// without waiting: meant for an audio thread. Frames go out one per 20 ms
    /// tick, in order.
    ///
    /// # Errors
    /// [`VoiceError::FrameLength`] for a frame of another length (nothing queued);
    /// [`VoiceError::QueueFull`] when 160 ms are already waiting: the frame is
    /// dropped and counted in [`MediaStats::bridge_frames_dropped`];
    /// [`VoiceError::CallGone`] once the call has ended.
    pub fn try_send(&self, frame: Vec<i16>) -> Result<(), VoiceError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(VoiceError::FrameLength(frame.len()));
        }
        self.frames.try_send(BridgeFrame::Audio(frame)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                self.counters.bridge_frames_dropped.fetch_add(1, Ordering::Relaxed);
                VoiceError::QueueFull
            }
            mpsc::error::TrySendError::Closed(_) => VoiceError::CallGone,
        })
    }
}

/// Controls an agent call.
#[derive(Debug, Clone)]
pub struct AgentCallControl {
    hang_up: CancellationToken,
    counters: Arc<MediaCounters>,
}

impl AgentCallControl {
    /// Hangs up the agent (BYE). Returns at once; [`EndReason::HungUp`] follows.
    pub fn hang_up(&self) {
        self.hang_up.cancel();
    }

    /// The agent leg's media counters so far: `packets_received` and
    /// `caller_frames_dropped` are the agent's side, `packets_sent` and
    /// `bridge_frames_dropped` the kiosk's.
    pub fn media_stats(&self) -> MediaStats {
        self.counters.snapshot()
    }
}

/// Counts one agent call in [`AgentDialer::active`] while it lives.
struct ActiveCall(Arc<AtomicUsize>);

impl ActiveCall {
    fn new(active: Arc<AtomicUsize>) -> ActiveCall {
        active.fetch_add(1, Ordering::AcqRel);
        ActiveCall(active)
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

type Reply = oneshot::Sender<Result<AgentCall, TransferError>>;

impl AgentDialer {
    /// Calls the agent queue for the handover's skill group (`[sip.skill_queues]`,
    /// else `agent_queue`) with the ticket's `User-to-User` and X- headers, and
    /// returns the call once the agent answers. Waits at most `transfer_timeout_s`
    /// for the answer (then CANCELs).
    ///
    /// Publish the ticket (MQTT) before calling this: SIP carries only its key.
    ///
    /// # Errors
    /// [`TransferError::AgentBusy`] for 486/600/603, [`TransferError::AgentUnreachable`]
    /// for other failures (408 when nothing answered at all), [`TransferError::Timeout`]
    /// when no one answered in time, [`TransferError::Handover`] for a ticket id SIP
    /// cannot carry, [`TransferError::ShuttingDown`] once the user agent stops.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropped before it returns, the INVITE is CANCELled, or an agent
    /// who answered meanwhile is hung up.
    pub async fn call_agent(&self, handover: Handover) -> Result<AgentCall, TransferError> {
        if self.cancel.is_cancelled() {
            return Err(TransferError::ShuttingDown);
        }
        let active = ActiveCall::new(self.active.clone());
        let queue = self.transfer.queue_for(handover.skill_group.as_deref()).to_owned();
        let span = tracing::info_span!(
            "agent_call",
            ticket = %handover.ticket_id,
            call_id = tracing::field::Empty
        );
        let (events_tx, events) = mpsc::channel(AGENT_AUDIO_EVENTS + RESERVED_EVENTS);
        let counters = Arc::new(MediaCounters::default());
        let seed = random_u64();
        let ticket_id = handover.ticket_id.clone();
        let plan = DialPlan {
            endpoint: self.endpoint.clone(),
            queue: queue.clone(),
            handover,
            uui_purpose: self.transfer.uui_purpose.clone(),
            advertised: self.advertised,
            fallback_ip: None,
            sip_port: self.sip_port,
            timeout: self.transfer.timeout,
            jitter: self.jitter,
            tracker: self.tracker.clone(),
            seeds: (seed as u32, (seed >> 32) as u16, (seed >> 16) as u32),
            session_id: random_u64() >> 2,
            events: events_tx.clone(),
            counters: counters.clone(),
        };
        let (reply, answer) = oneshot::channel();
        let call = AgentCallTask {
            plan,
            reply,
            events,
            events_tx,
            counters,
            info: (queue, ticket_id),
            active,
            span: span.clone(),
        };
        self.tracker.spawn(call.run(self.cancel.child_token()).instrument(span));
        answer.await.unwrap_or(Err(TransferError::ShuttingDown))
    }
}

/// One agent call from the INVITE on: what its task owns.
struct AgentCallTask {
    plan: DialPlan,
    reply: Reply,
    events: mpsc::Receiver<CallEvent>,
    events_tx: mpsc::Sender<CallEvent>,
    counters: Arc<MediaCounters>,
    /// Queue and ticket id, for [`AgentCallInfo`].
    info: (String, String),
    active: ActiveCall,
    span: tracing::Span,
}

impl AgentCallTask {
    /// Dials, hands the call to the requester, runs it until it ends.
    ///
    /// # Cancel safety
    /// Meant to be spawned and stopped through `cancel` (the user agent's
    /// shutdown: CANCEL or BYE).
    async fn run(mut self, cancel: CancellationToken) {
        tracing::info!(queue = %self.plan.queue, "calling the agent queue");
        let dial_cancel = cancel.child_token();
        let dial = bridge::dial(self.plan, dial_cancel.clone());
        tokio::pin!(dial);
        let mut requester_gone = false;
        let result = loop {
            tokio::select! {
                result = &mut dial => break result,
                () = self.reply.closed(), if !requester_gone => {
                    requester_gone = true;
                    dial_cancel.cancel();
                }
            }
        };
        let leg = match result {
            Ok(leg) => leg,
            Err(_) if requester_gone => {
                tracing::info!("the agent call was abandoned by its requester");
                return;
            }
            Err(e) => {
                let e = if cancel.is_cancelled() { TransferError::ShuttingDown } else { e };
                tracing::info!(error = %e, "the agent call failed");
                let _ = self.reply.send(Err(e));
                return;
            }
        };
        let call_id = leg.session.dialog.call_id.0.to_string();
        self.span.record("call_id", call_id.as_str());
        let (frames, port) = BridgePort::feed();
        let _ = leg.media_control.send(MediaControl::Bridge(port)).await;
        let hang_up = CancellationToken::new();
        let (queue, ticket_id) = self.info;
        let call = AgentCall {
            info: AgentCallInfo { call_id, queue, ticket_id, agent_status: leg.status, codec: leg.codec },
            events: self.events,
            voice: AgentVoice { frames, counters: self.counters.clone() },
            control: AgentCallControl { hang_up: hang_up.clone(), counters: self.counters },
        };
        if self.reply.send(Ok(call)).is_err() {
            tracing::info!("nobody waits for the agent call any more: hanging up");
            leg.hang_up().await;
            return;
        }
        let reason = up(leg, &self.events_tx, &hang_up, &cancel).await;
        tracing::info!(?reason, "the agent call ended");
        let _ = self.events_tx.try_send(CallEvent::Ended(reason));
        drop(self.active);
    }
}

/// Runs an answered agent call until it ends; stops its media and, unless the
/// agent ended it, hangs up (BYE, bounded).
async fn up(
    mut leg: AgentLeg,
    events: &mpsc::Sender<CallEvent>,
    hang_up: &CancellationToken,
    cancel: &CancellationToken,
) -> EndReason {
    let reason = loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break EndReason::Shutdown,
            () = hang_up.cancelled() => break EndReason::HungUp,
            () = events.closed() => break EndReason::HungUp,
            event = leg.session.run() => {
                if let Some(reason) = leg.on_session_event(event).await {
                    break reason;
                }
            }
        }
    };
    if reason == EndReason::AgentHungUp {
        leg.close().await
    } else {
        leg.hang_up().await
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(capacity: usize) -> (AgentVoice, mpsc::Receiver<BridgeFrame>) {
        let (frames, rx) = mpsc::channel(capacity);
        (AgentVoice { frames, counters: Arc::new(MediaCounters::default()) }, rx)
    }

    #[test]
    fn a_full_voice_queue_drops_the_frame_counts_it_and_never_blocks() {
        let (voice, mut rx) = voice(2);
        assert_eq!(voice.try_send(vec![1; FRAME_SAMPLES]), Ok(()));
        assert_eq!(voice.try_send(vec![2; FRAME_SAMPLES]), Ok(()));
        assert_eq!(voice.try_send(vec![3; FRAME_SAMPLES]), Err(VoiceError::QueueFull));
        assert_eq!(voice.counters.snapshot().bridge_frames_dropped, 1);
        assert_eq!(rx.try_recv().ok(), Some(BridgeFrame::Audio(vec![1; FRAME_SAMPLES])));
        assert_eq!(
            voice.try_send(vec![4; FRAME_SAMPLES]),
            Ok(()),
            "room again after the media task took one"
        );
    }

    #[test]
    fn voice_frames_must_be_20_ms_and_a_gone_call_says_so() {
        let (voice, rx) = voice(2);
        assert_eq!(voice.try_send(vec![0; 320]), Err(VoiceError::FrameLength(320)));
        drop(rx);
        assert_eq!(voice.try_send(vec![0; FRAME_SAMPLES]), Err(VoiceError::CallGone));
        assert_eq!(voice.counters.snapshot().bridge_frames_dropped, 0, "only a full queue counts");
    }

    #[test]
    fn the_active_count_follows_the_guard() {
        let active = Arc::new(AtomicUsize::new(0));
        let guard = ActiveCall::new(active.clone());
        assert_eq!(active.load(Ordering::Relaxed), 1);
        drop(guard);
        assert_eq!(active.load(Ordering::Relaxed), 0);
    }
}
