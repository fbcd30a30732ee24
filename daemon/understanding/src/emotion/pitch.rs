//! Fundamental frequency (F0) of one frame by YIN (de Cheveigné & Kawahara
//! 2002): the difference function, its cumulative-mean normalisation, the
//! first dip under an absolute threshold, and parabolic interpolation.
//!
//! The tracker runs on audio decimated to 8 kHz, which keeps the cost per
//! frame at about `WINDOW × MAX_LAG` multiply-adds (≈ 29 k) while F0 up to
//! 400 Hz stays far below the new Nyquist frequency.
//!
//! Invariants: never panics (a short frame is unvoiced); a returned F0 is
//! finite and within [`MIN_F0_HZ`]..=[`MAX_F0_HZ`].

/// Sample rate the tracker runs at.
pub(crate) const RATE_HZ: f32 = 8_000.0;
/// Lowest F0 searched: below a deep male voice.
pub(crate) const MIN_F0_HZ: f32 = 70.0;
/// Highest F0 searched: above a raised female or child voice.
pub(crate) const MAX_F0_HZ: f32 = 400.0;
/// Integration window: 32 ms, more than two periods of the lowest F0.
pub(crate) const WINDOW: usize = 256;
/// Largest lag: one period of [`MIN_F0_HZ`], plus one for interpolation.
pub(crate) const MAX_LAG: usize = (RATE_HZ / MIN_F0_HZ) as usize + 1;
/// Smallest lag: one period of [`MAX_F0_HZ`].
const MIN_LAG: usize = (RATE_HZ / MAX_F0_HZ) as usize;
/// Samples one frame needs.
pub(crate) const FRAME: usize = WINDOW + MAX_LAG + 1;
/// YIN's absolute threshold on the normalised difference: below it the frame
/// is periodic (voiced). 0.15 is the paper's recommended range.
const THRESHOLD: f32 = 0.15;

/// Reusable buffers for [`Yin::f0`].
pub(crate) struct Yin {
    cmnd: Vec<f32>,
}

impl Yin {
    pub(crate) fn new() -> Yin {
        Yin { cmnd: vec![0.0; MAX_LAG + 1] }
    }

    /// F0 of the frame starting at `frame[0]`, or `None` when it is aperiodic
    /// or shorter than [`FRAME`].
    pub(crate) fn f0(&mut self, frame: &[f32]) -> Option<f32> {
        let frame = frame.get(..FRAME)?;
        let window = &frame[..WINDOW];
        self.cmnd[0] = 1.0;
        let mut running = 0.0f32;
        for lag in 1..=MAX_LAG {
            let diff = squared_difference(window, &frame[lag..lag + WINDOW]);
            running += diff;
            self.cmnd[lag] = if running > 0.0 { diff * lag as f32 / running } else { 1.0 };
        }
        let lag = self.first_dip()?;
        let refined = self.interpolate(lag);
        let f0 = RATE_HZ / refined;
        (f0.is_finite() && (MIN_F0_HZ..=MAX_F0_HZ).contains(&f0)).then_some(f0)
    }

    /// The first lag under [`THRESHOLD`], walked down to its local minimum.
    fn first_dip(&self) -> Option<usize> {
        let mut lag = (MIN_LAG..MAX_LAG).find(|&lag| self.cmnd[lag] < THRESHOLD)?;
        while lag + 1 < MAX_LAG && self.cmnd[lag + 1] < self.cmnd[lag] {
            lag += 1;
        }
        Some(lag)
    }

    fn interpolate(&self, lag: usize) -> f32 {
        let (Some(&before), Some(&at), Some(&after)) =
            (self.cmnd.get(lag - 1), self.cmnd.get(lag), self.cmnd.get(lag + 1))
        else {
            return lag as f32;
        };
        let curvature = before + after - 2.0 * at;
        if curvature.abs() < f32::EPSILON {
            return lag as f32;
        }
        let shift = (0.5 * (before - after) / curvature).clamp(-1.0, 1.0);
        lag as f32 + shift
    }
}

/// Σ (a - b)², in eight independent lanes so that the compiler can use SIMD
/// (a single running f32 sum must be added in order and cannot be vectorised).
fn squared_difference(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut lanes = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 =
        a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            let d = x[lane] - y[lane];
            lanes[lane] += d * d;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, harmonics: usize) -> Vec<f32> {
        (0..FRAME)
            .map(|n| {
                let t = n as f32 / RATE_HZ;
                (1..=harmonics)
                    .map(|k| (2.0 * std::f32::consts::PI * hz * k as f32 * t).sin() / k as f32)
                    .sum::<f32>()
                    * 0.3
            })
            .collect()
    }

    #[test]
    fn finds_the_fundamental_of_a_harmonic_tone() {
        let f0 = Yin::new().f0(&tone(120.0, 8)).expect("voiced");
        assert!((f0 - 120.0).abs() < 1.5, "{f0}");
    }

    #[test]
    fn a_short_frame_or_silence_is_unvoiced() {
        assert_eq!(Yin::new().f0(&[0.1; 10]), None);
        assert_eq!(Yin::new().f0(&vec![0.0; FRAME]), None);
    }
}
