//! The SIP user agent: an ezk endpoint over UDP and TCP with our layers, call
//! admission, and structured shutdown.
//!
//! Layers, in the order ezk offers them each request outside a transaction:
//! 1. [`GuardLayer`]: counts requests, runs [`crate::wire::inspect`] on the raw
//!    message (answering 4xx/5xx or dropping and counting), answers OPTIONS
//!    (keep-alives) and refuses out-of-dialog methods we do not serve with 405;
//! 2. ezk's dialog and INVITE layers: in-dialog requests, CANCEL, ACK, BYE;
//! 3. [`InboundLayer`]: new INVITEs — from a source IP outside `allowed_peers`,
//!    403, or with `auth_realm` set a digest challenge (401, then 403 for bad
//!    credentials; [`crate::digest`]); 486 when `max_calls` calls are up (a
//!    semaphore); else one tracked task per call answers 100 → 180 → 200 with SDP
//!    and runs the call.
//!
//! With `[sip] registrar` set, one tracked task keeps us registered
//! ([`crate::registration`]); it never holds up answering calls.
//!
//! Outgoing calls to the agent queue for a kiosk go through [`AgentDialer`]
//! ([`crate::agent_call`]) on the same endpoint, tracker and token.
//!
//! Shutdown: cancelling the agent's token sends BYE on every call; [`UserAgent::shutdown`]
//! then waits for the call tasks with a deadline. ezk's own transport tasks have
//! no shutdown hook and end with the runtime.
//!
//! Garbage that ezk cannot frame (no request line it parses, or no Via/From/To/
//! Call-ID/CSeq it parses) is dropped inside ezk before any layer sees it:
//! ezk-sip-core 0.9.2 gives no hook on the raw bytes (see the README's known
//! gaps). It is counted from ezk's own log reports ([`crate::garbage`]), per
//! process, in [`SipStats::unparseable`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytesstr::BytesStr;
use ezk_sip_core::{Endpoint, IncomingRequest, Layer, MayTake};
use ezk_sip_types::header::typed::{Contact, ContentType};
use ezk_sip_types::uri::{NameAddr, SipUri};
use ezk_sip_types::{Method, Name, StatusCode};
use ezk_sip_ua::dialog::{Dialog, DialogLayer};
use ezk_sip_ua::invite::InviteLayer;
use ezk_sip_ua::invite::acceptor::InviteAcceptor;
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voicebot_core::config::{CallerSecret, PeerNet, SipConfig};
use voicebot_rtp::JitterConfig;

use crate::agent_call::{AgentCall, AgentDialer};
use crate::call::{BotAudio, CallControl, CallInfo, CallLeg, IncomingCall, TransferError};
use crate::digest::{Algorithm, Outcome, Secret, Verifier};
use crate::handover::Handover;
use crate::media::{MediaCounters, MediaTask, RESERVED_EVENTS};
use crate::registration::{Registrar, RegistrationState};
use crate::sdp;
use crate::wire::{self, Verdict};

/// Why the user agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error(
        "cannot listen for SIP on UDP {addr}: {source} (is another SIP server on that port? set [sip] listen_udp)"
    )]
    BindUdp { addr: SocketAddr, source: std::io::Error },
    #[error("cannot listen for SIP on TCP {addr}: {source} (set [sip] listen_tcp)")]
    BindTcp { addr: SocketAddr, source: std::io::Error },
    #[error("agent queue {uri:?} does not parse as a SIP URI")]
    BadQueueUri { uri: String },
    #[error("[sip] registrar {uri:?} does not parse as a SIP URI")]
    BadRegistrarUri { uri: String },
}

/// Counters of the whole agent.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    rejected: AtomicU64,
    dropped: AtomicU64,
    forbidden: AtomicU64,
    busy: AtomicU64,
    challenged: AtomicU64,
    calls_answered: AtomicU64,
    calls_failed: AtomicU64,
}

