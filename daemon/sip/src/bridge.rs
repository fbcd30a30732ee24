//! Dialling the agent queue: the bot's own INVITE to a human agent, shared by
//! the bridged transfer of a phone call ([`crate::call`]) and the kiosk's
//! agent call ([`crate::agent_call`]).
//!
//! [`dial`] sends an INVITE as UAC (ezk's [`InviteInitiator`], so ezk owns the
//! transaction, CANCEL and the ACK retransmissions) with an SDP offer of
//! PCMU/PCMA/telephone-event and the same ticket headers as the REFER:
//! `User-to-User` (RFC 7433, as a plain header here) and the X- headers. When the
//! agent answers it ACKs, starts an ordinary [`MediaTask`] for the agent leg and
//! returns the [`AgentLeg`]; its owner then joins the leg's media to the other
//! side ([`crate::media::bridge_ports`] for a caller, [`crate::media::BridgePort::feed`]
//! for a kiosk) and feeds the leg's dialog events to [`AgentLeg::on_session_event`].
//!
//! Failures map to [`TransferError`] and touch nothing else:
//! 486/600/603 are `AgentBusy`, other final failures `AgentUnreachable`, no
//! answer within `transfer_timeout_s` is `Timeout` at once (the CANCEL goes out
//! from a tracked task; a queue that never answered at all gets none, as
//! RFC 3261 §9.1 asks, and its INVITE is no longer retransmitted).

use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::Poll;
use std::time::Duration;

use bytesstr::BytesStr;
use ezk_sip_core::Endpoint;
use ezk_sip_core::transaction::TsxResponse;
use ezk_sip_types::Name;
use ezk_sip_types::header::typed::{Contact, ContentType};
use ezk_sip_types::host::Host;
use ezk_sip_types::uri::{NameAddr, SipUri};
use ezk_sip_ua::invite::create_ack;
use ezk_sip_ua::invite::initiator::{Early, EarlyResponse, InviteInitiator, Response};
use ezk_sip_ua::invite::session::{InviteSession, InviteSessionEvent};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use voicebot_rtp::{G711, JitterConfig};

use crate::agent::local_ip_towards;
use crate::call::{CallEvent, EndReason, TransferError};
use crate::handover::{self, Handover};
use crate::media::{MediaControl, MediaCounters, MediaTask};
use crate::sdp;

/// Everything [`dial`] needs from its owner and the config.
pub(crate) struct DialPlan {
    pub(crate) endpoint: Endpoint,
    /// Agent-queue URI (already checked to parse at start).
    pub(crate) queue: String,
    pub(crate) handover: Handover,
    pub(crate) uui_purpose: String,
    /// `[sip] advertised_address`, which wins when set.
    pub(crate) advertised: Option<IpAddr>,
    /// Our address when the queue's host is a name: the caller leg's; `None`:
    /// the local address on the route to what the name resolves to.
    pub(crate) fallback_ip: Option<IpAddr>,
    /// Our SIP port for the Contact.
    pub(crate) sip_port: u16,
    pub(crate) timeout: Duration,
    pub(crate) jitter: JitterConfig,
    pub(crate) tracker: TaskTracker,
    /// SSRC, sequence and timestamp seeds of the agent-leg stream.
    pub(crate) seeds: (u32, u16, u32),
    pub(crate) session_id: u64,
    /// Where the agent leg's media task delivers the agent's audio and keys.
    pub(crate) events: mpsc::Sender<CallEvent>,
    pub(crate) counters: Arc<MediaCounters>,
}

/// The answered agent leg, its media running but not yet joined to its other
/// side (a caller leg, or a kiosk).
pub(crate) struct AgentLeg {
    pub(crate) session: InviteSession,
    pub(crate) media: JoinHandle<()>,
    pub(crate) media_cancel: CancellationToken,
    pub(crate) media_control: mpsc::Sender<MediaControl>,
    pub(crate) media_local: SocketAddr,
    pub(crate) sdp_session: (u64, u64),
    /// The status that established the agent leg (2xx).
    pub(crate) status: u16,
    pub(crate) codec: G711,
}

