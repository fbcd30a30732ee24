//! The minimal reference harness: whisper.cpp's C API called directly through
//! the raw bindings whisper-rs re-exports, with the decode settings voicebotd
//! uses (greedy best_of 1, 2 threads, en, no context, no timestamps, blank and
//! non-speech tokens suppressed, no-speech threshold 0.6).
//!
//! It decodes with `whisper_full` on the context's own state, so
//! `whisper_print_timings` can report whisper.cpp's counters (fallbacks,
//! encoder and decoder passes) for the investigation of `audio_ctx`.
//!
//! Context parameters match whisper-rs's defaults (CPU, flash attention off),
//! not whisper.cpp's C defaults (flash attention on), unless asked.

use std::ffi::{CStr, CString, c_char, c_void};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;
use whisper_rs::whisper_rs_sys as sys;

/// whisper.cpp log lines are captured here while `CAPTURE` is set, else dropped.
static LOG: Mutex<Option<String>> = Mutex::new(None);

unsafe extern "C" fn log_sink(_level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: whisper.cpp passes a NUL-terminated string valid for this call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    if let Ok(mut log) = LOG.lock()
        && let Some(buffer) = log.as_mut()
    {
        buffer.push_str(&text);
    }
}

/// Routes whisper.cpp's log to the (normally silent) sink. whisper-rs installs
/// its own hook when voicebotd loads a model, so call this again after loading.
pub(crate) fn silence_whisper_logs() {
    // SAFETY: the callback is a plain function valid for the program's life.
    unsafe { sys::whisper_log_set(Some(log_sink), std::ptr::null_mut()) };
}

/// whisper.cpp's build features, e.g. `AVX2 = 1 | AVX512 = 0`.
pub(crate) fn system_info() -> String {
    // SAFETY: returns a pointer to a static string.
    unsafe { CStr::from_ptr(sys::whisper_print_system_info()) }.to_string_lossy().trim().to_owned()
}

/// Decode settings of one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decode {
    pub(crate) threads: i32,
    /// 0: the model's full 1500 frames (30 s).
    pub(crate) audio_ctx: i32,
    pub(crate) temperature_fallback: bool,
    pub(crate) timestamps: bool,
}

impl Decode {
    pub(crate) fn voicebotd_like(audio_ctx: i32, temperature_fallback: bool) -> Decode {
        Decode { threads: crate::stats::THREADS as i32, audio_ctx, temperature_fallback, timestamps: false }
    }
}

/// whisper.cpp's counters for one call (from `whisper_print_timings`).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Counters {
    pub(crate) fallbacks_p: i64,
    pub(crate) fallbacks_h: i64,
    pub(crate) encode_runs: i64,
    pub(crate) encode_ms: f64,
    pub(crate) decode_runs: i64,
    pub(crate) decode_ms: f64,
    pub(crate) batchd_runs: i64,
    pub(crate) batchd_ms: f64,
    pub(crate) mel_ms: f64,
}

/// A whisper.cpp context with its default state.
pub(crate) struct Reference {
    ctx: *mut sys::whisper_context,
    /// Cumulative fallback counts (whisper_reset_timings keeps them).
    fallbacks: (i64, i64),
}

/// The language string must outlive the params that point at it.
const EN: &CStr = c"en";

impl Reference {
    /// Loads `model` on the CPU. whisper.cpp's C default turns flash attention
    /// on; whisper-rs (and so voicebotd) turns it off, so the like-for-like
    /// reference passes `false`.
    pub(crate) fn load(model: &Path, flash_attn: bool) -> Result<Reference> {
        let path = CString::new(model.to_string_lossy().as_bytes())?;
        // SAFETY: plain C calls; the path is a valid C string for the call.
        let ctx = unsafe {
            let mut params = sys::whisper_context_default_params();
            params.use_gpu = false;
            params.flash_attn = flash_attn;
            sys::whisper_init_from_file_with_params(path.as_ptr(), params)
        };
        if ctx.is_null() {
            bail!("whisper.cpp could not load {}", model.display());
        }
        Ok(Reference { ctx, fallbacks: (0, 0) })
    }

