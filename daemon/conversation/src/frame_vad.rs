//! A speech / not-speech decision per frame, for turn-taking.
//!
//! Silero gives a probability per fixed-size frame; speech starts at the
//! threshold and only ends below `threshold - 0.15` (hysteresis), the same
//! rule the offline segmenter uses. Input of any length is accepted: samples
//! are buffered until a whole model frame is there.

use std::time::Duration;

use voicebot_core::EngineError;
use voicebot_core::engine::{VadStream, VoiceActivityModel};
use voicebot_dialog::call::VoiceFrame;

/// Per-call frame classifier.
pub struct FrameVad {
    stream: Box<dyn VadStream>,
    frame_len: usize,
    threshold: f32,
    speaking: bool,
    pending: Vec<f32>,
}

impl FrameVad {
    /// # Errors
    /// Fails when the model cannot allocate per-call state.
    pub fn new(model: &dyn VoiceActivityModel, threshold: f32) -> Result<FrameVad, EngineError> {
        Ok(FrameVad {
            stream: model.new_stream()?,
            frame_len: model.frame_len(),
            threshold,
            speaking: false,
            pending: Vec::new(),
        })
    }

    /// Samples (16 kHz) per model frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    pub fn frame_duration(&self) -> Duration {
        Duration::from_secs_f64(self.frame_len as f64 / 16_000.0)
    }

    /// Classifies 16 kHz audio; returns one [`VoiceFrame`] per whole model frame.
    ///
    /// # Errors
    /// VAD inference failures.
    pub fn push(&mut self, pcm: &[f32], playout_db: Option<f32>) -> Result<Vec<VoiceFrame>, EngineError> {
        self.pending.extend_from_slice(pcm);
        let mut frames = Vec::new();
        while self.pending.len() >= self.frame_len {
            let frame: Vec<f32> = self.pending.drain(..self.frame_len).collect();
            let p = self.stream.speech_probability(&frame)?;
            self.speaking = if self.speaking { p >= self.threshold - 0.15 } else { p >= self.threshold };
            frames.push(VoiceFrame {
                duration: self.frame_duration(),
                speech: self.speaking,
                level_db: level_db(&frame),
                playout_db,
            });
        }
        Ok(frames)
    }
}

/// RMS level in dBFS (-120 for digital silence).
pub fn level_db(samples: &[f32]) -> f32 {
    let rms = voicebot_audio::rms(samples);
    if rms <= 1e-6 { -120.0 } else { 20.0 * rms.log10() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_in_dbfs() {
        assert_eq!(level_db(&[0.0; 100]), -120.0);
        let full_scale_square = level_db(&[1.0, -1.0].repeat(50));
        assert!(full_scale_square.abs() < 1e-3);
        assert!((level_db(&[0.1, -0.1].repeat(50)) + 20.0).abs() < 1e-3);
    }
}
