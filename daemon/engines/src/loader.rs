//! Loads the engines a command needs from the validated config, once.
//!
//! Model files are named in the config by their path in the model directory
//! (as listed in `models/manifest.toml`) and verified before loading.

use std::path::Path;
use std::sync::Arc;

use voicebot_core::config::Config;
use voicebot_core::engine::SentenceEmbedder;
use voicebot_core::manifest::{LocalUpdates, Manifest, ModelStore};
use voicebot_core::{EngineError, SpeechRecognizer, SpeechSynthesizer, VoiceActivityModel};

use crate::espeak_tts::EspeakTts;
use crate::minilm::MiniLmEmbedder;
use crate::onnx_runtime;
use crate::piper_tts::{PiperTts, PiperVoiceFiles, find_espeak_data};
use crate::silero_vad::SileroVad;
use crate::voices::VoiceRouter;
use crate::whisper_asr::{WhisperRecognizer, WhisperSettings};

/// Which engines to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineNeeds {
    pub asr_english: bool,
    pub asr_multilingual: bool,
    pub vad: bool,
    pub tts: bool,
    pub embedder: bool,
}

impl EngineNeeds {
    /// Everything: the daemon and `simulate`.
    pub fn all() -> Self {
        EngineNeeds { asr_english: true, asr_multilingual: true, vad: true, tts: true, embedder: true }
    }
}

/// The loaded engines, shared by every call.
#[derive(Clone, Default)]
pub struct Engines {
    pub asr: Option<Arc<dyn SpeechRecognizer>>,
    pub vad: Option<Arc<dyn VoiceActivityModel>>,
    pub tts: Option<Arc<dyn SpeechSynthesizer>>,
    pub embedder: Option<Arc<dyn SentenceEmbedder>>,
}

/// The model store the config points at, with the files that `model_update`
/// jobs installed on this box (a malformed record of those is logged and
/// ignored: the updated files then fail verification with a clear error).
pub fn model_store(config: &Config) -> ModelStore {
    let mut store = ModelStore::new(config.models.dir.clone(), Manifest::embedded());
    match LocalUpdates::load(&store.dir) {
        Ok(updates) => store = store.with_updates(&updates),
        Err(e) => tracing::error!(error = %e, "locally installed model updates ignored"),
    }
    store.verify_hashes = config.models.verify_checksums;
    store
}

/// Loads what `needs` asks for.
///
/// # Errors
/// A missing or corrupt model file, a missing runtime library, or an engine
/// that rejects its model.
pub fn load(config: &Config, needs: EngineNeeds) -> Result<Engines, EngineError> {
    let store = model_store(config);
    let mut engines = Engines::default();
    if needs.asr_english || needs.asr_multilingual {
        let english = needs.asr_english.then(|| store.verified(&config.asr.english_model)).transpose()?;
        let multilingual =
            needs.asr_multilingual.then(|| store.verified(&config.asr.multilingual_model)).transpose()?;
        let settings = WhisperSettings {
            threads: config.asr.threads,
            no_speech_threshold: config.asr.no_speech_threshold,
            fit_audio_ctx: config.asr.fit_audio_ctx,
            temperature_fallback: config.asr.temperature_fallback,
            detect_among: config.asr.detect_among.iter().map(|l| l.code().to_owned()).collect(),
        };
        let asr = WhisperRecognizer::load(english.as_deref(), multilingual.as_deref(), settings)?;
        engines.asr = Some(Arc::new(asr));
    }
    if needs.vad {
        let runtime = onnx_runtime::library_path(config.runtime.onnxruntime.as_deref(), &store)?;
        let environment = onnx_runtime::environment(&runtime)?;
        let model = store.verified(&config.vad.model)?;
        engines.vad = Some(Arc::new(SileroVad::load(&environment, &model)?));
    }
    if let (true, Some(model)) = (needs.embedder, &config.nlu.embedding_model) {
        let runtime = onnx_runtime::library_path(config.runtime.onnxruntime.as_deref(), &store)?;
        let environment = onnx_runtime::environment(&runtime)?;
        let model_path = store.verified(model)?;
        let tokenizer = store.verified(&sibling(model, "tokenizer.json"))?;
        engines.embedder = Some(Arc::new(MiniLmEmbedder::load(&environment, &model_path, &tokenizer)?));
    }
    if needs.tts {
        engines.tts = Some(Arc::new(load_voices(config, &store)?));
    }
    Ok(engines)
}

