//! Sample conversion between a sound card's native stream and the engines'
//! 16 kHz mono `f32`: sample formats, channel mixing, and a streaming
//! resampler for the continuous microphone signal.
//!
//! Everything here is pure (no devices, no threads) and is what the audio
//! callbacks in [`crate::microphone`] and [`crate::speaker`] call.
//! Invariants: conversions never panic and never allocate per sample;
//! out-of-range floats are clamped before they become integers.

use cpal::{FromSample, Sample};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

/// Mixes an interleaved buffer of any sample type down to mono `f32`
/// (the mean of the channels), appending to `out`. A trailing partial frame
/// is ignored.
pub(crate) fn interleaved_to_mono<T>(data: &[T], channels: usize, out: &mut Vec<f32>)
where
    T: Sample,
    f32: FromSample<T>,
{
    let channels = channels.max(1);
    out.reserve(data.len() / channels);
    if channels == 1 {
        out.extend(data.iter().map(|&s| f32::from_sample_(s)));
        return;
    }
    let scale = 1.0 / channels as f32;
    for frame in data.chunks_exact(channels) {
        let sum: f32 = frame.iter().map(|&s| f32::from_sample_(s)).sum();
        out.push(sum * scale);
    }
}

/// Writes mono `f32` into an interleaved buffer of any sample type, the same
/// sample on every channel. Frames of `out` past the end of `mono` get the
/// format's silence (its equilibrium, e.g. 128 for `u8`).
pub(crate) fn mono_to_interleaved<T>(mono: &[f32], channels: usize, out: &mut [T])
where
    T: Sample + FromSample<f32>,
{
    let channels = channels.max(1);
    let mut frames = out.chunks_exact_mut(channels);
    // `mono` first: zip must not pull a frame it cannot fill.
    for (&s, frame) in mono.iter().zip(frames.by_ref()) {
        frame.fill(T::from_sample_(s.clamp(-1.0, 1.0)));
    }
    for frame in frames {
        frame.fill(T::EQUILIBRIUM);
    }
    for s in out.chunks_exact_mut(channels).into_remainder() {
        *s = T::EQUILIBRIUM;
    }
}

/// Converts a continuous mono stream from one rate to another, chunk by
/// chunk, without discontinuities at chunk edges: input is buffered into the
/// resampler's fixed block size, so the output does not depend on how the
/// device happened to split the stream. Output lags input by
/// [`StreamResampler::delay`] frames.
pub(crate) struct StreamResampler {
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    scratch: Vec<f32>,
}

impl StreamResampler {
    /// # Errors
    /// Fails for a zero rate or a ratio rubato cannot build.
    pub(crate) fn new(from: u32, to: u32) -> Result<StreamResampler, String> {
        if from == 0 || to == 0 {
            return Err(format!("cannot resample {from} Hz to {to} Hz"));
        }
        if from == to {
            return Ok(StreamResampler { inner: None, pending: Vec::new(), scratch: Vec::new() });
        }
        // 10 ms blocks: small enough for low latency, large enough for the FFT.
        let chunk = (from as usize / 100).max(64);
        let inner = Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
            .map_err(|e| format!("resampler {from} Hz -> {to} Hz: {e}"))?;
        let scratch = vec![0.0; inner.output_frames_max()];
        Ok(StreamResampler { inner: Some(inner), pending: Vec::with_capacity(2 * chunk), scratch })
    }

    /// Frames of output delay the resampler's filter adds.
    #[cfg(test)]
    pub(crate) fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Feeds `input` and appends every output frame now available to `out`.
    ///
    /// # Errors
    /// Only on an internal buffer-size mismatch (a bug), never on the data.
    pub(crate) fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), String> {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        self.pending.extend_from_slice(input);
        let mut start = 0;
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let block = &self.pending[start..start + need];
            let input = InterleavedSlice::new(block, 1, need).map_err(|e| e.to_string())?;
            let frames = self.scratch.len();
            let mut output =
                InterleavedSlice::new_mut(&mut self.scratch, 1, frames).map_err(|e| e.to_string())?;
            let (used, produced) =
                inner.process_into_buffer(&input, &mut output, None).map_err(|e| e.to_string())?;
            out.extend_from_slice(&self.scratch[..produced]);
            start += used.max(1);
        }
        self.pending.drain(..start);
        Ok(())
    }
}

/// Cuts a stream of samples into fixed-length frames.
pub(crate) struct Framer {
    frame_len: usize,
    pending: Vec<f32>,
}

impl Framer {
    pub(crate) fn new(frame_len: usize) -> Framer {
        Framer { frame_len: frame_len.max(1), pending: Vec::with_capacity(2 * frame_len.max(1)) }
    }

