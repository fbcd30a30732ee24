//! The emotional course of one call, so the dialog can react to a caller who
//! is getting angrier rather than to one bad turn.
//!
//! Invariants: memory is constant (the last [`WINDOW`] turns plus a running
//! sum), every query is O(1) and none panics, including on an empty call.

use std::collections::VecDeque;

use super::Emotion;

/// Turns the trend and the worsening test look at.
pub const WINDOW: usize = 3;
/// A fall of this many valence levels within the window is worsening.
pub const WORSENING_DROP: i8 = 2;

/// Per-call history of [`Emotion`]s; push one per caller turn.
#[derive(Debug, Clone, Default)]
pub struct Trajectory {
    recent: VecDeque<Emotion>,
    turns: usize,
    valence_sum: i64,
}

impl Trajectory {
    pub fn new() -> Trajectory {
        Trajectory { recent: VecDeque::with_capacity(WINDOW), turns: 0, valence_sum: 0 }
    }

    /// Records the latest turn.
    pub fn push(&mut self, emotion: Emotion) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.turns += 1;
        self.valence_sum += i64::from(emotion.valence);
        self.recent.push_back(emotion);
    }

    /// The latest turn's emotion.
    pub fn last(&self) -> Option<&Emotion> {
        self.recent.back()
    }

    /// Turns pushed so far.
    pub fn len(&self) -> usize {
        self.turns
    }

    pub fn is_empty(&self) -> bool {
        self.turns == 0
    }

    /// Mean valence over the whole call.
    pub fn mean_valence(&self) -> Option<f32> {
        (self.turns > 0).then(|| self.valence_sum as f32 / self.turns as f32)
    }

    /// Least-squares slope of valence per turn over the last [`WINDOW`]
    /// turns; 0 with fewer than two turns. Negative means worsening.
    pub fn trend(&self) -> f32 {
        let n = self.recent.len();
        if n < 2 {
            return 0.0;
        }
        let mean_x = (n - 1) as f32 / 2.0;
        let mean_y = self.valences().sum::<f32>() / n as f32;
        let (mut covariance, mut variance) = (0.0, 0.0);
        for (x, y) in self.valences().enumerate() {
            let dx = x as f32 - mean_x;
            covariance += dx * (y - mean_y);
            variance += dx * dx;
        }
        covariance / variance
    }

    /// Whether the caller is getting angrier: within the last [`WINDOW`] turns
    /// valence fell by at least [`WORSENING_DROP`] to below zero, or it fell
    /// on each of the last two turns to -1 or below. (A fall that ends at
    /// neutral, say a thankful caller asking a plain question, is not
    /// worsening.)
    pub fn is_worsening(&self) -> bool {
        let mut window = [0i16; WINDOW];
        let n = self.recent.len().min(WINDOW);
        for (slot, emotion) in window.iter_mut().zip(&self.recent) {
            *slot = i16::from(emotion.valence);
        }
        let Some((&last, earlier)) = window[..n].split_last() else {
            return false;
        };
        let big_drop = last < 0 && earlier.iter().any(|&v| v - last >= i16::from(WORSENING_DROP));
        let two_drops = matches!(window[..n], [a, b, c] if a > b && b > c && c <= -1);
        big_drop || two_drops
    }

    fn valences(&self) -> impl Iterator<Item = f32> + '_ {
        self.recent.iter().map(|e| f32::from(e.valence))
    }
}

#[cfg(test)]
mod tests {
    use super::super::EmotionLabel;
    use super::*;

    fn call(valences: &[i8]) -> Trajectory {
        let mut trajectory = Trajectory::new();
        for &valence in valences {
            trajectory.push(Emotion {
                valence,
                arousal: 0.3,
                label: EmotionLabel::Neutral,
                score: 0.0,
                prosody: None,
            });
        }
        trajectory
    }

    #[test]
    fn an_empty_call_has_no_trend_and_is_not_worsening() {
        let empty = call(&[]);
        assert_eq!((empty.trend(), empty.is_worsening()), (0.0, false));
        assert_eq!(empty.mean_valence(), None);
        assert!(empty.last().is_none() && empty.is_empty());
    }

    #[test]
    fn a_fall_of_two_levels_to_negative_is_worsening() {
        assert!(call(&[1, -1]).is_worsening());
        assert!(call(&[0, 0, -2]).is_worsening());
        assert!(!call(&[2, 2, 0]).is_worsening(), "ends neutral");
        assert!(call(&[0, -2, -2]).is_worsening(), "the fall is still in the window");
        assert!(call(&[i8::MAX, i8::MIN]).is_worsening(), "extreme valences do not overflow");
    }

    #[test]
    fn two_consecutive_drops_ending_negative_are_worsening() {
        assert!(call(&[1, 0, -1]).is_worsening());
        assert!(!call(&[2, 1, 0]).is_worsening());
        assert!(!call(&[-1, -1, -1]).is_worsening(), "steadily unhappy is not worsening");
    }

    #[test]
    fn only_the_last_three_turns_count_for_the_trend() {
        let trajectory = call(&[2, 2, 2, -1, -1, -1]);
        assert_eq!(trajectory.trend(), 0.0);
        assert!(!trajectory.is_worsening());
        assert_eq!(call(&[0, -1, -2]).trend(), -1.0);
        assert_eq!(call(&[-2, 0]).trend(), 2.0);
    }

    #[test]
    fn mean_valence_covers_the_whole_call() {
        let trajectory = call(&[2, 2, 2, -1, -1, -1]);
        assert_eq!(trajectory.mean_valence(), Some(0.5));
        assert_eq!(trajectory.len(), 6);
        assert_eq!(trajectory.last().map(|e| e.valence), Some(-1));
    }
}
