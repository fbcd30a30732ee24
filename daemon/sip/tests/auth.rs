//! Digest authentication of callers and registration to a registrar, on
//! loopback. The client side of each digest exchange is ezk-sip-auth's
//! `DigestAuthenticator` (a separate implementation), so these check our
//! verifier against a real client and our REGISTER driver against our verifier.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Message, Uac, loopback_config, start};
use ezk_sip_auth::{
    ClientAuthenticator, DigestAuthenticator, DigestCredentials, DigestUser, RequestParts, ResponseParts,
};
use ezk_sip_types::msg::{RequestLine, StatusLine};
use ezk_sip_types::{Headers, Method, Name, StatusCode};
use tokio::net::UdpSocket;
use voicebot_core::config::{CallerAuth, CallerSecret, RegistrarConfig};
use voicebot_sip::RegistrationState;
use voicebot_sip::digest::{Outcome, Secret, Verifier};

const WAIT: Duration = Duration::from_secs(5);

/// All values of a header (the helpers in `common` give the first only).
fn headers_named(message: &Message, name: &str) -> Vec<String> {
    message
        .0
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// What ezk's client answers to the challenges in `rejection` for `method uri`.
fn authorization(rejection: &Message, method: Method, uri: &str, user: &str, password: &str) -> String {
    let mut challenges = Headers::new();
    for value in headers_named(rejection, "WWW-Authenticate") {
        challenges.insert(Name::WWW_AUTHENTICATE, value);
    }
    let mut credentials = DigestCredentials::new();
    credentials.set_default(DigestUser::new(user, password));
    let mut client = DigestAuthenticator::new(credentials);
    let line = RequestLine { method, uri: uri.parse().unwrap() };
    let status = StatusLine { code: StatusCode::UNAUTHORIZED, reason: None };
    client
        .handle_rejection(
            RequestParts { line: &line, headers: &Headers::new(), body: &[] },
            ResponseParts { line: &status, headers: &challenges, body: &[] },
        )
        .unwrap();
    let mut out = Headers::new();
    client.authorize_request(&mut out);
    out.get_raw(&Name::AUTHORIZATION).next().unwrap().to_string()
}

/// Sends an INVITE with `extra` headers and returns the final response to that CSeq.
async fn invite(uac: &Uac, cseq: u32, extra: &str) -> Message {
    let text =
        uac.request("INVITE", cseq, &format!("Content-Type: application/sdp\r\n{extra}"), &uac.offer());
    uac.send(&text).await;
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let m = uac
            .recv(end.saturating_duration_since(tokio::time::Instant::now()))
            .await
            .expect("a final answer");
        if m.status().is_some_and(|s| s >= 200)
            && m.header("CSeq").as_deref() == Some(&format!("{cseq} INVITE"))
        {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_must_authenticate_and_bad_or_replayed_credentials_get_403() {
    let mut config = loopback_config();
    // Loopback is not in the allowlist here, so every test call is a stranger.
    config.allowed_peers = vec!["192.0.2.0/24".parse().unwrap()];
    config.caller_auth = Some(CallerAuth {
        realm: "voicebot".into(),
        users: BTreeMap::from([("pbx".to_owned(), CallerSecret::Password("s3cret".into()))]),
    });
    let (ua, mut calls, _cancel) = start(config).await;
    let target = ua.udp_addr().unwrap();
    let uri = format!("sip:support@{target}");

    let mut uac = Uac::new(target, "auth-ok").await;
    let challenge = invite(&uac, 1, "").await;
    assert_eq!(challenge.status(), Some(401), "{}", challenge.0);
    let offered = headers_named(&challenge, "WWW-Authenticate");
    assert!(
        offered.len() == 2
            && offered.iter().all(|c| c.contains("realm=\"voicebot\"") && c.contains("qop=\"auth\""))
    );
    let good = authorization(&challenge, Method::INVITE, &uri, "pbx", "s3cret");
    let answered = invite(&uac, 2, &format!("Authorization: {good}\r\n")).await;
    assert_eq!(answered.status(), Some(200), "{}", answered.0);
    let to = answered.header("To").unwrap();
    uac.to_tag = to.split(";tag=").nth(1).map(|t| t.split(';').next().unwrap().to_owned());
    uac.send(&uac.request("ACK", 2, "", "")).await;
    let call = tokio::time::timeout(WAIT, calls.recv()).await.unwrap().unwrap();
    assert_eq!(call.info.call_id, "auth-ok");

    // The same Authorization again (same nonce, same count) on a new call: replay.
    let replay = Uac::new(target, "auth-replay").await;
    assert_eq!(invite(&replay, 1, &format!("Authorization: {good}\r\n")).await.status(), Some(403));

    // A wrong password.
    let wrong = Uac::new(target, "auth-wrong").await;
    let challenge = invite(&wrong, 1, "").await;
    let bad = authorization(&challenge, Method::INVITE, &uri, "pbx", "guess");
    assert_eq!(invite(&wrong, 2, &format!("Authorization: {bad}\r\n")).await.status(), Some(403));
    let stats = ua.stats();
    assert_eq!((stats.challenged, stats.forbidden, stats.calls_answered), (2, 2, 1), "{stats:?}");
}

/// A scripted registrar: challenges with our verifier, then answers as told.
struct ScriptedRegistrar {
    socket: UdpSocket,
    verifier: Verifier,
}

impl ScriptedRegistrar {
    async fn next_register(&self, wait: Duration) -> (Message, std::net::SocketAddr) {
        let mut buf = vec![0u8; 65535];
        loop {
            let (len, from) = tokio::time::timeout(wait, self.socket.recv_from(&mut buf))
                .await
                .expect("a REGISTER in time")
                .unwrap();
            let m = Message(String::from_utf8_lossy(&buf[..len]).into_owned());
            if m.is_request("REGISTER") {
                return (m, from);
            }
        }
    }

    async fn answer(&self, request: &Message, to: std::net::SocketAddr, status: &str, extra: &[String]) {
        let h = |n: &str| request.header(n).unwrap_or_default();
        let extra: String = extra.iter().map(|e| format!("{e}\r\n")).collect();
        let text = format!(
            "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=reg\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
            h("Via"),
            h("From"),
            h("To"),
            h("Call-ID"),
            h("CSeq")
        );
        self.socket.send_to(text.as_bytes(), to).await.unwrap();
    }

    /// Challenges an unauthenticated REGISTER; returns whether `request` authenticated.
    async fn check(&mut self, request: &Message, from: std::net::SocketAddr) -> bool {
        let header = request.header("Authorization");
        match self.verifier.verify("REGISTER", header.as_deref(), std::time::Instant::now()) {
            Outcome::Authenticated { .. } => true,
            Outcome::Challenge { stale } => {
                let challenges = self.verifier.challenge(rand_bytes(), stale, std::time::Instant::now());
                let headers: Vec<String> =
                    challenges.iter().map(|c| format!("WWW-Authenticate: {c}")).collect();
                self.answer(request, from, "401 Unauthorized", &headers).await;
                false
            }
            Outcome::Forbidden(reason) => panic!("our REGISTER failed the registrar's check: {reason}"),
        }
    }
}

fn rand_bytes() -> [u8; 16] {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    nanos.to_le_bytes()
}

async fn wait_for(
    rx: &mut tokio::sync::watch::Receiver<RegistrationState>,
    what: fn(&RegistrationState) -> bool,
) {
    tokio::time::timeout(WAIT, rx.wait_for(what)).await.expect("registration state in time").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_answers_the_challenge_refreshes_retries_after_failure_and_never_blocks_calls() {
    let mut registrar = ScriptedRegistrar {
        socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        verifier: Verifier::new(
            "pbx",
            BTreeMap::from([("box7".to_owned(), Secret::Password("hunter2".into()))]),
        ),
    };
    let mut config = loopback_config();
    config.registrar = Some(RegistrarConfig {
        uri: format!("sip:{}", registrar.socket.local_addr().unwrap()),
        username: "box7".into(),
        password: "hunter2".into(),
        expiry: Duration::from_secs(600),
    });
    let (ua, mut calls, cancel) = start(config).await;
    let mut state = ua.registration();

    // First REGISTER: challenged; the second carries credentials and is granted 2 s.
    let (first, from) = registrar.next_register(WAIT).await;
    assert_eq!(first.header("Expires").as_deref(), Some("600"));
    let contact = first.header("Contact").unwrap();
    assert!(contact.contains(&format!("box7@127.0.0.1:{}", ua.udp_addr().unwrap().port())), "{contact}");
    assert!(!registrar.check(&first, from).await);
    let (second, from) = registrar.next_register(WAIT).await;
    assert!(registrar.check(&second, from).await, "ezk's digest client satisfies our verifier");
    registrar.answer(&second, from, "200 OK", &[format!("Contact: {contact};expires=2")]).await;
    wait_for(&mut state, |s| *s == RegistrationState::Registered { expires: Duration::from_secs(2) }).await;

    // Refreshed after about half of the 2 s; this time the registrar fails.
    let started = tokio::time::Instant::now();
    let (refresh, from) = registrar.next_register(Duration::from_secs(3)).await;
    assert!(started.elapsed() < Duration::from_millis(1800), "refresh came after {:?}", started.elapsed());
    assert!(registrar.check(&refresh, from).await, "the refresh reuses the nonce with a higher count");
    registrar.answer(&refresh, from, "503 Service Unavailable", &[]).await;
    wait_for(
        &mut state,
        |s| matches!(s, RegistrationState::Failed { retry_in, .. } if *retry_in == Duration::from_secs(1)),
    )
    .await;

    // Calls are answered while registration is failing.
    let mut uac = Uac::new(ua.udp_addr().unwrap(), "while-unregistered").await;
    assert_eq!(uac.invite().await.last().and_then(Message::status), Some(200));
    let _call = tokio::time::timeout(WAIT, calls.recv()).await.unwrap().unwrap();

    // The retry after the 1 s backoff starts afresh and succeeds.
    let (retry, from) = registrar.next_register(Duration::from_secs(3)).await;
    assert!(!registrar.check(&retry, from).await, "a fresh start carries no stale credentials");
    let (retry, from) = registrar.next_register(WAIT).await;
    assert!(registrar.check(&retry, from).await);
    registrar.answer(&retry, from, "200 OK", &["Expires: 300".into()]).await;
    wait_for(&mut state, |s| *s == RegistrationState::Registered { expires: Duration::from_secs(300) }).await;

    // Shutdown removes the binding.
    cancel.cancel();
    let (removal, from) = registrar.next_register(WAIT).await;
    assert_eq!(removal.header("Expires").as_deref(), Some("0"));
    if registrar.check(&removal, from).await {
        registrar.answer(&removal, from, "200 OK", &[]).await;
    }
    let bye = uac.expect("BYE", WAIT).await;
    uac.send(&common::response_to(&bye, 200, "OK")).await;
    assert!(ua.shutdown(WAIT).await, "all tasks ended");
}
