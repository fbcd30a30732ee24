//! One call as a conversation sees it ([`IncomingCall`]), and the per-call
//! signalling task behind it.
//!
//! The conversation gets four things and never sees SIP:
//! - [`CallInfo`]: caller id (user part of From), dialled line (user part of the
//!   Request-URI), peer address and codec;
//! - a bounded receiver of [`CallEvent`]s: caller audio as 8 kHz mono `i16`
//!   frames of 160 samples (20 ms), one per tick, continuous (silence included;
//!   [`voicebot_rtp::telephone_band::Upsampler`] converts to the engines' 16 kHz
//!   `f32`), DTMF digits, playback progress, and the end of the call;
//! - [`BotAudio`]: a bounded sender of 8 kHz `i16` clips, paced in real time by the
//!   media task, with [`BotAudio::stop`] for barge-in;
//! - [`CallControl`]: hang up, transfer to a human, send DTMF.
//!
//! A bridged transfer ([`crate::bridge`]) adds a second leg to the same task:
//! while the agent is dialled the caller leg runs as before; once the agent
//! answers the two legs' media are joined and a BYE on either leg hangs up the
//! other.
//!
//! Lifetime invariant: the call's signalling task and media task both hold the
//! event sender; when the receiver yields `None`, both have ended, the RTP socket
//! is closed and the call's slot under `max_calls` is free again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytesstr::BytesStr;
use ezk_sip_core::IncomingRequest;
use ezk_sip_types::header::typed::ContentType;
use ezk_sip_types::{Method, Name, StatusCode};
use ezk_sip_ua::invite::session::{InviteSession, InviteSessionEvent};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use voicebot_core::config::{TransferConfig, TransferMode};
use voicebot_rtp::{ClipId, DtmfDigit, G711, JitterConfig};

use crate::agent::random_u64;
use crate::bridge::{self, AgentLeg, DialPlan};
use crate::handover::{self, Handover, HandoverError};
use crate::media::{self, MediaControl, MediaCounters, MediaStats};
use crate::sdp;

/// Who is calling, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub call_id: String,
    /// User part of the From URI (often the caller's number); empty if none.
    pub caller: String,
    /// User part of the Request-URI: the line that was dialled; empty if none.
    pub dialled: String,
    pub peer: std::net::SocketAddr,
    pub codec: G711,
}

/// What happens in a call, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// 20 ms of caller audio: 160 samples, 8 kHz, mono.
    CallerAudio(Vec<i16>),
    /// A key the caller pressed (RFC 4733), once per press.
    Dtmf(DtmfDigit),
    /// The clip's last sample was sent.
    PlaybackFinished(ClipId),
    /// These clips were cut by [`BotAudio::stop`] before they finished.
    PlaybackStopped(Vec<ClipId>),
    /// The call is over; no more events follow.
    Ended(EndReason),
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up (BYE).
    CallerHungUp,
    /// [`CallControl::hang_up`].
    HungUp,
    /// A transfer succeeded and we left the call.
    Transferred,
    /// In a bridged transfer, the agent hung up; we hung up the caller.
    AgentHungUp,
    /// The user agent is shutting down.
    Shutdown,
    /// The SIP session failed (timeout, transport error).
    Failed(String),
}

/// One clip of bot speech on its way to the media task.
#[derive(Debug)]
pub(crate) struct Clip {
    pub(crate) id: ClipId,
    pub(crate) generation: u64,
    pub(crate) samples: Vec<i16>,
}

/// The call is over; nothing can be sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the call has ended")]
pub struct CallGone;

/// Sends bot speech to the caller.
#[derive(Debug, Clone)]
pub struct BotAudio {
    pub(crate) clips: mpsc::Sender<Clip>,
    pub(crate) generation: Arc<AtomicU64>,
    pub(crate) next_id: Arc<AtomicU64>,
}

impl BotAudio {
    /// Queues a clip of 8 kHz mono samples; it plays after those queued before it.
    /// Waits while the bounded queue is full (back-pressure).
    ///
    /// # Errors
    /// [`CallGone`] once the call has ended.
    ///
    /// # Cancel safety
    /// Cancel-safe: if dropped before returning, the clip was not queued.
    pub async fn play(&self, samples: Vec<i16>) -> Result<ClipId, CallGone> {
        let id = ClipId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let permit = self.clips.reserve().await.map_err(|_| CallGone)?;
        let generation = self.generation.load(Ordering::Acquire);
        permit.send(Clip { id, generation, samples });
        Ok(id)
    }