impl AgentLeg {
    /// Hangs up the agent (BYE, bounded) and stops its media.
    pub(crate) async fn hang_up(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.terminate()).await;
        self.close().await;
    }

    /// Stops the agent leg's media after its dialog has ended.
    pub(crate) async fn close(self) {
        self.media_cancel.cancel();
        let _ = self.media.await;
    }

    /// Handles one event of the agent's dialog (from `session.run()`): answers
    /// refreshes and re-INVITEs, and BYE. Returns why the leg ended, if it did;
    /// the owner then stops it ([`AgentLeg::close`]).
    ///
    /// # Cancel safety
    /// Not cancel-safe (a response may be half sent); await it to the end.
    pub(crate) async fn on_session_event(
        &mut self,
        event: Result<InviteSessionEvent, ezk_sip_core::Error>,
    ) -> Option<EndReason> {
        match event {
            Ok(InviteSessionEvent::RefreshNeeded) => {
                let _ = self.session.refresh().await;
                None
            }
            Ok(InviteSessionEvent::ReInviteReceived(reinvite)) => {
                let leg = (&mut self.session, &self.media_control, self.media_local, &mut self.sdp_session);
                crate::call::answer_reinvite(leg, reinvite).await;
                None
            }
            Ok(InviteSessionEvent::Notify(_)) => None,
            Ok(InviteSessionEvent::Bye(bye)) => {
                let _ = self.session.handle_bye(bye).await;
                Some(EndReason::AgentHungUp)
            }
            Ok(InviteSessionEvent::Terminated) => Some(EndReason::AgentHungUp),
            Err(e) => {
                tracing::info!(error = %e, "the agent leg failed");
                Some(EndReason::Failed(format!("agent leg: {e}")))
            }
        }
    }
}

/// The status code a failed agent INVITE maps to.
fn failure(code: u16) -> TransferError {
    match code {
        486 | 600 | 603 => TransferError::AgentBusy(code),
        _ => TransferError::AgentUnreachable(code),
    }
}

fn unreachable_by(error: &ezk_sip_core::Error) -> TransferError {
    match error {
        ezk_sip_core::Error::RequestTimedOut => TransferError::AgentUnreachable(408),
        other => TransferError::Sip(format!("INVITE to the agent queue failed: {other}")),
    }
}

/// The session of an early dialog whose 2xx has arrived, if any.
async fn early_success(earlies: &mut [Early]) -> Result<Option<(InviteSession, TsxResponse)>, TransferError> {
    poll_fn(|cx| {
        for early in earlies.iter_mut() {
            match early.poll_receive(cx) {
                Poll::Ready(Ok(EarlyResponse::Success(session, response))) => {
                    return Poll::Ready(Ok(Some((session, response))));
                }
                Poll::Ready(Ok(_)) | Poll::Pending => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(unreachable_by(&e))),
            }
        }
        Poll::Ready(Ok(None))
    })
    .await
}

