//! Loading ONNX Runtime dynamically, once per process.
//!
//! `ort`'s default features download a runtime at build time, which cannot work
//! offline; we load `libonnxruntime.so` at run time instead. By default that is
//! the ONNX Runtime that ships with the sherpa-onnx runtime in the model
//! directory, so the process has one runtime for Silero, the NLU models and
//! Piper alike.

use std::path::{Path, PathBuf};

use std::sync::Mutex;

use ort::environment::Environment;

use voicebot_core::EngineError;
use voicebot_core::manifest::ModelStore;

/// The manifest entry that carries the runtime libraries.
pub const RUNTIME_MODEL: &str = "sherpa-onnx-runtime";

/// The process's environment, once a load has succeeded. Failures are not
/// cached, so a corrected path can be loaded later.
static LOADED: Mutex<Option<Environment>> = Mutex::new(None);

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
pub fn environment(path: &Path) -> Result<Environment, EngineError> {
    // A poisoned lock only means another thread panicked while loading; the
    // Option inside is still consistent.
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(env) = loaded.as_ref() {
        return Ok(env.clone());
    }
    let env =
        load(path).map_err(|reason| EngineError::RuntimeLibrary { path: path.to_path_buf(), reason })?;
    *loaded = Some(env.clone());
    Ok(env)
}

fn load(path: &Path) -> Result<Environment, String> {
    if !path.exists() {
        return Err("no such file; run `voicebotd models fetch` or set [runtime] onnxruntime".into());
    }
    let builder = ort::init_from(path).map_err(|e| e.to_string())?;
    builder.with_name("voicebotd").build().map_err(|e| e.to_string())
}