    /// Stops the bot at once (barge-in): everything queued before this call is
    /// dropped within one 20 ms tick and reported as [`CallEvent::PlaybackStopped`].
    pub fn stop(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// A transfer that reached the agent side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transferred {
    /// The final status the agent queue answered with (NOTIFY sipfrag for REFER,
    /// our INVITE's 2xx for a bridge).
    pub agent_status: u16,
    /// `true`: the agent answered our own INVITE and the bot now bridges the
    /// caller's and the agent's media; the call goes on until either side hangs
    /// up. `false`: cold transfer by REFER; we have left the call.
    pub bridged: bool,
}

/// Why a transfer failed. Except for [`TransferError::CallGone`], the call is
/// still up: tell the caller and end politely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("the caller's side refused the REFER with {0}")]
    ReferRefused(u16),
    #[error("the agent queue is busy ({0})")]
    AgentBusy(u16),
    #[error("the agent queue is unreachable ({0})")]
    AgentUnreachable(u16),
    #[error("no answer from the agent side within {0:?}")]
    Timeout(Duration),
    #[error("cannot express the handover in SIP: {0}")]
    Handover(#[from] HandoverError),
    #[error("SIP error while transferring: {0}")]
    Sip(String),
    #[error("a transfer is already in progress")]
    InProgress,
    #[error("the SIP user agent is shutting down")]
    ShuttingDown,
    #[error("the call has ended")]
    CallGone,
}

pub(crate) enum Command {
    HangUp,
    Transfer(Handover, oneshot::Sender<Result<Transferred, TransferError>>),
    Dtmf(DtmfDigit),
}

/// Controls a call.
#[derive(Debug, Clone)]
pub struct CallControl {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) counters: Arc<MediaCounters>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::HangUp => "HangUp",
            Command::Transfer(..) => "Transfer",
            Command::Dtmf(_) => "Dtmf",
        })
    }
}

impl CallControl {
    /// Ends the call (BYE). Returns at once; [`CallEvent::Ended`] follows.
    pub async fn hang_up(&self) {
        let _ = self.commands.send(Command::HangUp).await;
    }

    /// Sends a key press to the caller as RFC 4733 events (100 ms).
    ///
    /// # Errors
    /// [`CallGone`] once the call has ended.
    pub async fn send_dtmf(&self, digit: DtmfDigit) -> Result<(), CallGone> {
        self.commands.send(Command::Dtmf(digit)).await.map_err(|_| CallGone)
    }

    /// Transfers the caller to the agent queue of the handover's skill group.
    ///
    /// Cold (`transfer_mode = "refer"`): REFER with the ticket in User-to-User
    /// and X- headers, following NOTIFY progress; on success the call ends with
    /// [`EndReason::Transferred`]. If the caller's side refuses the REFER (any
    /// 4xx/5xx), or its NOTIFY says it cannot act on it (405/420/501), a bridged
    /// transfer is tried instead.
    ///
    /// Bridged (`transfer_mode = "bridge"`, or the fallback): we INVITE the agent
    /// with the same headers and, once answered, relay media both ways (DTMF
    /// too); this returns `Transferred { bridged: true, .. }` and the call goes on
    /// (caller audio still arrives as [`CallEvent::CallerAudio`]; bot clips wait)
    /// until the caller hangs up ([`EndReason::CallerHungUp`]), the agent does
    /// ([`EndReason::AgentHungUp`]) or [`CallControl::hang_up`] ends both legs.
    ///
    /// Publish the ticket (MQTT) before calling this: SIP carries only its key.
    ///
    /// # Errors
    /// See [`TransferError`]; the call stays up unless it is `CallGone`.
    pub async fn transfer(&self, handover: Handover) -> Result<Transferred, TransferError> {
        let (reply, result) = oneshot::channel();
        self.commands.send(Command::Transfer(handover, reply)).await.map_err(|_| TransferError::CallGone)?;
        result.await.map_err(|_| TransferError::CallGone)?
    }

    /// The call's media counters so far.
    pub fn media_stats(&self) -> MediaStats {
        self.counters.snapshot()
    }
}