    /// Transcribes 16 kHz audio; returns the text and the wall time.
    pub(crate) fn transcribe(&mut self, pcm: &[f32], decode: Decode) -> Result<(String, f64)> {
        // SAFETY: default params from the library; the strings they point at
        // (EN) are static.
        let mut params = unsafe {
            sys::whisper_full_default_params(sys::whisper_sampling_strategy_WHISPER_SAMPLING_GREEDY)
        };
        params.greedy.best_of = 1;
        params.n_threads = decode.threads;
        params.language = EN.as_ptr();
        params.no_context = true;
        params.no_timestamps = !decode.timestamps;
        params.suppress_blank = true;
        params.suppress_nst = true;
        params.no_speech_thold = 0.6;
        params.print_progress = false;
        params.print_realtime = false;
        params.print_special = false;
        params.print_timestamps = false;
        if !decode.temperature_fallback {
            params.temperature_inc = 0.0;
        }
        params.audio_ctx = decode.audio_ctx;
        let samples = padded(pcm);
        let started = Instant::now();
        // SAFETY: ctx is live; samples outlive the call.
        let rc =
            unsafe { sys::whisper_full(self.ctx, params, samples.as_ptr(), i32::try_from(samples.len())?) };
        let mut text = String::new();
        // SAFETY: segment indices below n_segments; texts are copied at once.
        unsafe {
            for i in 0..sys::whisper_full_n_segments(self.ctx) {
                let piece = sys::whisper_full_get_segment_text(self.ctx, i);
                if !piece.is_null() {
                    text.push_str(&CStr::from_ptr(piece).to_string_lossy());
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        if rc != 0 {
            bail!("whisper_full failed: {rc}");
        }
        Ok((text.trim().to_owned(), seconds))
    }

    /// As [`Reference::transcribe`], with whisper.cpp's counters for the call.
    pub(crate) fn transcribe_counted(
        &mut self,
        pcm: &[f32],
        decode: Decode,
    ) -> Result<(String, f64, Counters)> {
        // SAFETY: ctx is live.
        unsafe { sys::whisper_reset_timings(self.ctx) };
        let (text, seconds) = self.transcribe(pcm, decode)?;
        let mut counters = self.counters();
        let total = (counters.fallbacks_p, counters.fallbacks_h);
        counters.fallbacks_p -= self.fallbacks.0;
        counters.fallbacks_h -= self.fallbacks.1;
        self.fallbacks = total;
        Ok((text, seconds, counters))
    }

    fn counters(&self) -> Counters {
        if let Ok(mut log) = LOG.lock() {
            *log = Some(String::new());
        }
        silence_whisper_logs();
        // SAFETY: ctx is live; the output goes to log_sink.
        unsafe { sys::whisper_print_timings(self.ctx) };
        let text = LOG.lock().ok().and_then(|mut log| log.take()).unwrap_or_default();
        parse_timings(&text)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        // SAFETY: ctx came from whisper_init and is freed once.
        unsafe { sys::whisper_free(self.ctx) };
    }
}

/// voicebotd pads input shorter than 1.25 s (whisper.cpp ignores < 1 s); the
/// reference does the same so both decode identical samples.
fn padded(pcm: &[f32]) -> Vec<f32> {
    let mut audio = pcm.to_vec();
    if audio.len() < 20_000 {
        audio.resize(20_000, 0.0);
    }
    audio
}

/// Parses `whisper_print_timings` output.
fn parse_timings(text: &str) -> Counters {
    let mut c = Counters::default();
    for line in text.lines() {
        let Some((_, rest)) = line.split_once("whisper_print_timings:") else {
            continue;
        };
        let rest = rest.trim();
        let numbers: Vec<f64> = rest
            .split(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
            .filter(|s| !s.is_empty() && *s != ".")
            .filter_map(|s| s.parse().ok())
            .collect();
        let get = |i: usize| numbers.get(i).copied().unwrap_or(0.0);
        if rest.starts_with("fallbacks") {
            c.fallbacks_p = get(0) as i64;
            c.fallbacks_h = get(1) as i64;
        } else if rest.starts_with("mel time") {
            c.mel_ms = get(0);
        } else if rest.starts_with("encode time") {
            c.encode_ms = get(0);
            c.encode_runs = get(1) as i64;
        } else if rest.starts_with("decode time") {
            c.decode_ms = get(0);
            c.decode_runs = get(1) as i64;
        } else if rest.starts_with("batchd time") {
            c.batchd_ms = get(0);
            c.batchd_runs = get(1) as i64;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::parse_timings;

    #[test]
    fn timings_are_parsed() {
        let text = "whisper_print_timings:     fallbacks =   2 p /   1 h\n\
                    whisper_print_timings:      mel time =    12.50 ms\n\
                    whisper_print_timings:   encode time =   700.00 ms /     3 runs (  233.33 ms per run)\n\
                    whisper_print_timings:   decode time =    40.00 ms /    20 runs (    2.00 ms per run)\n";
        let c = parse_timings(text);
        assert_eq!((c.fallbacks_p, c.fallbacks_h), (2, 1));
        assert_eq!(c.encode_runs, 3);
        assert_eq!(c.decode_runs, 20);
        assert!((c.encode_ms - 700.0).abs() < 1e-9);
        assert!((c.mel_ms - 12.5).abs() < 1e-9);
    }
}
