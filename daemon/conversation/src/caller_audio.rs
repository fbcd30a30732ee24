//! The caller's recent audio at 16 kHz, stamped with the call's clock, so the
//! stretch the call asks to recognise can be cut out by time.
//!
//! Bounded: only the last [`CallerAudio::capacity`] is kept (older audio is
//! dropped; no turn is longer than the call's maximum utterance).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use voicebot_audio::ENGINE_RATE;

/// A ring of 16 kHz samples; the newest sample ends at `end`.
#[derive(Debug)]
pub struct CallerAudio {
    samples: VecDeque<f32>,
    end: Option<Instant>,
    capacity: usize,
}

const RATE: f64 = ENGINE_RATE as f64;

impl CallerAudio {
    /// Keeps the last `keep` of audio.
    pub fn new(keep: Duration) -> CallerAudio {
        let capacity = (keep.as_secs_f64() * RATE) as usize;
        CallerAudio { samples: VecDeque::with_capacity(capacity), end: None, capacity }
    }

    pub fn capacity(&self) -> Duration {
        Duration::from_secs_f64(self.capacity as f64 / RATE)
    }

    /// Appends a frame that ends at `end`.
    pub fn push(&mut self, frame: &[f32], end: Instant) {
        self.samples.extend(frame.iter().copied());
        let excess = self.samples.len().saturating_sub(self.capacity);
        self.samples.drain(..excess);
        self.end = Some(end);
    }

    /// The audio from `start` to `end` (clipped to what is kept).
    pub fn cut(&self, start: Instant, end: Instant) -> Vec<f32> {
        let Some(newest) = self.end else { return Vec::new() };
        let index = |t: Instant| {
            let back = (newest.saturating_duration_since(t).as_secs_f64() * RATE) as usize;
            self.samples.len().saturating_sub(back)
        };
        let (from, to) = (index(start), index(end));
        self.samples.range(from..to.max(from)).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stretch_is_cut_by_time_and_old_audio_is_dropped() {
        let mut audio = CallerAudio::new(Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..100u32 {
            // 20 ms frames whose samples hold their frame number.
            audio.push(&[i as f32; 320], t0 + Duration::from_millis(20 * u64::from(i + 1)));
        }
        let cut = audio.cut(t0 + Duration::from_millis(1500), t0 + Duration::from_millis(1600));
        assert_eq!(cut.len(), 1600);
        assert_eq!((cut[0], cut[1599]), (75.0, 79.0));
        assert!(audio.cut(t0, t0 + Duration::from_millis(100)).is_empty(), "older than a second: gone");
    }
}