/// An answered call, handed to the conversation.
#[derive(Debug)]
pub struct IncomingCall {
    pub info: CallInfo,
    pub events: mpsc::Receiver<crate::call::CallEvent>,
    pub audio: BotAudio,
    pub control: CallControl,
}

/// What the signalling task owns besides the session.
pub(crate) struct CallLeg {
    pub(crate) session: InviteSession,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<CallEvent>,
    pub(crate) media_control: mpsc::Sender<MediaControl>,
    pub(crate) media: JoinHandle<()>,
    pub(crate) media_cancel: CancellationToken,
    pub(crate) transfer: TransferConfig,
    pub(crate) local_uri: String,
    /// Where our RTP socket listens, as put in the SDP.
    pub(crate) media_local: std::net::SocketAddr,
    /// SDP `o=` session id and version (bumped per re-INVITE answer).
    pub(crate) sdp_session: (u64, u64),
    pub(crate) permit: OwnedSemaphorePermit,
    /// `[sip] advertised_address`.
    pub(crate) advertised: Option<std::net::IpAddr>,
    pub(crate) jitter: JitterConfig,
    pub(crate) tracker: TaskTracker,
    /// The agent leg of a bridged transfer, once answered.
    pub(crate) agent: Option<AgentLeg>,
}

type TransferReply = oneshot::Sender<Result<Transferred, TransferError>>;

struct PendingRefer {
    reply: TransferReply,
    deadline: Instant,
    handover: Handover,
}

/// An agent being dialled for a bridged transfer.
struct Dialing {
    task: JoinHandle<Result<AgentLeg, TransferError>>,
    cancel: CancellationToken,
    reply: TransferReply,
}

/// The next event of the agent leg's dialog, once there is an agent leg.
async fn agent_signal(agent: &mut Option<AgentLeg>) -> Result<InviteSessionEvent, ezk_sip_core::Error> {
    let Some(agent) = agent else { return std::future::pending().await };
    agent.session.run().await
}

async fn dial_result(dialing: &mut Option<Dialing>) -> Result<AgentLeg, TransferError> {
    let Some(dialing) = dialing else { return std::future::pending().await };
    (&mut dialing.task)
        .await
        .unwrap_or_else(|e| Err(TransferError::Sip(format!("dialling task failed: {e}"))))
}

