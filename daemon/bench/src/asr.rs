//! ASR timing and accuracy, every contestant interleaved clip by clip.
//!
//! For each run, for each clip, every contestant transcribes the clip once (in
//! an order rotated from clip to clip), so slow phases of a noisy machine hit
//! all of them alike. Ratios are taken against the reference harness within
//! the same run, then the median of those ratios is reported.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use voicebot_core::config::Config;
use voicebot_core::engine::{RecognitionOptions, RecognizerStream};
use voicebot_core::speech_segments::{detect_speech, speech_span};
use voicebot_core::{Language, LanguageChoice};
use voicebot_engines::hearing::Ear;
use voicebot_engines::loader::{self, EngineNeeds, Engines};
use voicebot_engines::whisper_asr::fitted_audio_ctx;

use crate::clips::{self, Clip};
use crate::fw::{FasterWhisper, FwArgs};
use crate::reference::{self, Decode, Reference};
use crate::stats::{self, Machine};

pub(crate) struct AsrArgs {
    pub(crate) clips: PathBuf,
    pub(crate) out: PathBuf,
    pub(crate) runs: usize,
    pub(crate) fw: Option<FwArgs>,
    pub(crate) build: String,
    pub(crate) core_only: bool,
    pub(crate) verbose: bool,
}

const Q8: &str = "whisper-tiny.en/ggml-tiny.en-q8_0.bin";
const Q5: &str = "whisper-tiny.en/ggml-tiny.en-q5_0.bin";

enum Runner {
    /// whisper_full on the span the Ear would pass.
    Reference { whisper: Reference, fit: bool },
    /// voicebotd's whisper-rs stream on the same span (no VAD).
    Stream(Box<dyn RecognizerStream>),
    /// voicebotd's real path: VAD gate then whisper-rs, on the whole clip.
    Ear(Box<Ear>, LanguageChoice),
    /// faster-whisper in its own process, on the whole clip.
    Fw(Box<FasterWhisper>),
}

struct Contestant {
    name: &'static str,
    description: String,
    /// Which audio it gets: "span" (VAD span) or "clip".
    input: &'static str,
    runner: Runner,
    result: ContestantResult,
}

#[derive(Debug, Serialize, Default)]
struct ContestantResult {
    name: String,
    description: String,
    input: String,
    /// Per clip id: seconds of each run.
    times: std::collections::BTreeMap<String, Vec<f64>>,
    /// Per clip id: the text of each run.
    texts: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Serialize)]
struct ClipSummary {
    id: String,
    set: String,
    seconds: f64,
    /// Length of the VAD speech span (what Whisper gets on voicebotd's path).
    span_seconds: f64,
    reference: String,
}

#[derive(Debug, Serialize)]
struct AsrReport {
    build: String,
    machine: Machine,
    whisper_system_info: String,
    runs: usize,
    /// The 1-minute load average before the first run and after each run.
    load_average_1min: Vec<f64>,
    threads: u32,
    faster_whisper: serde_json::Value,
    clips: Vec<ClipSummary>,
    contestants: Vec<ContestantResult>,
}

/// Loads VAD + English Whisper for `config`, and multilingual too for `auto`.
fn load(config: &Config, auto: bool) -> Result<Engines> {
    let engines = loader::load(
        config,
        EngineNeeds { asr_english: true, asr_multilingual: auto, vad: true, tts: false, embedder: false },
    )?;
    reference::silence_whisper_logs();
    Ok(engines)
}

fn ear(config: &Config, auto: bool, language: LanguageChoice) -> Result<Runner> {
    let engines = load(config, auto)?;
    let mut ear = Ear::new(&engines, config.vad.segmenter())?;
    ear.prepare(&language)?;
    Ok(Runner::Ear(Box::new(ear), language))
}

fn en() -> LanguageChoice {
    LanguageChoice::Fixed(Language::En)
}

fn contestant(
    name: &'static str,
    description: impl Into<String>,
    input: &'static str,
    runner: Runner,
) -> Contestant {
    Contestant { name, description: description.into(), input, runner, result: ContestantResult::default() }
}

/// The speech span of each clip, from a fresh VAD stream (as a new call's Ear).
fn spans(clips: &[Clip], config: &Config) -> Result<Vec<Vec<f32>>> {
    let engines = load(config, false)?;
    let vad = engines.vad.context("VAD not loaded")?;
    clips
        .iter()
        .map(|clip| {
            let mut stream = vad.new_stream()?;
            let segments =
                detect_speech(stream.as_mut(), vad.frame_len(), &clip.pcm, config.vad.segmenter())?;
            Ok(speech_span(&clip.pcm, &segments).to_vec())
        })
        .collect()
}

