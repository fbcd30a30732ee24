//! Piper voices through sherpa-onnx's offline TTS (sherpa-rs).
//!
//! sherpa-onnx phonemises with its built-in espeak-ng, so it needs the
//! espeak-ng data directory; the voice needs sherpa's metadata and a
//! `tokens.txt`, which `models/` adds when it fetches the voice. Synthesis takes
//! `&mut`, so the one loaded voice sits behind a mutex.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sherpa_rs::OnnxConfig;
use sherpa_rs::tts::{CommonTtsConfig, VitsTts, VitsTtsConfig};
use voicebot_core::EngineError;
use voicebot_core::engine::SynthesizedAudio;

const ENGINE: &str = "Piper TTS";

/// Files of a Piper voice, already verified.
#[derive(Debug, Clone)]
pub struct PiperVoiceFiles {
    pub model: PathBuf,
    pub tokens: PathBuf,
    pub espeak_data: PathBuf,
}

/// A loaded Piper voice.
pub struct PiperTts {
    voice: Mutex<VitsTts>,
}

impl PiperTts {
    /// Loads a voice.
    ///
    /// # Errors
    /// `Load` when the espeak-ng data directory is missing.
    pub fn load(files: &PiperVoiceFiles, threads: u32) -> Result<PiperTts, EngineError> {
        if !files.espeak_data.join("phontab").exists() {
            return Err(EngineError::Load {
                engine: ENGINE,
                path: files.espeak_data.clone(),
                reason: "not an espeak-ng data directory (no phontab); install espeak-ng-data".into(),
            });
        }
        let config = VitsTtsConfig {
            model: path_str(&files.model),
            tokens: path_str(&files.tokens),
            data_dir: path_str(&files.espeak_data),
            length_scale: 1.0,
            noise_scale: 0.667,
            noise_scale_w: 0.8,
            silence_scale: 0.2,
            onnx_config: OnnxConfig { provider: "cpu".into(), debug: false, num_threads: threads as i32 },
            tts_config: CommonTtsConfig { max_num_sentences: 1, ..Default::default() },
            ..Default::default()
        };
        Ok(PiperTts { voice: Mutex::new(VitsTts::new(config)) })
    }

    /// Speaks English text; `rate` below 1.0 is slower.
    ///
    /// # Errors
    /// `Inference` when sherpa-onnx returns no audio.
    pub fn synthesize(&self, text: &str, rate: f32) -> Result<SynthesizedAudio, EngineError> {
        let mut voice = self.voice.lock().map_err(|_| inference("voice lock poisoned"))?;
        let audio = voice.create(text, 0, rate).map_err(inference)?;
        Ok(SynthesizedAudio { samples: audio.samples, sample_rate: audio.sample_rate })
    }
}

fn inference(reason: impl ToString) -> EngineError {
    EngineError::Inference { engine: ENGINE, reason: reason.to_string() }
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Finds the espeak-ng data directory in the usual Debian places.
pub fn find_espeak_data() -> Option<PathBuf> {
    let arch_dir = format!("/usr/lib/{}-linux-gnu/espeak-ng-data", std::env::consts::ARCH);
    [arch_dir.as_str(), "/usr/share/espeak-ng-data", "/usr/lib/espeak-ng-data"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("phontab").exists())
}
