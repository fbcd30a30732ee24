//! A whole call with a scripted caller: `simulate` and the latency benchmark.
//!
//! The caller waits for the bot to finish speaking, pauses, then says its next
//! turn (a WAV, or a typed line standing in for speech), and hangs up after
//! the bot's last reply. Every frame goes through the VAD and the call's
//! turn-taking exactly as on a live line; recognition runs on the stretch the
//! call asks for. [`Pace::Virtual`] runs as fast as the engines allow with a
//! virtual clock; [`Pace::RealTime`] feeds audio in real time and measures
//! end-of-speech → first-reply-audio latency per turn.
//!
//! A scripted caller has no agent side: a transfer is taken as connected.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voicebot_core::engine::SynthesizedAudio;
use voicebot_dialog::call::{
    Action, Call, CallSetup, Input, Prompt, PromptId, Purpose, TransferResult, TurnReport, UtteranceRequest,
    VoiceFrame,
};
use voicebot_dialog::outcome::Outcome;
use voicebot_dialog::ticket::Ticket;
use voicebot_understanding::pack::KnowledgePack;

use crate::{CallerAudio, ConversationError, FrameVad, Mouth, Understanding};

/// One scripted caller turn.
#[derive(Debug, Clone)]
pub enum CallerTurn {
    /// 16 kHz mono speech.
    Spoken(Vec<f32>),
    /// A typed line, standing in for speech (no recognition).
    Typed(String),
}

/// How time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// As fast as possible on a virtual clock; engine time is free.
    Virtual,
    /// Audio is fed in real time; engine time counts.
    RealTime,
}

#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub pace: Pace,
    /// Where reply WAVs go (`greeting.wav`, `turn-NN.wav`, `prompt-NN.wav`); none: not written.
    pub reply_dir: Option<PathBuf>,
    /// Silence between the bot finishing and the caller speaking.
    pub gap: Duration,
    /// Frame length for typed turns (no VAD).
    pub typed_frame: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            pace: Pace::Virtual,
            reply_dir: None,
            gap: Duration::from_millis(400),
            typed_frame: Duration::from_millis(32),
        }
    }
}

/// A caller turn and the bot's reply.
#[derive(Debug, Clone)]
pub struct TurnRecord {
    pub report: TurnReport,
    pub reply_audio: Option<PathBuf>,
    /// End of the caller's turn audio to the first reply audio ([`Pace::RealTime`] only).
    pub latency: Option<Duration>,
}

/// How the call went.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub turns: Vec<TurnRecord>,
    pub outcome: Outcome,
    pub ticket: Option<Ticket>,
    /// Turns the caller never got to say (the call ended first).
    pub unplayed: usize,
}

/// Where the scripted caller is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CallerState {
    /// Waiting for the bot to be quiet since this time.
    Waiting(Option<Instant>),
    Speaking {
        turn: usize,
        at: usize,
    },
    /// Done speaking turn `turn`; waiting for the bot to react.
    Listening {
        turn: usize,
    },
}

#[derive(Debug)]
struct Playing {
    id: PromptId,
    ends_at: Instant,
    paused_left: Option<Duration>,
}

/// The engines one call needs.
pub struct CallEngines {
    pub understanding: Understanding,
    pub vad: Option<FrameVad>,
    pub mouth: Mouth,
}

struct Driver<'e> {
    engines: &'e mut CallEngines,
    options: &'e SessionOptions,
    turns: &'e [CallerTurn],
    audio: CallerAudio,
    playing: Option<Playing>,
    caller: CallerState,
    /// The turn whose words answer the next recognition request.
    last_turn: Option<usize>,
    speech_end: Option<Instant>,
    pending_report: Option<TurnReport>,
    records: Vec<TurnRecord>,
    ticket: Option<Ticket>,
    outcome: Option<Outcome>,
    prompts_written: usize,
}

