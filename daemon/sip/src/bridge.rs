//! Bridged transfer: the bot calls the agent queue itself and stays in the media
//! path, for `transfer_mode = "bridge"` and as the fallback when the caller's
//! side refuses REFER.
//!
//! [`dial`] sends an INVITE as UAC (ezk's [`InviteInitiator`], so ezk owns the
//! transaction, CANCEL and the ACK retransmissions) with an SDP offer of
//! PCMU/PCMA/telephone-event and the same ticket headers as the REFER:
//! `User-to-User` (RFC 7433, as a plain header here) and the X- headers. When the
//! agent answers it ACKs, starts an ordinary [`MediaTask`] for the agent leg and
//! returns the [`AgentLeg`]; the caller's signalling task then joins the two
//! legs' media ([`crate::media::bridge_ports`]) and watches both dialogs.
//!
//! Failures map to [`TransferError`] and leave the caller leg untouched:
//! 486/600/603 are `AgentBusy`, other final failures `AgentUnreachable`, no
//! answer within `transfer_timeout_s` is `Timeout` (after a CANCEL).

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
use ezk_sip_ua::invite::session::InviteSession;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voicebot_rtp::JitterConfig;

use crate::agent::local_ip_towards;
use crate::call::{CallEvent, TransferError};
use crate::handover::{self, Handover};
use crate::media::{MediaControl, MediaCounters, MediaTask};
use crate::sdp;

/// Everything [`dial`] needs from the caller's leg and the config.
pub(crate) struct DialPlan {
    pub(crate) endpoint: Endpoint,
    /// Agent-queue URI (already checked to parse at start).
    pub(crate) queue: String,
    pub(crate) handover: Handover,
    pub(crate) uui_purpose: String,
    /// `[sip] advertised_address`, which wins when set.
    pub(crate) advertised: Option<IpAddr>,
    /// Our address when the queue's host is a name: the caller leg's.
    pub(crate) fallback_ip: IpAddr,
    /// Our SIP port for the Contact.
    pub(crate) sip_port: u16,
    pub(crate) timeout: Duration,
    pub(crate) jitter: JitterConfig,
    pub(crate) tracker: TaskTracker,
    /// SSRC, sequence and timestamp seeds of the agent-leg stream.
    pub(crate) seeds: (u32, u16, u32),
    pub(crate) session_id: u64,
}

/// The answered agent leg, its media running but not yet joined to the caller.
pub(crate) struct AgentLeg {
    pub(crate) session: InviteSession,
    pub(crate) media: JoinHandle<()>,
    pub(crate) media_cancel: CancellationToken,
    pub(crate) media_control: mpsc::Sender<MediaControl>,
    /// The agent leg's own media events (the agent's decoded audio, key presses):
    /// drained and dropped by the caller's task; what matters crosses the bridge.
    pub(crate) events: mpsc::Receiver<CallEvent>,
    pub(crate) media_local: SocketAddr,
    pub(crate) sdp_session: (u64, u64),
    /// The status that established the agent leg (2xx).
    pub(crate) status: u16,
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
/// Not cancel-safe: stop it through `cancel`, which CANCELs the INVITE (or hangs
/// up an agent that answered meanwhile) and returns [`TransferError::CallGone`].
pub(crate) async fn dial(plan: DialPlan, cancel: CancellationToken) -> Result<AgentLeg, TransferError> {
    let target: SipUri = plan
        .queue
        .parse()
        .map_err(|_| TransferError::Handover(handover::HandoverError::BadQueueUri(plan.queue.clone())))?;
    let uui = handover::user_to_user(&plan.handover.ticket_id, &plan.uui_purpose)?;
    let local_ip = plan.advertised.unwrap_or_else(|| match &target.host_port.host {
        Host::IP4(ip) => local_ip_towards((*ip).into()),
        Host::IP6(ip) => local_ip_towards((*ip).into()),
        Host::Name(_) => plan.fallback_ip,
    });
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

    let deadline = Instant::now() + plan.timeout;
    let mut earlies: Vec<Early> = Vec::new();
    let answered = loop {
        let response = tokio::select! {
            response = initiator.receive() => response,
            () = tokio::time::sleep_until(deadline) => {
                give_up(initiator).await;
                return Err(TransferError::Timeout(plan.timeout));
            }
            () = cancel.cancelled() => {
                give_up(initiator).await;
                return Err(TransferError::CallGone);
            }
        };
        match response.map_err(|e| unreachable_by(&e))? {
            Response::Provisional(_) => {}
            Response::Early(early, ..) => earlies.push(early),
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
    let (events_tx, events) = mpsc::channel(16);
    let (_no_clips, clips) = mpsc::channel(1);
    let (media_control, control) = mpsc::channel(8);
    let media = MediaTask {
        socket,
        remote: negotiated.remote,
        codec: negotiated.codec,
        event_payload_type: negotiated.event_payload_type,
        jitter: plan.jitter,
        events: events_tx,
        clips,
        control,
        generation: Arc::new(AtomicU64::new(0)),
        counters: Arc::new(MediaCounters::default()),
        seeds: plan.seeds,
    };
    let media = plan.tracker.spawn(media.run(media_cancel.clone()));
    tracing::info!(queue = %plan.queue, status, codec = ?negotiated.codec, "agent answered: bridging");
    Ok(AgentLeg {
        session,
        media,
        media_cancel,
        media_control,
        events,
        media_local,
        sdp_session: (plan.session_id, 1),
        status,
    })
}

/// CANCELs an unanswered INVITE, bounded in time.
async fn give_up(initiator: InviteInitiator) {
    if tokio::time::timeout(Duration::from_secs(5), initiator.cancel()).await.is_err() {
        tracing::debug!("the agent did not confirm our CANCEL in 5 s");
    }
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
