//! The speaker's queue of clips, at the device rate: what the playback
//! callback reads from, and what `play`/`stop` change.
//!
//! Pure and clock-free: the callback asks it to fill a buffer and learns
//! which clips have had their last sample handed over. Invariant:
//! `queued` is the number of samples not yet handed to the device, and
//! never exceeds `limit`.

use std::collections::VecDeque;

use crate::speaker::ClipId;

struct Clip {
    id: ClipId,
    samples: Vec<f32>,
    pos: usize,
}

/// Clips waiting to be played, oldest first; the front one is playing.
pub(crate) struct ClipQueue {
    clips: VecDeque<Clip>,
    next_id: u64,
    queued: usize,
    limit: usize,
}

/// The queue cannot take a clip: `queued` samples are waiting, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full {
    pub(crate) queued: usize,
    pub(crate) limit: usize,
}

impl ClipQueue {
    /// A queue that holds at most `limit` samples not yet played.
    pub(crate) fn new(limit: usize) -> ClipQueue {
        ClipQueue { clips: VecDeque::new(), next_id: 1, queued: 0, limit }
    }

    /// Queues a clip after the others.
    ///
    /// # Errors
    /// [`Full`] when it would take the queue past its limit.
    pub(crate) fn push(&mut self, samples: Vec<f32>) -> Result<ClipId, Full> {
        if self.queued + samples.len() > self.limit {
            return Err(Full { queued: self.queued, limit: self.limit });
        }
        let id = ClipId(self.next_id);
        self.next_id += 1;
        self.queued += samples.len();
        self.clips.push_back(Clip { id, samples, pos: 0 });
        Ok(id)
    }

    /// Fills `out` with the next samples (silence when nothing is queued) and
    /// appends to `finished` every clip whose last sample is now in `out`.
    pub(crate) fn fill(&mut self, out: &mut [f32], finished: &mut Vec<ClipId>) {
        let mut written = 0;
        while let Some(clip) = self.clips.front_mut() {
            let n = (clip.samples.len() - clip.pos).min(out.len() - written);
            out[written..written + n].copy_from_slice(&clip.samples[clip.pos..clip.pos + n]);
            written += n;
            clip.pos += n;
            self.queued -= n;
            if clip.pos < clip.samples.len() {
                break;
            }
            finished.push(clip.id);
            self.clips.pop_front();
        }
        out[written..].fill(0.0);
    }

    /// Drops every queued and playing clip; returns their ids, oldest first.
    pub(crate) fn stop(&mut self) -> Vec<ClipId> {
        self.queued = 0;
        self.clips.drain(..).map(|c| c.id).collect()
    }

    /// True while a clip is queued or partly played.
    pub(crate) fn is_playing(&self) -> bool {
        !self.clips.is_empty()
    }

    /// Samples not yet handed to the device.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(queue: &mut ClipQueue, n: usize) -> (Vec<f32>, Vec<ClipId>) {
        let mut out = vec![9.0; n];
        let mut finished = Vec::new();
        queue.fill(&mut out, &mut finished);
        (out, finished)
    }

    #[test]
    fn clips_play_in_order_and_finish_when_their_last_sample_is_handed_over() {
        let mut q = ClipQueue::new(100);
        let a = q.push(vec![1.0, 2.0, 3.0]).unwrap();
        let b = q.push(vec![4.0]).unwrap();
        assert_ne!(a, b);
        assert!(q.is_playing());
        assert_eq!(drain(&mut q, 2), (vec![1.0, 2.0], vec![]));
        assert_eq!(drain(&mut q, 4), (vec![3.0, 4.0, 0.0, 0.0], vec![a, b]));
        assert!(!q.is_playing());
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn a_clip_ending_exactly_at_a_buffer_edge_finishes_in_that_buffer() {
        let mut q = ClipQueue::new(100);
        let a = q.push(vec![1.0, 2.0]).unwrap();
        assert_eq!(drain(&mut q, 2), (vec![1.0, 2.0], vec![a]));
    }

    #[test]
    fn an_empty_clip_finishes_at_the_next_buffer() {
        let mut q = ClipQueue::new(100);
        let a = q.push(Vec::new()).unwrap();
        assert_eq!(drain(&mut q, 1), (vec![0.0], vec![a]));
    }

    #[test]
    fn the_idle_queue_plays_silence() {
        let mut q = ClipQueue::new(100);
        assert_eq!(drain(&mut q, 3), (vec![0.0; 3], vec![]));
    }

    #[test]
    fn stop_reports_the_playing_and_the_queued_clips_and_silences_the_output() {
        let mut q = ClipQueue::new(100);
        let a = q.push(vec![1.0; 10]).unwrap();
        let b = q.push(vec![2.0; 10]).unwrap();
        drain(&mut q, 4);
        assert_eq!(q.stop(), vec![a, b]);
        assert!(!q.is_playing());
        assert_eq!(q.queued(), 0);
        assert_eq!(drain(&mut q, 2), (vec![0.0; 2], vec![]));
        assert!(q.stop().is_empty());
    }

    #[test]
    fn the_limit_counts_only_what_is_not_yet_played() {
        let mut q = ClipQueue::new(10);
        q.push(vec![0.5; 8]).unwrap();
        assert_eq!(q.push(vec![0.5; 3]), Err(Full { queued: 8, limit: 10 }));
        drain(&mut q, 5);
        assert!(q.push(vec![0.5; 7]).is_ok());
        assert_eq!(q.queued(), 10);
    }

    #[test]
    fn ids_are_never_reused() {
        let mut q = ClipQueue::new(10);
        let a = q.push(vec![]).unwrap();
        q.stop();
        let b = q.push(vec![]).unwrap();
        assert!(b.0 > a.0);
    }
}
