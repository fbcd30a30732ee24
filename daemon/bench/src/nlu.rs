//! Understanding latency: intent + slots + emotion per utterance, as the
//! `understand` command and the conversation run it (MiniLM embeddings on),
//! over the held-out evaluation utterances. Medians and p95 of per-utterance
//! times, pooled over runs.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use voicebot_core::Language;
use voicebot_core::config::Config;
use voicebot_engines::loader::{self, EngineNeeds, model_store};
use voicebot_understanding::analysis::Analyzer;
use voicebot_understanding::emotion::EmotionEstimator;
use voicebot_understanding::pack::KnowledgePack;

fn utterances(file: &str) -> Result<Vec<String>> {
    let path = Path::new("tests/eval").join(file);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(text.lines().skip(1).filter_map(|l| l.split_once('\t').map(|(_, u)| u.to_owned())).collect())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub(crate) fn run(out: &Path, runs: usize) -> Result<()> {
    let config = Config::embedded_default()?;
    let started = Instant::now();
    let engines = loader::load(&config, EngineNeeds { embedder: true, ..Default::default() })?;
    let lexicon = std::fs::read_to_string(model_store(&config).verified(&config.nlu.sentiment_lexicon)?)?;
    let analyzer = Analyzer::new(
        Arc::new(KnowledgePack::embedded()),
        engines.embedder.clone(),
        EmotionEstimator::new(&lexicon).map_err(|e| anyhow::anyhow!("{e}"))?,
    )?;
    let load_seconds = started.elapsed().as_secs_f64();
    let mut results = serde_json::Map::new();
    for (language, file) in [(Language::En, "intents_en.tsv"), (Language::Zh, "intents_zh.tsv")] {
        let texts = utterances(file)?;
        let mut times = Vec::with_capacity(texts.len() * runs);
        for _ in 0..runs {
            for text in &texts {
                let t = Instant::now();
                let analysis = analyzer.analyze(text, &language, None, None)?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                std::hint::black_box(analysis);
            }
        }
        times.sort_by(f64::total_cmp);
        let (median, p95) = (percentile(&times, 0.5), percentile(&times, 0.95));
        eprintln!(
            "nlu {language}: {} utterances x {runs} runs, median {median:.2} ms, p95 {p95:.2} ms",
            texts.len()
        );
        results.insert(
            language.code().to_owned(),
            json!({ "utterances": texts.len(), "runs": runs, "median_ms": median, "p95_ms": p95 }),
        );
    }
    let value = json!({ "load_seconds": load_seconds, "results": results });
    std::fs::write(out, serde_json::to_string_pretty(&value)?)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