impl CallLeg {
    /// Runs the call until it ends, then frees everything it holds.
    ///
    /// # Cancel safety
    /// Meant to be spawned and stopped through `cancel` (which sends BYE).
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let mut dialing = None;
        let reason = self.signalling(&cancel, &mut dialing).await;
        if let Some(dialing) = dialing {
            dialing.cancel.cancel();
            if let Ok(Ok(agent)) = dialing.task.await {
                agent.hang_up().await;
            }
            let _ = dialing.reply.send(Err(TransferError::CallGone));
        }
        if let Some(agent) = self.agent.take() {
            agent.close().await;
        }
        self.media_cancel.cancel();
        let _ = (&mut self.media).await;
        let _ = self.events.try_send(CallEvent::Ended(reason));
        drop(self.permit);
    }

    async fn signalling(&mut self, cancel: &CancellationToken, dialing: &mut Option<Dialing>) -> EndReason {
        let mut pending: Option<PendingRefer> = None;
        loop {
            let deadline = pending.as_ref().map(|p| p.deadline);
            let refer_timeout = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    self.bye().await;
                    return EndReason::Shutdown;
                }
                command = self.commands.recv() => match command {
                    None | Some(Command::HangUp) => {
                        self.bye().await;
                        return EndReason::HungUp;
                    }
                    Some(Command::Dtmf(digit)) => {
                        let _ = self.media_control.send(MediaControl::Dtmf(digit)).await;
                    }
                    Some(Command::Transfer(handover, reply)) => {
                        if pending.is_some() || dialing.is_some() || self.agent.is_some() {
                            let _ = reply.send(Err(TransferError::InProgress));
                            continue;
                        }
                        if self.transfer.mode == TransferMode::Bridge {
                            *dialing = Some(self.dial(handover, reply, cancel));
                            continue;
                        }
                        match self.send_refer(&handover).await {
                            Ok(()) => pending = Some(PendingRefer { reply, deadline: Instant::now() + self.transfer.timeout, handover }),
                            Err(TransferError::ReferRefused(code)) if bridge::refer_refused(code) => {
                                tracing::info!(code, "REFER refused: trying a bridged transfer");
                                *dialing = Some(self.dial(handover, reply, cancel));
                            }
                            Err(e) => { let _ = reply.send(Err(e)); }
                        }
                    }
                },
                () = refer_timeout => {
                    if let Some(p) = pending.take() {
                        let _ = p.reply.send(Err(TransferError::Timeout(self.transfer.timeout)));
                    }
                }
                answered = dial_result(dialing) => {
                    let Some(Dialing { reply, .. }) = dialing.take() else { continue };
                    match answered {
                        Ok(agent) => {
                            let (caller_port, agent_port) = media::bridge_ports();
                            let _ = self.media_control.send(MediaControl::Bridge(caller_port)).await;
                            let _ = agent.media_control.send(MediaControl::Bridge(agent_port)).await;
                            let status = agent.status;
                            self.agent = Some(agent);
                            let _ = reply.send(Ok(Transferred { agent_status: status, bridged: true }));
                        }
                        Err(e) => {
                            tracing::info!(error = %e, "bridged transfer failed; the caller stays with the bot");
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                signal = agent_signal(&mut self.agent) => {
                    let Some(agent) = self.agent.as_mut() else { continue };
                    if let Some(reason) = agent.on_session_event(signal).await {
                        self.bye().await;
                        return reason;
                    }
                }
                event = self.session.run() => match event {
                    Err(e) => {
                        self.hang_up_agent().await;
                        return EndReason::Failed(e.to_string());
                    }
                    Ok(InviteSessionEvent::RefreshNeeded) => {
                        if let Err(e) = self.session.refresh().await {
                            self.bye().await;
                            return EndReason::Failed(format!("session refresh failed: {e}"));
                        }
                    }
                    Ok(InviteSessionEvent::Notify(notify)) => {
                        let Some(status) = refer_progress(&notify) else { continue };
                        if status < 200 {
                            continue;
                        }
                        if let Some(p) = pending.take() {
                            if (200..300).contains(&status) {
                                let _ = p.reply.send(Ok(Transferred { agent_status: status, bridged: false }));
                                self.bye().await;
                                return EndReason::Transferred;
                            }
                            if bridge::notify_says_unsupported(status) {
                                tracing::info!(status, "the caller's side could not act on REFER: trying a bridged transfer");
                                *dialing = Some(self.dial(p.handover, p.reply, cancel));
                                continue;
                            }
                            let error = match status {
                                486 | 600 | 603 => TransferError::AgentBusy(status),
                                _ => TransferError::AgentUnreachable(status),
                            };
                            let _ = p.reply.send(Err(error));
                        }
                    }
                    Ok(InviteSessionEvent::ReInviteReceived(reinvite)) => {
                        let leg = (&mut self.session, &self.media_control, self.media_local, &mut self.sdp_session);
                        answer_reinvite(leg, reinvite).await;
                    }
                    Ok(InviteSessionEvent::Bye(bye)) => {
                        let _ = self.session.handle_bye(bye).await;
                        self.hang_up_agent().await;
                        return EndReason::CallerHungUp;
                    }
                    Ok(InviteSessionEvent::Terminated) => {
                        self.hang_up_agent().await;
                        return EndReason::CallerHungUp;
                    }
                },
            }
        }
    }

    /// Starts dialling the agent queue for a bridged transfer.
    fn dial(&self, handover: Handover, reply: TransferReply, cancel: &CancellationToken) -> Dialing {
        let queue = self.transfer.queue_for(handover.skill_group.as_deref()).to_owned();
        let seed = random_u64();
        let span = tracing::info_span!("agent_leg", ticket = %handover.ticket_id);
        // The agent leg's own media events are not wanted: what matters crosses
        // the bridge, and the conversation hears the caller's side.
        let (events, _unwanted) = mpsc::channel(1);
        let plan = DialPlan {
            endpoint: self.session.endpoint.clone(),
            queue,
            handover,
            uui_purpose: self.transfer.uui_purpose.clone(),
            advertised: self.advertised,
            fallback_ip: Some(self.media_local.ip()),
            sip_port: self.sip_port(),
            timeout: self.transfer.timeout,
            jitter: self.jitter,
            tracker: self.tracker.clone(),
            seeds: (seed as u32, (seed >> 32) as u16, (seed >> 16) as u32),
            session_id: random_u64() >> 2,
            events,
            counters: Arc::new(MediaCounters::default()),
        };
        let dial_cancel = cancel.child_token();
        let task = self.tracker.spawn(bridge::dial(plan, dial_cancel.clone()).instrument(span));
        Dialing { task, cancel: dial_cancel, reply }
    }

    /// Our SIP port, from the local URI the caller leg was answered with.
    fn sip_port(&self) -> u16 {
        self.local_uri.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(5060)
    }

    /// Ends the agent leg of a bridge, if any (BYE, bounded), and unbridges.
    async fn hang_up_agent(&mut self) {
        if let Some(agent) = self.agent.take() {
            let _ = self.media_control.try_send(MediaControl::Unbridge);
            agent.hang_up().await;
        }
    }

    /// Hangs up the caller (and the agent of a bridge), each bounded in time:
    /// a dead peer must not keep the call's resources.
    async fn bye(&mut self) {
        let caller = tokio::time::timeout(Duration::from_secs(5), self.session.terminate());
        let agent = async {
            if let Some(agent) = self.agent.take() {
                agent.hang_up().await;
            }
        };
        let _ = tokio::join!(caller, agent);
    }

    async fn send_refer(&mut self, handover: &Handover) -> Result<(), TransferError> {
        let queue = self.transfer.queue_for(handover.skill_group.as_deref());
        let uui = handover::user_to_user(&handover.ticket_id, &self.transfer.uui_purpose)?;
        let refer_to = handover::refer_to(queue, &uui)?;
        let mut request = self.session.dialog.create_request(Method::REFER, None);
        request.headers.insert(Name::REFER_TO, refer_to);
        request
            .headers
            .insert(Name::custom("Referred-By", &["referred-by", "b"]), format!("<{}>", self.local_uri));
        for (name, value) in handover::x_headers(handover) {
            request.headers.insert(Name::custom(name, &[]), value);
        }
        let endpoint = self.session.endpoint.clone();
        let mut target = self.session.dialog.target_tp_info.lock().await;
        let sent = endpoint.send_request(request, &mut target).await;
        drop(target);
        let mut transaction = sent.map_err(|e| TransferError::Sip(e.to_string()))?;
        let response = tokio::time::timeout(self.transfer.timeout, transaction.receive_final())
            .await
            .map_err(|_| TransferError::Timeout(self.transfer.timeout))?
            .map_err(|e| TransferError::Sip(e.to_string()))?;
        let code = response.line.code.into_u16();
        if (200..300).contains(&code) { Ok(()) } else { Err(TransferError::ReferRefused(code)) }
    }
}