pub(crate) fn run(args: &AsrArgs) -> Result<()> {
    let clips = clips::load(&args.clips)?;
    let base = stats::config("")?;
    let spans = spans(&clips, &base)?;
    let model = stats::english_model_path(&base);

    let mut contestants = vec![
        contestant(
            "reference",
            "whisper_full (raw C API), f16, audio_ctx 1500, fallback on, flash_attn off (as whisper-rs), on the VAD span",
            "span",
            Runner::Reference { whisper: Reference::load(&model, false)?, fit: false },
        ),
        contestant(
            "voicebotd-whisper",
            "voicebotd whisper-rs stream (default config) on the VAD span",
            "span",
            Runner::Stream(load(&base, false)?.asr.context("ASR")?.new_stream()?),
        ),
        contestant(
            "voicebotd-ear",
            "voicebotd Ear: VAD + whisper-rs, default config (f16, full, fallback on)",
            "clip",
            ear(&base, false, en())?,
        ),
        contestant(
            "reference-fit",
            "whisper_full, f16, audio_ctx fitted like voicebotd's \"fit\", on the VAD span",
            "span",
            Runner::Reference { whisper: Reference::load(&model, false)?, fit: true },
        ),
        contestant(
            "ear-fit",
            "Ear, audio_ctx = \"fit\"",
            "clip",
            ear(&stats::config("audio_ctx = \"fit\"")?, false, en())?,
        ),
    ];
    if !args.core_only {
        // Only the bounded "fit" variant (no fallback) rides along: with
        // fallback, fitted windows can loop through every temperature (see the
        // audio_ctx investigation), which would dominate the suite's run time.
        let levers = [
            (
                "ear-fit-no-fallback",
                "Ear, fit + temperature_fallback = false",
                "audio_ctx = \"fit\"\ntemperature_fallback = false".to_owned(),
            ),
            ("ear-q8_0", "Ear, english_model q8_0", format!("english_model = \"{Q8}\"")),
            ("ear-q5_0", "Ear, english_model q5_0", format!("english_model = \"{Q5}\"")),
        ];
        for (name, description, toml) in levers {
            contestants.push(contestant(
                name,
                description,
                "clip",
                ear(&stats::config(&toml)?, false, en())?,
            ));
        }
        // whisper.cpp's C default context turns flash attention on; measured
        // here because a harness built on the C defaults gets it.
        contestants.push(contestant(
            "reference-flash-attn",
            "whisper_full as `reference` but with whisper.cpp's C default context (flash_attn on)",
            "span",
            Runner::Reference { whisper: Reference::load(&model, true)?, fit: false },
        ));
        contestants.push(contestant(
            "ear-auto",
            "Ear, --lang auto (detect with base among en/zh, English decoded by tiny.en)",
            "clip",
            ear(&base, true, LanguageChoice::Auto)?,
        ));
    }
    let mut fw_info = serde_json::Value::Null;
    if let Some(fw) = &args.fw {
        let peer = FasterWhisper::start(fw)?;
        fw_info = peer.info.clone();
        contestants.push(contestant(
            "faster-whisper",
            "faster-whisper (CTranslate2) int8, beam 1, best_of 1, no timestamps, no VAD, on the whole clip",
            "clip",
            Runner::Fw(Box::new(peer)),
        ));
    }

    // Warm-up: every contestant decodes JFK and a short clip once, untimed.
    let warm: Vec<usize> = [0, clips.len() / 2].into_iter().collect();
    for &i in &warm {
        for c in &mut contestants {
            transcribe(c, &clips[i], &spans[i])?;
        }
    }

    let mut loads = vec![loadavg()];
    for run in 0..args.runs {
        let started = Instant::now();
        for (i, clip) in clips.iter().enumerate() {
            let n = contestants.len();
            for k in 0..n {
                let c = &mut contestants[(k + run + i) % n];
                let (text, seconds) = transcribe(c, clip, &spans[i])?;
                if args.verbose {
                    eprintln!("  {:<20} {:<14} {seconds:6.3} s  {text}", c.name, clip.info.id);
                }
                let id = clip.info.id.clone();
                c.result.times.entry(id.clone()).or_default().push(seconds);
                c.result.texts.entry(id).or_default().push(text);
            }
        }
        loads.push(loadavg());
        eprintln!("asr run {}/{} done in {:.0} s", run + 1, args.runs, started.elapsed().as_secs_f64());
    }

    let report = AsrReport {
        build: args.build.clone(),
        machine: Machine::this(),
        whisper_system_info: reference::system_info(),
        runs: args.runs,
        load_average_1min: loads,
        threads: stats::THREADS,
        faster_whisper: fw_info,
        clips: clips
            .iter()
            .zip(&spans)
            .map(|(clip, span)| ClipSummary {
                id: clip.info.id.clone(),
                set: clip.info.set.clone(),
                seconds: clip.info.seconds,
                span_seconds: span.len() as f64 / 16_000.0,
                reference: clip.info.reference.clone(),
            })
            .collect(),
        contestants: contestants
            .into_iter()
            .map(|c| ContestantResult {
                name: c.name.to_owned(),
                description: c.description,
                input: c.input.to_owned(),
                ..c.result
            })
            .collect(),
    };
    write_json(&args.out, &report)
}