/// A snapshot of the agent's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SipStats {
    /// Requests ezk delivered to us.
    pub requests: u64,
    /// Answered 4xx/5xx by the message checker.
    pub rejected: u64,
    /// Dropped unanswered by the message checker (not what ezk drops before it:
    /// that is [`SipStats::unparseable`]).
    pub dropped: u64,
    /// Messages ezk dropped before our layers because it could not frame or
    /// parse them, as ezk reported them in its log ([`crate::garbage`]): per
    /// *process*, not per agent, and only while the process's logger feeds
    /// [`crate::garbage::note`] (voicebotd's does); some drops ezk does not
    /// report (see there). Disjoint from `dropped`.
    pub unparseable: u64,
    /// INVITEs and OPTIONS refused with 403.
    pub forbidden: u64,
    /// INVITEs refused with 486 (max_calls).
    pub busy: u64,
    /// INVITEs answered 401 with a digest challenge.
    pub challenged: u64,
    pub calls_answered: u64,
    /// INVITEs accepted for setup that did not become calls (488, CANCEL, no ACK).
    pub calls_failed: u64,
}

/// A cloneable reader of a [`UserAgent`]'s counters, for a metrics endpoint
/// that outlives or runs beside the agent.
#[derive(Debug, Clone)]
pub struct SipStatsReader {
    counters: Arc<Counters>,
}

impl SipStatsReader {
    /// The counters now (as [`UserAgent::stats`]).
    pub fn stats(&self) -> SipStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SipStats {
            requests: get(&c.requests),
            rejected: get(&c.rejected),
            dropped: get(&c.dropped),
            unparseable: crate::garbage::unparseable(),
            forbidden: get(&c.forbidden),
            busy: get(&c.busy),
            challenged: get(&c.challenged),
            calls_answered: get(&c.calls_answered),
            calls_failed: get(&c.calls_failed),
        }
    }
}

/// State shared by the layers and call tasks.
struct Shared {
    config: SipConfig,
    counters: Arc<Counters>,
    calls: Arc<Semaphore>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    incoming: mpsc::Sender<IncomingCall>,
    /// Digest verifier of callers outside the allowlist (short, non-async locks).
    auth: Option<std::sync::Mutex<Verifier>>,
    /// Set by [`UserAgent::drain`]: new INVITEs get 503, calls go on.
    draining: std::sync::atomic::AtomicBool,
    /// Agent calls ([`AgentDialer`]) being dialled or up; not under `max_calls`.
    agent_calls: Arc<AtomicUsize>,
}

impl Shared {
    fn allowed(&self, ip: IpAddr) -> bool {
        self.config.allowed_peers.iter().any(|net: &PeerNet| net.contains(ip))
    }
}

/// The running user agent.
pub struct UserAgent {
    shared: Arc<Shared>,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    registration: watch::Receiver<RegistrationState>,
    endpoint: Endpoint,
}

