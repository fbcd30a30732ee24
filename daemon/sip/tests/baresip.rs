//! End to end with a real SIP peer: baresip (Debian `baresip-core`), headless,
//! driven over its `ctrl_tcp` JSON interface ([`common::baresip`]).
//!
//! - As a caller: it calls the user agent on loopback and plays a WAV through
//!   `aufile`; `sndfile` records what it heard from us.
//! - As the agent of a kiosk's [`voicebot_sip::AgentCall`]: it auto-answers our
//!   INVITE, plays a WAV to the kiosk, records the kiosk's voice, and hangs up or
//!   is hung up.
//!
//! Skips (passing, with a note on stderr) when `baresip` is not installed.

mod common;

use std::time::Duration;

use common::baresip::{Baresip, energy, read_wav, sine};
use common::{loopback_config, start};
use voicebot_rtp::DtmfDigit;
use voicebot_sip::{AgentCall, CallEvent, EndReason, Handover, UserAgent};

async fn until_idle(agent: &UserAgent) {
    for _ in 0..100 {
        if agent.active_calls() == 0 && agent.running_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((agent.active_calls(), agent.running_tasks()), (0, 0), "calls and tasks left");
}

/// Milliseconds of a recording that are loud (20 ms frames above `floor`).
fn loud_ms(samples: &[i16], floor: f64) -> usize {
    samples.chunks(160).filter(|c| energy(c) > floor).count() * 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_talks_presses_a_key_and_hangs_up() {
    let tone = sine(440.0, 4);
    let Some(baresip) = Baresip::start("caller", "<sip:5550123@127.0.0.1>;regint=0", &tone).await else {
        return;
    };
    let (agent, mut calls, _cancel) = start(loopback_config()).await;
    let target = format!("sip:support@{}", agent.udp_addr().unwrap());
    let reply = baresip.command("dial", &target);
    assert!(!reply.contains("\"ok\":false"), "dial: {reply}");

    let mut call =
        tokio::time::timeout(Duration::from_secs(10), calls.recv()).await.expect("baresip's call").unwrap();
    assert_eq!((call.info.caller.as_str(), call.info.dialled.as_str()), ("5550123", "support"));
    let clip = call.audio.play(tone[..8000].iter().map(|s| s / 2).collect()).await.unwrap();

    let mut voiced = 0;
    let mut digits = Vec::new();
    let mut finished = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), call.events.recv()).await {
            Ok(Some(CallEvent::CallerAudio(frame))) if energy(&frame) > 5.0e6 => voiced += 1,
            Ok(Some(CallEvent::PlaybackFinished(id))) if id == clip => finished = true,
            Ok(Some(CallEvent::Dtmf(d))) => digits.push(d),
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => panic!("call ended early"),
        }
    }
    assert!(voiced >= 50, "{voiced} voiced caller frames from baresip's aufile");
    assert!(finished, "bot clip played out");

    let reply = baresip.command("sndcode", "5");
    assert!(!reply.contains("\"ok\":false"), "sndcode: {reply}");
    let wait_digit = tokio::time::Instant::now() + Duration::from_secs(3);
    while digits.is_empty() && tokio::time::Instant::now() < wait_digit {
        if let Ok(Some(CallEvent::Dtmf(d))) =
            tokio::time::timeout(Duration::from_millis(200), call.events.recv()).await
        {
            digits.push(d);
        }
    }
    assert_eq!(digits, vec![DtmfDigit::Five]);

    baresip.command("hangup", "");
    let mut last = None;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), call.events.recv()).await {
        last = Some(event);
    }
    assert_eq!(last, Some(CallEvent::Ended(EndReason::CallerHungUp)));
    until_idle(&agent).await;

    // What baresip decoded from our RTP (sndfile writes *-dec.wav per call).
    let dir = baresip.dir.clone();
    let decoded = baresip.quit().await;
    let decoded = decoded.first().unwrap_or_else(|| panic!("no decoded recording in {}", dir.display()));
    let heard = loud_ms(&read_wav(decoded), 1.0e6);
    assert!(heard >= 800, "baresip heard {heard} ms of the bot's 1 s tone");
    Baresip::clean(&dir);
}

