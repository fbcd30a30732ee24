//! Prosodic features of one caller turn, from 16 kHz mono `f32` audio:
//! loudness, pitch level and range, and speaking rate.
//!
//! The turn is cut into 20 ms frames. A frame is *speech* when its level is
//! within [`SPEECH_BELOW_PEAK_DB`] of the loudest frame and above
//! [`SPEECH_FLOOR_DBFS`]; energy is the RMS over speech frames, so pauses do
//! not dilute it. Pitch is tracked by YIN (`pitch.rs`) on speech frames
//! of the audio decimated to 8 kHz; a frame YIN finds periodic is *voiced*.
//! The speaking rate divides the transcript's word count by the speech
//! duration (not the voiced duration: unvoiced consonants are speech too, and
//! leaving them out would overstate the rate by a third or more).
//!
//! Invariants: never panics; NaN and infinite samples count as silence and
//! samples are clamped to ±1; only the first [`MAX_SECONDS`] are analysed,
//! so the cost is bounded (≈ 1 ms of CPU per second of speech in release);
//! every returned number is finite.

use serde::Serialize;
use voicebot_core::language::is_han;

use super::pitch::Yin;

/// The sample rate [`analyze`] expects.
pub const SAMPLE_RATE_HZ: usize = 16_000;
/// Frame hop and length: 20 ms.
const HOP: usize = SAMPLE_RATE_HZ / 50;
const HOP_SECONDS: f32 = 0.02;
/// Audio beyond this is ignored; one turn is rarely longer.
pub const MAX_SECONDS: usize = 30;
/// The level reported for digital silence (instead of -∞).
pub const SILENCE_DBFS: f32 = -120.0;
/// Frames below this level are never speech.
pub const SPEECH_FLOOR_DBFS: f32 = -50.0;
/// Frames more than this below the loudest frame are pauses or breath.
pub const SPEECH_BELOW_PEAK_DB: f32 = 30.0;
/// Fewer voiced frames (100 ms) give no pitch statistics.
const MIN_VOICED_FRAMES: usize = 5;
/// Less speech than this gives no speaking rate.
const MIN_RATE_SECONDS: f32 = 0.5;
/// Han characters per spoken "word" when counting Chinese words.
pub const HAN_CHARS_PER_WORD: f32 = 1.5;

/// Prosody of one turn. Levels are dBFS with full scale = 1.0 RMS, so a
/// full-scale sine reads -3.01 dBFS.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AcousticFeatures {
    /// RMS level of the speech frames (of all audio when none is speech);
    /// [`SILENCE_DBFS`] for digital silence.
    pub energy_dbfs: f32,
    /// Median F0 of voiced frames, in Hz.
    pub pitch_median_hz: Option<f32>,
    /// 90th minus 10th percentile of F0, in semitones.
    pub pitch_range_semitones: Option<f32>,
    /// Words per second of speech.
    pub speaking_rate_wps: Option<f32>,
    /// Duration of frames with a pitch.
    pub voiced_seconds: f32,
    /// Duration of frames above the speech gate.
    pub speech_seconds: f32,
}

/// Measures one caller turn. `word_count` is the transcript's word count
/// (see [`spoken_word_count`]); 0 leaves the rate unknown.
pub fn analyze(pcm_16k: &[f32], word_count: usize) -> AcousticFeatures {
    let pcm = &pcm_16k[..pcm_16k.len().min(MAX_SECONDS * SAMPLE_RATE_HZ)];
    let frame_power: Vec<f32> = pcm.chunks(HOP).map(mean_square).collect();
    let peak = frame_power.iter().copied().fold(0.0f32, f32::max);
    let gate = db_to_power(SPEECH_FLOOR_DBFS).max(peak * db_to_power(-SPEECH_BELOW_PEAK_DB));
    let is_speech = |power: f32| power > 0.0 && power >= gate;

    let speech_frames = frame_power.iter().filter(|&&p| is_speech(p)).count();
    let energy_dbfs = if speech_frames > 0 {
        let speech_power: f32 = frame_power.iter().filter(|&&p| is_speech(p)).sum();
        power_to_db(speech_power / speech_frames as f32)
    } else {
        power_to_db(mean_square(pcm))
    };

    let low = decimate_to_8k(pcm);
    let mut yin = Yin::new();
    let mut f0s: Vec<f32> = frame_power
        .iter()
        .enumerate()
        .filter(|&(_, &p)| is_speech(p))
        .filter_map(|(k, _)| low.get(k * HOP / 2..).and_then(|frame| yin.f0(frame)))
        .collect();
    f0s.sort_by(f32::total_cmp);

    let speech_seconds = speech_frames as f32 * HOP_SECONDS;
    let enough_pitch = f0s.len() >= MIN_VOICED_FRAMES;
    AcousticFeatures {
        energy_dbfs,
        pitch_median_hz: enough_pitch.then(|| percentile(&f0s, 0.5)),
        pitch_range_semitones: enough_pitch.then(|| semitones(percentile(&f0s, 0.1), percentile(&f0s, 0.9))),
        speaking_rate_wps: (word_count > 0 && speech_seconds >= MIN_RATE_SECONDS)
            .then(|| word_count as f32 / speech_seconds),
        voiced_seconds: f0s.len() as f32 * HOP_SECONDS,
        speech_seconds,
    }
}

