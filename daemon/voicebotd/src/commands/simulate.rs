//! `voicebotd simulate TURN.wav... [--json]`: one call through the real engines.
//!
//! Each turn is heard (VAD + Whisper), understood against the knowledge pack
//! (intent, slots, emotion from text and voice), answered from the pack
//! (asking for a missing slot) and spoken; the reply is written as a WAV.
//! Slots and the emotion trajectory carry across turns; the escalation
//! policy (`voicebot_dialog::escalation`) decides hand-overs and the call
//! ends with exactly one outcome. Running out of turns counts as the caller
//! hanging up. A hand-over produces a ticket (masked), printed with the outcome.

use std::path::{Path, PathBuf};

use serde::Serialize;
use ulid::Ulid;
use voicebot_audio::{Audio, ENGINE_RATE};
use voicebot_core::config::Config;
use voicebot_core::language::detect_text_language;
use voicebot_core::{Language, LanguageChoice};
use voicebot_dialog::escalation::{Escalation, EscalationPolicy, Priority, TurnFacts};
use voicebot_dialog::outcome::{CallEnd, OutcomeTracker};
use voicebot_dialog::ticket::{CallContext, CallerTurn, Routing, Ticket, TicketBuilder};
use voicebot_engines::loader::{self, EngineNeeds};
use voicebot_understanding::answer;
use voicebot_understanding::emotion::{self, CallBaseline, Emotion, Trajectory};
use voicebot_understanding::slots::Slot;

use crate::error::CliError;
use crate::nlu::load_analyzer;

pub(crate) struct Options {
    pub(crate) json: bool,
    /// Turns are typed utterances, not WAV files.
    pub(crate) text: bool,
    pub(crate) lang: Option<String>,
    pub(crate) reply_dir: Option<PathBuf>,
}

/// One line of `simulate --json` output (a contract).
#[derive(Debug, Serialize)]
struct TurnLine {
    turn: usize,
    transcript: String,
    language: String,
    intent: String,
    confidence: f32,
    emotion: Emotion,
    reply_text: String,
    reply_audio: String,
    escalated: bool,
    reason: Option<String>,
}

/// One caller turn as given on the command line.
enum TurnInput {
    Spoken(Audio),
    Typed(String),
}

/// Keeps the newest value of each slot kind.
fn remember(call_slots: &mut Vec<Slot>, new: &[Slot]) {
    for slot in new {
        call_slots.retain(|s| s.kind != slot.kind);
        call_slots.push(slot.clone());
    }
}

