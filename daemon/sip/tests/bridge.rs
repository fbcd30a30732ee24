//! Dialling the agent queue, against a scripted caller (UAC) and a scripted
//! agent desk (UAS), both on loopback with real RTP.
//!
//! Bridged transfer: the ticket headers on the agent INVITE, audio and DTMF
//! relayed both ways (checked by decoding and measuring tones), BYE from either
//! side ending both legs, busy and unanswered agents leaving the caller with the
//! bot, and the fallback from a refused REFER.
//!
//! A kiosk's agent call ([`voicebot_sip::AgentCall`]): the same ticket headers,
//! the kiosk's voice to the desk and the desk's voice and keys to the kiosk, BYE
//! from either side, shutdown, busy and unreachable queues, and nothing left
//! running afterwards.

mod common;

use std::time::Duration;

use common::agent::AgentUas;
use common::{Uac, loopback_config, response_to, start};
use voicebot_core::config::{SipConfig, TransferMode};
use voicebot_rtp::{DtmfDigit, G711, RtpPacket, TelephoneEvent};
use voicebot_sip::{
    AgentCall, CallEvent, EndReason, Handover, IncomingCall, TransferError, Transferred, UserAgent,
    VoiceError,
};

const WAIT: Duration = Duration::from_secs(5);
const TICKET: &str = "01JD8X6W7K9V4E2R3T5Y6U7I8O";

fn tone(freq: f32, len: usize, amp: f32) -> Vec<i16> {
    (0..len).map(|n| (amp * (2.0 * std::f32::consts::PI * freq * n as f32 / 8000.0).sin()) as i16).collect()
}

/// Power of `freq` in `samples` (Goertzel), normalised by length.
fn power_at(samples: &[i16], freq: f64) -> f64 {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len() as f64
}

/// Whether a frame is a clear `freq` tone (10× the power of `other`).
fn is_tone(frame: &[i16], freq: f64, other: f64) -> bool {
    power_at(frame, freq) > 1.0e8 && power_at(frame, freq) > 10.0 * power_at(frame, other)
}

/// Audio packets whose decoded frame is a clear `freq` tone.
fn frames_with_tone(packets: &[RtpPacket], codec: G711, freq: f64, other: f64) -> usize {
    packets
        .iter()
        .filter(|p| p.payload_type == codec.payload_type())
        .filter(|p| is_tone(&codec.decode(&p.payload), freq, other))
        .count()
}

/// Digits of the telephone-event packets (PT 101) that ended.
fn ended_digits(packets: &[RtpPacket]) -> Vec<DtmfDigit> {
    let mut digits: Vec<DtmfDigit> = packets
        .iter()
        .filter(|p| p.payload_type == 101)
        .filter_map(|p| TelephoneEvent::parse(&p.payload).ok())
        .filter(|e| e.end)
        .map(|e| e.digit)
        .collect();
    digits.dedup();
    digits
}

fn handover() -> Handover {
    Handover {
        ticket_id: TICKET.into(),
        intent: "refund".into(),
        emotion: "angry".into(),
        escalation_reason: "caller asked for an agent".into(),
        priority: "high".into(),
        skill_group: Some("billing".into()),
    }
}

fn bridge_config(agent: &AgentUas, mode: TransferMode) -> SipConfig {
    let mut config = loopback_config();
    config.transfer.mode = mode;
    // The skill group's queue is the desk; the default queue goes nowhere.
    config.transfer.queues.insert("billing".into(), agent.uri());
    config
}

async fn next_call(calls: &mut tokio::sync::mpsc::Receiver<IncomingCall>) -> IncomingCall {
    tokio::time::timeout(WAIT, calls.recv()).await.expect("a call within 5 s").expect("agent running")
}

