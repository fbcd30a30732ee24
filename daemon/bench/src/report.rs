//! The markdown summary of the JSON results.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;
use voicebot_core::wer::ErrorCount;

use crate::stats::median;

fn read(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    serde_json::from_str(&text).ok()
}

pub(crate) fn run(dir: &Path) -> Result<()> {
    let mut md = String::new();
    if let Some(asr) = read(dir, "asr.json") {
        asr_tables(&mut md, &asr, "ASR")?;
    }
    if let Some(native) = read(dir, "asr-native.json") {
        asr_tables(&mut md, &native, "ASR, GGML_NATIVE=ON build")?;
        if let Some(portable) = read(dir, "asr.json") {
            native_table(&mut md, &portable, &native)?;
        }
    }
    if let Some(stream) = read(dir, "stream.json") {
        stream_table(&mut md, &stream)?;
    }
    if let Some(ctx) = read(dir, "audioctx.json") {
        audioctx_tables(&mut md, &ctx)?;
    }
    if let Some(tts) = read(dir, "tts.json") {
        tts_table(&mut md, &tts)?;
    }
    if let Some(rss) = read(dir, "rss.json") {
        rss_table(&mut md, &rss)?;
    }
    if let Some(sip) = read(dir, "sip.json") {
        sip_tables(&mut md, &sip)?;
    }
    std::fs::write(dir.join("summary.md"), &md)?;
    print!("{md}");
    Ok(())
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Per-contestant numbers of one asr.json.
struct Scored {
    name: String,
    description: String,
    /// Per run: JFK seconds.
    jfk: Vec<f64>,
    /// Per run: summed seconds over the short set.
    short: Vec<f64>,
    short_clips: usize,
    wer_short: ErrorCount,
    wer_jfk: ErrorCount,
    /// Clip ids whose text changed between runs.
    unstable: Vec<String>,
    /// (clip, hypothesis) for clips with errors (first run).
    misses: Vec<(String, String)>,
}

fn score(asr: &Value) -> Result<Vec<Scored>> {
    let clips = asr["clips"].as_array().context("clips")?;
    let mut out = Vec::new();
    for c in asr["contestants"].as_array().context("contestants")? {
        let runs = asr["runs"].as_u64().unwrap_or(0) as usize;
        let mut jfk = vec![0.0; runs];
        let mut short = vec![0.0; runs];
        let mut scored = Scored {
            name: s(&c["name"]).to_owned(),
            description: s(&c["description"]).to_owned(),
            jfk: Vec::new(),
            short: Vec::new(),
            short_clips: 0,
            wer_short: ErrorCount::default(),
            wer_jfk: ErrorCount::default(),
            unstable: Vec::new(),
            misses: Vec::new(),
        };
        for clip in clips {
            let id = s(&clip["id"]);
            let times = c["times"][id].as_array().context("times")?;
            let texts = c["texts"][id].as_array().context("texts")?;
            let is_jfk = s(&clip["set"]) == "jfk";
            for (run, t) in times.iter().enumerate().take(runs) {
                if is_jfk {
                    jfk[run] += f(t);
                } else {
                    short[run] += f(t);
                }
            }
            let first = s(&texts[0]);
            if texts.iter().any(|t| s(t) != first) {
                scored.unstable.push(id.to_owned());
            }
            let count = ErrorCount::of(s(&clip["reference"]), first);
            if count.errors > 0 {
                scored.misses.push((id.to_owned(), first.to_owned()));
            }
            if is_jfk {
                scored.wer_jfk = scored.wer_jfk + count;
            } else {
                scored.wer_short = scored.wer_short + count;
                scored.short_clips += 1;
            }
        }
        scored.jfk = jfk;
        scored.short = short;
        out.push(scored);
    }
    Ok(out)
}

/// Median over runs of a[run] / b[run].
fn ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&ratios)
}

fn wer(count: ErrorCount) -> String {
    format!("{:.1}% ({}/{})", 100.0 * count.rate(), count.errors, count.reference_words)
}

fn ratio_cell(a: &Scored, b: Option<&Scored>) -> String {
    match b {
        Some(b) => format!("{:.2} / {:.2}", ratio(&a.jfk, &b.jfk), ratio(&a.short, &b.short)),
        None => "-".into(),
    }
}

