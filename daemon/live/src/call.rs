//! One conversation on a line: the line's events in, the dialog's actions out.
//!
//! The task owns the conversation's [`Call`] state machine and its caller-audio
//! ring; everything slow runs on its worker threads. Bot speech goes to the
//! line in sentence-sized clips; a pause (barge-in) stops them and keeps the
//! cut clips, so a backchannel resumes the sentence that was cut. The caller
//! puts the task in a span with the call id and ticket id, so every log line
//! of the conversation carries them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, warn};
use voicebot_conversation::{CallerAudio, FrameVad, Mouth, Understanding};
use voicebot_core::LanguageChoice;
use voicebot_dialog::call::{Action, Call, CallSetup, Input, PromptId, TransferResult, TurnReport};
use voicebot_dialog::outcome::Outcome;
use voicebot_engines::hearing::Ear;

use crate::workers::{MouthJob, Spoken, Workers};
use crate::{CALLER_AUDIO_KEPT, ClipKey, Handed, Line, LineEnd, LineEvent, LiveDeps};

/// How a conversation went, for metrics, call events and the daily report.
#[derive(Debug, Clone)]
pub struct ConversationSummary {
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
}

/// The prompt on the line.
#[derive(Debug)]
struct OnAir {
    id: PromptId,
    level_db: f32,
    /// Clips sent and not yet finished, in order, with their audio (for a resume).
    outstanding: Vec<(ClipKey, Vec<f32>)>,
    /// Chunks that arrived while paused, or clips cut by the pause.
    held: Vec<Vec<f32>>,
    all_chunks: bool,
    paused: bool,
}

/// Runs one conversation on `line` until it ends; the line stays the caller's
/// (to read its counters, to close it).
///
/// # Cancel safety
/// `cancel` closes the conversation politely (a closing prompt, then hang-up)
/// rather than dropping it; the future itself should be run to completion.
pub async fn run_conversation<L: Line>(
    line: &mut L,
    setup: CallSetup,
    deps: &LiveDeps,
    cancel: CancellationToken,
    thread_tag: &str,
) -> ConversationSummary {
    let started = Instant::now();
    let mut summary = ConversationSummary {
        outcome: Outcome::Error,
        ticket_id: None,
        intents: Vec::new(),
        duration: Duration::ZERO,
        dropped_frames: 0,
        turns: Vec::new(),
        reply_latencies: Vec::new(),
        asr_rtf: Vec::new(),
        tts_rtf: Vec::new(),
    };
    let mut workers = match start_workers(deps, thread_tag, deps.config.asr.language.clone()).await {
        Ok(workers) => workers,
        Err(e) => {
            error!(error = %e, "cannot start the conversation's engines; hanging up");
            line.hang_up().await;
            return summary;
        }
    };
    let analyzer = (deps.analyzer)();
    let mut call = Call::new(setup, Arc::clone(analyzer.pack()), Instant::now());
    drop(analyzer);
    drive(line, &mut call, &mut workers, deps, cancel, &mut summary).await;
    summary.dropped_frames = workers.dropped_frames.load(Ordering::Relaxed);
    (summary.asr_rtf, summary.tts_rtf) = workers.real_time_factors();
    summary.duration = started.elapsed();
    summary
}

