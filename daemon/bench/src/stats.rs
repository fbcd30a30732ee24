//! Shared helpers: medians, machine description, engine configs.

use anyhow::{Context, Result};
use serde::Serialize;
use voicebot_core::config::Config;

/// Whisper threads for every engine, ours and the peers.
pub(crate) const THREADS: u32 = 2;

/// The median (mean of the middle two for an even count); NaN when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
}

/// What the numbers were measured on.
#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) nproc: usize,
    pub(crate) ggml_native: String,
}

impl Machine {
    pub(crate) fn this() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            ggml_native: std::env::var("GGML_NATIVE").unwrap_or_else(|_| "OFF".into()),
        }
    }
}

/// A voicebotd config: the embedded default with `asr` overrides (a TOML
/// fragment of `[asr]` keys). Checksums are skipped: loading is not timed and
/// models/fetch.py verified the files.
pub(crate) fn config(asr_overrides: &str) -> Result<Config> {
    let text = format!(
        "[models]\nverify_checksums = false\n[asr]\nthreads = {THREADS}\nlanguage = \"en\"\n{asr_overrides}\n"
    );
    Config::from_toml(&text, "(bench)").context("bench config")
}

/// The model file the config's English model names.
pub(crate) fn english_model_path(config: &Config) -> std::path::PathBuf {
    config.models.dir.join(&config.asr.english_model)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
