//! Bridged transfer against a scripted caller (UAC) and a scripted agent desk
//! (UAS), both on loopback with real RTP: the ticket headers on the agent
//! INVITE, audio and DTMF relayed both ways (checked by decoding and measuring
//! tones), BYE from either side ending both legs, busy and unanswered agents
//! leaving the caller with the bot, and the fallback from a refused REFER.

mod common;

use std::time::Duration;

use common::agent::AgentUas;
use common::{Uac, loopback_config, response_to, start};
use voicebot_core::config::{SipConfig, TransferMode};
use voicebot_rtp::{DtmfDigit, G711, RtpPacket, TelephoneEvent};
use voicebot_sip::{CallEvent, EndReason, Handover, IncomingCall, TransferError, Transferred, UserAgent};

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

/// Audio packets whose decoded frame is a clear `freq` tone (10× the power of `other`).
fn frames_with_tone(packets: &[RtpPacket], codec: G711, freq: f64, other: f64) -> usize {
    packets
        .iter()
        .filter(|p| p.payload_type == codec.payload_type())
        .map(|p| codec.decode(&p.payload))
        .filter(|f| power_at(f, freq) > 1.0e8 && power_at(f, freq) > 10.0 * power_at(f, other))
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