impl UserAgent {
    /// Binds the configured transports and starts answering. Answered calls arrive
    /// on the returned receiver (capacity: `max_calls`); a call nobody takes is hung up.
    ///
    /// A TCP port of 0 picks a free port (tests). Cancelling `cancel` hangs up all calls.
    ///
    /// # Errors
    /// A port in use, or a config this version cannot serve.
    pub async fn start(
        config: SipConfig,
        cancel: CancellationToken,
    ) -> Result<(UserAgent, mpsc::Receiver<IncomingCall>), SipError> {
        for uri in std::iter::once(&config.transfer.default_queue).chain(config.transfer.queues.values()) {
            uri.parse::<SipUri>().map_err(|_| SipError::BadQueueUri { uri: uri.clone() })?;
        }
        if let Some(registrar) = &config.registrar {
            let uri = &registrar.uri;
            uri.parse::<SipUri>().map_err(|_| SipError::BadRegistrarUri { uri: uri.clone() })?;
        }
        let (incoming, calls_rx) = mpsc::channel(config.max_calls);
        let auth = config.caller_auth.as_ref().map(|auth| {
            let users = auth
                .users
                .iter()
                .map(|(name, secret)| {
                    let secret = match secret {
                        CallerSecret::Password(p) => Secret::Password(p.clone()),
                        CallerSecret::Ha1(hex) if hex.len() == 64 => {
                            Secret::Ha1 { algorithm: Algorithm::Sha256, hex: hex.clone() }
                        }
                        CallerSecret::Ha1(hex) => Secret::Ha1 { algorithm: Algorithm::Md5, hex: hex.clone() },
                    };
                    (name.clone(), secret)
                })
                .collect();
            std::sync::Mutex::new(Verifier::new(auth.realm.clone(), users))
        });
        let shared = Arc::new(Shared {
            auth,
            draining: std::sync::atomic::AtomicBool::new(false),
            agent_calls: Arc::new(AtomicUsize::new(0)),
            calls: Arc::new(Semaphore::new(config.max_calls)),
            config,
            counters: Arc::default(),
            tracker: TaskTracker::new(),
            cancel,
            incoming,
        });
        let mut builder = Endpoint::builder();
        builder.user_agent("voicebotd");
        builder.add_layer(GuardLayer { shared: shared.clone() });
        builder.add_layer(DialogLayer::default());
        builder.add_layer(InviteLayer::default());
        builder.add_layer(InboundLayer { shared: shared.clone() });
        let mut udp = None;
        if let Some(addr) = shared.config.listen_udp {
            let handle = builder.bind_udp(addr).await.map_err(|source| SipError::BindUdp { addr, source })?;
            udp = Some(handle.bound());
        }
        let mut tcp = None;
        if let Some(mut addr) = shared.config.listen_tcp {
            if addr.port() == 0 {
                // ezk does not report the port it bound: pick one that is free now,
                // preferring the UDP port so both transports share it.
                let wanted = SocketAddr::new(addr.ip(), udp.map_or(0, |u: SocketAddr| u.port()));
                let probe = std::net::TcpListener::bind(wanted)
                    .or_else(|_| std::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0)))
                    .map_err(|source| SipError::BindTcp { addr, source })?;
                addr = probe.local_addr().map_err(|source| SipError::BindTcp { addr, source })?;
            }
            builder.listen_tcp(addr).await.map_err(|source| SipError::BindTcp { addr, source })?;
            tcp = Some(addr);
        }
        let endpoint = builder.build();
        let (state, registration) = watch::channel(RegistrationState::Off);
        if let Some(config) = shared.config.registrar.clone() {
            let registrar = Registrar {
                endpoint: endpoint.clone(),
                config,
                advertised: shared.config.advertised_address,
                sip_port: udp.or(tcp).map_or(5060, |a| a.port()),
                state,
            };
            shared.tracker.spawn(registrar.run(shared.cancel.clone()));
        }
        Ok((UserAgent { shared, udp, tcp, registration, endpoint }, calls_rx))
    }

    /// The bound UDP address, if UDP listens.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp
    }

    /// The bound TCP address, if TCP listens.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The agent's counters now.
    pub fn stats(&self) -> SipStats {
        self.stats_reader().stats()
    }

    /// A handle that reads [`UserAgent::stats`] without the agent (for `/metrics`).
    pub fn stats_reader(&self) -> SipStatsReader {
        SipStatsReader { counters: self.shared.counters.clone() }
    }

    /// Calls being set up or running: phone calls and agent calls.
    pub fn active_calls(&self) -> usize {
        self.shared.config.max_calls - self.shared.calls.available_permits()
            + self.shared.agent_calls.load(Ordering::Acquire)
    }

    /// A handle that places agent calls for a kiosk ([`AgentDialer::call_agent`]);
    /// it may outlive this value, and its calls end with [`UserAgent::shutdown`].
    pub fn agent_dialer(&self) -> AgentDialer {
        let config = &self.shared.config;
        AgentDialer {
            endpoint: self.endpoint.clone(),
            transfer: config.transfer.clone(),
            advertised: config.advertised_address,
            sip_port: self.udp.or(self.tcp).map_or(5060, |a| a.port()),
            jitter: JitterConfig { depth: config.jitter_depth, ..JitterConfig::default() },
            tracker: self.shared.tracker.clone(),
            cancel: self.shared.cancel.clone(),
            active: self.shared.agent_calls.clone(),
        }
    }

    /// Calls a human agent for a kiosk: [`AgentDialer::call_agent`] on a fresh
    /// [`UserAgent::agent_dialer`].
    ///
    /// # Errors
    /// See [`AgentDialer::call_agent`].
    ///
    /// # Cancel safety
    /// Cancel-safe, as [`AgentDialer::call_agent`].
    pub async fn call_agent(&self, handover: Handover) -> Result<AgentCall, TransferError> {
        self.agent_dialer().call_agent(handover).await
    }

    /// Where registration to `[sip] registrar` stands; watch it for changes.
    pub fn registration(&self) -> watch::Receiver<RegistrationState> {
        self.registration.clone()
    }

    /// Call tasks (setup, signalling, media) still running, and the
    /// registration task when a registrar is configured.
    pub fn running_tasks(&self) -> usize {
        self.shared.tracker.len()
    }

    /// Stops taking calls: new INVITEs are answered 503 Service Unavailable
    /// (with `Retry-After`), while calls in progress go on until they end or
    /// [`UserAgent::shutdown`]. For a graceful stop: drain, let the calls close,
    /// then shut down.
    pub fn drain(&self) {
        self.shared.draining.store(true, Ordering::Relaxed);
    }

    /// Hangs up every call and waits up to `deadline` for their tasks.
    /// Returns whether all ended in time.
    pub async fn shutdown(self, deadline: Duration) -> bool {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        tokio::time::timeout(deadline, self.shared.tracker.wait()).await.is_ok()
    }
}

