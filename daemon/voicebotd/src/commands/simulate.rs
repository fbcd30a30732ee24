//! `voicebotd simulate TURN.wav... [--json] [--channel phone|kiosk] [--line elder]`:
//! one call through the real engines and the real conversation core.
//!
//! The call (`voicebot_dialog::call`) greets the caller for the channel and
//! line; a scripted caller then says each turn after the bot finishes
//! speaking. Every frame goes through the VAD and the call's turn-taking; the
//! turns are heard (Whisper), understood against the knowledge pack, answered
//! (asking for missing slots, reading back doubtful numbers) and spoken
//! (replies as WAVs). The call ends with exactly one outcome: when the bot
//! hands over (a transfer is taken as connected: there is no agent side
//! here), says goodbye, or when the caller runs out of turns and hangs up.
//! `--text` types the turns instead (no ASR).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use ulid::Ulid;
use voicebot_audio::ENGINE_RATE;
use voicebot_conversation::session::{self, CallEngines, CallRecord, CallerTurn, SessionOptions, TurnRecord};
use voicebot_conversation::{FrameVad, Mouth, Understanding};
use voicebot_core::config::Config;
use voicebot_core::{Language, LanguageChoice};
use voicebot_dialog::call::{CallSetup, Channel, LineKind, Timing};
use voicebot_dialog::escalation::EscalationPolicy;
use voicebot_dialog::ticket::CallContext;
use voicebot_engines::loader::{self, EngineNeeds};
use voicebot_understanding::emotion::Emotion;

use crate::error::CliError;
use crate::nlu::load_analyzer;

pub(crate) struct Options {
    pub(crate) json: bool,
    /// Turns are typed utterances, not WAV files.
    pub(crate) text: bool,
    pub(crate) lang: Option<String>,
    pub(crate) reply_dir: Option<PathBuf>,
    pub(crate) channel: String,
    pub(crate) line: Option<String>,
}

/// One line of `simulate --json` output (a contract).
#[derive(Debug, Serialize)]
struct TurnLine {
    turn: u32,
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

fn channel_and_line(options: &Options) -> Result<(Channel, LineKind), CliError> {
    let channel = match options.channel.as_str() {
        "phone" => Channel::Phone,
        "kiosk" => Channel::Kiosk,
        other => return Err(CliError::Usage(format!("--channel {other:?}: expected phone or kiosk"))),
    };
    let line = match options.line.as_deref() {
        None | Some("standard") => LineKind::Standard,
        Some("elder") => LineKind::Elder,
        Some(other) => {
            return Err(CliError::Usage(format!("--line {other:?}: expected elder (or standard)")));
        }
    };
    Ok((channel, line))
}

pub(crate) fn run(config: &Config, turns: &[PathBuf], options: &Options) -> Result<(), CliError> {
    let language = super::language_choice(options.lang.as_deref(), &config.asr.language)?;
    let (channel, line) = channel_and_line(options)?;
    // Check every input before loading models: a bad file fails fast and by name.
    let script: Vec<CallerTurn> = if options.text {
        turns.iter().map(|t| CallerTurn::Typed(t.to_string_lossy().into_owned())).collect()
    } else {
        turns
            .iter()
            .map(|t| Ok(CallerTurn::Spoken(voicebot_audio::read_wav(t)?.at_rate(ENGINE_RATE)?.samples)))
            .collect::<Result<_, CliError>>()?
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
    let analyzer = Arc::new(load_analyzer(config, &engines)?);
    let tts = engines.tts.clone().ok_or_else(|| CliError::Failed("TTS engine not loaded".into()))?;
    let (ear, vad) = match options.text {
        true => (None, None),
        false => {
            let mut ear = turn::ear(&engines, config)?;
            ear.prepare(&language)?;
            let model =
                engines.vad.as_deref().ok_or_else(|| CliError::Failed("VAD engine not loaded".into()))?;
            (Some(ear), Some(FrameVad::new(model, config.vad.threshold)?))
        }
    };
    let mut call_engines = CallEngines {
        understanding: Understanding::new(Arc::clone(&analyzer), ear, language.clone()),
        vad,
        mouth: Mouth::new(tts),
    };
    let setup = CallSetup {
        channel,
        line,
        vip: false,
        language: match &language {
            LanguageChoice::Fixed(Language::Zh) => Language::Zh,
            _ => Language::En,
        },
        timing: Timing::from_config(&config.dialog),
        policy: EscalationPolicy::from_config(&config.dialog),
        speaking_rate: config.tts.rate,
        elder_rate: config.tts.elder_rate,
        context: CallContext {
            channel: channel.code().to_owned(),
            line: (line == LineKind::Elder).then(|| "elder".to_owned()),
            caller_id_masked: None,
            started_at_ms: now_ms(),
        },
        ticket_id: Ulid::new().to_string(),
        callback_ticket_id: Ulid::new().to_string(),
    };
    let session_options = SessionOptions { reply_dir: Some(reply_dir), ..SessionOptions::default() };
    let mut printed: Result<(), CliError> = Ok(());
    let record = session::run_call(
        &mut call_engines,
        setup,
        Arc::clone(analyzer.pack()),
        &script,
        &session_options,
        |turn| {
            if printed.is_ok() {
                let source = turns.get(turn.report.turn as usize - 1).map(PathBuf::as_path);
                printed = print_line(&turn_line(turn), options.json, source.unwrap_or(Path::new("keypad")));
            }
        },
    )?;
    printed?;
    finish(&record, options.json)
}

fn turn_line(turn: &TurnRecord) -> TurnLine {
    let r = &turn.report;
    TurnLine {
        turn: r.turn,
        transcript: r.transcript.clone(),
        language: r.language.clone(),
        intent: r.intent.clone(),
        confidence: r.confidence,
        emotion: r.emotion,
        reply_text: r.reply_text.clone(),
        reply_audio: turn.reply_audio.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        escalated: r.reason.is_some(),
        reason: r.reason.map(|r| r.code().to_owned()),
    }
}

fn finish(record: &CallRecord, json: bool) -> Result<(), CliError> {
    if record.unplayed > 0 {
        let spoken = record.turns.len();
        let skipped = match record.unplayed {
            1 => format!("turn {}", spoken + 1),
            n => format!("turns {}..{}", spoken + 1, spoken + n),
        };
        let why = match record.outcome.reason() {
            Some(_) => format!("the caller was handed to an agent at turn {spoken}"),
            None => format!("the call ended at turn {spoken} ({})", record.outcome.code()),
        };
        eprintln!("voicebotd: {skipped} not played: {why}");
    }
    let ticket = record
        .ticket
        .as_ref()
        .map(|t| serde_json::to_value(t).map_err(|e| CliError::Failed(e.to_string())))
        .transpose()?;
    print_outcome(
        &CallLine {
            outcome: record.outcome.code(),
            reason: record.outcome.reason().map(|r| r.code()),
            ticket,
        },
        json,
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