/// Runs one call; `on_turn` sees each turn as soon as its reply has started.
///
/// # Errors
/// Engine failures (recognition, understanding, speech), an unwritable reply directory.
pub fn run_call(
    engines: &mut CallEngines,
    setup: CallSetup,
    pack: Arc<KnowledgePack>,
    turns: &[CallerTurn],
    options: &SessionOptions,
    mut on_turn: impl FnMut(&TurnRecord),
) -> Result<CallRecord, ConversationError> {
    let frame = match &engines.vad {
        Some(vad) => vad.frame_duration(),
        None => options.typed_frame,
    };
    let samples_per_frame = (frame.as_secs_f64() * 16_000.0).round() as usize;
    let max_silence =
        setup.timing.no_input * (setup.timing.max_no_input_reprompts + 2) + Duration::from_secs(60);
    let t0 = Instant::now();
    let mut call = Call::new(setup, pack, t0);
    let mut driver = Driver {
        engines,
        options,
        turns,
        audio: CallerAudio::new(Duration::from_secs(40)),
        playing: None,
        caller: CallerState::Waiting(None),
        last_turn: None,
        speech_end: None,
        pending_report: None,
        records: Vec::new(),
        ticket: None,
        outcome: None,
        prompts_written: 0,
    };
    let mut reported = 0;
    let mut idle = Duration::ZERO;
    for n in 1u64.. {
        driver.drain(&mut call, t0 + frame * (n as u32).saturating_sub(1))?;
        while reported < driver.records.len() {
            on_turn(&driver.records[reported]);
            reported += 1;
        }
        if let Some(outcome) = driver.outcome {
            let unplayed = match driver.caller {
                CallerState::Speaking { turn, .. } | CallerState::Listening { turn } => {
                    turns.len() - turn - 1
                }
                CallerState::Waiting(_) => turns.len() - driver.last_turn.map_or(0, |t| t + 1),
            };
            return Ok(CallRecord { turns: driver.records, outcome, ticket: driver.ticket, unplayed });
        }
        let frame_end = t0 + frame * u32::try_from(n).unwrap_or(u32::MAX);
        let now = match options.pace {
            Pace::Virtual => frame_end,
            Pace::RealTime => {
                let wall = Instant::now();
                if wall < frame_end {
                    std::thread::sleep(frame_end - wall);
                }
                Instant::now()
            }
        };
        if let Some(p) = &driver.playing
            && p.paused_left.is_none()
            && now >= p.ends_at
        {
            let id = p.id;
            driver.playing = None;
            call.handle(Input::PlaybackFinished(id), now);
        }
        if call.poll_timeout().is_some_and(|t| t <= now) {
            call.handle_timeout(now);
        }
        let (pcm, speaking) = driver.caller_frame(samples_per_frame, now);
        driver.audio.push(&pcm, now);
        let frames: Vec<VoiceFrame> = match driver.engines.vad.as_mut() {
            Some(vad) => vad.push(&pcm, None)?,
            None => vec![VoiceFrame { duration: frame, speech: speaking, level_db: -20.0, playout_db: None }],
        };
        for voice in frames {
            call.handle(Input::Voice(voice), now);
        }
        idle = if driver.playing.is_some() || speaking { Duration::ZERO } else { idle + frame };
        if idle > max_silence {
            return Err(ConversationError::Setup(
                "the call stalled: no prompt and no timer for minutes".into(),
            ));
        }
    }
    unreachable!("the frame counter does not run out")
}

