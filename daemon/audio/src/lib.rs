//! Audio IO and DSP for voicebotd.
//!
//! Audio inside the product is mono `f32` in [-1, 1] with its sample rate
//! ([`Audio`]). Files of any WAV rate, width and channel count decode to that;
//! every failure is an [`AudioError`] that names the file and the problem.
//! Rates are converted with a real band-limited resampler, never by dropping
//! samples.

mod resample;
mod wav;

pub use resample::{Resampler, resample};
pub use wav::{decode_wav, encode_wav, read_wav, write_wav};

use std::path::PathBuf;

/// The rate the speech engines (Whisper, Silero) take.
pub const ENGINE_RATE: u32 = 16_000;

/// Mono audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl Audio {
    pub fn duration_seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// This audio at `rate`.
    ///
    /// # Errors
    /// Fails only for rates the resampler rejects (zero or absurd ratios).
    pub fn at_rate(&self, rate: u32) -> Result<Audio, AudioError> {
        Ok(Audio { samples: resample(&self.samples, self.sample_rate, rate)?, sample_rate: rate })
    }

    /// Root-mean-square level.
    pub fn rms(&self) -> f32 {
        rms(&self.samples)
    }
}

/// Root-mean-square level of samples.
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt() as f32
}

/// What went wrong with an audio file or conversion.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a WAV file ({reason})")]
    NotWav { path: PathBuf, reason: String },
    #[error("{path}: unsupported WAV format: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: truncated WAV: header promises {expected} samples, file holds {actual}")]
    Truncated { path: PathBuf, expected: u64, actual: u64 },
    #[error("{path}: contains no audio (0 seconds)")]
    Empty { path: PathBuf },
    #[error("{path}: cannot write: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    Resample { from: u32, to: u32, reason: String },
}
