//! Band-limited sample-rate conversion (rubato's FFT resampler).
//!
//! Telephony runs at 8 kHz, the engines at 16 kHz, Piper at 22.05 kHz and sound
//! cards at 48 kHz; every conversion between them goes through here.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use crate::AudioError;

/// Resamples a whole mono clip from `from` Hz to `to` Hz, compensating the
/// resampler's delay so the output lines up with the input.
///
/// # Errors
/// Fails for a zero rate or a ratio the resampler cannot build.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    Resampler::new(from, to)?.process_clip(samples)
}

/// A reusable resampler for one rate pair.
pub struct Resampler {
    inner: Fft<f32>,
    from: u32,
    to: u32,
}

impl Resampler {
    /// # Errors
    /// Fails for a zero rate or an unsupported ratio.
    pub fn new(from: u32, to: u32) -> Result<Resampler, AudioError> {
        let err = |reason: String| AudioError::Resample { from, to, reason };
        if from == 0 || to == 0 {
            return Err(err("rates must be positive".into()));
        }
        let inner = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
            .map_err(|e| err(e.to_string()))?;
        Ok(Resampler { inner, from, to })
    }

    /// Resamples a whole clip.
    ///
    /// # Errors
    /// Fails only on an internal buffer-size error.
    pub fn process_clip(&mut self, samples: &[f32]) -> Result<Vec<f32>, AudioError> {
        let err = |reason: String| AudioError::Resample { from: self.from, to: self.to, reason };
        let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| err(e.to_string()))?;
        let output = self
            .inner
            .process_all(&input, samples.len(), None)
            .map_err(|e| AudioError::Resample { from: self.from, to: self.to, reason: e.to_string() })?;
        Ok(output.take_data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()).collect()
    }

    #[test]
    fn output_length_follows_the_ratio() {
        for (from, to) in [(8000, 16_000), (48_000, 16_000), (22_050, 16_000), (16_000, 8000)] {
            let out = resample(&vec![0.1; from as usize], from, to).unwrap();
            let expected = to as usize;
            assert!(out.len().abs_diff(expected) <= 2, "{from}->{to}: {}", out.len());
        }
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_level() {
        let out = resample(&sine(1000.0, 48_000, 48_000), 48_000, 16_000).unwrap();
        let reference = sine(1000.0, 16_000, out.len());
        // Compare away from the edges, where the filter ramps in and out.
        let mid = &out[2000..14_000];
        let err: f32 =
            mid.iter().zip(&reference[2000..14_000]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 0.02, "max error {err}");
    }

    #[test]
    fn content_above_the_new_nyquist_is_filtered_not_aliased() {
        // 6 kHz at 48 kHz cannot exist at 8 kHz; dropping samples would alias it to 2 kHz.
        let out = resample(&sine(6000.0, 48_000, 48_000), 48_000, 8000).unwrap();
        let mid = &out[1000..7000];
        let rms = (mid.iter().map(|s| s * s).sum::<f32>() / mid.len() as f32).sqrt();
        assert!(rms < 0.02, "rms {rms}");
    }

    #[test]
    fn a_zero_rate_is_an_error() {
        assert!(matches!(resample(&[0.0; 10], 0, 16_000), Err(AudioError::Resample { .. })));
    }
}
