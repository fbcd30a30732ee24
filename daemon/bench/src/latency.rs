//! Voice-to-voice latency: end of the caller's speech to the first audio of
//! the bot's reply, over whole calls run in real time through the same
//! conversation core and engines as `simulate` (Whisper tiny.en, Silero per
//! frame, MiniLM, Piper).
//!
//! Callers are espeak-ng voices (not the bot's own Piper voice), each turn
//! trimmed to its last audible sample so the clip's end is the end of speech.
//! Each call runs twice per round, interleaved: with the call's speculative
//! early end of turn (the default) and with it effectively off (the reference,
//! measured in the same run), so the gain is a ratio on the same machine state.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use voicebot_audio::ENGINE_RATE;
use voicebot_conversation::session::{self, CallEngines, CallerTurn, Pace, SessionOptions};
use voicebot_conversation::{FrameVad, Mouth, Understanding};
use voicebot_core::config::Config;
use voicebot_core::{Language, LanguageChoice};
use voicebot_dialog::call::{CallSetup, Channel, LineKind, Timing};
use voicebot_dialog::escalation::EscalationPolicy;
use voicebot_dialog::ticket::CallContext;
use voicebot_engines::hearing::Ear;
use voicebot_engines::loader::{self, EngineNeeds, model_store};
use voicebot_understanding::analysis::Analyzer;
use voicebot_understanding::emotion::EmotionEstimator;
use voicebot_understanding::pack::KnowledgePack;

/// The calls: every turn gets a spoken reply, so every turn is measured.
pub(crate) const CALLS: [&[&str]; 7] = [
    &["where is my order", "my order number is four five seven one two", "no thanks, goodbye"],
    &["what time do you open on sunday", "where is your flagship store", "that's all, bye"],
    &["can I return a jacket without the receipt", "how long does the refund take", "no, goodbye"],
    &["do you have wireless headphones in stock", "how much is delivery", "thank you, bye"],
    &["I was charged twice for my order", "where is your nearest store", "goodbye"],
    &["are you open on public holidays", "can I pick up my order in the store", "no that's it, bye"],
    &["how long is the warranty on electronics", "can I exchange a shirt for another size", "bye"],
];

/// espeak-ng voices for the callers (variants of its English voice).
pub(crate) const VOICES: [&str; 3] = ["en-us", "en-us+m3", "en-us+f2"];

