//! Corrupt models and missing runtime libraries give clear errors, never a
//! crash inside a native engine.

use std::path::{Path, PathBuf};

use voicebot_core::EngineError;
use voicebot_core::config::Config;
use voicebot_engines::loader::{EngineNeeds, load};

/// A private model directory holding only `files` (path, content).
fn model_dir(tag: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voicebotd-bad-models-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn config_with(extra: &str, dir: &Path) -> Config {
    let text = format!("[models]\ndir = {:?}\n{extra}", dir.display().to_string());
    Config::from_toml(&text, "test.toml").unwrap()
}

const ASR_ONLY: EngineNeeds =
    EngineNeeds { asr_english: true, asr_multilingual: false, vad: false, tts: false, embedder: false };

#[test]
fn a_corrupt_whisper_model_is_a_checksum_error_naming_the_file() {
    let dir = model_dir("corrupt", &[("whisper-tiny.en/ggml-tiny.en.bin", b"not a model")]);
    let err = load(&config_with("", &dir), ASR_ONLY).err().expect("must fail");
    let msg = err.to_string();
    assert!(matches!(err, EngineError::ChecksumMismatch { .. }), "{msg}");
    assert!(msg.contains("ggml-tiny.en.bin") && msg.contains("models fetch"), "{msg}");
}

#[test]
fn a_missing_model_says_how_to_fetch_it() {
    let dir = model_dir("missing", &[]);
    let err = load(&config_with("", &dir), ASR_ONLY).err().expect("must fail");
    assert!(matches!(err, EngineError::ModelMissing { .. }), "{err}");
    assert!(err.to_string().contains("voicebotd models fetch"), "{err}");
}

#[test]
fn garbage_reaching_whisper_cpp_is_an_error_not_a_crash() {
    // With checksums off, whisper.cpp itself must reject a file of the right size.
    let garbage = vec![0x5au8; 77_704_715];
    let dir = model_dir("garbage", &[("whisper-tiny.en/ggml-tiny.en.bin", &garbage)]);
    let config = config_with("", &dir);
    let mut config = config;
    config.models.verify_checksums = false;
    let err = load(&config, ASR_ONLY).err().expect("must fail");
    assert!(matches!(err, EngineError::Load { engine: "whisper", .. }), "{err}");
}

const VAD_ONLY: EngineNeeds =
    EngineNeeds { asr_english: false, asr_multilingual: false, vad: true, tts: false, embedder: false };

#[test]
fn a_missing_onnx_runtime_library_is_a_clear_error() {
    let dir = model_dir("no-ort", &[]);
    let config = config_with("[runtime]\nonnxruntime = \"/nonexistent/libonnxruntime.so\"\n", &dir);
    let err = load(&config, VAD_ONLY).err().expect("must fail");
    let msg = err.to_string();
    assert!(matches!(err, EngineError::RuntimeLibrary { .. }), "{msg}");
    assert!(msg.contains("/nonexistent/libonnxruntime.so"), "{msg}");
}

#[test]
fn a_file_that_is_not_a_library_is_a_clear_error() {
    let dir = model_dir("fake-ort", &[("libonnxruntime.so", b"#!/bin/sh\necho not a library\n")]);
    let fake = dir.join("libonnxruntime.so");
    let config = config_with(&format!("[runtime]\nonnxruntime = {:?}\n", fake.display().to_string()), &dir);
    let err = load(&config, VAD_ONLY).err().expect("must fail");
    assert!(matches!(err, EngineError::RuntimeLibrary { .. }), "{err}");
}