/// Answers a re-INVITE on one leg: `(session, media control, our RTP address, SDP o= id and version)`.
pub(crate) async fn answer_reinvite(
    (session, media_control, media_local, sdp_session): (
        &mut InviteSession,
        &mpsc::Sender<MediaControl>,
        std::net::SocketAddr,
        &mut (u64, u64),
    ),
    reinvite: ezk_sip_ua::invite::session::ReInviteReceived,
) {
    let offer = sdp::parse(&reinvite.invite.body).and_then(|offer| sdp::negotiate(&offer));
    let (code, body) = match &offer {
        Ok(negotiated) => {
            let _ = media_control
                .send(MediaControl::Renegotiated {
                    remote: negotiated.remote,
                    codec: negotiated.codec,
                    event_payload_type: negotiated.event_payload_type,
                })
                .await;
            sdp_session.1 += 1;
            let (id, version) = *sdp_session;
            (StatusCode::OK, Some(sdp::answer(negotiated, media_local, id, version)))
        }
        Err(_) => (StatusCode::NOT_ACCEPTABLE_HERE, None),
    };
    let Ok(mut response) = session.dialog.create_response(&reinvite.invite, code, None) else {
        return;
    };
    if let Some(body) = body {
        response.msg.headers.insert_named(&ContentType(BytesStr::from_static("application/sdp")));
        response.msg.body = body.into();
        let _ = session.handle_reinvite_success(reinvite, response).await;
    } else {
        let _ = reinvite.transaction.respond_failure(response).await;
    }
}

/// The sipfrag status of a NOTIFY for our REFER subscription.
fn refer_progress(notify: &IncomingRequest) -> Option<u16> {
    let event = notify.headers.get_raw(&Name::EVENT).next()?;
    if !event.trim().to_ascii_lowercase().starts_with("refer") {
        return None;
    }
    handover::sipfrag_status(&notify.body)
}