pub(crate) fn speak(text: &str, voice: &str, dir: &Path, name: &str) -> Result<Vec<f32>> {
    let path = dir.join(format!("{name}.wav"));
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "165", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .context("espeak-ng (apt install espeak-ng)")?;
    if !status.success() {
        bail!("espeak-ng failed for {text:?}");
    }
    let mut samples = voicebot_audio::read_wav(&path)?.at_rate(ENGINE_RATE)?.samples;
    let last = samples.iter().rposition(|s| s.abs() > 1e-3).unwrap_or(0);
    samples.truncate(last + 1);
    Ok(samples)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub(crate) struct Loaded {
    config: Config,
    engines: voicebot_engines::loader::Engines,
    analyzer: Arc<Analyzer>,
}

pub(crate) fn load() -> Result<Loaded> {
    let config = crate::stats::config("")?;
    let engines = loader::load(
        &config,
        EngineNeeds { asr_english: true, vad: true, tts: true, embedder: true, ..Default::default() },
    )?;
    let lexicon = std::fs::read_to_string(model_store(&config).verified(&config.nlu.sentiment_lexicon)?)?;
    let analyzer = Arc::new(Analyzer::new(
        Arc::new(KnowledgePack::embedded()),
        engines.embedder.clone(),
        EmotionEstimator::new(&lexicon).map_err(|e| anyhow::anyhow!("{e}"))?,
    )?);
    Ok(Loaded { config, engines, analyzer })
}

/// Runs one call in real time; returns per-turn latencies in ms.
pub(crate) fn call(loaded: &Loaded, turns: &[CallerTurn], timing: Timing) -> Result<(Vec<f64>, String)> {
    let language = LanguageChoice::Fixed(Language::En);
    let mut ear = Ear::new(&loaded.engines, loaded.config.vad.segmenter())?;
    ear.prepare(&language)?;
    let vad_model = loaded.engines.vad.as_deref().context("VAD not loaded")?;
    let mut engines = CallEngines {
        understanding: Understanding::new(Arc::clone(&loaded.analyzer), Some(ear), language),
        vad: Some(FrameVad::new(vad_model, loaded.config.vad.threshold)?),
        mouth: Mouth::new(loaded.engines.tts.clone().context("TTS not loaded")?),
    };
    let setup = CallSetup {
        channel: Channel::Phone,
        line: LineKind::Standard,
        vip: false,
        language: Language::En,
        timing,
        policy: EscalationPolicy::default(),
        speaking_rate: 1.0,
        elder_rate: 0.8,
        context: CallContext { channel: "phone".into(), ..CallContext::default() },
        ticket_id: "bench".into(),
        callback_ticket_id: "bench-callback".into(),
    };
    let options = SessionOptions { pace: Pace::RealTime, ..SessionOptions::default() };
    let record =
        session::run_call(&mut engines, setup, Arc::clone(loaded.analyzer.pack()), turns, &options, |_| {})?;
    let latencies = record.turns.iter().filter_map(|t| t.latency).map(|d| d.as_secs_f64() * 1000.0).collect();
    Ok((latencies, record.outcome.code().to_owned()))
}

pub(crate) fn run(out: &Path, rounds: usize, reference: bool) -> Result<()> {
    let scratch = out.with_extension("clips");
    std::fs::create_dir_all(&scratch)?;
    let mut scripts = Vec::new();
    for (c, texts) in CALLS.iter().enumerate() {
        let voice = VOICES[c % VOICES.len()];
        let turns = texts
            .iter()
            .enumerate()
            .map(|(t, text)| {
                speak(text, voice, &scratch, &format!("call{c}-turn{t}")).map(CallerTurn::Spoken)
            })
            .collect::<Result<Vec<_>>>()?;
        scripts.push(turns);
    }
    let loaded = load()?;
    let speculative = Timing::default();
    // The reference: guess the end of turn only 20 ms before the real end (no time to gain).
    let plain = Timing {
        early_end_of_turn: speculative.end_of_turn - Duration::from_millis(20),
        ..Timing::default()
    };
    let (mut fast, mut slow, mut outcomes) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for round in 0..rounds {
        for (c, turns) in scripts.iter().enumerate() {
            let (latencies, outcome) = call(&loaded, turns, speculative.clone())?;
            eprintln!("round {round} call {c}: speculative {latencies:.0?} ms ({outcome})");
            fast.extend(latencies);
            outcomes.push(outcome);
            if reference {
                let (latencies, _) = call(&loaded, turns, plain.clone())?;
                eprintln!("round {round} call {c}: reference   {latencies:.0?} ms");
                slow.extend(latencies);
            }
        }
    }
    fast.sort_by(f64::total_cmp);
    slow.sort_by(f64::total_cmp);
    let summary = |v: &[f64]| json!({"turns": v.len(), "p50_ms": percentile(v, 0.5), "p95_ms": percentile(v, 0.95), "max_ms": v.last()});
    let result = json!({
        "machine": crate::stats::Machine::this(),
        "asr_model": loaded.config.asr.english_model,
        "endpoint_ms": speculative.end_of_turn.as_millis() as u64,
        "early_end_ms": speculative.early_end_of_turn.as_millis() as u64,
        "speculative": summary(&fast),
        "reference_no_speculation": if reference { summary(&slow) } else { serde_json::Value::Null },
        "p50_ratio_speculative_over_reference": if reference { json!(percentile(&fast, 0.5) / percentile(&slow, 0.5)) } else { serde_json::Value::Null },
        "outcomes": outcomes,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "latencies_ms": fast,
        "reference_latencies_ms": slow,
    });
    eprintln!(
        "latency over {} turns: p50 {:.0} ms, p95 {:.0} ms (endpoint {} ms){}",
        fast.len(),
        percentile(&fast, 0.5),
        percentile(&fast, 0.95),
        speculative.end_of_turn.as_millis(),
        if reference {
            format!(
                "; reference without speculation p50 {:.0} ms, p95 {:.0} ms",
                percentile(&slow, 0.5),
                percentile(&slow, 0.95)
            )
        } else {
            String::new()
        }
    );
    std::fs::write(out, serde_json::to_string_pretty(&result)?)?;
    Ok(())
}