/// The engine a model file serves in the running config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    AsrEnglish,
    AsrMultilingual,
    Vad,
    Tts,
    Embedder,
}

impl ModelRole {
    /// What the config loads `path` (a path in the model directory) as, if anything.
    pub fn of(config: &Config, path: &str) -> Option<ModelRole> {
        if config.asr.english_model == path {
            Some(ModelRole::AsrEnglish)
        } else if config.asr.multilingual_model == path {
            Some(ModelRole::AsrMultilingual)
        } else if config.vad.model == path {
            Some(ModelRole::Vad)
        } else if config.tts.english_voice == path {
            Some(ModelRole::Tts)
        } else if config.nlu.embedding_model.as_deref() == Some(path) {
            Some(ModelRole::Embedder)
        } else {
            None
        }
    }
}

/// `current` with the engine for `role` loaded from `file` instead (a
/// candidate not yet in the model store); the other engines are shared.
///
/// # Errors
/// The candidate (or a file loaded beside it) does not load.
pub fn load_replacing(
    config: &Config,
    current: &Engines,
    role: ModelRole,
    file: &Path,
) -> Result<Engines, EngineError> {
    let store = model_store(config);
    let mut engines = current.clone();
    match role {
        ModelRole::AsrEnglish | ModelRole::AsrMultilingual => {
            let (english, multilingual) = if role == ModelRole::AsrEnglish {
                (file.to_path_buf(), store.verified(&config.asr.multilingual_model)?)
            } else {
                (store.verified(&config.asr.english_model)?, file.to_path_buf())
            };
            let settings = WhisperSettings {
                threads: config.asr.threads,
                no_speech_threshold: config.asr.no_speech_threshold,
                fit_audio_ctx: config.asr.fit_audio_ctx,
                temperature_fallback: config.asr.temperature_fallback,
                detect_among: config.asr.detect_among.iter().map(|l| l.code().to_owned()).collect(),
            };
            let asr = WhisperRecognizer::load(Some(&english), Some(&multilingual), settings)?;
            engines.asr = Some(Arc::new(asr));
        }
        ModelRole::Vad => {
            let runtime = onnx_runtime::library_path(config.runtime.onnxruntime.as_deref(), &store)?;
            let environment = onnx_runtime::environment(&runtime)?;
            engines.vad = Some(Arc::new(SileroVad::load(&environment, file)?));
        }
        ModelRole::Embedder => {
            let runtime = onnx_runtime::library_path(config.runtime.onnxruntime.as_deref(), &store)?;
            let environment = onnx_runtime::environment(&runtime)?;
            let model = config.nlu.embedding_model.as_deref().unwrap_or_default();
            let tokenizer = store.verified(&sibling(model, "tokenizer.json"))?;
            engines.embedder = Some(Arc::new(MiniLmEmbedder::load(&environment, file, &tokenizer)?));
        }
        ModelRole::Tts => engines.tts = Some(Arc::new(load_voices_from(config, &store, file.to_path_buf())?)),
    }
    Ok(engines)
}

fn load_voices(config: &Config, store: &ModelStore) -> Result<VoiceRouter, EngineError> {
    let model = store.verified(&config.tts.english_voice)?;
    load_voices_from(config, store, model)
}

fn load_voices_from(
    config: &Config,
    store: &ModelStore,
    model: std::path::PathBuf,
) -> Result<VoiceRouter, EngineError> {
    let tokens_path = sibling(&config.tts.english_voice, "tokens.txt");
    let tokens = store.verified(&tokens_path)?;
    let espeak_data = match &config.tts.espeak_data {
        Some(dir) => dir.clone(),
        None => find_espeak_data().ok_or_else(|| EngineError::Load {
            engine: "Piper TTS",
            path: "espeak-ng-data".into(),
            reason: "espeak-ng data not found; install espeak-ng-data or set [tts] espeak_data".into(),
        })?,
    };
    let english = PiperTts::load(&PiperVoiceFiles { model, tokens, espeak_data }, config.tts.threads)?;
    Ok(VoiceRouter { english: Some(english), mandarin: Some(EspeakTts::mandarin()?) })
}

/// `dir/name` for the directory of `path` (paths in the store use `/`).
fn sibling(path: &str, name: &str) -> String {
    match Path::new(path).parent().and_then(Path::to_str) {
        Some(dir) if !dir.is_empty() => format!("{dir}/{name}"),
        _ => name.to_owned(),
    }
}