/// Words in a transcript for the speaking rate: Latin-script words, plus Han
/// characters divided by [`HAN_CHARS_PER_WORD`] (Mandarin words average about
/// 1.5 syllables, one syllable per character).
pub fn spoken_word_count(text: &str) -> usize {
    let mut han = 0usize;
    let mut words = 0usize;
    let mut in_word = false;
    for c in text.chars() {
        if is_han(c) {
            han += 1;
            in_word = false;
        } else if c.is_alphanumeric() || (in_word && c == '\'') {
            if !in_word {
                words += 1;
            }
            in_word = true;
        } else {
            in_word = false;
        }
    }
    words + (han as f32 / HAN_CHARS_PER_WORD).round() as usize
}

fn clean(sample: f32) -> f32 {
    if sample.is_finite() { sample.clamp(-1.0, 1.0) } else { 0.0 }
}

fn mean_square(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(clean(s)).powi(2)).sum();
    (sum / samples.len() as f64) as f32
}

fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

fn power_to_db(power: f32) -> f32 {
    if power > 0.0 && power.is_finite() { (10.0 * power.log10()).max(SILENCE_DBFS) } else { SILENCE_DBFS }
}

fn semitones(low_hz: f32, high_hz: f32) -> f32 {
    if low_hz > 0.0 && high_hz > 0.0 { 12.0 * (high_hz / low_hz).log2() } else { 0.0 }
}