/// Events until the channel closes (caller audio left out).
async fn drain(call: &mut IncomingCall) -> Vec<CallEvent> {
    let mut events = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(WAIT, call.events.recv()).await {
        if !matches!(event, CallEvent::CallerAudio(_)) {
            events.push(event);
        }
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

/// The INVITE goes to the skill group's queue with the ticket headers and our offer.
fn assert_ticket_invite(desk: &AgentUas, invite: &common::Message) {
    assert!(invite.0.starts_with(&format!("INVITE {} SIP/2.0", desk.uri())), "{}", invite.0);
    let uui = invite.header("User-to-User").expect("User-to-User on the INVITE");
    assert_eq!(voicebot_sip::handover::ticket_id_from_user_to_user(&uui).as_deref(), Some(TICKET));
    assert!(uui.ends_with(";encoding=hex;purpose=voicebot-ticket") && uui.len() < 128, "{uui}");
    assert_eq!(invite.header("X-Ticket-Id").as_deref(), Some(TICKET));
    assert_eq!(invite.header("X-Intent").as_deref(), Some("refund"));
    assert_eq!(invite.header("X-Emotion").as_deref(), Some("angry"));
    assert_eq!(invite.header("X-Escalation-Reason").as_deref(), Some("caller asked for an agent"));
    assert_eq!(invite.header("X-Priority").as_deref(), Some("high"));
    let offer = invite.body();
    for line in ["a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000"] {
        assert!(offer.contains(line), "{line} missing from the offer:\n{offer}");
    }
}

type Transfer = tokio::task::JoinHandle<Result<Transferred, TransferError>>;

fn transfer(call: &IncomingCall) -> Transfer {
    let control = call.control.clone();
    tokio::spawn(async move { control.transfer(handover()).await })
}

async fn result(attempt: Transfer) -> Result<Transferred, TransferError> {
    tokio::time::timeout(WAIT, attempt).await.expect("transfer result in 5 s").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_carries_ticket_audio_and_dtmf_both_ways_and_the_agents_bye_ends_both_legs() {
    // The agent answers PCMA while the caller speaks PCMU: the bridge transcodes.
    let mut desk = AgentUas::new(G711::Pcma).await;
    let (ua, mut calls, _cancel) = start(bridge_config(&desk, TransferMode::Bridge)).await;
    let mut uac = Uac::new(ua.udp_addr().unwrap(), "bridge-1").await;
    uac.invite().await;
    let mut call = next_call(&mut calls).await;

    let attempt = transfer(&call);
    let invite = desk.expect("INVITE", WAIT).await;
    assert_ticket_invite(&desk, &invite);
    desk.answer(&invite).await;
    assert_eq!(result(attempt).await, Ok(Transferred { agent_status: 200, bridged: true }));

    // Caller says 440 Hz and presses 5; the agent says 1 kHz and presses 7.
    let caller_hears = uac.collect_rtp(Duration::from_millis(1800));
    let agent_hears = desk.collect_rtp(Duration::from_millis(1800));
    let caller_talks = async {
        uac.talk(&tone(440.0, 160, 6000.0), 50, 1).await;
        for (i, (duration, end)) in
            [(160, false), (320, false), (480, true), (480, true), (480, true)].iter().enumerate()
        {
            let event = TelephoneEvent { digit: DtmfDigit::Five, end: *end, volume: 10, duration: *duration };
            uac.press(event, 60_000, 100 + i as u16).await;
        }
    };
    let agent_talks = async {
        desk.talk(&tone(1000.0, 160, 6000.0), 50).await;
        for (i, (duration, end)) in
            [(160, false), (320, false), (480, true), (480, true), (480, true)].iter().enumerate()
        {
            let event =
                TelephoneEvent { digit: DtmfDigit::Seven, end: *end, volume: 10, duration: *duration };
            desk.press(event, 90_000, 600 + i as u16).await;
        }
    };
    let (caller_heard, agent_heard, (), ()) =
        tokio::join!(caller_hears, agent_hears, caller_talks, agent_talks);

    let at_agent = frames_with_tone(&agent_heard, G711::Pcma, 440.0, 1000.0);
    assert!(at_agent >= 40, "{at_agent} of 50 caller frames reached the agent as 440 Hz PCMA");
    let at_caller = frames_with_tone(&caller_heard, G711::Pcmu, 1000.0, 440.0);
    assert!(at_caller >= 40, "{at_caller} of 50 agent frames reached the caller as 1 kHz PCMU");
    assert_eq!(ended_digits(&agent_heard), vec![DtmfDigit::Five], "caller's key relayed to the agent");
    assert_eq!(ended_digits(&caller_heard), vec![DtmfDigit::Seven], "agent's key relayed to the caller");

    // The agent hangs up: the caller gets BYE and the call ends.
    assert_eq!(desk.bye(&invite).await, Some(200));
    let bye = uac.expect("BYE", WAIT).await;
    uac.send(&response_to(&bye, 200, "OK")).await;
    let events = drain(&mut call).await;
    assert!(events.contains(&CallEvent::Dtmf(DtmfDigit::Five)), "the conversation still hears keys");
    assert_eq!(events.last(), Some(&CallEvent::Ended(EndReason::AgentHungUp)));
    until_idle(&ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_bye_hangs_up_the_agent() {
    let mut desk = AgentUas::new(G711::Pcmu).await;
    let (ua, mut calls, _cancel) = start(bridge_config(&desk, TransferMode::Bridge)).await;
    let mut uac = Uac::new(ua.udp_addr().unwrap(), "bridge-2").await;
    uac.invite().await;
    let mut call = next_call(&mut calls).await;
    let attempt = transfer(&call);
    let invite = desk.expect("INVITE", WAIT).await;
    desk.answer(&invite).await;
    assert!(result(attempt).await.is_ok_and(|t| t.bridged));

    assert_eq!(uac.bye().await.and_then(|m| m.status()), Some(200));
    let bye = desk.expect("BYE", WAIT).await;
    assert_eq!(bye.header("Call-ID"), invite.header("Call-ID"), "BYE is in the agent's dialog");
    desk.send(&desk.response(&bye, 200, "OK", "", "")).await;
    assert_eq!(drain(&mut call).await.last(), Some(&CallEvent::Ended(EndReason::CallerHungUp)));
    until_idle(&ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_agent_is_a_typed_error_and_the_caller_stays_with_the_bot() {
    let mut desk = AgentUas::new(G711::Pcmu).await;
    let (ua, mut calls, _cancel) = start(bridge_config(&desk, TransferMode::Bridge)).await;
    let mut uac = Uac::new(ua.udp_addr().unwrap(), "bridge-busy").await;
    uac.invite().await;
    let mut call = next_call(&mut calls).await;
    let attempt = transfer(&call);
    let invite = desk.expect("INVITE", WAIT).await;
    desk.send(&desk.response(&invite, 486, "Busy Here", "", "")).await;
    assert_eq!(result(attempt).await, Err(TransferError::AgentBusy(486)));

    // Still connected: the bot's speech reaches the caller.
    call.audio.play(tone(1000.0, 4000, 8000.0)).await.unwrap();
    let heard = uac.collect_rtp(Duration::from_millis(700)).await;
    let loud = frames_with_tone(&heard, G711::Pcmu, 1000.0, 440.0);
    assert!(loud >= 20, "{loud} frames of bot speech after the failed transfer");
    call.control.hang_up().await;
    let bye = uac.expect("BYE", WAIT).await;
    uac.send(&response_to(&bye, 200, "OK")).await;
    assert_eq!(drain(&mut call).await.last(), Some(&CallEvent::Ended(EndReason::HungUp)));
    until_idle(&ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_agent_times_out_with_cancel() {
    let mut desk = AgentUas::new(G711::Pcmu).await;
    let mut config = bridge_config(&desk, TransferMode::Bridge);
    config.transfer.timeout = Duration::from_secs(1);
    let (ua, mut calls, _cancel) = start(config).await;
    let mut uac = Uac::new(ua.udp_addr().unwrap(), "bridge-timeout").await;
    uac.invite().await;
    let call = next_call(&mut calls).await;
    let attempt = transfer(&call);
    let invite = desk.expect("INVITE", WAIT).await;
    desk.send(&desk.response(&invite, 180, "Ringing", "", "")).await;
    let cancel = desk.expect("CANCEL", WAIT).await;
    assert_eq!(cancel.header("Call-ID"), invite.header("Call-ID"));
    desk.send(&desk.response(&cancel, 200, "OK", "", "")).await;
    desk.send(&desk.response(&invite, 487, "Request Terminated", "", "")).await;
    assert_eq!(result(attempt).await, Err(TransferError::Timeout(Duration::from_secs(1))));
    assert_eq!(uac.bye().await.and_then(|m| m.status()), Some(200), "the caller leg was still up");
    until_idle(&ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refer_falls_back_to_a_bridge_and_hang_up_ends_both_legs() {
    let mut desk = AgentUas::new(G711::Pcmu).await;
    let (ua, mut calls, _cancel) = start(bridge_config(&desk, TransferMode::Refer)).await;
    let mut uac = Uac::new(ua.udp_addr().unwrap(), "refer-refused").await;
    uac.invite().await;
    let mut call = next_call(&mut calls).await;
    let attempt = transfer(&call);
    let refer = uac.expect("REFER", WAIT).await;
    uac.send(&response_to(&refer, 501, "Not Implemented")).await;

    let invite = desk.expect("INVITE", WAIT).await;
    assert_eq!(invite.header("X-Ticket-Id").as_deref(), Some(TICKET));
    desk.answer(&invite).await;
    assert_eq!(result(attempt).await, Ok(Transferred { agent_status: 200, bridged: true }));

    call.control.hang_up().await;
    let (caller_bye, agent_bye) = tokio::join!(uac.expect("BYE", WAIT), desk.expect("BYE", WAIT));
    uac.send(&response_to(&caller_bye, 200, "OK")).await;
    desk.send(&desk.response(&agent_bye, 200, "OK", "", "")).await;
    assert_eq!(drain(&mut call).await.last(), Some(&CallEvent::Ended(EndReason::HungUp)));
    until_idle(&ua).await;
}

// A kiosk's agent call.

type AgentCallAttempt = tokio::task::JoinHandle<Result<AgentCall, TransferError>>;

fn call_agent(ua: &UserAgent) -> AgentCallAttempt {
    let dialer = ua.agent_dialer();
    tokio::spawn(async move { dialer.call_agent(handover()).await })
}

async fn agent_call(attempt: AgentCallAttempt) -> Result<AgentCall, TransferError> {
    tokio::time::timeout(WAIT, attempt).await.expect("agent call result in 5 s").unwrap()
}

/// An answered agent call from a fresh user agent whose billing queue is `desk`.
async fn answered_agent_call(desk: &mut AgentUas) -> (UserAgent, AgentCall, common::Message) {
    let (ua, _calls, cancel) = start(bridge_config(desk, TransferMode::Refer)).await;
    drop(cancel);
    let attempt = call_agent(&ua);
    let invite = desk.expect("INVITE", WAIT).await;
    desk.answer(&invite).await;
    let call = agent_call(attempt).await.expect("the desk answered");
    (ua, call, invite)
}

/// Agent-call events until the channel closes (audio left out).
async fn agent_events(call: &mut AgentCall) -> Vec<CallEvent> {
    let mut events = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(WAIT, call.events.recv()).await {
        if !matches!(event, CallEvent::CallerAudio(_)) {
            events.push(event);
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_agent_call_carries_the_ticket_and_voice_both_ways_and_the_agents_bye_ends_it() {
    let mut desk = AgentUas::new(G711::Pcma).await;
    let (ua, _calls, _cancel) = start(bridge_config(&desk, TransferMode::Refer)).await;
    let attempt = call_agent(&ua);
    let invite = desk.expect("INVITE", WAIT).await;
    assert_ticket_invite(&desk, &invite);
    assert_eq!(ua.active_calls(), 1, "an agent call being dialled is active");
    desk.answer(&invite).await;
    let mut call = agent_call(attempt).await.expect("the desk answered");
    assert_eq!(call.info.ticket_id, TICKET);
    assert_eq!(call.info.queue, desk.uri(), "the billing skill group's queue");
    assert_eq!((call.info.agent_status, call.info.codec), (200, G711::Pcma));
    assert_eq!(Some(call.info.call_id.clone()), invite.header("Call-ID"));

    // The kiosk says 440 Hz; the agent says 1 kHz and presses 7.
    let voice = call.voice.clone();
    let kiosk_talks = async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..50 {
            tick.tick().await;
            let _ = voice.try_send(tone(440.0, 160, 6000.0));
        }
    };
    let agent_hears = desk.collect_rtp(Duration::from_millis(1800));
    let agent_talks = async {
        desk.talk(&tone(1000.0, 160, 6000.0), 50).await;
        for (i, (duration, end)) in [(160, false), (320, false), (480, true), (480, true)].iter().enumerate()
        {
            let event =
                TelephoneEvent { digit: DtmfDigit::Seven, end: *end, volume: 10, duration: *duration };
            desk.press(event, 90_000, 600 + i as u16).await;
        }
    };
    let events = &mut call.events;
    let kiosk_hears = async {
        let (mut heard, mut digits) = (Vec::new(), Vec::new());
        let end = tokio::time::Instant::now() + Duration::from_millis(1800);
        while let Ok(Some(event)) = tokio::time::timeout_at(end, events.recv()).await {
            match event {
                CallEvent::CallerAudio(frame) => heard.push(frame),
                CallEvent::Dtmf(digit) => digits.push(digit),
                other => panic!("unexpected {other:?}"),
            }
        }
        (heard, digits)
    };
    let (agent_heard, (kiosk_heard, digits), (), ()) =
        tokio::join!(agent_hears, kiosk_hears, kiosk_talks, agent_talks);

    let at_agent = frames_with_tone(&agent_heard, G711::Pcma, 440.0, 1000.0);
    assert!(at_agent >= 40, "{at_agent} of 50 kiosk frames reached the agent as 440 Hz PCMA");
    assert!(kiosk_heard.iter().all(|f| f.len() == 160), "20 ms frames");
    let at_kiosk = kiosk_heard.iter().filter(|f| is_tone(f, 1000.0, 440.0)).count();
    assert!(at_kiosk >= 40, "{at_kiosk} of 50 agent frames reached the kiosk as 1 kHz");
    assert_eq!(digits, vec![DtmfDigit::Seven], "the agent's key reaches the kiosk once");
    let stats = call.control.media_stats();
    assert!(stats.packets_received >= 50 && stats.packets_sent >= 50, "{stats:?}");
    assert_eq!(stats.bridge_frames_dropped, 0, "{stats:?}");

    assert_eq!(desk.bye(&invite).await, Some(200));
    assert_eq!(agent_events(&mut call).await, vec![CallEvent::Ended(EndReason::AgentHungUp)]);
    assert_eq!(call.voice.try_send(vec![0; 160]), Err(VoiceError::CallGone));
    until_idle(&ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_a_kiosk_agent_call_sends_bye_to_the_agent() {
    let mut desk = AgentUas::new(G711::Pcmu).await;
    let (ua, mut call, invite) = answered_agent_call(&mut desk).await;
    call.control.hang_up();
    let bye = desk.expect("BYE", WAIT).await;
    assert_eq!(bye.header("Call-ID"), invite.header("Call-ID"), "BYE is in the agent's dialog");
    desk.send(&desk.response(&bye, 200, "OK", "", "")).await;
    assert_eq!(agent_events(&mut call).await, vec![CallEvent::Ended(EndReason::HungUp)]);
    until_idle(&ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_kiosk_agent_calls_events_hangs_up() {
    let mut desk = AgentUas::new(G711::Pcmu).await;
    let (ua, call, _invite) = answered_agent_call(&mut desk).await;
    drop(call.events);
    let bye = desk.expect("BYE", WAIT).await;
    desk.send(&desk.response(&bye, 200, "OK", "", "")).await;
    until_idle(&ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_the_user_agent_hangs_up_a_kiosk_agent_call() {
    let mut desk = AgentUas::new(G711::Pcmu).await;
    let (ua, mut call, _invite) = answered_agent_call(&mut desk).await;
    let dialer = ua.agent_dialer();
    let agent_side = async {
        let bye = desk.expect("BYE", WAIT).await;
        desk.send(&desk.response(&bye, 200, "OK", "", "")).await;
    };
    let (done, ()) = tokio::join!(ua.shutdown(WAIT), agent_side);
    assert!(done, "the agent call's tasks ended within the deadline");
    assert_eq!(agent_events(&mut call).await, vec![CallEvent::Ended(EndReason::Shutdown)]);
    assert_eq!(dialer.call_agent(handover()).await.err(), Some(TransferError::ShuttingDown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_agent_refuses_a_kiosk_agent_call_with_a_typed_error() {
    let mut desk = AgentUas::new(G711::Pcmu).await;
    let (ua, _calls, _cancel) = start(bridge_config(&desk, TransferMode::Refer)).await;
    let attempt = call_agent(&ua);
    let invite = desk.expect("INVITE", WAIT).await;
    assert_eq!(invite.header("X-Ticket-Id").as_deref(), Some(TICKET));
    desk.send(&desk.response(&invite, 486, "Busy Here", "", "")).await;
    assert_eq!(agent_call(attempt).await.err(), Some(TransferError::AgentBusy(486)));
    until_idle(&ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_agent_queue_fails_a_kiosk_agent_call_within_the_timeout() {
    // A queue where nothing listens.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config = loopback_config();
    config.transfer.queues.insert("billing".into(), format!("sip:agents@{closed}"));
    config.transfer.timeout = Duration::from_secs(1);
    let (ua, _calls, _cancel) = start(config).await;
    let started = tokio::time::Instant::now();
    let result = ua.call_agent(handover()).await;
    let took = started.elapsed();
    assert_eq!(result.err(), Some(TransferError::Timeout(Duration::from_secs(1))));
    assert!(took < Duration::from_millis(1500), "failed after {took:?}");
    until_idle(&ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_on_a_ringing_kiosk_agent_call_cancels_the_invite() {
    let mut desk = AgentUas::new(G711::Pcmu).await;
    let (ua, _calls, _cancel) = start(bridge_config(&desk, TransferMode::Refer)).await;
    let attempt = call_agent(&ua);
    let invite = desk.expect("INVITE", WAIT).await;
    desk.send(&desk.response(&invite, 180, "Ringing", "", "")).await;
    // The requester stops waiting: the future is dropped mid-dial.
    tokio::time::sleep(Duration::from_millis(100)).await;
    attempt.abort();
    let cancel = desk.expect("CANCEL", WAIT).await;
    assert_eq!(cancel.header("Call-ID"), invite.header("Call-ID"));
    desk.send(&desk.response(&cancel, 200, "OK", "", "")).await;
    desk.send(&desk.response(&invite, 487, "Request Terminated", "", "")).await;
    until_idle(&ua).await;
}
