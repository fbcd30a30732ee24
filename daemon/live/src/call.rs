//! One phone call: the SIP call's events in, the conversation's actions out.
//!
//! The task owns the call's [`Call`] state machine and its caller-audio ring;
//! everything slow runs on the call's worker threads. Bot speech goes to the
//! SIP media task in sentence-sized clips; a pause (barge-in) flushes them and
//! keeps the cut clips, so a backchannel resumes the sentence that was cut.
//! Every log line of the call carries its call id and ticket id.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};
use voicebot_conversation::{CallerAudio, FrameVad, Mouth, Understanding};
use voicebot_core::{Language, LanguageChoice};
use voicebot_dialog::call::{
    Action, Call, CallSetup, Channel, Input, LineKind, PromptId, Timing, TransferRequest, TransferResult,
    TurnReport,
};
use voicebot_dialog::escalation::EscalationPolicy;
use voicebot_dialog::outcome::Outcome;
use voicebot_dialog::ticket::CallContext;
use voicebot_engines::hearing::Ear;
use voicebot_rtp::dtmf::DtmfDigit;
use voicebot_rtp::playout::ClipId;
use voicebot_rtp::telephone_band::Upsampler;
use voicebot_sip::{CallEvent, EndReason, Handover, IncomingCall, MediaStats};
use voicebot_understanding::pii;

use crate::PhoneDeps;
use crate::workers::{MouthJob, Spoken, Workers};

/// How a call went, for metrics and call events.
#[derive(Debug, Clone)]
pub struct CallSummary {
    pub call_id: String,
    pub outcome: Outcome,
    pub ticket_id: Option<String>,
    /// Intents of the caller's turns, in order.
    pub intents: Vec<String>,
    pub duration: Duration,
    /// Caller frames dropped because the VAD fell behind.
    pub dropped_frames: u64,
    /// The caller's turns as the dialog reported them (masked text).
    pub turns: Vec<TurnReport>,
    /// Voice-to-voice: the end of the caller's speech to the first reply audio
    /// handed to the line (within one 20 ms packet of going out), per reply.
    pub reply_latencies: Vec<Duration>,
    /// Recognition (with understanding) and synthesis real-time factors.
    pub asr_rtf: Vec<f32>,
    pub tts_rtf: Vec<f32>,
    /// The call's RTP counters at its end.
    pub media: MediaStats,
}

/// The prompt on the line.
#[derive(Debug)]
struct OnAir {
    id: PromptId,
    level_db: f32,
    /// Clips sent and not yet finished, in order, with their audio (for a resume).
    outstanding: Vec<(ClipId, Vec<i16>)>,
    /// Chunks that arrived while paused, or clips cut by the pause.
    held: Vec<Vec<i16>>,
    all_chunks: bool,
    paused: bool,
}

