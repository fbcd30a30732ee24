//! Turns per-frame speech probabilities into speech segments (sans-IO).
//!
//! The rules follow Silero's reference `get_speech_timestamps`: speech starts when
//! a frame reaches `threshold`, and ends once the probability has stayed below
//! `threshold - 0.15` for `min_silence`. Segments shorter than `min_speech` are
//! dropped, and kept ones are padded by `pad` on each side. Positions are in
//! samples at the VAD's rate, so the segmenter needs no clock of its own.

/// Segmentation parameters, in samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmenterConfig {
    pub threshold: f32,
    pub min_speech: usize,
    pub min_silence: usize,
    pub pad: usize,
}

impl SegmenterConfig {
    /// Builds a config from milliseconds at `sample_rate`.
    pub fn from_millis(
        threshold: f32,
        min_speech_ms: u32,
        min_silence_ms: u32,
        pad_ms: u32,
        sample_rate: u32,
    ) -> Self {
        let samples = |ms: u32| (u64::from(ms) * u64::from(sample_rate) / 1000) as usize;
        SegmenterConfig {
            threshold,
            min_speech: samples(min_speech_ms),
            min_silence: samples(min_silence_ms),
            pad: samples(pad_ms),
        }
    }
}

/// A span of speech, `[start, end)` in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
}

impl Segment {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Incremental segmenter: feed one probability per frame, collect segments.
#[derive(Debug, Clone)]
pub struct SpeechSegmenter {
    config: SegmenterConfig,
    frame_len: usize,
    position: usize,
    speech_start: Option<usize>,
    silence_start: Option<usize>,
}

impl SpeechSegmenter {
    pub fn new(config: SegmenterConfig, frame_len: usize) -> Self {
        SpeechSegmenter { config, frame_len, position: 0, speech_start: None, silence_start: None }
    }

    /// True while inside a speech segment.
    pub fn in_speech(&self) -> bool {
        self.speech_start.is_some()
    }

    /// Feeds the probability of the next frame; returns a segment when one closes.
    pub fn push(&mut self, probability: f32) -> Option<Segment> {
        let frame_start = self.position;
        self.position += self.frame_len;
        let negative = self.config.threshold - 0.15;
        match self.speech_start {
            None => {
                if probability >= self.config.threshold {
                    self.speech_start = Some(frame_start);
                }
                None
            }
            Some(start) => {
                if probability >= self.config.threshold {
                    self.silence_start = None;
                    return None;
                }
                if probability >= negative {
                    return None;
                }
                let silence_start = *self.silence_start.get_or_insert(frame_start);
                if self.position - silence_start < self.config.min_silence {
                    return None;
                }
                self.speech_start = None;
                self.silence_start = None;
                self.close(start, silence_start)
            }
        }
    }

    /// Closes an open segment at the end of the audio (`total` samples).
    pub fn finish(&mut self, total: usize) -> Option<Segment> {
        let start = self.speech_start.take()?;
        let end = self.silence_start.take().unwrap_or(total.max(start));
        self.close(start, end).map(|s| Segment { start: s.start, end: s.end.min(total) })
    }

