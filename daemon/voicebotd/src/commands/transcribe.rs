//! `voicebotd transcribe FILE.wav [--json] [--lang auto|en|zh]`.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use voicebot_core::config::Config;
use voicebot_core::{Language, LanguageChoice};
use voicebot_engines::loader::{self, EngineNeeds};

use crate::error::CliError;
use crate::turn;

/// The JSON contract of `transcribe --json`.
#[derive(Debug, Serialize)]
struct TranscribeOutput {
    text: String,
    language: String,
    audio_seconds: f64,
    /// Decoding, speech gating and recognition; model loading is excluded.
    elapsed_seconds: f64,
}

pub(crate) fn run(config: &Config, file: &Path, json: bool, lang: Option<&str>) -> Result<(), CliError> {
    let language = super::language_choice(lang, &config.asr.language)?;
    // Read the input before loading models, so a bad file fails fast.
    let started = Instant::now();
    let audio = voicebot_audio::read_wav(file)?;
    let read_time = started.elapsed();
    let engines = loader::load(config, needs_for(&language))?;
    let mut ear = turn::ear(&engines, config)?;
    ear.prepare(&language)?;
    let started = Instant::now();
    let transcript = turn::hear(&mut ear, &audio, &language)?;
    let elapsed = started.elapsed() + read_time;
    if json {
        let out = TranscribeOutput {
            text: transcript.text,
            language: transcript.language.code().to_owned(),
            audio_seconds: round3(audio.duration_seconds()),
            elapsed_seconds: round3(elapsed.as_secs_f64()),
        };
        println!("{}", serde_json::to_string(&out).map_err(|e| CliError::Failed(e.to_string()))?);
    } else {
        println!("{}", transcript.text);
    }
    Ok(())
}

/// English needs only the English model, Chinese only the multilingual one;
/// detection needs both (it detects with the multilingual model and sends
/// English to the faster English-only one).
pub(crate) fn needs_for(language: &LanguageChoice) -> EngineNeeds {
    let (english, multilingual) = match language {
        LanguageChoice::Fixed(Language::En) => (true, false),
        LanguageChoice::Fixed(_) => (false, true),
        LanguageChoice::Auto => (true, true),
    };
    EngineNeeds {
        asr_english: english,
        asr_multilingual: multilingual,
        vad: true,
        tts: false,
        embedder: false,
    }
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