/// Calls the agent queue and returns the answered leg.
///
/// # Errors
/// See the module docs; the caller's leg is never touched.
///
/// # Cancel safety
/// Not cancel-safe: stop it through `cancel`, which abandons the INVITE as a
/// timeout does (CANCEL, or hang-up of an agent who answered meanwhile) and
/// returns [`TransferError::CallGone`].
pub(crate) async fn dial(plan: DialPlan, cancel: CancellationToken) -> Result<AgentLeg, TransferError> {
    let target: SipUri = plan
        .queue
        .parse()
        .map_err(|_| TransferError::Handover(handover::HandoverError::BadQueueUri(plan.queue.clone())))?;
    let uui = handover::user_to_user(&plan.handover.ticket_id, &plan.uui_purpose)?;
    let deadline = Instant::now() + plan.timeout;
    let local_ip = match (plan.advertised, &target.host_port.host) {
        (Some(ip), _) => ip,
        (None, Host::IP4(ip)) => local_ip_towards((*ip).into()),
        (None, Host::IP6(ip)) => local_ip_towards((*ip).into()),
        (None, Host::Name(name)) => match plan.fallback_ip {
            Some(ip) => ip,
            None => route_to_name(name, target.host_port.port, deadline)
                .await
                .map_err(|e| e.unwrap_or(TransferError::Timeout(plan.timeout)))?,
        },
    };
    let bind_ip: IpAddr =
        if local_ip.is_ipv4() { [0, 0, 0, 0].into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() };
    let socket = UdpSocket::bind((bind_ip, 0))
        .await
        .map_err(|e| TransferError::Sip(format!("no RTP port for the agent leg: {e}")))?;
    let rtp_port = socket.local_addr().map_err(|e| TransferError::Sip(e.to_string()))?.port();
    let media_local = SocketAddr::new(local_ip, rtp_port);
    let local_uri: SipUri = format!("sip:voicebot@{}", SocketAddr::new(local_ip, plan.sip_port))
        .parse()
        .map_err(|_| TransferError::Sip("cannot form our own SIP URI".into()))?;

    let mut initiator = InviteInitiator::new(
        plan.endpoint.clone(),
        NameAddr::uri(local_uri.clone()),
        Contact::new(NameAddr::uri(local_uri)),
        target,
    );
    // Keep the agent leg plain: no reliable provisionals, no session timer.
    initiator.support_100rel = false;
    initiator.support_timer = false;
    let mut invite = initiator.create_invite();
    invite.headers.insert_named(&ContentType(BytesStr::from_static("application/sdp")));
    invite.headers.insert(Name::custom("User-to-User", &[]), uui);
    for (name, value) in handover::x_headers(&plan.handover) {
        invite.headers.insert(Name::custom(name, &[]), value);
    }
    invite.body = sdp::offer(media_local, plan.session_id).into();
    initiator.send_invite(invite).await.map_err(|e| unreachable_by(&e))?;

    let mut earlies: Vec<Early> = Vec::new();
    // Whether the queue has answered provisionally, which allows a CANCEL.
    let mut heard = false;
    let answered = loop {
        let response = tokio::select! {
            response = initiator.receive() => response,
            () = tokio::time::sleep_until(deadline) => {
                give_up(initiator, heard, &plan.tracker);
                return Err(TransferError::Timeout(plan.timeout));
            }
            () = cancel.cancelled() => {
                give_up(initiator, heard, &plan.tracker);
                return Err(TransferError::CallGone);
            }
        };
        match response.map_err(|e| unreachable_by(&e))? {
            Response::Provisional(_) => heard = true,
            Response::Early(early, ..) => {
                heard = true;
                earlies.push(early);
            }
            Response::EarlyEvent => {
                if let Some(answered) = early_success(&mut earlies).await? {
                    break answered;
                }
            }
            Response::Session(session, response) => break (session, response),
            Response::Failure(response) => return Err(failure(response.line.code.into_u16())),
            Response::Finished => return Err(TransferError::AgentUnreachable(408)),
        }
    };
    let (mut session, response) = answered;
    let status = response.line.code.into_u16();
    let mut ack = create_ack(&session.dialog, response.base_headers.cseq.cseq)
        .await
        .map_err(|e| TransferError::Sip(format!("cannot ACK the agent: {e}")))?;
    plan.endpoint
        .send_outgoing_request(&mut ack)
        .await
        .map_err(|e| TransferError::Sip(format!("cannot ACK the agent: {e}")))?;
    initiator.set_acknowledge(&session, ack);
    // The initiator re-sends the ACK for retransmitted 2xx until its transaction
    // ends or the agent leg does (its media token).
    let media_cancel = CancellationToken::new();
    let linger = media_cancel.clone();
    plan.tracker.spawn(async move {
        let drain = async {
            while let Ok(event) = initiator.receive().await {
                match event {
                    Response::Finished | Response::Failure(_) => break,
                    Response::Session(mut extra, _) => {
                        let _ = extra.terminate().await;
                    }
                    _ => {}
                }
            }
        };
        tokio::select! {
            () = drain => {}
            () = linger.cancelled() => {}
            () = tokio::time::sleep(Duration::from_secs(40)) => {}
        }
    });

    let negotiated = match sdp::parse(&response.body).and_then(|answer| sdp::negotiate(&answer)) {
        Ok(negotiated) => negotiated,
        Err(e) => {
            let _ = tokio::time::timeout(Duration::from_secs(5), session.terminate()).await;
            media_cancel.cancel();
            return Err(TransferError::Sip(format!("the agent answered without a usable SDP answer: {e}")));
        }
    };
    // The agent leg plays no clips: its outgoing audio comes over a bridge.
    let (_no_clips, clips) = mpsc::channel(1);
    let (media_control, control) = mpsc::channel(8);
    let media = MediaTask {
        socket,
        remote: negotiated.remote,
        codec: negotiated.codec,
        event_payload_type: negotiated.event_payload_type,
        jitter: plan.jitter,
        events: plan.events,
        clips,
        control,
        generation: Arc::new(AtomicU64::new(0)),
        counters: plan.counters,
        seeds: plan.seeds,
    };
    let media = plan.tracker.spawn(media.run(media_cancel.clone()));
    tracing::info!(
        queue = %plan.queue,
        ticket = %plan.handover.ticket_id,
        status,
        codec = ?negotiated.codec,
        "the agent answered"
    );
    Ok(AgentLeg {
        session,
        media,
        media_cancel,
        media_control,
        media_local,
        sdp_session: (plan.session_id, 1),
        status,
        codec: negotiated.codec,
    })
}

