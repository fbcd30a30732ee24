//! Loading ONNX Runtime dynamically, once per process.
//!
//! `ort`'s default features download a runtime at build time, which cannot work
//! offline; we load `libonnxruntime.so` at run time instead. By default that is
//! the ONNX Runtime that ships with the sherpa-onnx runtime in the model
//! directory, so the process has one runtime for Silero, the NLU models and
//! Piper alike.

use std::path::{Path, PathBuf};

use std::sync::OnceLock;

use voicebot_core::manifest::ModelStore;
use voicebot_core::EngineError;

/// The manifest entry that carries the runtime libraries.
pub const RUNTIME_MODEL: &str = "sherpa-onnx-runtime";

static LOADED: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// The ONNX Runtime library to load: `configured` if given, else the one in the model store.
///
/// # Errors
/// When the store's runtime files are missing or corrupt.
pub fn library_path(configured: Option<&Path>, store: &ModelStore) -> Result<PathBuf, EngineError> {
    match configured {
        Some(path) => Ok(path.to_path_buf()),
        None => store.verified_file_ending(RUNTIME_MODEL, "libonnxruntime.so"),
    }
}

/// Loads ONNX Runtime from `path` the first time and returns the process's
/// environment; later calls reuse it (the first path wins).
///
/// # Errors
/// `RuntimeLibrary` when the file is missing or is not a usable ONNX Runtime.
pub fn environment(path: &Path) -> Result<&'static ort::environment::Environment, EngineError> {
    match LOADED.get_or_init(|| load(path)) {
        Ok(env) => Ok(env),
        Err(reason) => {
            Err(EngineError::RuntimeLibrary { path: path.to_path_buf(), reason: reason.clone() })
        }
    }
}

fn load(path: &Path) -> Result<ort::environment::Environment, String> {
    if !path.exists() {
        return Err("no such file; run `voicebotd models fetch` or set [runtime] onnxruntime".into());
    }
    let builder = ort::init_from(path).map_err(|e| e.to_string())?;
    builder.with_name("voicebotd").build().map_err(|e| e.to_string())
}