fn transcribe(c: &mut Contestant, clip: &Clip, span: &[f32]) -> Result<(String, f64)> {
    match &mut c.runner {
        Runner::Reference { whisper, fit } => {
            let audio_ctx = if *fit { fitted_audio_ctx(span.len().max(20_000)) as i32 } else { 0 };
            whisper.transcribe(span, Decode::voicebotd_like(audio_ctx, true))
        }
        Runner::Stream(stream) => {
            let options = RecognitionOptions { language: en() };
            let started = Instant::now();
            let transcript = stream.transcribe(span, &options)?;
            Ok((transcript.text, started.elapsed().as_secs_f64()))
        }
        Runner::Ear(ear, language) => {
            let started = Instant::now();
            let transcript = ear.hear(&clip.pcm, language)?;
            Ok((transcript.text, started.elapsed().as_secs_f64()))
        }
        Runner::Fw(peer) => peer.transcribe(&clip.info.id, &clip.info.pcm16k_f32),
    }
}

pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// One measurement of the stream experiment.
#[derive(Debug, Serialize)]
struct StreamSample {
    config: String,
    clip: String,
    run: usize,
    /// First turn on a new Ear without `prepare` (state made inside the turn).
    cold_seconds: f64,
    /// `prepare` on a new Ear (the channel does this when the call starts).
    prepare_seconds: f64,
    /// First turn after `prepare`.
    prepared_first_seconds: f64,
    /// Second and third turns on the same Ear.
    warm_seconds: [f64; 2],
    texts: [String; 2],
}

#[derive(Debug, Serialize)]
struct StreamReport {
    machine: Machine,
    runs: usize,
    samples: Vec<StreamSample>,
}

/// Cold vs warm streams, for the default config and for `fit`.
pub(crate) fn run_stream(clips_dir: &Path, out: &Path, runs: usize) -> Result<()> {
    let clips = clips::load(clips_dir)?;
    let chosen: Vec<&Clip> =
        clips.iter().filter(|c| c.is_jfk() || c.info.id == "tts-1" || c.info.id == "call-order-1").collect();
    let configs = [("full", stats::config("")?), ("fit", stats::config("audio_ctx = \"fit\"")?)];
    let engines: Vec<(&str, &Config, Engines)> = configs
        .iter()
        .map(|(name, config)| Ok((*name, config, load(config, false)?)))
        .collect::<Result<_>>()?;
    let language = en();
    let mut samples = Vec::new();
    let time = |f: &mut dyn FnMut() -> Result<String>| -> Result<(String, f64)> {
        let started = Instant::now();
        let text = f()?;
        Ok((text, started.elapsed().as_secs_f64()))
    };
    for run in 0..runs {
        for clip in &chosen {
            for (name, config, engines) in &engines {
                let segmenter = config.vad.segmenter();
                let mut cold = Ear::new(engines, segmenter)?;
                let (_, cold_seconds) = time(&mut || Ok(cold.hear(&clip.pcm, &language)?.text))?;
                drop(cold);
                let mut ear = Ear::new(engines, segmenter)?;
                let (_, prepare_seconds) = time(&mut || {
                    ear.prepare(&language)?;
                    Ok(String::new())
                })?;
                let (_, prepared_first_seconds) = time(&mut || Ok(ear.hear(&clip.pcm, &language)?.text))?;
                let (text2, warm2) = time(&mut || Ok(ear.hear(&clip.pcm, &language)?.text))?;
                let (text3, warm3) = time(&mut || Ok(ear.hear(&clip.pcm, &language)?.text))?;
                samples.push(StreamSample {
                    config: (*name).to_owned(),
                    clip: clip.info.id.clone(),
                    run,
                    cold_seconds,
                    prepare_seconds,
                    prepared_first_seconds,
                    warm_seconds: [warm2, warm3],
                    texts: [text2, text3],
                });
            }
        }
        eprintln!("stream run {}/{runs} done", run + 1);
    }
    write_json(out, &StreamReport { machine: Machine::this(), runs, samples })
}

/// The 1-minute load average (other processes competing for the 2 cores).
pub(crate) fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