/// Our address on the route to a queue given by host name (resolved here, and
/// again by ezk's transport when it sends). `Err(None)`: no answer by `deadline`.
async fn route_to_name(
    name: &str,
    port: Option<u16>,
    deadline: Instant,
) -> Result<IpAddr, Option<TransferError>> {
    let lookup = tokio::net::lookup_host((name, port.unwrap_or(5060)));
    match tokio::time::timeout_at(deadline, lookup).await {
        Ok(Ok(mut addrs)) => match addrs.next() {
            Some(addr) => Ok(local_ip_towards(addr.ip())),
            None => {
                Err(Some(TransferError::Sip(format!("agent queue host {name:?} resolves to no address"))))
            }
        },
        Ok(Err(e)) => Err(Some(TransferError::Sip(format!("cannot resolve agent queue host {name:?}: {e}")))),
        Err(_) => Err(None),
    }
}

/// Abandons an unanswered INVITE without waiting: a tracked task CANCELs it
/// (bounded in time; it also hangs up an agent who answers meanwhile). With no
/// provisional response yet, no CANCEL may be sent (RFC 3261 §9.1): dropping
/// the initiator stops the INVITE's retransmissions.
fn give_up(initiator: InviteInitiator, heard: bool, tracker: &TaskTracker) {
    if !heard {
        tracing::debug!("nothing heard from the agent queue: INVITE abandoned");
        return;
    }
    let cancel = async move {
        if tokio::time::timeout(Duration::from_secs(5), initiator.cancel()).await.is_err() {
            tracing::debug!("the agent did not confirm our CANCEL in 5 s");
        }
    };
    tracker.spawn(cancel.in_current_span());
}

/// Whether a final response to our REFER refuses it (any 4xx/5xx: 405 and 501
/// say REFER is not implemented, 403 that transfers are not allowed, others that
/// it failed there), so a bridged transfer is tried instead.
pub(crate) fn refer_refused(status: u16) -> bool {
    (400..=599).contains(&status)
}

/// Whether a NOTIFY sipfrag status says the transferee could not act on the
/// REFER (rather than that the agent side failed).
pub(crate) fn notify_says_unsupported(status: u16) -> bool {
    matches!(status, 405 | 420 | 501)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_codes_are_busy_and_the_rest_unreachable() {
        assert_eq!(failure(486), TransferError::AgentBusy(486));
        assert_eq!(failure(603), TransferError::AgentBusy(603));
        assert_eq!(failure(404), TransferError::AgentUnreachable(404));
        assert_eq!(failure(503), TransferError::AgentUnreachable(503));
        assert_eq!(
            failure(ezk_sip_types::StatusCode::REQUEST_TIMEOUT.into_u16()),
            TransferError::AgentUnreachable(408)
        );
    }

    #[test]
    fn refusals_that_mean_no_refer_support_fall_back_to_a_bridge() {
        for code in [405, 501, 403, 420, 488, 500, 503] {
            assert!(refer_refused(code), "{code}");
        }
        for code in [202, 200, 302, 603] {
            assert!(!refer_refused(code), "{code}");
        }
        assert!(notify_says_unsupported(501) && notify_says_unsupported(405));
        assert!(!notify_says_unsupported(486) && !notify_says_unsupported(404));
    }
}