fn asr_tables(md: &mut String, asr: &Value, title: &str) -> Result<()> {
    let scored = score(asr)?;
    let by_name = |n: &str| scored.iter().find(|x| x.name == n);
    let runs = asr["runs"].as_u64().unwrap_or(0);
    let short_n = scored.first().map_or(0, |x| x.short_clips);
    writeln!(md, "## {title}\n")?;
    writeln!(
        md,
        "Build `{}`; whisper.cpp: `{}`. Medians of {runs} interleaved runs; \
         \"short\" = mean seconds per clip over the {short_n} short clips (median over runs of the per-run mean). \
         Ratios are medians of per-run ratios (JFK / short set).\n",
        s(&asr["build"]),
        s(&asr["whisper_system_info"])
    )?;
    if let Some(loads) = asr["load_average_1min"].as_array() {
        let loads: Vec<String> = loads.iter().map(|l| format!("{:.1}", f(l))).collect();
        writeln!(md, "1-minute load average before/after each run: {}.\n", loads.join(", "))?;
    }
    if let Some(v) = asr["faster_whisper"]["versions"].as_object() {
        let versions: Vec<String> = v.iter().map(|(k, x)| format!("{k} {}", s(x))).collect();
        writeln!(md, "Peer: {}.\n", versions.join(", "))?;
    }
    let ear = by_name("voicebotd-ear");
    let fw = by_name("faster-whisper");
    writeln!(
        md,
        "| contestant | JFK s | short s/clip | vs reference | vs voicebotd-ear | vs faster-whisper | WER short | WER JFK |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for x in &scored {
        let reference = if x.name.contains("fit") && !x.name.contains("flash") {
            by_name("reference-fit")
        } else {
            by_name("reference")
        };
        let reference = reference.filter(|r| r.name != x.name);
        writeln!(
            md,
            "| `{}` | {:.3} | {:.3} | {} | {} | {} | {} | {} |",
            x.name,
            median(&x.jfk),
            median(&x.short) / x.short_clips.max(1) as f64,
            ratio_cell(x, reference),
            ratio_cell(x, ear.filter(|e| e.name != x.name)),
            ratio_cell(x, fw.filter(|e| e.name != x.name)),
            wer(x.wer_short),
            wer(x.wer_jfk),
        )?;
    }
    writeln!(md, "\nContestants:\n")?;
    for x in &scored {
        writeln!(md, "- `{}`: {}", x.name, x.description)?;
    }
    writeln!(md, "\nRecognition errors (first run's hypothesis):\n")?;
    for x in &scored {
        for (clip, text) in &x.misses {
            writeln!(md, "- `{}` on `{clip}`: \"{}\"", x.name, clipped(text, 120))?;
        }
        if !x.unstable.is_empty() {
            writeln!(md, "- `{}`: text varied between runs on {}", x.name, x.unstable.join(", "))?;
        }
    }
    writeln!(md, "\nClips (VAD span = audio the Ear passes to Whisper):\n")?;
    writeln!(md, "| clip | s | span s | reference |")?;
    writeln!(md, "|---|---:|---:|---|")?;
    for c in asr["clips"].as_array().context("clips")? {
        writeln!(
            md,
            "| `{}` | {:.2} | {:.2} | {} |",
            s(&c["id"]),
            f(&c["seconds"]),
            f(&c["span_seconds"]),
            s(&c["reference"])
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn native_table(md: &mut String, portable: &Value, native: &Value) -> Result<()> {
    let p = score(portable)?;
    let n = score(native)?;
    writeln!(md, "## GGML_NATIVE=ON vs the portable build (separate processes, not interleaved)\n")?;
    writeln!(md, "| contestant | portable JFK / short s | native JFK / short s | native/portable |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    for x in &n {
        if let Some(y) = p.iter().find(|y| y.name == x.name) {
            let (xs, ys) = (
                median(&x.short) / x.short_clips.max(1) as f64,
                median(&y.short) / y.short_clips.max(1) as f64,
            );
            writeln!(
                md,
                "| `{}` | {:.3} / {:.3} | {:.3} / {:.3} | {:.2} / {:.2} |",
                x.name,
                median(&y.jfk),
                ys,
                median(&x.jfk),
                xs,
                median(&x.jfk) / median(&y.jfk),
                xs / ys
            )?;
        }
    }
    writeln!(md)?;
    Ok(())
}

fn stream_table(md: &mut String, stream: &Value) -> Result<()> {
    writeln!(md, "## Cold vs warm stream (medians of {} runs)\n", stream["runs"])?;
    writeln!(
        md,
        "| audio_ctx | clip | 1st turn, no prepare | prepare | 1st turn after prepare | 2nd turn | 3rd turn |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|")?;
    let mut groups: BTreeMap<(String, String), Vec<&Value>> = BTreeMap::new();
    for x in stream["samples"].as_array().context("samples")? {
        groups.entry((s(&x["config"]).to_owned(), s(&x["clip"]).to_owned())).or_default().push(x);
    }
    for ((config, clip), xs) in groups {
        let m = |get: &dyn Fn(&Value) -> f64| median(&xs.iter().map(|x| get(x)).collect::<Vec<_>>());
        writeln!(
            md,
            "| {config} | `{clip}` | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            m(&|x| f(&x["cold_seconds"])),
            m(&|x| f(&x["prepare_seconds"])),
            m(&|x| f(&x["prepared_first_seconds"])),
            m(&|x| f(&x["warm_seconds"][0])),
            m(&|x| f(&x["warm_seconds"][1])),
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn audioctx_tables(md: &mut String, ctx: &Value) -> Result<()> {
    let calls = ctx["calls"].as_array().context("calls")?;
    let runs = ctx["runs"].as_u64().unwrap_or(1) as usize;
    writeln!(
        md,
        "## audio_ctx investigation (reference harness, whisper.cpp counters; medians of {runs} runs)\n"
    )?;
    for experiment in ["sweep", "timestamps"] {
        writeln!(md, "### {experiment}\n")?;
        writeln!(
            md,
            "| audio_ctx | fallback | timestamps | JFK s | short s/clip | fallbacks/run (JFK + short) | decoder passes/run | encoder passes/run | WER short | WER JFK |"
        )?;
        writeln!(md, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
        let mut keys: Vec<(String, bool, bool)> = Vec::new();
        for c in calls.iter().filter(|c| c["experiment"] == experiment) {
            let key = (
                s(&c["audio_ctx"]).to_owned(),
                c["fallback"].as_bool().unwrap_or(false),
                c["timestamps"].as_bool().unwrap_or(false),
            );
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for (label, fallback, timestamps) in keys {
            let mine: Vec<&Value> = calls
                .iter()
                .filter(|c| {
                    c["experiment"] == experiment
                        && s(&c["audio_ctx"]) == label
                        && c["fallback"].as_bool() == Some(fallback)
                        && c["timestamps"].as_bool() == Some(timestamps)
                })
                .collect();
            let per_run = |pick: &dyn Fn(&Value) -> Option<f64>| -> f64 {
                let sums: Vec<f64> = (0..runs)
                    .map(|r| {
                        mine.iter()
                            .filter(|c| c["run"].as_u64() == Some(r as u64))
                            .filter_map(|c| pick(c))
                            .sum()
                    })
                    .collect();
                median(&sums)
            };
            let jfk = per_run(&|c| (s(&c["set"]) == "jfk").then(|| f(&c["seconds"])));
            let short_n =
                mine.iter().filter(|c| s(&c["set"]) != "jfk" && c["run"] == 0).count().max(1) as f64;
            let short = per_run(&|c| (s(&c["set"]) != "jfk").then(|| f(&c["seconds"]))) / short_n;
            let fallbacks =
                per_run(&|c| Some(f(&c["counters"]["fallbacks_p"]) + f(&c["counters"]["fallbacks_h"])));
            let decodes = per_run(&|c| Some(f(&c["counters"]["decode_runs"])));
            let encodes = per_run(&|c| Some(f(&c["counters"]["encode_runs"])));
            let mut wer_short = ErrorCount::default();
            let mut wer_jfk = ErrorCount::default();
            for c in mine.iter().filter(|c| c["run"] == 0) {
                let count = ErrorCount {
                    errors: c["errors"].as_u64().unwrap_or(0) as usize,
                    reference_words: c["reference_words"].as_u64().unwrap_or(0) as usize,
                };
                if s(&c["set"]) == "jfk" {
                    wer_jfk = wer_jfk + count;
                } else {
                    wer_short = wer_short + count;
                }
            }
            writeln!(
                md,
                "| {label} | {fallback} | {timestamps} | {jfk:.3} | {short:.3} | {fallbacks:.0} | {decodes:.0} | {encodes:.0} | {} | {} |",
                wer(wer_short),
                wer(wer_jfk)
            )?;
        }
        writeln!(md)?;
    }

    // Slow calls: more than twice the clip's median at the full window.
    writeln!(md, "### Calls slower than the same clip at the full window (sweep and timestamps, run 0)\n")?;
    writeln!(
        md,
        "| experiment | clip | audio_ctx (frames) | fallback | s | full-window s | fallbacks p/h | decoder passes | text |"
    )?;
    writeln!(md, "|---|---|---|---|---:|---:|---|---:|---|")?;
    for c in calls
        .iter()
        .filter(|c| (c["experiment"] == "sweep" || c["experiment"] == "timestamps") && c["run"] == 0)
    {
        let full: Vec<f64> = calls
            .iter()
            .filter(|d| {
                d["experiment"] == c["experiment"]
                    && d["clip"] == c["clip"]
                    && s(&d["audio_ctx"]) == "1500"
                    && d["fallback"] == c["fallback"]
            })
            .map(|d| f(&d["seconds"]))
            .collect();
        let full = median(&full);
        if f(&c["seconds"]) > full * 1.05 && s(&c["audio_ctx"]) != "1500" {
            writeln!(
                md,
                "| {} | `{}` | {} ({}) | {} | {:.3} | {:.3} | {}/{} | {} | {} |",
                s(&c["experiment"]),
                s(&c["clip"]),
                s(&c["audio_ctx"]),
                c["frames"],
                c["fallback"],
                f(&c["seconds"]),
                full,
                c["counters"]["fallbacks_p"],
                c["counters"]["fallbacks_h"],
                c["counters"]["decode_runs"],
                clipped(s(&c["text"]), 90)
            )?;
        }
    }
    writeln!(md)?;

    writeln!(md, "### First call on a fresh state vs warm state; window switch\n")?;
    writeln!(
        md,
        "| clip | audio_ctx | fresh state, 1st call s | warm state s (sweep) | 256 right after 1500 s | 256 repeated s |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|")?;
    let med = |exp: &str, clip: &str, label: &str| -> f64 {
        median(
            &calls
                .iter()
                .filter(|c| {
                    c["experiment"] == exp
                        && s(&c["clip"]) == clip
                        && s(&c["audio_ctx"]) == label
                        && c["fallback"].as_bool() == Some(true)
                })
                .map(|c| f(&c["seconds"]))
                .collect::<Vec<_>>(),
        )
    };
    let mut fresh_clips: Vec<String> = Vec::new();
    for c in calls.iter().filter(|c| c["experiment"] == "fresh") {
        let id = s(&c["clip"]).to_owned();
        if !fresh_clips.contains(&id) {
            fresh_clips.push(id);
        }
    }
    for clip in &fresh_clips {
        for label in ["1500", "fit", "256"] {
            let (after, repeat) = if label == "256" {
                (
                    format!("{:.3}", med("switch-after-1500", clip, "256")),
                    format!("{:.3}", med("switch-repeat", clip, "256")),
                )
            } else {
                ("-".into(), "-".into())
            };
            writeln!(
                md,
                "| `{clip}` | {label} | {:.3} | {:.3} | {after} | {repeat} |",
                med("fresh", clip, label),
                med("sweep", clip, label),
            )?;
        }
    }
    writeln!(md)?;
    Ok(())
}

fn tts_table(md: &mut String, tts: &Value) -> Result<()> {
    let samples = tts["samples"].as_array().context("samples")?;
    let runs = tts["runs"].as_u64().unwrap_or(1) as usize;
    writeln!(md, "## TTS real-time factor (synthesis s / audio s; medians of {runs} runs)\n")?;
    writeln!(
        md,
        "| voice | sentences | synth s/sentence | audio s/sentence | RTF (pooled) | RTF worst sentence |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|")?;
    for voice in ["piper-en", "espeak-zh"] {
        let mine: Vec<&Value> = samples.iter().filter(|x| s(&x["voice"]) == voice).collect();
        let n = mine.iter().filter(|x| x["run"] == 0).count().max(1);
        let per_run = |key: &str| -> Vec<f64> {
            (0..runs)
                .map(|r| {
                    mine.iter().filter(|x| x["run"].as_u64() == Some(r as u64)).map(|x| f(&x[key])).sum()
                })
                .collect()
        };
        let synth = per_run("seconds");
        let audio = per_run("audio_seconds");
        let worst = (0..n)
            .map(|i| {
                median(
                    &mine
                        .iter()
                        .filter(|x| x["sentence"].as_u64() == Some(i as u64))
                        .map(|x| f(&x["seconds"]) / f(&x["audio_seconds"]))
                        .collect::<Vec<_>>(),
                )
            })
            .fold(0.0, f64::max);
        writeln!(
            md,
            "| {voice} | {n} | {:.3} | {:.2} | {:.3} | {:.3} |",
            median(&synth) / n as f64,
            median(&audio) / n as f64,
            ratio(&synth, &audio),
            worst
        )?;
    }
    writeln!(
        md,
        "\nFirst Piper call after loading: {:.3} s for {:.2} s of audio (Piper threads = {}).\n",
        f(&tts["first_call_seconds"]),
        f(&tts["first_call_audio_seconds"]),
        tts["piper_threads"]
    )?;
    Ok(())
}

fn rss_table(md: &mut String, rss: &Value) -> Result<()> {
    writeln!(md, "## Peak RSS (release build, `/usr/bin/time -v`)\n")?;
    writeln!(md, "| command | peak RSS MiB | wall s |")?;
    writeln!(md, "|---|---:|---:|")?;
    for x in rss.as_array().context("rss")? {
        writeln!(
            md,
            "| `{}` | {:.0} | {:.2} |",
            s(&x["command"]),
            f(&x["max_rss_kib"]) / 1024.0,
            f(&x["wall_seconds"])
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn sip_tables(md: &mut String, sip: &Value) -> Result<()> {
    writeln!(md, "## Phone line over SIP (`voicebot-bench sip`)\n")?;
    writeln!(
        md,
        "Load average at start / end: {} / {}; {:.0} s.\n",
        s(&sip["load_average_start"]),
        s(&sip["load_average_end"]),
        f(&sip["wall_seconds"])
    )?;
    writeln!(md, "| measure | n | p50 | p95 | max |")?;
    writeln!(md, "|---|---:|---:|---:|---:|")?;
    for (label, key) in [
        ("call set-up, INVITE → 200 OK (ms)", "setup"),
        ("voice-to-voice over SIP (ms)", "voice_to_voice_over_sip"),
        ("same calls in process, no SIP (ms)", "voice_to_voice_in_process"),
    ] {
        let x = &sip[key];
        if x.is_object() {
            writeln!(
                md,
                "| {label} | {} | {:.1} | {:.1} | {:.1} |",
                x["n"],
                f(&x["p50_ms"]),
                f(&x["p95_ms"]),
                f(&x["max_ms"])
            )?;
        }
    }
    writeln!(md, "\np50 ratio over SIP / in process: {:.2}\n", f(&sip["p50_ratio_sip_over_in_process"]))?;
    writeln!(
        md,
        "| concurrent calls | holds | complete | max RTP gap ms | gaps > 60 ms | latency p50 / p95 ms | peak RSS MiB |"
    )?;
    writeln!(md, "|---:|---|---:|---:|---:|---|---:|")?;
    for level in sip["levels"].as_array().context("levels")? {
        writeln!(
            md,
            "| {} | {} | {} | {:.0} | {} | {:.0} / {:.0} | {:.0} |",
            level["calls"],
            level["holds"],
            level["complete_calls"],
            f(&level["max_gap_ms"]),
            level["gaps_over_limit"],
            f(&level["latency_p50_ms"]),
            f(&level["latency_p95_ms"]),
            f(&level["peak_rss_kib"]) / 1024.0
        )?;
    }
    writeln!(
        md,
        "\nSustained: {} concurrent calls. Idle RSS {:.0} MiB.\n",
        sip["concurrent_calls_sustained"],
        f(&sip["idle_rss_kib"]) / 1024.0
    )?;
    Ok(())
}

/// `text` cut to `n` characters, with an ellipsis and the full length when cut.
fn clipped(text: &str, n: usize) -> String {
    let count = text.chars().count();
    if count <= n {
        return text.to_owned();
    }
    format!("{}… ({count} chars)", text.chars().take(n).collect::<String>())
}
