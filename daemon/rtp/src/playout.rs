//! The bot's outgoing speech for one call, cut into 20 ms frames.
//!
//! Clips (one synthesized utterance each) queue in order; every tick takes one
//! frame. A clip is reported finished in the tick that plays its last sample, so
//! the conversation knows when playback really ended. [`PlayoutQueue::flush`]
//! drops everything queued at once (barge-in) and names the clips it cut.
//!
//! Bounded by its owner: the media task only moves clips here from its bounded
//! channel while less than a second is queued.

use std::collections::VecDeque;

use crate::FRAME_SAMPLES;

/// Names a clip so its end can be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClipId(pub u64);

/// One tick's worth of bot speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayoutFrame {
    /// 160 samples at 8 kHz, zero-padded after the last clip; `None` when nothing was queued.
    pub samples: Option<[i16; FRAME_SAMPLES]>,
    /// Clips whose last sample is in this frame (or that were empty).
    pub finished: Vec<ClipId>,
}

#[derive(Debug, Default, Clone)]
pub struct PlayoutQueue {
    clips: VecDeque<(ClipId, Vec<i16>, usize)>,
    queued_samples: usize,
}

impl PlayoutQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a clip of 8 kHz samples.
    pub fn push(&mut self, id: ClipId, samples: Vec<i16>) {
        self.queued_samples += samples.len();
        self.clips.push_back((id, samples, 0));
    }

    /// Samples not yet played.
    pub fn queued_samples(&self) -> usize {
        self.queued_samples
    }

    pub fn is_empty(&self) -> bool {
        self.clips.is_empty()
    }

    /// The next frame.
    pub fn next_frame(&mut self) -> PlayoutFrame {
        if self.clips.is_empty() {
            return PlayoutFrame { samples: None, finished: Vec::new() };
        }
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut filled = 0;
        let mut finished = Vec::new();
        while let Some((id, samples, pos)) = self.clips.front_mut() {
            let take = (samples.len() - *pos).min(FRAME_SAMPLES - filled);
            frame[filled..filled + take].copy_from_slice(&samples[*pos..*pos + take]);
            filled += take;
            *pos += take;
            self.queued_samples -= take;
            if *pos == samples.len() {
                finished.push(*id);
                self.clips.pop_front();
            }
            if filled == FRAME_SAMPLES {
                break;
            }
        }
        PlayoutFrame { samples: Some(frame), finished }
    }

    /// Drops everything queued; returns the clips cut, in order.
    pub fn flush(&mut self) -> Vec<ClipId> {
        self.queued_samples = 0;
        self.clips.drain(..).map(|(id, ..)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_are_cut_into_frames_and_reported_finished_in_their_last_frame() {
        let mut queue = PlayoutQueue::new();
        queue.push(ClipId(1), vec![1; 200]);
        queue.push(ClipId(2), vec![2; 100]);
        let a = queue.next_frame();
        assert_eq!(a.finished, vec![]);
        let b = queue.next_frame();
        assert_eq!(b.finished, vec![ClipId(1), ClipId(2)]);
        let samples = b.samples.unwrap();
        assert_eq!((samples[0], samples[39], samples[40], samples[139], samples[140]), (1, 1, 2, 2, 0));
        assert_eq!(queue.next_frame(), PlayoutFrame { samples: None, finished: vec![] });
        assert_eq!(queue.queued_samples(), 0);
    }

    #[test]
    fn flush_drops_everything_and_names_the_clips_cut() {
        let mut queue = PlayoutQueue::new();
        queue.push(ClipId(7), vec![5; 1000]);
        queue.push(ClipId(8), vec![5; 1000]);
        queue.next_frame();
        assert_eq!(queue.flush(), vec![ClipId(7), ClipId(8)]);
        assert!(queue.is_empty());
        assert_eq!(queue.queued_samples(), 0);
        assert_eq!(queue.next_frame().samples, None);
    }

    #[test]
    fn an_empty_clip_finishes_at_once() {
        let mut queue = PlayoutQueue::new();
        queue.push(ClipId(3), Vec::new());
        assert_eq!(queue.next_frame().finished, vec![ClipId(3)]);
    }
}
