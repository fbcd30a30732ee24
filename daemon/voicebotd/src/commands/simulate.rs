//! `voicebotd simulate TURN.wav... [--json]`: one call through the real engines.
//!
//! Each turn is heard (VAD + Whisper), understood against the knowledge pack
//! (intent, slots, emotion from text and voice), answered from the pack
//! (asking for a missing slot) and spoken; the reply is written as a WAV.
//! Slots and the emotion trajectory carry across turns; the escalation
//! policy (`voicebot_dialog::escalation`) decides hand-overs and the call
//! ends with exactly one outcome. Running out of turns counts as the caller
//! hanging up. Tickets (`"ticket"`) are `null` until the conversation issue
//! builds them.

use std::path::{Path, PathBuf};

use serde::Serialize;
use voicebot_audio::{Audio, ENGINE_RATE};
use voicebot_core::Language;
use voicebot_core::config::Config;
use voicebot_dialog::escalation::{Escalation, EscalationPolicy, Priority, TurnFacts};
use voicebot_dialog::outcome::{CallEnd, OutcomeTracker};
use voicebot_engines::loader;
use voicebot_understanding::answer;
use voicebot_understanding::emotion::{self, CallBaseline, Emotion, Trajectory};
use voicebot_understanding::slots::Slot;

use crate::error::CliError;
use crate::nlu::load_analyzer;

pub(crate) struct Options {
    pub(crate) json: bool,
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
    let audios: Vec<Audio> = turns.iter().map(|t| voicebot_audio::read_wav(t)).collect::<Result<_, _>>()?;
    let reply_dir = options.reply_dir.clone().unwrap_or_else(|| config.simulate.reply_dir.clone());
    std::fs::create_dir_all(&reply_dir).map_err(|e| {
        CliError::Failed(format!("cannot create reply directory {}: {e}", reply_dir.display()))
    })?;
    let mut needs = super::transcribe::needs_for(&language);
    needs.tts = true;
    needs.embedder = true;
    let engines = loader::load(config, needs)?;
    let analyzer = load_analyzer(config, &engines)?;
    let tts = engines.tts.clone().ok_or_else(|| CliError::Failed("TTS engine not loaded".into()))?;
    let mut ear = turn::ear(&engines, config)?;
    ear.prepare(&language)?;

    let mut escalation = Escalation::new(EscalationPolicy::default(), Priority::Standard);
    let mut outcome = OutcomeTracker::new();
    let mut call_slots: Vec<Slot> = Vec::new();
    let mut trajectory = Trajectory::new();
    let mut baseline = CallBaseline::new();
    for (index, audio) in audios.iter().enumerate() {
        let turn = index + 1;
        let pcm = audio.at_rate(ENGINE_RATE)?.samples;
        let transcript = ear.hear(&pcm, &language)?;
        let voice = emotion::analyze(&pcm, emotion::spoken_word_count(&transcript.text));
        let heard = analyzer.analyze(
            &transcript.text,
            &transcript.language,
            Some(&voice),
            baseline.features().as_ref(),
        )?;
        baseline.observe(&voice);
        trajectory.push(heard.emotion);
        remember(&mut call_slots, &heard.slots);

        let reply_language = if transcript.language == Language::Zh { Language::Zh } else { Language::En };
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
        let reply_text = match reason {
            Some(reason) => {
                outcome.escalated(reason);
                answer::compose(analyzer.pack(), "human_agent", None, &call_slots, &reply_language).text
            }
            None => {
                let faq = heard.intent.faq.as_deref();
                let reply =
                    answer::compose(analyzer.pack(), &heard.intent.intent, faq, &call_slots, &reply_language);
                if reply.asking_for.is_none() && heard.intent.intent != "out_of_scope" {
                    outcome.answered();
                }
                reply.text
            }
        };
        let speech = tts.synthesize(&reply_text, &reply_language, config.tts.rate)?;
        let reply_path = reply_dir.join(format!("turn-{turn:02}.wav"));
        voicebot_audio::write_wav(&reply_path, &speech.samples, speech.sample_rate)?;
        let masked = heard.masked();
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
    print_outcome(
        &CallLine { outcome: end.code(), reason: end.reason().map(|r| r.code()), ticket: None },
        options.json,
    )
}

/// The last line of `simulate --json` (a contract).
#[derive(Debug, Serialize)]
struct CallLine {
    outcome: &'static str,
    reason: Option<&'static str>,
    /// The hand-over ticket; `null` until tickets are built (conversation issue).
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
