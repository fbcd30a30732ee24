//! Loading the understanding stack from the config: the knowledge pack, the
//! sentence embedder (already loaded with the engines) and the sentiment
//! lexicon.

use std::sync::Arc;

use voicebot_core::config::Config;
use voicebot_engines::loader::{Engines, model_store};
use voicebot_understanding::analysis::Analyzer;
use voicebot_understanding::emotion::EmotionEstimator;
use voicebot_understanding::pack::KnowledgePack;

use crate::error::CliError;

/// The pack named in the config, or the embedded default.
pub(crate) fn load_pack(config: &Config) -> Result<KnowledgePack, CliError> {
    match &config.nlu.pack {
        Some(path) => Ok(KnowledgePack::load(path)?),
        None => Ok(KnowledgePack::embedded()),
    }
}

/// The analyzer for the configured pack; `engines.embedder` adds embeddings.
pub(crate) fn load_analyzer(config: &Config, engines: &Engines) -> Result<Analyzer, CliError> {
    analyzer_for(Arc::new(load_pack(config)?), config, engines)
}

/// The analyzer for `pack`.
pub(crate) fn analyzer_for(
    pack: Arc<KnowledgePack>,
    config: &Config,
    engines: &Engines,
) -> Result<Analyzer, CliError> {
    let lexicon_path = model_store(config).verified(&config.nlu.sentiment_lexicon)?;
    let lexicon = std::fs::read_to_string(&lexicon_path)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", lexicon_path.display())))?;
    let emotion = EmotionEstimator::new(&lexicon)
        .map_err(|e| CliError::Failed(format!("{}: {e}", lexicon_path.display())))?;
    Ok(Analyzer::new(pack, engines.embedder.clone(), emotion)?)
}
