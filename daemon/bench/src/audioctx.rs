//! Why can a smaller encoder window (`audio_ctx`) make a call slower?
//!
//! Every call goes through the reference harness with whisper.cpp's own
//! counters: temperature fallbacks, encoder passes (one per 30 s seek window)
//! and decoder passes (one per generated token). Experiments:
//!
//! - `sweep`: voicebotd's decode (no timestamps) on a warm state at several
//!   `audio_ctx` values, fallback on and off, every clip.
//! - `timestamps`: the same with timestamps on (whisper-cli's default).
//! - `fresh`: the first call on a brand-new context/state at each `audio_ctx`.
//! - `switch`: a call at 256 right after a call at 1500 on the same state,
//!   then the same call again (graph re-allocation would show as a gap).

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use voicebot_core::wer::ErrorCount;
use voicebot_engines::whisper_asr::fitted_audio_ctx;

use crate::asr::write_json;
use crate::clips::{self, Clip};
use crate::reference::{self, Counters, Decode, Reference};
use crate::stats::{self, Machine, THREADS};

#[derive(Debug, Serialize)]
struct Call {
    experiment: &'static str,
    clip: String,
    set: String,
    run: usize,
    /// The requested window label: "1500", "fit", "512", ...
    audio_ctx: String,
    /// The frames actually used (1500 for the full window).
    frames: i32,
    fallback: bool,
    timestamps: bool,
    seconds: f64,
    counters: Counters,
    text: String,
    errors: usize,
    reference_words: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    whisper_system_info: String,
    runs: usize,
    calls: Vec<Call>,
}

/// Window choices: label and frames (0 = model default, 1500).
fn window(label: &str, samples: usize) -> i32 {
    match label {
        "1500" => 0,
        "fit" => fitted_audio_ctx(samples.max(20_000)) as i32,
        other => other.parse().unwrap_or(0),
    }
}

struct Recorder<'a> {
    whisper: Reference,
    calls: &'a mut Vec<Call>,
}

impl Recorder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        experiment: &'static str,
        clip: &Clip,
        run: usize,
        label: &str,
        fallback: bool,
        timestamps: bool,
        record: bool,
    ) -> Result<()> {
        let frames = window(label, clip.pcm.len());
        let decode =
            Decode { threads: THREADS as i32, audio_ctx: frames, temperature_fallback: fallback, timestamps };
        let (text, seconds, counters) = self.whisper.transcribe_counted(&clip.pcm, decode)?;
        if record {
            let count = ErrorCount::of(&clip.info.reference, &text);
            self.calls.push(Call {
                experiment,
                clip: clip.info.id.clone(),
                set: clip.info.set.clone(),
                run,
                audio_ctx: label.to_owned(),
                frames: if frames == 0 { 1500 } else { frames },
                fallback,
                timestamps,
                seconds,
                counters,
                text,
                errors: count.errors,
                reference_words: count.reference_words,
            });
        }
        Ok(())
    }
}

pub(crate) fn run(clips_dir: &Path, out: &Path, runs: usize) -> Result<()> {
    let clips = clips::load(clips_dir)?;
    let model = stats::english_model_path(&stats::config("")?);
    let few: Vec<&Clip> = clips
        .iter()
        .filter(|c| {
            c.is_jfk() || ["tts-1", "tts-3", "call-order-1", "call-stolen-1"].contains(&c.info.id.as_str())
        })
        .collect();
    let mut calls = Vec::new();
    let mut rec = Recorder { whisper: Reference::load(&model, false)?, calls: &mut calls };
    // Warm the state once at each window size.
    for label in ["1500", "fit", "256"] {
        rec.call("warmup", &clips[0], 0, label, true, false, false)?;
    }

    for run in 0..runs {
        for clip in &few {
            for label in ["1500", "fit", "256"] {
                for fallback in [true, false] {
                    rec.call("sweep", clip, run, label, fallback, false, true)?;
                }
            }
        }
        for clip in &few {
            for label in ["1500", "fit", "256"] {
                rec.call("timestamps", clip, run, label, true, true, true)?;
            }
            // Switch: 1500 then 256 twice on the same state.
            rec.call("switch-prime", clip, run, "1500", true, false, false)?;
            rec.call("switch-after-1500", clip, run, "256", true, false, true)?;
            rec.call("switch-repeat", clip, run, "256", true, false, true)?;
        }
        eprintln!("audioctx run {}/{runs}: warm-state experiments done", run + 1);
    }
    drop(rec);

    // Fresh context and state for every call: the first call's cost.
    for run in 0..runs {
        for clip in few.iter().take(3) {
            for label in ["1500", "fit", "256"] {
                let mut fresh = Recorder { whisper: Reference::load(&model, false)?, calls: &mut calls };
                fresh.call("fresh", clip, run, label, true, false, true)?;
            }
        }
    }
    eprintln!("audioctx: fresh-state experiment done");

    write_json(
        out,
        &Report { machine: Machine::this(), whisper_system_info: reference::system_info(), runs, calls },
    )
}