/// Checks every request first; answers OPTIONS; refuses unserved methods.
struct GuardLayer {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl Layer for GuardLayer {
    fn name(&self) -> &'static str {
        "voicebot-guard"
    }

    async fn receive(&self, endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
        let counters = &self.shared.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let method = request.line.method.clone();
        match wire::inspect(&request.tp_info.buffer) {
            Verdict::Accept(_) => {}
            Verdict::Drop(reason) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%reason, "dropped a SIP request");
                request.take();
                return;
            }
            Verdict::Reject(rejection) => {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(status = rejection.status, reason = %rejection.reason, "rejected a SIP request");
                let request = request.take();
                if method == Method::ACK {
                    return;
                }
                let mut response = endpoint.create_response(
                    &request,
                    StatusCode::from(rejection.status),
                    Some(BytesStr::from(rejection.reason.as_str())),
                );
                if !rejection.unsupported.is_empty() {
                    response.msg.headers.insert(Name::UNSUPPORTED, rejection.unsupported.join(", "));
                }
                if matches!(rejection.status, 406 | 415) {
                    response.msg.headers.insert(Name::ACCEPT, "application/sdp");
                }
                respond(endpoint, request, response).await;
                return;
            }
        }
        let in_dialog = request.base_headers.to.tag.is_some();
        if method == Method::OPTIONS {
            let request = request.take();
            let code = if self.shared.allowed(request.tp_info.source.ip()) {
                StatusCode::OK
            } else {
                counters.forbidden.fetch_add(1, Ordering::Relaxed);
                StatusCode::FORBIDDEN
            };
            let mut response = endpoint.create_response(&request, code, None);
            if code == StatusCode::OK {
                response.msg.headers.insert_named(endpoint.allowed());
                response.msg.headers.insert(Name::ACCEPT, "application/sdp");
                response.msg.headers.insert_named(endpoint.supported());
            }
            respond(endpoint, request, response).await;
            return;
        }
        let served = [Method::INVITE, Method::ACK, Method::CANCEL, Method::BYE];
        if !in_dialog && !served.contains(&method) {
            let request = request.take();
            let mut response = endpoint.create_response(&request, StatusCode::METHOD_NOT_ALLOWED, None);
            response.msg.headers.insert_named(endpoint.allowed());
            respond(endpoint, request, response).await;
        }
    }
}

async fn respond(
    endpoint: &Endpoint,
    mut request: IncomingRequest,
    response: ezk_sip_core::transport::OutgoingResponse,
) {
    let result = if request.line.method == Method::INVITE {
        endpoint.create_server_inv_tsx(&mut request).respond_failure(response).await
    } else {
        endpoint.create_server_tsx(&mut request).respond(response).await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "could not send a SIP response");
    }
}

/// Admits new INVITEs.
struct InboundLayer {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl Layer for InboundLayer {
    fn name(&self) -> &'static str {
        "voicebot-inbound"
    }