/// Linear-interpolated percentile of sorted, non-empty values.
fn percentile(sorted: &[f32], p: f32) -> f32 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let position = p.clamp(0.0, 1.0) * last as f32;
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    let fraction = position - below as f32;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// Low-pass at 3.6 kHz (15-tap Hamming-windowed sinc) and keep every other
/// sample: 16 kHz to the 8 kHz the pitch tracker runs at.
fn decimate_to_8k(pcm: &[f32]) -> Vec<f32> {
    const TAPS: usize = 15;
    const CUTOFF: f32 = 3_600.0 / SAMPLE_RATE_HZ as f32;
    let mut taps = [0.0f32; TAPS];
    let centre = (TAPS / 2) as f32;
    for (k, tap) in taps.iter_mut().enumerate() {
        let x = k as f32 - centre;
        let sinc = if x == 0.0 {
            2.0 * CUTOFF
        } else {
            (2.0 * std::f32::consts::PI * CUTOFF * x).sin() / (std::f32::consts::PI * x)
        };
        let window = 0.54 - 0.46 * (2.0 * std::f32::consts::PI * k as f32 / (TAPS - 1) as f32).cos();
        *tap = sinc * window;
    }
    let gain: f32 = taps.iter().sum();
    (0..pcm.len() / 2)
        .map(|m| {
            let mut acc = 0.0;
            for (k, tap) in taps.iter().enumerate() {
                if let Some(&s) = (2 * m + k).checked_sub(TAPS / 2).and_then(|i| pcm.get(i)) {
                    acc += tap * clean(s);
                }
            }
            acc / gain
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::pitch;
    use super::*;

    /// The tail of a turn too short for one more pitch frame.
    const PITCH_FRAME_SECONDS: f32 = pitch::FRAME as f32 / pitch::RATE_HZ;

    fn sine(hz: f32, amplitude: f32, seconds: f32) -> Vec<f32> {
        let n = (seconds * SAMPLE_RATE_HZ as f32) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE_HZ as f32;
                amplitude * (2.0 * std::f32::consts::PI * hz * t).sin()
            })
            .collect()
    }

    fn assert_pitch_near(hz: f32) {
        let features = analyze(&sine(hz, 0.3, 1.0), 0);
        let median = features.pitch_median_hz.expect("a steady tone is voiced");
        assert!((median - hz).abs() / hz < 0.03, "{median} Hz for a {hz} Hz tone");
        let range = features.pitch_range_semitones.expect("range");
        assert!(range < 0.5, "a steady tone has almost no range: {range}");
        assert!(features.voiced_seconds > 1.0 - PITCH_FRAME_SECONDS - 0.05);
    }

    #[test]
    fn pitch_of_a_150_hz_tone_is_within_3_percent() {
        assert_pitch_near(150.0);
    }

    #[test]
    fn pitch_of_a_220_hz_tone_is_within_3_percent() {
        assert_pitch_near(220.0);
    }

    #[test]
    fn energy_of_a_known_sine_is_its_rms_in_dbfs() {
        let features = analyze(&sine(440.0, 0.5, 0.5), 0);
        let expected = 20.0 * (0.5f32 / 2f32.sqrt()).log10();
        assert!((features.energy_dbfs - expected).abs() < 0.1, "{}", features.energy_dbfs);
    }

    #[test]
    fn silence_has_no_pitch_and_reports_the_silence_floor() {
        let features = analyze(&vec![0.0; SAMPLE_RATE_HZ], 5);
        assert_eq!(features.pitch_median_hz, None);
        assert_eq!(features.pitch_range_semitones, None);
        assert_eq!(features.speaking_rate_wps, None);
        assert_eq!(features.energy_dbfs, SILENCE_DBFS);
        assert_eq!(features.voiced_seconds, 0.0);
    }

    #[test]
    fn empty_and_non_finite_audio_is_silence() {
        for pcm in [vec![], vec![f32::NAN; 4000], vec![f32::INFINITY, f32::NEG_INFINITY]] {
            let features = analyze(&pcm, 3);
            assert_eq!(features.energy_dbfs, SILENCE_DBFS);
            assert_eq!(features.pitch_median_hz, None);
        }
    }

    #[test]
    fn a_rising_glide_has_a_wide_pitch_range() {
        let n = 2 * SAMPLE_RATE_HZ;
        let mut phase = 0.0f32;
        let glide: Vec<f32> = (0..n)
            .map(|i| {
                let hz = 150.0 + 150.0 * i as f32 / n as f32;
                phase += 2.0 * std::f32::consts::PI * hz / SAMPLE_RATE_HZ as f32;
                0.3 * phase.sin()
            })
            .collect();
        let range = analyze(&glide, 0).pitch_range_semitones.expect("voiced");
        assert!((8.0..11.0).contains(&range), "{range} semitones for 150→300 Hz");
    }

    #[test]
    fn speaking_rate_is_words_over_speech_time() {
        let mut pcm = sine(180.0, 0.3, 2.0);
        pcm.extend(std::iter::repeat_n(0.0, SAMPLE_RATE_HZ));
        let rate = analyze(&pcm, 6).speaking_rate_wps.expect("rate");
        assert!((rate - 3.0).abs() < 0.1, "{rate} words/s; the pause must not count");
    }

    #[test]
    fn pauses_do_not_dilute_the_energy() {
        let speech = sine(200.0, 0.5, 1.0);
        let mut padded = speech.clone();
        padded.extend(std::iter::repeat_n(0.0, 2 * SAMPLE_RATE_HZ));
        let a = analyze(&speech, 0).energy_dbfs;
        let b = analyze(&padded, 0).energy_dbfs;
        assert!((a - b).abs() < 0.1, "{a} vs {b}");
    }

    #[test]
    fn chinese_words_are_counted_from_han_characters() {
        assert_eq!(spoken_word_count("where is my order"), 4);
        assert_eq!(spoken_word_count("我的快递还没到"), 5);
        assert_eq!(spoken_word_count("我的order don't到"), 4);
        assert_eq!(spoken_word_count(""), 0);
    }
}
