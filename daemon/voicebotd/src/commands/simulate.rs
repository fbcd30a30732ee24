//! `voicebotd simulate TURN.wav... [--json]`: one call through the real engines.
//!
//! Each turn is heard (VAD + Whisper), understood, answered and spoken; the
//! reply is written as a WAV. Until the understanding and conversation issues
//! land, intent comes from the keyword rule in `voicebot_core::keyword_intent`
//! and replies are canned; the JSON fields are already the contract.

use std::path::{Path, PathBuf};

use serde::Serialize;
use voicebot_audio::Audio;
use voicebot_core::Language;
use voicebot_core::config::Config;
use voicebot_core::keyword_intent;
use voicebot_core::reply::{canned_reply, escalation_reason};
use voicebot_engines::loader::{self, EngineNeeds};

use crate::error::CliError;
use crate::turn;

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
    /// Filled once emotion detection lands (understanding issue).
    emotion: Option<serde_json::Value>,
    reply_text: String,
    reply_audio: String,
    escalated: bool,
    reason: Option<String>,
}

pub(crate) fn run(config: &Config, turns: &[PathBuf], options: &Options) -> Result<(), CliError> {
    let language = super::language_choice(options.lang.as_deref(), &config.asr.language)?;
    // Check every input before loading models: a bad file fails fast and by name.
    let audios: Vec<Audio> = turns
        .iter()
        .map(|t| voicebot_audio::read_wav(t))
        .collect::<Result<_, _>>()?;
    let reply_dir = options
        .reply_dir
        .clone()
        .unwrap_or_else(|| config.simulate.reply_dir.clone());
    std::fs::create_dir_all(&reply_dir).map_err(|e| {
        CliError::Failed(format!(
            "cannot create reply directory {}: {e}",
            reply_dir.display()
        ))
    })?;
    let mut needs = super::transcribe::needs_for(&language);
    needs.tts = true;
    let engines = loader::load(config, EngineNeeds { ..needs })?;
    let tts = engines
        .tts
        .clone()
        .ok_or_else(|| CliError::Failed("TTS engine not loaded".into()))?;
    let mut ear = turn::ear(&engines, config)?;
    ear.prepare(&language)?;

    for (index, audio) in audios.iter().enumerate() {
        let turn = index + 1;
        let transcript = turn::hear(&mut ear, audio, &language)?;
        let guess = keyword_intent::classify(&transcript.text, &transcript.language);
        let reply_language = if transcript.language == Language::Zh {
            Language::Zh
        } else {
            Language::En
        };
        let reply_text = canned_reply(guess.intent, &reply_language);
        let speech = tts.synthesize(reply_text, &reply_language, config.tts.rate)?;
        let reply_path = reply_dir.join(format!("turn-{turn:02}.wav"));
        voicebot_audio::write_wav(&reply_path, &speech.samples, speech.sample_rate)?;
        let reason = escalation_reason(guess.intent);
        let line = TurnLine {
            turn,
            transcript: transcript.text,
            language: transcript.language.code().to_owned(),
            intent: guess.intent.to_owned(),
            confidence: guess.confidence,
            emotion: None,
            reply_text: reply_text.to_owned(),
            reply_audio: reply_path.display().to_string(),
            escalated: reason.is_some(),
            reason: reason.map(str::to_owned),
        };
        print_line(&line, options.json, &turns[index])?;
        if line.escalated && turn < turns.len() {
            let skipped = match turns.len() - turn {
                1 => format!("turn {}", turn + 1),
                _ => format!("turns {}..{}", turn + 1, turns.len()),
            };
            eprintln!(
                "voicebotd: {skipped} not played: the caller was handed to an agent at turn {turn}"
            );
            break;
        }
    }
    Ok(())
}

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
            "turn {} ({}): {:?} [{}] → {} ({:.2}) → {:?} → {}{handover}",
            line.turn,
            source.display(),
            line.transcript,
            line.language,
            line.intent,
            line.confidence,
            line.reply_text,
            line.reply_audio,
        );
    }
    Ok(())
}