    async fn receive(&self, endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
        if request.line.method != Method::INVITE || request.base_headers.to.tag.is_some() {
            return;
        }
        let invite = request.take();
        let shared = &self.shared;
        let refuse = |code| endpoint.create_response(&invite, code, None);
        if !shared.allowed(invite.tp_info.source.ip()) {
            let source = invite.tp_info.source;
            let Some(auth) = &shared.auth else {
                shared.counters.forbidden.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%source, "INVITE from a peer not in [sip] allowed_peers: 403");
                let response = refuse(StatusCode::FORBIDDEN);
                return respond(endpoint, invite, response).await;
            };
            let header = invite.headers.get_raw(&Name::AUTHORIZATION).next().map(|h| h.to_string());
            let now = std::time::Instant::now();
            let outcome = lock(auth).verify("INVITE", header.as_deref(), now);
            match outcome {
                Outcome::Authenticated { username } => {
                    tracing::info!(%source, %username, "caller authenticated by digest");
                }
                Outcome::Challenge { stale } => {
                    shared.counters.challenged.fetch_add(1, Ordering::Relaxed);
                    let challenges = lock(auth).challenge(rand::random(), stale, now);
                    let mut response = refuse(StatusCode::UNAUTHORIZED);
                    for challenge in challenges {
                        response.msg.headers.insert(Name::WWW_AUTHENTICATE, challenge);
                    }
                    return respond(endpoint, invite, response).await;
                }
                Outcome::Forbidden(reason) => {
                    shared.counters.forbidden.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%source, %reason, "INVITE failed digest authentication: 403");
                    let response = refuse(StatusCode::FORBIDDEN);
                    return respond(endpoint, invite, response).await;
                }
            }
        }
        if shared.cancel.is_cancelled() || shared.draining.load(Ordering::Relaxed) {
            tracing::info!(source = %invite.tp_info.source, "INVITE while stopping: 503");
            let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE);
            response.msg.headers.insert(Name::RETRY_AFTER, "30");
            return respond(endpoint, invite, response).await;
        }
        let Ok(permit) = shared.calls.clone().try_acquire_owned() else {
            shared.counters.busy.fetch_add(1, Ordering::Relaxed);
            let response = refuse(StatusCode::BUSY_HERE);
            return respond(endpoint, invite, response).await;
        };
        let shared = shared.clone();
        let endpoint = endpoint.clone();
        self.shared.tracker.spawn(async move {
            if !answer(&shared, endpoint, invite, permit).await {
                shared.counters.calls_failed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Locks the verifier; a panic while holding it cannot leave it inconsistent
/// in a way that matters more than refusing every caller, so poison is ignored.
fn lock(auth: &std::sync::Mutex<Verifier>) -> std::sync::MutexGuard<'_, Verifier> {
    auth.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn user_part(uri: &SipUri) -> String {
    match &uri.user_part {
        ezk_sip_types::uri::SipUriUserPart::Empty => String::new(),
        ezk_sip_types::uri::SipUriUserPart::User(user) => user.to_string(),
        ezk_sip_types::uri::SipUriUserPart::UserPw(pw) => pw.user.to_string(),
    }
}

/// The local address on the route to `peer` (what the peer can reach us at).
pub(crate) fn local_ip_towards(peer: IpAddr) -> IpAddr {
    let unspecified: IpAddr =
        if peer.is_ipv4() { [0, 0, 0, 0].into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() };
    std::net::UdpSocket::bind((unspecified, 0))
        .and_then(|s| s.connect((peer, 9)).and_then(|()| s.local_addr()))
        .map_or(unspecified, |a| a.ip())
}

pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// Sets up one call: SDP, 100/180/200, ACK, then runs it. Returns whether it became a call.
async fn answer(
    shared: &Arc<Shared>,
    endpoint: Endpoint,
    mut invite: IncomingRequest,
    permit: OwnedSemaphorePermit,
) -> bool {
    let negotiated = sdp::parse(&invite.body).and_then(|offer| sdp::negotiate(&offer));
    let negotiated = match negotiated {
        Ok(n) => n,
        Err(e) => {
            tracing::info!(error = %e, "INVITE without an acceptable SDP offer: 488");
            let mut response = endpoint.create_response(&invite, StatusCode::NOT_ACCEPTABLE_HERE, None);
            response.msg.headers.insert(Name::WARNING, format!("399 voicebotd \"{e}\""));
            let _ = endpoint.create_server_inv_tsx(&mut invite).respond_failure(response).await;
            return false;
        }
    };
    let peer = invite.tp_info.source;
    let local_ip = shared.config.advertised_address.unwrap_or_else(|| local_ip_towards(peer.ip()));
    let sip_port = invite.tp_info.transport.bound().port();
    let local_uri = format!("sip:voicebot@{}", SocketAddr::new(local_ip, sip_port));
    let Ok(contact_uri) = local_uri.parse::<SipUri>() else { return false };
    let info = CallInfo {
        call_id: invite.base_headers.call_id.0.to_string(),
        caller: user_part(&invite.base_headers.from.uri.uri),
        dialled: user_part(&invite.line.uri),
        peer,
        codec: negotiated.codec,
    };
    let dialog = match Dialog::new_server(endpoint.clone(), &invite, Contact::new(NameAddr::uri(contact_uri)))
    {
        Ok(dialog) => dialog,
        Err(e) => {
            let mut response = endpoint.create_response(&invite, StatusCode::BAD_REQUEST, None);
            response.msg.headers.insert(Name::WARNING, format!("399 voicebotd \"{e}\""));
            let _ = endpoint.create_server_inv_tsx(&mut invite).respond_failure(response).await;
            return false;
        }
    };
    let mut acceptor = InviteAcceptor::new(dialog, invite);
    for code in [StatusCode::TRYING, StatusCode::RINGING] {
        let Ok(response) = acceptor.create_response(code, None).await else { return false };
        if acceptor.respond_provisional(response).await.is_err() {
            return false;
        }
    }
    let bind_ip: IpAddr =
        if local_ip.is_ipv4() { [0, 0, 0, 0].into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() };
    let Ok(socket) = UdpSocket::bind((bind_ip, 0)).await else {
        if let Ok(response) = acceptor.create_response(StatusCode::SERVICE_UNAVAILABLE, None).await {
            let _ = acceptor.respond_failure(response).await;
        }
        return false;
    };
    let Ok(rtp_port) = socket.local_addr().map(|a| a.port()) else { return false };
    let media_local = SocketAddr::new(local_ip, rtp_port);
    let session_id = random_u64() >> 2;
    let Ok(mut response) = acceptor.create_response(StatusCode::OK, None).await else { return false };
    response.msg.headers.insert_named(&ContentType(BytesStr::from_static("application/sdp")));
    response.msg.body = sdp::answer(&negotiated, media_local, session_id, 1).into();
    let session = tokio::select! {
        result = acceptor.respond_success(response) => match result {
            Ok((session, _ack)) => session,
            Err(e) => {
                tracing::info!(error = %e, call_id = %info.call_id, "call not established (CANCEL or no ACK)");
                return false;
            }
        },
        () = shared.cancel.cancelled() => return false,
    };
    shared.counters.calls_answered.fetch_add(1, Ordering::Relaxed);

    // Channels of the call; see `call` for their policies.
    let (events_tx, events_rx) = mpsc::channel(64 + RESERVED_EVENTS);
    let (clips_tx, clips_rx) = mpsc::channel(8);
    let (commands_tx, commands_rx) = mpsc::channel(8);
    let (media_control_tx, media_control_rx) = mpsc::channel(8);
    let generation = Arc::new(AtomicU64::new(0));
    let counters = Arc::new(MediaCounters::default());
    let call_cancel = shared.cancel.child_token();
    let media_cancel = call_cancel.child_token();
    let seed = random_u64();
    let media = MediaTask {
        socket,
        remote: negotiated.remote,
        codec: negotiated.codec,
        event_payload_type: negotiated.event_payload_type,
        jitter: JitterConfig { depth: shared.config.jitter_depth, ..JitterConfig::default() },
        events: events_tx.clone(),
        clips: clips_rx,
        control: media_control_rx,
        generation: generation.clone(),
        counters: counters.clone(),
        seeds: (seed as u32, (seed >> 32) as u16, (seed >> 16) as u32),
    };
    let media = shared.tracker.spawn(media.run(media_cancel.clone()));
    let call = IncomingCall {
        info: info.clone(),
        events: events_rx,
        audio: BotAudio { clips: clips_tx, generation, next_id: Arc::new(AtomicU64::new(1)) },
        control: CallControl { commands: commands_tx, counters },
    };
    let leg = CallLeg {
        session,
        commands: commands_rx,
        events: events_tx,
        media_control: media_control_tx,
        media,
        media_cancel,
        transfer: shared.config.transfer.clone(),
        local_uri,
        media_local,
        sdp_session: (session_id, 1),
        permit,
        advertised: shared.config.advertised_address,
        jitter: JitterConfig { depth: shared.config.jitter_depth, ..JitterConfig::default() },
        tracker: shared.tracker.clone(),
        agent: None,
    };
    if shared.incoming.try_send(call).is_err() {
        tracing::warn!(call_id = %info.call_id, "no conversation takes calls (queue full or closed): hanging up");
        call_cancel.cancel();
    }
    leg.run(call_cancel).await;
    true
}