pub(crate) fn run(config: &Config, turns: &[PathBuf], options: &Options) -> Result<(), CliError> {
    let language = super::language_choice(options.lang.as_deref(), &config.asr.language)?;
    // Check every input before loading models: a bad file fails fast and by name.
    let inputs: Vec<TurnInput> = if options.text {
        turns.iter().map(|t| TurnInput::Typed(t.to_string_lossy().into_owned())).collect()
    } else {
        turns.iter().map(|t| voicebot_audio::read_wav(t).map(TurnInput::Spoken)).collect::<Result<_, _>>()?
    };
    let reply_dir = options.reply_dir.clone().unwrap_or_else(|| config.simulate.reply_dir.clone());
    std::fs::create_dir_all(&reply_dir).map_err(|e| {
        CliError::Failed(format!("cannot create reply directory {}: {e}", reply_dir.display()))
    })?;
    let mut needs = super::transcribe::needs_for(&language);
    if options.text {
        needs = EngineNeeds::default();
    }
    needs.tts = true;
    needs.embedder = true;
    let engines = loader::load(config, needs)?;
    let analyzer = load_analyzer(config, &engines)?;
    let tts = engines.tts.clone().ok_or_else(|| CliError::Failed("TTS engine not loaded".into()))?;
    let mut ear = match options.text {
        true => None,
        false => {
            let mut ear = turn::ear(&engines, config)?;
            ear.prepare(&language)?;
            Some(ear)
        }
    };

    let mut escalation = Escalation::new(EscalationPolicy::default(), Priority::Standard);
    let mut tickets = TicketBuilder::new(CallContext {
        channel: "simulate".into(),
        line: None,
        caller_id_masked: None,
        started_at_ms: now_ms(),
    });
    let mut ticket: Option<Ticket> = None;
    let mut outcome = OutcomeTracker::new();
    let mut call_slots: Vec<Slot> = Vec::new();
    let mut trajectory = Trajectory::new();
    let mut baseline = CallBaseline::new();
    for (index, input) in inputs.iter().enumerate() {
        let turn = index + 1;
        let (transcript, voice) = match (input, ear.as_mut()) {
            (TurnInput::Spoken(audio), Some(ear)) => {
                let pcm = audio.at_rate(ENGINE_RATE)?.samples;
                let transcript = ear.hear(&pcm, &language)?;
                let voice = emotion::analyze(&pcm, emotion::spoken_word_count(&transcript.text));
                (transcript.text, (transcript.language, Some(voice)))
            }
            (TurnInput::Typed(text), _) => {
                let typed_language = match &language {
                    LanguageChoice::Fixed(l) => l.clone(),
                    LanguageChoice::Auto => detect_text_language(text),
                };
                (text.clone(), (typed_language, None))
            }
            (TurnInput::Spoken(_), None) => return Err(CliError::Failed("ASR engine not loaded".into())),
        };
        let (heard_language, voice) = voice;
        let heard =
            analyzer.analyze(&transcript, &heard_language, voice.as_ref(), baseline.features().as_ref())?;
        if let Some(voice) = &voice {
            baseline.observe(voice);
        }
        trajectory.push(heard.emotion);
        remember(&mut call_slots, &heard.slots);

        let reply_language = if heard_language == Language::Zh { Language::Zh } else { Language::En };
        let reason = escalation.assess(&TurnFacts {
            intent: &heard.intent.intent,
            confidence: heard.intent.confidence,
            sensitive: heard.intent.sensitive,
            valence: heard.emotion.valence,
            worsening: trajectory.is_worsening(),
            pressed_zero: false,
            new_information: !heard.slots.is_empty(),
        });
        outcome.caller_said(&heard.intent.intent);
        let masked = heard.masked();
        tickets.caller(&CallerTurn {
            text: &masked.text,
            language: &masked.language,
            intent: &masked.intent,
            confidence: masked.confidence,
            valence: heard.emotion.valence,
            emotion_label: heard.emotion.label.as_str(),
            slots: &masked.slots,
        });
        let reply_text = match reason {
            Some(reason) => {
                outcome.escalated(reason);
                let promise =
                    answer::compose(analyzer.pack(), "human_agent", None, &call_slots, &reply_language).text;
                let intent = analyzer.pack().intent(&heard.intent.intent);
                let suggested = answer::compose(
                    analyzer.pack(),
                    &heard.intent.intent,
                    None,
                    &call_slots,
                    &reply_language,
                )
                .text;
                let routing = Routing {
                    reason,
                    intent: &heard.intent.intent,
                    skill_group: intent.map_or("general", |i| i.skill_group.as_str()),
                    priority: intent.map_or(0, |i| i.priority),
                    suggested_answer: (heard.intent.intent != "human_agent").then_some(suggested.as_str()),
                };
                tickets.bot(&promise, &heard.intent.intent, false);
                ticket = Some(tickets.build(Ulid::new().to_string(), now_ms(), &routing, &promise));
                promise
            }
            None => {
                let faq = heard.intent.faq.as_deref();
                let reply =
                    answer::compose(analyzer.pack(), &heard.intent.intent, faq, &call_slots, &reply_language);
                let answered = reply.asking_for.is_none() && heard.intent.intent != "out_of_scope";
                if answered {
                    outcome.answered();
                }
                tickets.bot(&reply.text, &heard.intent.intent, answered);
                reply.text
            }
        };
        let speech = tts.synthesize(&reply_text, &reply_language, config.tts.rate)?;
        let reply_path = reply_dir.join(format!("turn-{turn:02}.wav"));
        voicebot_audio::write_wav(&reply_path, &speech.samples, speech.sample_rate)?;
        let line = TurnLine {
            turn,
            transcript: masked.text,
            language: masked.language,
            intent: masked.intent,
            confidence: masked.confidence,
            emotion: heard.emotion,
            reply_text,
            reply_audio: reply_path.display().to_string(),
            escalated: reason.is_some(),
            reason: reason.map(|r| r.code().to_owned()),
        };
        print_line(&line, options.json, &turns[index])?;
        if line.escalated && turn < turns.len() {
            let skipped = match turns.len() - turn {
                1 => format!("turn {}", turn + 1),
                _ => format!("turns {}..{}", turn + 1, turns.len()),
            };
            eprintln!("voicebotd: {skipped} not played: the caller was handed to an agent at turn {turn}");
            break;
        }
    }
    let end = outcome.finish(CallEnd::CallerHungUp);
    let ticket =
        ticket.map(|t| serde_json::to_value(t).map_err(|e| CliError::Failed(e.to_string()))).transpose()?;
    print_outcome(
        &CallLine { outcome: end.code(), reason: end.reason().map(|r| r.code()), ticket },
        options.json,
    )
}

fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// The last line of `simulate --json` (a contract).
#[derive(Debug, Serialize)]
struct CallLine {
    outcome: &'static str,
    reason: Option<&'static str>,
    /// The hand-over ticket (masked); `null` when nobody was handed over.
    ticket: Option<serde_json::Value>,
}

fn print_outcome(line: &CallLine, json: bool) -> Result<(), CliError> {
    if json {
        println!("{}", serde_json::to_string(line).map_err(|e| CliError::Failed(e.to_string()))?);
    } else {
        match line.reason {
            Some(reason) => println!("call outcome: {} ({reason})", line.outcome),
            None => println!("call outcome: {}", line.outcome),
        }
    }
    Ok(())
}

use crate::turn;

fn print_line(line: &TurnLine, json: bool, source: &Path) -> Result<(), CliError> {
    if json {
        let text = serde_json::to_string(line).map_err(|e| CliError::Failed(e.to_string()))?;
        println!("{text}");
    } else {
        let handover = match &line.reason {
            Some(reason) => format!("  ⇒ hand-over to an agent ({reason})"),
            None => String::new(),
        };
        println!(
            "turn {} ({}): {:?} [{}] → {} ({:.2}, {} {:+}) → {:?} → {}{handover}",
            line.turn,
            source.display(),
            line.transcript,
            line.language,
            line.intent,
            line.confidence,
            line.emotion.label.as_str(),
            line.emotion.valence,
            line.reply_text,
            line.reply_audio,
        );
    }
    Ok(())
}