async fn drive<L: Line>(
    line: &mut L,
    call: &mut Call,
    workers: &mut Workers,
    deps: &LiveDeps,
    cancel: CancellationToken,
    summary: &mut ConversationSummary,
) {
    let mut ring = CallerAudio::new(CALLER_AUDIO_KEPT);
    let mut on_air: Option<OnAir> = None;
    let mut clips: HashMap<ClipKey, PromptId> = HashMap::new();
    let (transfer_tx, mut transfer_rx) = mpsc::channel::<Result<Handed, String>>(1);
    let mut bridged = false;
    let mut shutting_down = false;
    let mut line_ended = false;
    // When the caller last stopped speaking, until the reply's first audio.
    let mut caller_stopped: Option<Instant> = None;
    loop {
        // Carry out what the call decided.
        while let Some(action) = call.poll_action() {
            match action {
                Action::StartListening | Action::StopListening => {}
                Action::Speak(prompt) => {
                    if on_air.take().is_some() {
                        line.stop();
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
                        line.stop();
                    }
                }
                Action::ResumePlayback => {
                    if let Some(air) = on_air.as_mut() {
                        air.paused = false;
                        for samples in std::mem::take(&mut air.held) {
                            if let Ok(clip) = line.play(&samples).await {
                                clips.insert(clip, air.id);
                                air.outstanding.push((clip, samples));
                            }
                        }
                    }
                }
                Action::StopSpeaking => {
                    if on_air.take().is_some() {
                        line.stop();
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
                    let tx = transfer_tx.clone();
                    let tickets = Arc::clone(&deps.tickets);
                    let handing = line.hand_over(&request);
                    let hand_over = async move {
                        // The ticket goes out before the transfer that carries its id.
                        if !tickets.wait_published(&request.ticket_id).await {
                            warn!(
                                "the ticket has not reached the broker yet; transferring anyway (it stays in the outbox and at /tickets/{{id}})"
                            );
                        }
                        let _ = tx.send(handing.await).await;
                    };
                    // In this conversation's span: its lines carry the call and ticket ids.
                    tokio::spawn(hand_over.instrument(tracing::Span::current()));
                }
                Action::HangUp => {
                    if !bridged && !line_ended {
                        line.hang_up().await;
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
        if line_ended || (call.is_ended() && !bridged) {
            return;
        }
        let timeout = call.poll_timeout();
        let now = Instant::now();
        tokio::select! {
            () = cancel.cancelled(), if !shutting_down => {
                shutting_down = true;
                call.handle(Input::Shutdown, now);
            }
            event = line.next_event() => match event {
                Some(LineEvent::Audio(pcm)) => {
                    ring.push(&pcm, now);
                    if !bridged {
                        workers.hear_frame(pcm, now);
                    }
                }
                Some(LineEvent::Key(key)) => call.handle(Input::Dtmf(key), now),
                Some(LineEvent::PersonRequested) => call.handle(Input::PersonRequested, now),
                Some(LineEvent::PlaybackFinished(clip)) => {
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
                Some(LineEvent::PlaybackStopped(stopped)) => {
                    if let Some(air) = on_air.as_mut().filter(|a| a.paused) {
                        // Keep the cut clips, in order, to resume after a backchannel.
                        let mut cut: Vec<Vec<f32>> = air.outstanding.iter().filter(|(c, _)| stopped.contains(c)).map(|(_, s)| s.clone()).collect();
                        air.outstanding.retain(|(c, _)| !stopped.contains(c));
                        cut.append(&mut air.held);
                        air.held = cut;
                    }
                    for clip in stopped {
                        clips.remove(&clip);
                    }
                }
                Some(LineEvent::Ended(end)) => {
                    line_ended = true;
                    match end {
                        LineEnd::Gone => call.handle(Input::HungUp, now),
                        LineEnd::Transferred => call.handle(Input::Transfer(TransferResult::Connected), now),
                        LineEnd::Closed => {}
                    }
                }
                None => line_ended = true,
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
                        } else if let Ok(clip) = line.play(&samples).await {
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
            Some(handed) = transfer_rx.recv() => {
                let result = match handed {
                    Ok(Handed::Bridged) => {
                        bridged = true;
                        TransferResult::Connected
                    }
                    Ok(Handed::Left) => TransferResult::Connected,
                    Err(e) => {
                        warn!(error = %e, "hand-over failed; the caller is told and offered a call-back");
                        TransferResult::Failed
                    }
                };
                call.handle(Input::Transfer(result), now);
            }
            () = sleep_until(timeout), if timeout.is_some() => call.handle_timeout(Instant::now()),
        }
    }
}

/// Loads the conversation's engine state off the reactor and starts its threads.
async fn start_workers(deps: &LiveDeps, tag: &str, language: LanguageChoice) -> Result<Workers, String> {
    let engines = deps.engines.clone();
    let segmenter = deps.config.vad.segmenter();
    let threshold = deps.config.vad.threshold;
    let analyzer = (deps.analyzer)();
    let tag = tag.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut ear = Ear::new(&engines, segmenter).map_err(|e| e.to_string())?;
        ear.prepare(&language).map_err(|e| e.to_string())?;
        let vad_model = engines.vad.as_deref().ok_or("the VAD is not loaded")?;
        let vad = FrameVad::new(vad_model, threshold).map_err(|e| e.to_string())?;
        let tts = engines.tts.clone().ok_or("the TTS is not loaded")?;
        let understanding = Understanding::new(analyzer, Some(ear), language);
        Ok(Workers::start(&tag, vad, understanding, Mouth::new(tts)))
    })
    .await
    .map_err(|e| format!("engine start-up panicked: {e}"))?
}

/// Sleeps until `deadline` (never returns for `None`; the branch is disabled then).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
