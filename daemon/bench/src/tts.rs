//! TTS real-time factor: synthesis time / audio duration, through voicebotd's
//! `engines.tts` (Piper for English, espeak-ng for Mandarin), interleaved
//! sentence by sentence.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use voicebot_core::Language;
use voicebot_engines::loader::{self, EngineNeeds};

use crate::asr::write_json;
use crate::clips::HOTLINE_SENTENCES;
use crate::stats::{self, Machine};

const MANDARIN_SENTENCES: [&str; 4] = [
    "您好，请问有什么可以帮您？",
    "您的订单已经发货了。",
    "请稍等，我帮您转接人工客服。",
    "谢谢您的来电，再见。",
];

#[derive(Debug, Serialize)]
struct Sample {
    voice: &'static str,
    sentence: usize,
    text: String,
    run: usize,
    seconds: f64,
    audio_seconds: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    runs: usize,
    piper_threads: u32,
    /// The very first synthesis after loading (not in `samples`).
    first_call_seconds: f64,
    first_call_audio_seconds: f64,
    samples: Vec<Sample>,
}

pub(crate) fn run(out: &Path, runs: usize) -> Result<()> {
    let config = stats::config("")?;
    let engines = loader::load(&config, EngineNeeds { tts: true, ..Default::default() })?;
    let tts = engines.tts.context("TTS not loaded")?;
    let rate = config.tts.rate;

    let started = Instant::now();
    let first = tts.synthesize(HOTLINE_SENTENCES[0], &Language::En, rate)?;
    let first_call_seconds = started.elapsed().as_secs_f64();
    tts.synthesize(MANDARIN_SENTENCES[0], &Language::Zh, rate)?;

    let mut samples = Vec::new();
    for run in 0..runs {
        let english = HOTLINE_SENTENCES.iter().map(|t| ("piper-en", Language::En, *t));
        let mandarin = MANDARIN_SENTENCES.iter().map(|t| ("espeak-zh", Language::Zh, *t));
        let mut counters = std::collections::HashMap::<&str, usize>::new();
        for (voice, language, text) in english.chain(mandarin) {
            let started = Instant::now();
            let audio = tts.synthesize(text, &language, rate)?;
            let seconds = started.elapsed().as_secs_f64();
            let sentence = counters.entry(voice).or_default();
            samples.push(Sample {
                voice,
                sentence: *sentence,
                text: text.to_owned(),
                run,
                seconds,
                audio_seconds: audio.duration_seconds(),
            });
            *sentence += 1;
        }
    }
    write_json(
        out,
        &Report {
            machine: Machine::this(),
            runs,
            piper_threads: config.tts.threads,
            first_call_seconds,
            first_call_audio_seconds: first.duration_seconds(),
            samples,
        },
    )
}