    fn close(&self, start: usize, end: usize) -> Option<Segment> {
        if end - start < self.config.min_speech {
            return None;
        }
        Some(Segment { start: start.saturating_sub(self.config.pad), end: end + self.config.pad })
    }
}

/// Segments a whole clip from its frame probabilities and merges overlaps.
pub fn segment_all(
    config: SegmenterConfig,
    frame_len: usize,
    probabilities: &[f32],
    total: usize,
) -> Vec<Segment> {
    let mut segmenter = SpeechSegmenter::new(config, frame_len);
    let mut segments: Vec<Segment> = Vec::new();
    let mut closed: Vec<Segment> = probabilities.iter().filter_map(|&p| segmenter.push(p)).collect();
    closed.extend(segmenter.finish(total));
    for segment in closed {
        let segment = Segment { start: segment.start, end: segment.end.min(total) };
        match segments.last_mut() {
            Some(last) if segment.start <= last.end => last.end = last.end.max(segment.end),
            _ => segments.push(segment),
        }
    }
    segments
}

/// Runs a VAD over a whole 16 kHz clip and returns its speech segments.
///
/// # Errors
/// Fails when the VAD fails.
pub fn detect_speech(
    vad: &mut dyn crate::engine::VadStream,
    frame_len: usize,
    pcm_16k: &[f32],
    config: SegmenterConfig,
) -> Result<Vec<Segment>, crate::EngineError> {
    let mut probabilities = Vec::with_capacity(pcm_16k.len() / frame_len + 1);
    let mut frame = vec![0.0; frame_len];
    for chunk in pcm_16k.chunks(frame_len) {
        frame[..chunk.len()].copy_from_slice(chunk);
        frame[chunk.len()..].fill(0.0);
        probabilities.push(vad.speech_probability(&frame)?);
    }
    Ok(segment_all(config, frame_len, &probabilities, pcm_16k.len()))
}

/// The audio from the start of the first segment to the end of the last, so
/// that pauses inside an utterance stay as spoken. Empty when there is no speech.
pub fn speech_span<'a>(pcm: &'a [f32], segments: &[Segment]) -> &'a [f32] {
    match (segments.first(), segments.last()) {
        (Some(first), Some(last)) => &pcm[first.start.min(pcm.len())..last.end.min(pcm.len())],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: usize = 512;

    fn config() -> SegmenterConfig {
        SegmenterConfig::from_millis(0.5, 250, 100, 30, 16_000)
    }

    fn probs(pattern: &[(f32, usize)]) -> Vec<f32> {
        pattern.iter().flat_map(|&(p, n)| std::iter::repeat_n(p, n)).collect()
    }

    #[test]
    fn silence_yields_no_segment() {
        let p = probs(&[(0.01, 100)]);
        assert!(segment_all(config(), FRAME, &p, 100 * FRAME).is_empty());
    }

    #[test]
    fn one_utterance_yields_one_padded_segment() {
        let p = probs(&[(0.0, 10), (0.9, 20), (0.0, 20)]);
        let segs = segment_all(config(), FRAME, &p, 50 * FRAME);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].start, 10 * FRAME - 480);
        assert_eq!(segs[0].end, 30 * FRAME + 480);
    }

    #[test]
    fn a_blip_shorter_than_min_speech_is_dropped() {
        let p = probs(&[(0.0, 10), (0.9, 3), (0.0, 20)]);
        assert!(segment_all(config(), FRAME, &p, 33 * FRAME).is_empty());
    }

    #[test]
    fn a_short_pause_does_not_split_speech() {
        let p = probs(&[(0.9, 20), (0.1, 2), (0.9, 20), (0.0, 10)]);
        assert_eq!(segment_all(config(), FRAME, &p, 52 * FRAME).len(), 1);
    }

    #[test]
    fn hysteresis_keeps_speech_between_the_thresholds() {
        let p = probs(&[(0.9, 10), (0.4, 30), (0.0, 10)]);
        let segs = segment_all(config(), FRAME, &p, 50 * FRAME);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].end, 40 * FRAME + 480);
    }

    #[test]
    fn speech_running_to_the_end_is_closed_by_finish() {
        let p = probs(&[(0.0, 5), (0.9, 30)]);
        let segs = segment_all(config(), FRAME, &p, 35 * FRAME);
        assert_eq!(segs, vec![Segment { start: 5 * FRAME - 480, end: 35 * FRAME }]);
    }

    struct ScriptedVad(Vec<f32>);

    impl crate::engine::VadStream for ScriptedVad {
        fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, crate::EngineError> {
            assert_eq!(frame.len(), FRAME);
            Ok(if self.0.is_empty() { 0.0 } else { self.0.remove(0) })
        }
    }

    #[test]
    fn detect_speech_feeds_full_frames_and_pads_the_tail() {
        let mut vad = ScriptedVad(probs(&[(0.0, 4), (0.9, 12)]));
        let pcm = vec![0.0; 15 * FRAME + 100];
        let segs = detect_speech(&mut vad, FRAME, &pcm, config()).unwrap();
        assert_eq!(segs, vec![Segment { start: 4 * FRAME - 480, end: pcm.len() }]);
        assert_eq!(speech_span(&pcm, &segs).len(), pcm.len() - (4 * FRAME - 480));
    }

    #[test]
    fn no_segments_means_an_empty_span() {
        assert!(speech_span(&[0.0; 10], &[]).is_empty());
    }

    #[test]
    fn a_long_pause_splits_two_utterances() {
        let p = probs(&[(0.9, 20), (0.0, 20), (0.9, 20), (0.0, 5)]);
        assert_eq!(segment_all(config(), FRAME, &p, 65 * FRAME).len(), 2);
    }
}
