//! `voicebotd say "TEXT" --out FILE.wav [--lang en|zh] [--rate R]`.

use std::path::Path;

use voicebot_core::Language;
use voicebot_core::config::Config;
use voicebot_engines::loader::{self, EngineNeeds};

use crate::error::CliError;

pub(crate) fn run(
    config: &Config,
    text: &str,
    out: &Path,
    lang: &str,
    rate: Option<f32>,
) -> Result<(), CliError> {
    let language: Language = lang.parse().map_err(|e| CliError::Usage(format!("--lang: {e}")))?;
    let rate = rate.unwrap_or(config.tts.rate);
    if !(0.3..=3.0).contains(&rate) {
        return Err(CliError::Usage(format!("--rate {rate}: must be between 0.3 and 3.0")));
    }
    if text.trim().is_empty() {
        return Err(CliError::Usage("nothing to say: the text is empty".into()));
    }
    let engines = loader::load(config, EngineNeeds { tts: true, ..Default::default() })?;
    let tts = engines.tts.ok_or_else(|| CliError::Failed("TTS engine not loaded".into()))?;
    let audio = tts.synthesize(text, &language, rate)?;
    if audio.samples.is_empty() {
        return Err(CliError::Failed(format!("TTS produced no audio for {text:?}")));
    }
    voicebot_audio::write_wav(out, &audio.samples, audio.sample_rate)?;
    Ok(())
}
