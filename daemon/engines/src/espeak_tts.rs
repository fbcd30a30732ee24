//! Mandarin speech through espeak-ng's `cmn` voice.
//!
//! No Chinese neural voice ships in any package registry, so Mandarin replies
//! are spoken by the espeak-ng program (Debian `espeak-ng`). It is robotic but
//! intelligible; a neural voice can replace it behind the same trait. Text goes
//! in on stdin (never as an argument), audio comes back as a temporary WAV.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use voicebot_core::EngineError;
use voicebot_core::engine::SynthesizedAudio;

const ENGINE: &str = "espeak-ng";
/// espeak-ng's default speaking rate in words per minute.
const NORMAL_WPM: f32 = 175.0;

static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// The espeak-ng program with one voice.
#[derive(Debug, Clone)]
pub struct EspeakTts {
    program: PathBuf,
    voice: String,
}

impl EspeakTts {
    /// Finds `espeak-ng` on the PATH and checks that it runs.
    ///
    /// # Errors
    /// `Load` when the program is missing.
    pub fn mandarin() -> Result<EspeakTts, EngineError> {
        let program = PathBuf::from("espeak-ng");
        let ok = Command::new(&program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(EngineError::Load {
                engine: ENGINE,
                path: program,
                reason: "espeak-ng is not installed (apt-get install espeak-ng)".into(),
            });
        }
        Ok(EspeakTts { program, voice: "cmn".into() })
    }

    /// Speaks `text`; `rate` below 1.0 is slower.
    ///
    /// # Errors
    /// `Inference` when espeak-ng fails or writes no audio.
    pub fn synthesize(&self, text: &str, rate: f32) -> Result<SynthesizedAudio, EngineError> {
        let n = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
        let out = std::env::temp_dir().join(format!("voicebotd-espeak-{}-{n}.wav", std::process::id()));
        let result = self.run(text, rate, &out);
        let _ = std::fs::remove_file(&out);
        result
    }

    fn run(&self, text: &str, rate: f32, out: &std::path::Path) -> Result<SynthesizedAudio, EngineError> {
        let wpm = (NORMAL_WPM * rate).round().clamp(80.0, 450.0) as u32;
        let mut child = Command::new(&self.program)
            .args(["-v", &self.voice, "-b", "1", "-s", &wpm.to_string(), "--stdin", "-w"])
            .arg(out)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(inference)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes()).map_err(inference)?;
        }
        let output = child.wait_with_output().map_err(inference)?;
        if !output.status.success() {
            return Err(inference(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
        }
        let audio = voicebot_audio::read_wav(out).map_err(inference)?;
        Ok(SynthesizedAudio { samples: audio.samples, sample_rate: audio.sample_rate })
    }
}

fn inference(reason: impl ToString) -> EngineError {
    EngineError::Inference { engine: ENGINE, reason: reason.to_string() }
}