/// Events of an agent call for `wait`: (loud agent frames, all frames, other events).
async fn listen(call: &mut AgentCall, wait: Duration) -> (usize, usize, Vec<CallEvent>) {
    let (mut loud, mut frames, mut other) = (0, 0, Vec::new());
    let end = tokio::time::Instant::now() + wait;
    while let Ok(Some(event)) = tokio::time::timeout_at(end, call.events.recv()).await {
        match event {
            CallEvent::CallerAudio(frame) => {
                frames += 1;
                if energy(&frame) > 5.0e6 {
                    loud += 1;
                }
            }
            event => other.push(event),
        }
    }
    (loud, frames, other)
}

/// The rest of an agent call's events, once it is ending (audio left out).
async fn ending(call: &mut AgentCall) -> Vec<CallEvent> {
    let mut events = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), call.events.recv()).await {
        if !matches!(event, CallEvent::CallerAudio(_)) {
            events.push(event);
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_as_the_agent_answers_a_kiosk_call_talks_both_ways_and_either_side_hangs_up() {
    // The agent's desk plays 1 kHz; the kiosk's microphone says 440 Hz.
    let account = "<sip:agents@127.0.0.1>;answermode=auto;regint=0";
    let Some(baresip) = Baresip::start("agent", account, &sine(1000.0, 20)).await else { return };
    let mut config = loopback_config();
    config.transfer.queues.insert("billing".into(), format!("sip:agents@{}", baresip.sip));
    config.transfer.timeout = Duration::from_secs(10);
    let (ua, _calls, _cancel) = start(config).await;
    let handover = Handover {
        ticket_id: "01JD8X6W7K9V4E2R3T5Y6U7I8O".into(),
        intent: "card_lost".into(),
        emotion: "worried".into(),
        escalation_reason: "customer asked for a person".into(),
        priority: "high".into(),
        skill_group: Some("billing".into()),
    };

    // First call: audio both ways, then the agent hangs up.
    let mut call = ua.call_agent(handover.clone()).await.expect("baresip answers automatically");
    assert_eq!(
        (call.info.agent_status, call.info.queue.clone()),
        (200, format!("sip:agents@{}", baresip.sip))
    );
    let voice = call.voice.clone();
    let kiosk_talks = async move {
        let frame: Vec<i16> = sine(440.0, 1)[..160].to_vec();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..100 {
            tick.tick().await;
            let _ = voice.try_send(frame.clone());
        }
    };
    let ((loud, frames, other), ()) = tokio::join!(listen(&mut call, Duration::from_secs(2)), kiosk_talks);
    assert!(other.is_empty(), "{other:?}");
    assert!(frames >= 90, "{frames} agent frames in 2 s: one per 20 ms");
    assert!(loud >= 50, "{loud} loud agent frames from baresip's aufile");
    let stats = call.control.media_stats();
    assert!(stats.packets_received >= 50 && stats.packets_sent >= 90, "{stats:?}");
    let reply = baresip.command("hangup", "");
    assert!(!reply.contains("\"ok\":false"), "hangup: {reply}");
    assert_eq!(ending(&mut call).await, vec![CallEvent::Ended(EndReason::AgentHungUp)]);
    until_idle(&ua).await;

    // Second call: the kiosk hangs up; baresip no longer has a call.
    let mut call = ua.call_agent(handover).await.expect("baresip answers again");
    let (loud, ..) = listen(&mut call, Duration::from_millis(600)).await;
    assert!(loud >= 10, "{loud} loud agent frames on the second call");
    let calls = baresip.command("listcalls", "");
    assert!(calls.contains("Active calls (1)"), "baresip has the call: {calls}");
    call.control.hang_up();
    assert_eq!(ending(&mut call).await, vec![CallEvent::Ended(EndReason::HungUp)]);
    until_idle(&ua).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = baresip.command("listcalls", "");
    assert!(calls.contains("Active calls (0)"), "baresip still has a call after our BYE: {calls}");

    // What baresip decoded of the kiosk's voice on the first call.
    let dir = baresip.dir.clone();
    let decoded = baresip.quit().await;
    assert_eq!(decoded.len(), 2, "one recording per call: {decoded:?}");
    let heard = loud_ms(&read_wav(&decoded[0]), 1.0e6);
    assert!(heard >= 1500, "baresip heard {heard} ms of the kiosk's 2 s of voice");
    Baresip::clean(&dir);
}