impl Driver<'_> {
    /// The caller's next frame of audio, and whether it is speech (for typed turns).
    fn caller_frame(&mut self, len: usize, now: Instant) -> (Vec<f32>, bool) {
        match self.caller {
            CallerState::Waiting(mut since) => {
                if self.playing.is_some() {
                    self.caller = CallerState::Waiting(None);
                } else {
                    let since = *since.get_or_insert(now);
                    self.caller = CallerState::Waiting(Some(since));
                    let next = self.last_turn.map_or(0, |t| t + 1);
                    if now.saturating_duration_since(since) >= self.options.gap && next < self.turns.len() {
                        self.caller = CallerState::Speaking { turn: next, at: 0 };
                        self.last_turn = Some(next);
                    }
                }
                (vec![0.0; len], false)
            }
            CallerState::Speaking { turn, at } => {
                let (pcm, done) = match &self.turns[turn] {
                    CallerTurn::Spoken(samples) => {
                        let end = (at + len).min(samples.len());
                        let mut pcm = samples[at..end].to_vec();
                        pcm.resize(len, 0.0);
                        (pcm, end >= samples.len())
                    }
                    CallerTurn::Typed(text) => {
                        // About 70 ms per character, 0.6-4 s: a typed line "lasts" like speech.
                        let total = (text.chars().count() * 1120).clamp(9_600, 64_000);
                        (vec![0.0; len], at + len >= total)
                    }
                };
                self.caller = if done {
                    CallerState::Listening { turn }
                } else {
                    CallerState::Speaking { turn, at: at + len }
                };
                if done {
                    // Turns are trimmed to their speech, so this is where the caller stopped speaking.
                    self.speech_end = Some(now);
                }
                let typed = matches!(self.turns[turn], CallerTurn::Typed(_));
                (pcm, typed)
            }
            CallerState::Listening { .. } => (vec![0.0; len], false),
        }
    }

    /// Carries out every action the call has queued.
    fn drain(&mut self, call: &mut Call, frame_start: Instant) -> Result<(), ConversationError> {
        while let Some(action) = call.poll_action() {
            let now = match self.options.pace {
                Pace::Virtual => frame_start,
                Pace::RealTime => Instant::now(),
            };
            match action {
                Action::StartListening | Action::StopListening | Action::HangUp => {}
                Action::Speak(prompt) => self.speak(&prompt, now)?,
                Action::Prepare(prompt) => self.engines.mouth.prepare(&prompt)?,
                Action::PausePlayback => {
                    if let Some(p) = self.playing.as_mut() {
                        p.paused_left = Some(p.ends_at.saturating_duration_since(now));
                    }
                }
                Action::ResumePlayback => {
                    if let Some(p) = self.playing.as_mut()
                        && let Some(left) = p.paused_left.take()
                    {
                        p.ends_at = now + left;
                    }
                }
                Action::StopSpeaking => self.playing = None,
                Action::Understand(request) => {
                    let input = self.understand(&request)?;
                    call.handle(input, now);
                }
                Action::PublishTicket(ticket) => self.ticket = Some(*ticket),
                Action::Transfer(_) => call.handle(Input::Transfer(TransferResult::Connected), now),
                Action::Turn(report) => self.pending_report = Some(*report),
                Action::Ended(outcome) => self.outcome = Some(outcome),
            }
        }
        // A caller who has said everything hangs up once the bot is quiet.
        if let CallerState::Waiting(Some(since)) = self.caller
            && self.outcome.is_none()
            && self.playing.is_none()
            && self.last_turn.map_or(self.turns.is_empty(), |t| t + 1 >= self.turns.len())
            && frame_start.saturating_duration_since(since) >= self.options.gap
        {
            call.handle(Input::HungUp, frame_start);
            return self.drain(call, frame_start);
        }
        Ok(())
    }

    fn understand(&mut self, request: &UtteranceRequest) -> Result<Input, ConversationError> {
        let Some(turn) = self.last_turn else {
            return Ok(Input::NotHeard { utterance: request.id });
        };
        let (analysis, asr_confidence) = match &self.turns[turn] {
            CallerTurn::Typed(text) => (self.engines.understanding.read(text)?, 1.0),
            CallerTurn::Spoken(_) => {
                // A little audio either side: the VAD decides late and early by a frame or two.
                let pcm = self.audio.cut(
                    request.start.checked_sub(Duration::from_millis(250)).unwrap_or(request.start),
                    request.end + Duration::from_millis(150),
                );
                self.engines.understanding.hear(&pcm)?
            }
        };
        Ok(Input::Heard { utterance: request.id, analysis: Box::new(analysis), asr_confidence })
    }

    fn speak(&mut self, prompt: &Prompt, now: Instant) -> Result<(), ConversationError> {
        let first = self.engines.mouth.start(prompt)?;
        let first_audio_at = match self.options.pace {
            Pace::Virtual => now,
            Pace::RealTime => Instant::now(),
        };
        let rest = self.engines.mouth.rest(prompt, first.audio.sample_rate)?;
        let mut samples = first.audio.samples;
        samples.extend(rest.samples);
        let audio = SynthesizedAudio { samples, sample_rate: first.audio.sample_rate };
        let ends_at = first_audio_at + Duration::from_secs_f64(audio.duration_seconds());
        self.playing = Some(Playing { id: prompt.id, ends_at, paused_left: None });
        if self.caller != CallerState::Waiting(None) && !matches!(self.caller, CallerState::Speaking { .. }) {
            self.caller = CallerState::Waiting(None);
        }

        let report = self.pending_report.take();
        let name = match (&report, prompt.purpose) {
            (Some(r), _) => format!("turn-{:02}.wav", r.turn),
            (None, Purpose::Greeting) => "greeting.wav".to_owned(),
            (None, _) => {
                self.prompts_written += 1;
                format!("prompt-{:02}.wav", self.prompts_written)
            }
        };
        let path = match &self.options.reply_dir {
            Some(dir) => {
                let path = dir.join(name);
                voicebot_audio::write_wav(&path, &audio.samples, audio.sample_rate)?;
                Some(path)
            }
            None => None,
        };
        if let Some(report) = report {
            let latency = match (self.options.pace, self.speech_end) {
                (Pace::RealTime, Some(end)) => Some(first_audio_at.saturating_duration_since(end)),
                _ => None,
            };
            self.records.push(TurnRecord { report, reply_audio: path, latency });
        }
        Ok(())
    }
}
