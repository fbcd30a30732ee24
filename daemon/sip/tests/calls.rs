//! Calls against the user agent from a scripted UAC on loopback (real UDP SIP and
//! RTP, real timers): answer, audio both ways, DTMF, BYE, admission, keep-alives,
//! bad input, transfer by REFER, and resources freed after many calls.

mod common;

use std::time::Duration;

use common::{Message, Uac, loopback_config, response_to, start};
use voicebot_rtp::{DtmfDigit, G711, TelephoneEvent};
use voicebot_sip::{CallEvent, EndReason, Handover, IncomingCall, TransferError, UserAgent};

const WAIT: Duration = Duration::from_secs(5);

fn tone(freq: f32, len: usize, amp: f32) -> Vec<i16> {
    (0..len).map(|n| (amp * (2.0 * std::f32::consts::PI * freq * n as f32 / 8000.0).sin()) as i16).collect()
}

fn energy(samples: &[i16]) -> f64 {
    samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64
}

async fn next_call(calls: &mut tokio::sync::mpsc::Receiver<IncomingCall>) -> IncomingCall {
    tokio::time::timeout(WAIT, calls.recv()).await.expect("a call within 5 s").expect("agent running")
}

/// Drains events until the channel closes; returns them.
async fn drain(call: &mut IncomingCall) -> Vec<CallEvent> {
    let mut events = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(WAIT, call.events.recv()).await {
        events.push(event);
    }
    events
}