fn digit(d: DtmfDigit) -> Option<char> {
    match d.code() {
        c @ 0..=9 => char::from_digit(u32::from(c), 10),
        10 => Some('*'),
        11 => Some('#'),
        _ => None,
    }
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Runs the conversation for one answered call until it ends.
///
/// # Cancel safety
/// `cancel` closes the call politely (a closing prompt, then hang-up) rather
/// than dropping it; the future itself should be run to completion.
pub async fn serve_call(call: IncomingCall, deps: Arc<PhoneDeps>, cancel: CancellationToken) {
    let ticket_id = ulid::Ulid::new().to_string();
    let span = info_span!("call", call_id = %call.info.call_id, ticket_id = %ticket_id);
    async move {
        let summary = match run(call, &deps, cancel, ticket_id).await {
            Ok(summary) => summary,
            Err(summary) => summary,
        };
        info!(
            outcome = summary.outcome.code(),
            reason = summary.outcome.reason().map(|r| r.code()),
            turns = summary.intents.len(),
            "call ended"
        );
        (deps.on_call_end)(&summary);
    }
    .instrument(span)
    .await;
}

async fn run(
    mut sip: IncomingCall,
    deps: &PhoneDeps,
    cancel: CancellationToken,
    ticket_id: String,
) -> Result<CallSummary, CallSummary> {
    let started = Instant::now();
    let mut summary = CallSummary {
        call_id: sip.info.call_id.clone(),
        outcome: Outcome::Error,
        ticket_id: None,
        intents: Vec::new(),
        duration: Duration::ZERO,
        dropped_frames: 0,
        turns: Vec::new(),
        reply_latencies: Vec::new(),
        asr_rtf: Vec::new(),
        tts_rtf: Vec::new(),
        media: MediaStats::default(),
    };
    let language = deps.config.asr.language.clone();
    let mut workers = match start_workers(deps, &sip.info.call_id, language.clone()).await {
        Ok(workers) => workers,
        Err(e) => {
            error!(error = %e, "cannot start the call's engines; hanging up");
            sip.control.hang_up().await;
            return Err(summary);
        }
    };
    let dialog = &deps.config.dialog;
    let setup = CallSetup {
        channel: Channel::Phone,
        line: if dialog.elder_lines.contains(&sip.info.dialled) {
            LineKind::Elder
        } else {
            LineKind::Standard
        },
        vip: !sip.info.caller.is_empty() && dialog.vip_callers.contains(&sip.info.caller),
        language: match language {
            LanguageChoice::Fixed(Language::Zh) => Language::Zh,
            _ => Language::En,
        },
        timing: Timing::from_config(dialog),
        policy: EscalationPolicy::from_config(dialog),
        speaking_rate: deps.config.tts.rate,
        elder_rate: deps.config.tts.elder_rate,
        context: CallContext {
            channel: "phone".into(),
            line: (!sip.info.dialled.is_empty()).then(|| sip.info.dialled.clone()),
            caller_id_masked: (!sip.info.caller.is_empty()).then(|| pii::mask_phone(&sip.info.caller)),
            started_at_ms: now_ms(),
        },
        ticket_id: ticket_id.clone(),
        callback_ticket_id: ulid::Ulid::new().to_string(),
    };
    let analyzer = (deps.analyzer)();
    let mut call = Call::new(setup, Arc::clone(analyzer.pack()), Instant::now());
    drop(analyzer);
    let mut ring = CallerAudio::new(Duration::from_secs(40));
    let mut upsampler = Upsampler::new();
    let mut on_air: Option<OnAir> = None;
    let mut clips: HashMap<ClipId, PromptId> = HashMap::new();
    let (transfer_tx, mut transfer_rx) = mpsc::channel::<(TransferResult, bool)>(1);
    let mut bridged = false;
    let mut shutting_down = false;
    let mut sip_ended = false;
    // When the caller last stopped speaking, until the reply's first audio.
    let mut caller_stopped: Option<Instant> = None;
    loop {
        // Carry out what the call decided.
        while let Some(action) = call.poll_action() {
            match action {
                Action::StartListening | Action::StopListening => {}
                Action::Speak(prompt) => {
                    if on_air.take().is_some() {
                        sip.audio.stop();
                    }
                    on_air = Some(OnAir {
                        id: prompt.id,
                        level_db: -20.0,
                        outstanding: Vec::new(),
                        held: Vec::new(),
                        all_chunks: false,
                        paused: false,
                    });
                    if workers.mouth.send(MouthJob::Speak(prompt)).await.is_err() {
                        error!("the speech thread is gone");
                    }
                }
                Action::Prepare(prompt) => {
                    let _ = workers.mouth.try_send(MouthJob::Prepare(prompt));
                }
                Action::PausePlayback => {
                    if let Some(air) = on_air.as_mut() {
                        air.paused = true;
                        sip.audio.stop();
                    }
                }
                Action::ResumePlayback => {
                    if let Some(air) = on_air.as_mut() {
                        air.paused = false;
                        for samples in std::mem::take(&mut air.held) {
                            if let Ok(clip) = sip.audio.play(samples.clone()).await {
                                clips.insert(clip, air.id);
                                air.outstanding.push((clip, samples));
                            }
                        }
                    }
                }
                Action::StopSpeaking => {
                    if on_air.take().is_some() {
                        sip.audio.stop();
                    }
                }
                Action::Understand(request) => {
                    caller_stopped = Some(request.end);
                    let pcm = ring.cut(
                        request.start.checked_sub(Duration::from_millis(250)).unwrap_or(request.start),
                        request.end + Duration::from_millis(150),
                    );
                    let _ = workers.ear.send((request.id, pcm)).await;
                }
                Action::PublishTicket(ticket) => {
                    summary.ticket_id = Some(ticket.id.clone());
                    if let Err(e) = deps.tickets.hand_over(&ticket).await {
                        error!(error = %e, "the ticket could not be stored; the transfer still carries its id");
                    }
                }
                Action::Transfer(request) => {
                    let control = sip.control.clone();
                    let tx = transfer_tx.clone();
                    let tickets = Arc::clone(&deps.tickets);
                    tokio::spawn(async move {
                        // The ticket goes out before the transfer that carries its id.
                        if !tickets.wait_published(&request.ticket_id).await {
                            warn!(
                                "the ticket has not reached the broker yet; transferring anyway (it stays in the outbox and at /tickets/{{id}})"
                            );
                        }
                        let result = control.transfer(handover(&request)).await;
                        let outcome = match result {
                            Ok(t) => (TransferResult::Connected, t.bridged),
                            Err(e) => {
                                warn!(error = %e, "transfer failed; the caller is told and offered a call-back");
                                (TransferResult::Failed, false)
                            }
                        };
                        let _ = tx.send(outcome).await;
                    });
                }
                Action::HangUp => {
                    if !bridged && !sip_ended {
                        sip.control.hang_up().await;
                    }
                }
                Action::Turn(report) => {
                    info!(turn = report.turn, intent = %report.intent, confidence = report.confidence, emotion = report.emotion.label.as_str(), valence = report.emotion.valence, reason = report.reason.map(|r| r.code()), keypad = report.keypad, "turn");
                    summary.intents.push(report.intent.clone());
                    summary.turns.push(*report);
                }
                Action::Ended(outcome) => summary.outcome = outcome,
            }
        }
        if sip_ended || (call.is_ended() && !bridged) {
            break;
        }
        let timeout = call.poll_timeout();
        let now = Instant::now();
        tokio::select! {
            () = cancel.cancelled(), if !shutting_down => {
                shutting_down = true;
                call.handle(Input::Shutdown, now);
            }
            event = sip.events.recv() => match event {
                Some(CallEvent::CallerAudio(samples)) => {
                    let mut pcm = Vec::with_capacity(samples.len() * 2);
                    upsampler.process(&samples, &mut pcm);
                    ring.push(&pcm, now);
                    if !bridged {
                        workers.hear_frame(pcm, now);
                    }
                }
                Some(CallEvent::Dtmf(d)) => {
                    if let Some(key) = digit(d) {
                        call.handle(Input::Dtmf(key), now);
                    }
                }
                Some(CallEvent::PlaybackFinished(clip)) => {
                    if let (Some(prompt), Some(air)) = (clips.remove(&clip), on_air.as_mut())
                        && air.id == prompt
                    {
                        air.outstanding.retain(|(c, _)| *c != clip);
                        if air.all_chunks && air.outstanding.is_empty() && !air.paused {
                            on_air = None;
                            call.handle(Input::PlaybackFinished(prompt), now);
                        }
                    }
                }
                Some(CallEvent::PlaybackStopped(stopped)) => {
                    if let Some(air) = on_air.as_mut().filter(|a| a.paused) {
                        // Keep the cut clips, in order, to resume after a backchannel.
                        let mut cut: Vec<Vec<i16>> = air.outstanding.iter().filter(|(c, _)| stopped.contains(c)).map(|(_, s)| s.clone()).collect();
                        air.outstanding.retain(|(c, _)| !stopped.contains(c));
                        cut.append(&mut air.held);
                        air.held = cut;
                    }
                    for clip in stopped {
                        clips.remove(&clip);
                    }
                }
                Some(CallEvent::Ended(reason)) => {
                    sip_ended = true;
                    if matches!(reason, EndReason::CallerHungUp | EndReason::AgentHungUp | EndReason::Failed(_)) {
                        call.handle(Input::HungUp, now);
                    } else if reason == EndReason::Transferred {
                        call.handle(Input::Transfer(TransferResult::Connected), now);
                    }
                }
                None => sip_ended = true,
            },
            Some((mut frame, at)) = workers.voice.recv() => {
                frame.playout_db = on_air.as_ref().filter(|a| !a.paused && !a.outstanding.is_empty()).map(|a| a.level_db);
                call.handle(Input::Voice(frame), at);
            }
            Some(input) = workers.heard.recv() => call.handle(input, now),
            Some(part) = workers.spoken.recv() => match part {
                Spoken::Chunk { prompt, samples, last, level_db } => {
                    if let Some(air) = on_air.as_mut().filter(|a| a.id == prompt) {
                        air.level_db = level_db;
                        air.all_chunks = last;
                        if air.paused {
                            air.held.push(samples);
                        } else if let Ok(clip) = sip.audio.play(samples.clone()).await {
                            if let Some(stopped) = caller_stopped.take() {
                                summary.reply_latencies.push(stopped.elapsed());
                            }
                            clips.insert(clip, prompt);
                            air.outstanding.push((clip, samples));
                        }
                    }
                }
                Spoken::Failed { prompt, error } => {
                    error!(error = %error, "speech synthesis failed; the prompt is skipped");
                    if on_air.as_ref().is_some_and(|a| a.id == prompt) {
                        on_air = None;
                        call.handle(Input::PlaybackFinished(prompt), now);
                    }
                }
            },
            Some((result, was_bridged)) = transfer_rx.recv() => {
                bridged = was_bridged;
                call.handle(Input::Transfer(result), now);
            }
            () = sleep_until(timeout), if timeout.is_some() => call.handle_timeout(Instant::now()),
        }
    }
    summary.dropped_frames = workers.dropped_frames.load(Ordering::Relaxed);
    summary.media = sip.control.media_stats();
    (summary.asr_rtf, summary.tts_rtf) = workers.real_time_factors();
    summary.duration = started.elapsed();
    Ok(summary)
}

/// Loads the call's per-call engine state off the reactor and starts its threads.
async fn start_workers(deps: &PhoneDeps, call_id: &str, language: LanguageChoice) -> Result<Workers, String> {
    let engines = deps.engines.clone();
    let segmenter = deps.config.vad.segmenter();
    let threshold = deps.config.vad.threshold;
    let analyzer = (deps.analyzer)();
    let call_id = call_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut ear = Ear::new(&engines, segmenter).map_err(|e| e.to_string())?;
        ear.prepare(&language).map_err(|e| e.to_string())?;
        let vad_model = engines.vad.as_deref().ok_or("the VAD is not loaded")?;
        let vad = FrameVad::new(vad_model, threshold).map_err(|e| e.to_string())?;
        let tts = engines.tts.clone().ok_or("the TTS is not loaded")?;
        let understanding = Understanding::new(analyzer, Some(ear), language);
        Ok(Workers::start(&call_id, vad, understanding, Mouth::new(tts)))
    })
    .await
    .map_err(|e| format!("engine start-up panicked: {e}"))?
}

/// The SIP side of a hand-over: only the ticket's key and routing travel.
fn handover(request: &TransferRequest) -> Handover {
    Handover {
        ticket_id: request.ticket_id.clone(),
        intent: request.intent.clone(),
        emotion: request.emotion.clone(),
        escalation_reason: request.reason.code().to_owned(),
        priority: request.priority.to_string(),
        skill_group: Some(request.skill_group.clone()),
    }
}

/// Sleeps until `deadline` (never returns for `None`; the branch is disabled then).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