    /// Appends `samples` and returns every complete frame, oldest first.
    pub(crate) fn push(&mut self, samples: &[f32]) -> Vec<Vec<f32>> {
        self.pending.extend_from_slice(samples);
        let complete = self.pending.len() / self.frame_len * self.frame_len;
        let frames = self.pending[..complete].chunks_exact(self.frame_len).map(<[f32]>::to_vec).collect();
        self.pending.drain(..complete);
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()).collect()
    }

    #[test]
    fn integer_formats_map_to_the_unit_range() {
        let mut out = Vec::new();
        interleaved_to_mono(&[i16::MIN, 0, i16::MAX], 1, &mut out);
        interleaved_to_mono(&[0u8, 128, 255], 1, &mut out);
        interleaved_to_mono(&[0u16, 32768], 1, &mut out);
        interleaved_to_mono(&[i32::MIN, 0], 1, &mut out);
        let expected = [-1.0, 0.0, 1.0, -1.0, 0.0, 1.0, -1.0, 0.0, -1.0, 0.0];
        for (got, want) in out.iter().zip(expected) {
            assert!((got - want).abs() < 0.01, "{out:?}");
        }
        assert_eq!(out.len(), expected.len());
    }

    #[test]
    fn stereo_is_mixed_to_the_mean_and_a_partial_frame_is_ignored() {
        let mut out = Vec::new();
        interleaved_to_mono(&[0.5f32, -0.5, 1.0, 0.0, 0.25], 2, &mut out);
        assert_eq!(out, vec![0.0, 0.5]);
    }

    #[test]
    fn mono_is_copied_to_every_channel_and_the_rest_is_silence() {
        let mut out = [1u8; 8];
        mono_to_interleaved(&[1.0, -1.0], 3, &mut out);
        assert_eq!(out, [255, 255, 255, 0, 0, 0, 128, 128]);
        let mut out = [7i16; 4];
        mono_to_interleaved(&[0.5], 2, &mut out);
        assert_eq!(out, [16384, 16384, 0, 0]);
    }

    #[test]
    fn floats_beyond_full_scale_are_clamped() {
        let mut out = [0i16; 2];
        mono_to_interleaved(&[3.0, -3.0], 1, &mut out);
        assert_eq!(out, [i16::MAX, i16::MIN]);
        let mut out = [0.0f32; 1];
        mono_to_interleaved(&[2.0], 1, &mut out);
        assert_eq!(out, [1.0]);
    }

    #[test]
    fn streaming_output_does_not_depend_on_chunk_boundaries() {
        let input = sine(440.0, 48_000, 48_000);
        let mut whole = Vec::new();
        StreamResampler::new(48_000, 16_000).unwrap().process(&input, &mut whole).unwrap();
        let mut pieces = Vec::new();
        let mut resampler = StreamResampler::new(48_000, 16_000).unwrap();
        for chunk in input.chunks(333) {
            resampler.process(chunk, &mut pieces).unwrap();
        }
        assert_eq!(whole, pieces);
        assert!(whole.len().abs_diff(16_000) <= 320, "{}", whole.len());
    }

    #[test]
    fn a_streamed_tone_is_continuous_and_keeps_its_frequency_and_level() {
        for from in [44_100, 48_000, 8000] {
            let input = sine(300.0, from, from as usize);
            let mut resampler = StreamResampler::new(from, 16_000).unwrap();
            let delay = resampler.delay();
            let mut out = Vec::new();
            for chunk in input.chunks(441) {
                resampler.process(chunk, &mut out).unwrap();
            }
            let reference = sine(300.0, 16_000, out.len());
            // Away from the filter's ramp-in, every sample (so every chunk edge) matches.
            let err = out[delay + 800..]
                .iter()
                .zip(&reference[800..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 0.02, "{from} Hz: max error {err}");
            // A click would be a step far above the tone's own largest step.
            let step = out[delay..].windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
            let tone_step = 0.5 * 2.0 * std::f32::consts::PI * 300.0 / 16_000.0;
            assert!(step < tone_step * 1.1, "{from} Hz: step {step}");
        }
    }

    #[test]
    fn equal_rates_pass_through() {
        let mut out = Vec::new();
        let mut resampler = StreamResampler::new(16_000, 16_000).unwrap();
        resampler.process(&[0.1, 0.2], &mut out).unwrap();
        assert_eq!(out, vec![0.1, 0.2]);
        assert_eq!(resampler.delay(), 0);
        assert!(StreamResampler::new(0, 16_000).is_err());
    }

    #[test]
    fn the_framer_emits_only_whole_frames_in_order() {
        let mut framer = Framer::new(3);
        assert!(framer.push(&[1.0, 2.0]).is_empty());
        assert_eq!(framer.push(&[3.0, 4.0, 5.0, 6.0, 7.0]), vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
        assert_eq!(framer.push(&[8.0, 9.0]), vec![vec![7.0, 8.0, 9.0]]);
    }
}