async fn until_idle(agent: &UserAgent) {
    for _ in 0..250 {
        if agent.active_calls() == 0 && agent.running_tasks() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("call resources not freed: {} calls, {} tasks", agent.active_calls(), agent.running_tasks());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_answered_carries_audio_and_dtmf_both_ways_and_bye_frees_it() {
    let (agent, mut calls, _cancel) = start(loopback_config()).await;
    let mut uac = Uac::new(agent.udp_addr().unwrap(), "call-1").await;
    let responses = uac.invite().await;
    let codes: Vec<u16> = responses.iter().filter_map(Message::status).collect();
    assert!(codes.contains(&100) && codes.contains(&180), "provisionals: {codes:?}");
    assert_eq!(codes.last(), Some(&200), "{codes:?}");
    let answer = responses.last().unwrap();
    assert!(answer.body().contains("a=rtpmap:0 PCMU/8000") && answer.body().contains("telephone-event/8000"));

    let mut call = next_call(&mut calls).await;
    assert_eq!((call.info.caller.as_str(), call.info.dialled.as_str()), ("5550100", "support"));
    assert_eq!(call.info.codec, G711::Pcmu);

    // Bot speaks 1 s of 1 kHz while the caller speaks 1 s of 440 Hz and presses 5.
    let clip = call.audio.play(tone(1000.0, 8000, 8000.0)).await.unwrap();
    let listen = uac.collect_rtp(Duration::from_millis(1600));
    let talk = async {
        uac.talk(&tone(440.0, 160, 6000.0), 50, 1).await;
        for (i, (duration, end)) in
            [(160, false), (320, false), (480, true), (480, true), (480, true)].into_iter().enumerate()
        {
            let event = TelephoneEvent { digit: DtmfDigit::Five, end, volume: 10, duration };
            uac.press(event, 60_000, 100 + i as u16).await;
        }
    };
    let (received, ()) = tokio::join!(listen, talk);

    // What the UA sent: one packet per 20 ms, consecutive, one SSRC, our tone in it.
    assert!((70..=85).contains(&received.len()), "{} packets in 1.6 s", received.len());
    for pair in received.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
        assert_eq!(pair[1].ssrc, pair[0].ssrc);
        assert_eq!(pair[1].payload.len(), 160);
    }
    let loud = received.iter().filter(|p| energy(&G711::Pcmu.decode(&p.payload)) > 1.0e7).count();
    assert!((45..=51).contains(&loud), "{loud} packets carry the 1 s clip");

    uac.bye().await.filter(|m| m.status() == Some(200)).expect("200 to BYE");
    let events = drain(&mut call).await;
    let caller_frames: Vec<&Vec<i16>> = events
        .iter()
        .filter_map(|e| if let CallEvent::CallerAudio(f) = e { Some(f) } else { None })
        .collect();
    assert!(caller_frames.iter().all(|f| f.len() == 160));
    let voiced = caller_frames.iter().filter(|f| energy(f) > 5.0e6).count();
    assert!(voiced >= 45, "{voiced} of 50 caller frames arrived decoded");
    let digits: Vec<&CallEvent> = events.iter().filter(|e| matches!(e, CallEvent::Dtmf(_))).collect();
    assert_eq!(digits, vec![&CallEvent::Dtmf(DtmfDigit::Five)], "one press, one digit");
    assert!(events.contains(&CallEvent::PlaybackFinished(clip)));
    assert_eq!(events.last(), Some(&CallEvent::Ended(EndReason::CallerHungUp)));
    until_idle(&agent).await;
    assert_eq!(agent.stats().calls_answered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stops_queued_speech_within_a_tick() {
    let (agent, mut calls, _cancel) = start(loopback_config()).await;
    let mut uac = Uac::new(agent.udp_addr().unwrap(), "barge").await;
    uac.invite().await;
    let mut call = next_call(&mut calls).await;
    let long = call.audio.play(tone(1000.0, 8000 * 5, 8000.0)).await.unwrap();
    let before = uac.collect_rtp(Duration::from_millis(300)).await;
    call.audio.stop();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let after = uac.collect_rtp(Duration::from_millis(300)).await;
    let loud = |ps: &[voicebot_rtp::RtpPacket]| {
        ps.iter().filter(|p| energy(&G711::Pcmu.decode(&p.payload)) > 1.0e7).count()
    };
    assert!(loud(&before) >= 10, "speech was playing");
    assert_eq!(loud(&after), 0, "silence after stop");
    assert!(after.len() >= 12, "silence packets keep flowing: {}", after.len());
    call.control.hang_up().await;
    let events = drain(&mut call).await;
    assert!(
        events.contains(&CallEvent::PlaybackStopped(vec![long])),
        "{:?}",
        events.iter().filter(|e| !matches!(e, CallEvent::CallerAudio(_))).collect::<Vec<_>>()
    );
    assert_eq!(events.last(), Some(&CallEvent::Ended(EndReason::HungUp)));
    assert!(uac.recv(WAIT).await.is_some_and(|m| m.is_request("BYE")), "UA sent BYE");
    until_idle(&agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_is_486_and_strangers_get_403() {
    let mut config = loopback_config();
    config.max_calls = 1;
    let (agent, mut calls, _cancel) = start(config).await;
    let mut first = Uac::new(agent.udp_addr().unwrap(), "cap-1").await;
    assert_eq!(first.invite().await.last().and_then(Message::status), Some(200));
    let _call = next_call(&mut calls).await;
    let mut second = Uac::new(agent.udp_addr().unwrap(), "cap-2").await;
    assert_eq!(second.invite().await.last().and_then(Message::status), Some(486));
    assert_eq!(agent.stats().busy, 1);

    let mut config = loopback_config();
    config.allowed_peers = vec!["192.0.2.0/24".parse().unwrap()];
    let (strict, _calls, _cancel) = start(config).await;
    let mut stranger = Uac::new(strict.udp_addr().unwrap(), "stranger").await;
    assert_eq!(stranger.invite().await.last().and_then(Message::status), Some(403));
    let options = stranger.request("OPTIONS", 2, "", "");
    stranger.send(&options).await;
    assert_eq!(stranger.recv(WAIT).await.and_then(|m| m.status()), Some(403));
    assert_eq!(strict.stats().forbidden, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_are_answered_bad_requests_get_4xx_and_garbage_disturbs_nothing() {
    let (agent, _calls, _cancel) = start(loopback_config()).await;
    let uac = Uac::new(agent.udp_addr().unwrap(), "ka").await;
    let options = uac.request("OPTIONS", 1, "", "");
    uac.send(&options).await;
    let ok = uac.recv(WAIT).await.unwrap();
    assert_eq!(ok.status(), Some(200));
    assert!(ok.header("Allow").is_some_and(|a| a.contains("INVITE")), "{}", ok.0);

    let mismatch = uac.request("OPTIONS", 2, "", "").replace("CSeq: 2 OPTIONS", "CSeq: 2 INVITE");
    uac.send(&mismatch).await;
    assert_eq!(uac.recv(WAIT).await.and_then(|m| m.status()), Some(400));
    let unsupported = uac.request("OPTIONS", 3, "Require: teleportation\r\n", "");
    uac.send(&unsupported).await;
    let bad_ext = uac.recv(WAIT).await.unwrap();
    assert_eq!(
        (bad_ext.status(), bad_ext.header("Unsupported").as_deref()),
        (Some(420), Some("teleportation"))
    );
    let register = uac.request("REGISTER", 4, "", "");
    uac.send(&register).await;
    assert_eq!(uac.recv(WAIT).await.and_then(|m| m.status()), Some(405));

    // Lenient for ezk, malformed for RFC 3261 (two spaces): dropped and counted.
    let spaced = uac.request("OPTIONS", 5, "", "").replacen("OPTIONS sip:", "OPTIONS  sip:", 1);
    uac.send(&spaced).await;
    for garbage in [&b"\x00\xff garbage"[..], b"INVITE\r\n\r\n", &[0x80; 172]] {
        uac.sip.send_to(garbage, uac.target).await.unwrap();
    }
    assert!(uac.recv(Duration::from_millis(300)).await.is_none(), "no answer to garbage");
    let after = uac.request("OPTIONS", 6, "", "");
    uac.send(&after).await;
    assert_eq!(uac.recv(WAIT).await.and_then(|m| m.status()), Some(200), "still answering");
    let stats = agent.stats();
    // 400 and 420 by the message checker; the 405 is method policy, not a malformed message.
    assert_eq!((stats.rejected, stats.dropped), (2, 1), "{stats:?}");
}

/// The next SIP message on a TCP stream (head, then `Content-Length` bytes), or `None` after `wait`.
async fn read_tcp_message(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<Message> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = tokio::time::Instant::now() + wait;
    loop {
        // ezk sends CRLF keep-alives on idle connections: skip them.
        let text = String::from_utf8_lossy(&buf).trim_start_matches(['\r', '\n']).to_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len =
                Message(text.clone()).header("Content-Length").and_then(|l| l.parse().ok()).unwrap_or(0);
            if body.len() >= len {
                return Some(Message(format!("{head}\r\n\r\n{}", &body[..len])));
            }
        }
        match tokio::time::timeout_at(end, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// ezk-sip-core 0.9.2's TCP decoder (`transport/streaming/decode.rs`, `StreamingDecoder::decode`)
/// frames a message head on the whole buffer, then re-parses a copy cut at the head's
/// end and `expect`s it to be complete. A head ending in CR LF LF followed by more bytes
/// frames, but the cut copy lacks the bytes the line parser looks ahead at, so the
/// connection's receive task panics. Tokio confines the panic to that task: the daemon,
/// other TCP connections and UDP go on. (A `panic = "abort"` profile would turn this
/// into a remote crash; see the README.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_stream_that_panics_ezks_decoder_disturbs_no_other_peer() {
    use tokio::io::AsyncWriteExt;
    let (agent, _calls, _cancel) = start(loopback_config()).await;
    let tcp = agent.tcp_addr().unwrap();
    let options = |local: std::net::SocketAddr, branch: &str| {
        format!(
            "OPTIONS sip:bot@{tcp} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK{branch}\r\n\
             From: <sip:a@{local}>;tag=1\r\nTo: <sip:bot@{tcp}>\r\nCall-ID: tcp-{branch}\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };

    let mut bad = tokio::net::TcpStream::connect(tcp).await.unwrap();
    bad.write_all(b"OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\n\nX").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let local = bad.local_addr().unwrap();
    let _ = bad.write_all(options(local, "poisoned").as_bytes()).await;

    let mut good = tokio::net::TcpStream::connect(tcp).await.unwrap();
    let local = good.local_addr().unwrap();
    good.write_all(options(local, "fresh").as_bytes()).await.unwrap();
    let answer = read_tcp_message(&mut good, WAIT).await.expect("a fresh TCP connection is answered");
    assert_eq!(answer.status(), Some(200), "{}", answer.0);
    // Nothing more is answered on the poisoned connection (the panicking task's drop
    // guard removes it). If this fails, ezk has fixed its decoder: update this test.
    let poisoned = read_tcp_message(&mut bad, Duration::from_millis(300)).await;
    assert!(poisoned.is_none(), "ezk's TCP decoder no longer panics? got {poisoned:?}");

    let uac = Uac::new(agent.udp_addr().unwrap(), "after-tcp-panic").await;
    uac.send(&uac.request("OPTIONS", 1, "", "")).await;
    assert_eq!(uac.recv(WAIT).await.and_then(|m| m.status()), Some(200), "UDP still answered");
}

fn handover() -> Handover {
    Handover {
        ticket_id: "01JD8X6W7K9V4E2R3T5Y6U7I8O".into(),
        intent: "refund".into(),
        emotion: "angry".into(),
        escalation_reason: "caller asked for an agent".into(),
        priority: "high".into(),
        skill_group: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_carries_the_ticket_and_follows_notify_to_success_or_busy() {
    let (agent, mut calls, _cancel) = start(loopback_config()).await;
    let mut uac = Uac::new(agent.udp_addr().unwrap(), "xfer").await;
    uac.invite().await;
    let mut call = next_call(&mut calls).await;

    // First attempt: the agent queue is busy.
    let control = call.control.clone();
    let attempt = tokio::spawn(async move { control.transfer(handover()).await });
    let refer = loop {
        let m = uac.recv(WAIT).await.expect("REFER");
        if m.is_request("REFER") {
            break m;
        }
    };
    let refer_to = refer.header("Refer-To").unwrap();
    assert!(refer_to.starts_with("<sip:agents@127.0.0.1:5070?User-to-User="), "{refer_to}");
    let uui = refer_to
        .split("User-to-User=")
        .nth(1)
        .unwrap()
        .trim_end_matches('>')
        .replace("%3B", ";")
        .replace("%3D", "=");
    assert_eq!(
        voicebot_sip::handover::ticket_id_from_user_to_user(&uui).as_deref(),
        Some("01JD8X6W7K9V4E2R3T5Y6U7I8O")
    );
    assert!(uui.ends_with(";encoding=hex;purpose=voicebot-ticket") && uui.len() < 128, "{uui}");
    assert_eq!(refer.header("X-Ticket-Id").as_deref(), Some("01JD8X6W7K9V4E2R3T5Y6U7I8O"));
    assert_eq!(refer.header("X-Intent").as_deref(), Some("refund"));
    assert_eq!(refer.header("X-Emotion").as_deref(), Some("angry"));
    assert_eq!(refer.header("X-Escalation-Reason").as_deref(), Some("caller asked for an agent"));
    assert_eq!(refer.header("X-Priority").as_deref(), Some("high"));
    uac.send(&response_to(&refer, 202, "Accepted")).await;
    let notify = |uac: &Uac, cseq: u32, frag: &str| {
        uac.request("NOTIFY", cseq, "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag\r\n", frag)
    };
    uac.cseq += 1;
    uac.send(&notify(&uac, uac.cseq, "SIP/2.0 486 Busy Here\r\n")).await;
    let result = tokio::time::timeout(WAIT, attempt).await.unwrap().unwrap();
    assert_eq!(result, Err(TransferError::AgentBusy(486)));

    // Second attempt succeeds: the UA leaves the call with BYE.
    let control = call.control.clone();
    let attempt = tokio::spawn(async move { control.transfer(handover()).await });
    let mut refer = None;
    while refer.is_none() {
        let m = uac.recv(WAIT).await.expect("second REFER");
        if m.is_request("REFER") {
            refer = Some(m);
        } else if m.status().is_none() && !m.is_request("NOTIFY") {
            uac.send(&response_to(&m, 200, "OK")).await;
        }
    }
    uac.send(&response_to(refer.as_ref().unwrap(), 202, "Accepted")).await;
    uac.cseq += 1;
    uac.send(&notify(&uac, uac.cseq, "SIP/2.0 200 OK\r\n")).await;
    let result = tokio::time::timeout(WAIT, attempt).await.unwrap().unwrap();
    assert_eq!(result.map(|t| t.agent_status), Ok(200));
    let bye = loop {
        let m = uac.recv(WAIT).await.expect("BYE after transfer");
        if m.is_request("BYE") {
            break m;
        }
    };
    uac.send(&response_to(&bye, 200, "OK")).await;
    let events = drain(&mut call).await;
    assert_eq!(events.last(), Some(&CallEvent::Ended(EndReason::Transferred)));
    until_idle(&agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sequential_calls_free_their_tasks_sockets_and_memory() {
    let (agent, mut calls, _cancel) = start(loopback_config()).await;
    let rss_kib = || {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4
    };
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let mut one_call = async |n: usize| {
        let mut uac = Uac::new(agent.udp_addr().unwrap(), &format!("seq-{n}")).await;
        assert_eq!(uac.invite().await.last().and_then(Message::status), Some(200), "call {n}");
        let mut call = next_call(&mut calls).await;
        call.audio.play(tone(500.0, 1600, 4000.0)).await.unwrap();
        uac.talk(&tone(300.0, 160, 4000.0), 10, 1).await;
        assert_eq!(uac.bye().await.and_then(|m| m.status()), Some(200));
        assert_eq!(drain(&mut call).await.last(), Some(&CallEvent::Ended(EndReason::CallerHungUp)));
        until_idle(&agent).await;
    };
    for n in 0..5 {
        one_call(n).await;
    }
    let (rss_before, fds_before) = (rss_kib(), fds());
    for n in 5..45 {
        one_call(n).await;
    }
    let (rss_after, fds_after) = (rss_kib(), fds());
    assert_eq!(agent.stats().calls_answered, 45);
    assert_eq!((agent.active_calls(), agent.running_tasks()), (0, 0));
    assert!(fds_after <= fds_before, "file descriptors grew: {fds_before} -> {fds_after}");
    assert!(
        rss_after < rss_before + 2048,
        "RSS grew by {} KiB over 40 calls",
        rss_after.saturating_sub(rss_before)
    );
}
