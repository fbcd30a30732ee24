//! Whisper ASR through whisper-rs (whisper.cpp).
//!
//! Two models may be loaded, each once per process: an English-only one
//! (tiny.en by default, fast) and a multilingual one (base) for Chinese, other
//! languages and detection. A stream holds one decoder state per model, made on
//! first use and reused for every later turn of the call.
//!
//! Silence and noise must never become text. Callers gate audio with the VAD
//! first; here blank and non-speech tokens are suppressed, segments Whisper
//! itself judges to be non-speech are dropped, and bracketed annotations such
//! as `[BLANK_AUDIO]` are removed.

use std::path::Path;
use std::sync::Arc;

use voicebot_core::engine::{RecognitionOptions, RecognizerStream};
use voicebot_core::{EngineError, Language, LanguageChoice, SpeechRecognizer, Transcript};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

const ENGINE: &str = "whisper";
/// whisper.cpp ignores input shorter than one second; pad up to this.
const MIN_SAMPLES: usize = 16_000 * 5 / 4;
/// Nudges Whisper towards simplified Chinese script.
const CHINESE_PROMPT: &str = "以下是普通话的句子。";

/// Decoding settings shared by every stream.
#[derive(Debug, Clone)]
pub struct WhisperSettings {
    pub threads: u32,
    pub no_speech_threshold: f32,
    /// Size the encoder's context to the utterance instead of a 30 s window.
    pub fit_audio_ctx: bool,
    /// Re-decode at higher temperatures when greedy decoding looks wrong.
    pub temperature_fallback: bool,
    /// With language detection, the languages callers may speak (e.g. en, zh):
    /// the most probable of these wins, so Mandarin is never decoded as Japanese.
    pub detect_among: Vec<String>,
}

/// Encoder frames are 20 ms: 320 samples at 16 kHz.
const SAMPLES_PER_AUDIO_CTX: usize = 320;
const FULL_AUDIO_CTX: usize = 1500;
/// The encoder window language detection uses: 384 frames, 7.68 s.
const DETECT_AUDIO_CTX: i32 = 384;

/// The smallest fitted window: 512 frames, 10.24 s. Narrower windows (192–256
/// frames for a 2–3 s turn) make tiny.en repeat the sentence until the token
/// limit and drop leading words (see BENCHMARKS.md, "audio_ctx").
const FIT_MIN_AUDIO_CTX: usize = 512;

/// The encoder context for `samples` of audio: the utterance plus a margin,
/// rounded up to a multiple of 64, at least [`FIT_MIN_AUDIO_CTX`] and never
/// more than the full 30 s window.
pub fn fitted_audio_ctx(samples: usize) -> usize {
    let needed = samples.div_ceil(SAMPLES_PER_AUDIO_CTX) + 64;
    (needed.div_ceil(64) * 64).clamp(FIT_MIN_AUDIO_CTX, FULL_AUDIO_CTX)
}

/// The loaded Whisper models.
pub struct WhisperRecognizer {
    english: Option<Arc<WhisperContext>>,
    multilingual: Option<Arc<WhisperContext>>,
    settings: WhisperSettings,
}

impl WhisperRecognizer {
    /// Loads the given model files (either may be absent, not both).
    ///
    /// # Errors
    /// `Load` when whisper.cpp rejects a file.
    pub fn load(
        english: Option<&Path>,
        multilingual: Option<&Path>,
        settings: WhisperSettings,
    ) -> Result<WhisperRecognizer, EngineError> {
        whisper_rs::install_logging_hooks();
        let english = english.map(load_context).transpose()?;
        let multilingual = multilingual.map(load_context).transpose()?;
        if english.is_none() && multilingual.is_none() {
            return Err(EngineError::Load {
                engine: ENGINE,
                path: Default::default(),
                reason: "no Whisper model configured".into(),
            });
        }
        Ok(WhisperRecognizer { english, multilingual, settings })
    }
}

fn load_context(path: &Path) -> Result<Arc<WhisperContext>, EngineError> {
    let mut params = WhisperContextParameters::default();
    params.use_gpu(cfg!(feature = "cuda"));
    WhisperContext::new_with_params(path, params).map(Arc::new).map_err(|e| EngineError::Load {
        engine: ENGINE,
        path: path.to_path_buf(),
        reason: format!("{e} (is it a ggml Whisper model?)"),
    })
}

impl SpeechRecognizer for WhisperRecognizer {
    fn new_stream(&self) -> Result<Box<dyn RecognizerStream>, EngineError> {
        Ok(Box::new(WhisperStream {
            english: self.english.clone().map(ModelState::new),
            multilingual: self.multilingual.clone().map(ModelState::new),
            settings: self.settings.clone(),
        }))
    }
}

/// A model with its per-call state, created on first use.
struct ModelState {
    context: Arc<WhisperContext>,
    state: Option<WhisperState>,
    /// Used only for language detection (see [`ModelState::detection_state`]).
    detection: Option<WhisperState>,
}

impl ModelState {
    fn new(context: Arc<WhisperContext>) -> Self {
        ModelState { context, state: None, detection: None }
    }

    fn state(&mut self) -> Result<&mut WhisperState, EngineError> {
        if self.state.is_none() {
            let state = self.context.create_state().map_err(inference)?;
            self.state = Some(state);
        }
        self.state.as_mut().ok_or_else(|| inference("state missing"))
    }

    /// A state whose encoder window is [`DETECT_AUDIO_CTX`] frames.
    ///
    /// whisper.cpp's language detection ignores `audio_ctx` and encodes the
    /// state's last-used window, a full 30 s on a fresh state. This state is
    /// primed once with one short decode at the detection window and never
    /// used for anything else, so every detection encodes only the first
    /// 7.7 s of a turn: enough to tell the language, at a quarter of the cost.
    fn detection_state(&mut self, threads: u32) -> Result<&mut WhisperState, EngineError> {
        if self.detection.is_none() {
            let mut state = self.context.create_state().map_err(inference)?;
            let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
            params.set_n_threads(threads as i32);
            params.set_language(Some("en"));
            params.set_audio_ctx(DETECT_AUDIO_CTX);
            params.set_max_tokens(1);
            params.set_temperature_inc(0.0);
            params.set_print_progress(false);
            params.set_print_realtime(false);
            params.set_print_special(false);
            params.set_print_timestamps(false);
            state.full(params, &vec![0.0; MIN_SAMPLES]).map_err(inference)?;
            self.detection = Some(state);
        }
        self.detection.as_mut().ok_or_else(|| inference("detection state missing"))
    }
}

struct WhisperStream {
    english: Option<ModelState>,
    multilingual: Option<ModelState>,
    settings: WhisperSettings,
}

fn inference(reason: impl ToString) -> EngineError {
    EngineError::Inference { engine: ENGINE, reason: reason.to_string() }
}

impl RecognizerStream for WhisperStream {
    fn prepare(&mut self, language: &LanguageChoice) -> Result<(), EngineError> {
        let threads = self.settings.threads;
        if let Some(english) = self.english.as_mut() {
            english.state()?;
        }
        if let Some(multilingual) = self.multilingual.as_mut() {
            multilingual.state()?;
            if *language == LanguageChoice::Auto {
                multilingual.detection_state(threads)?;
            }
        }
        Ok(())
    }

    fn transcribe(
        &mut self,
        pcm_16k: &[f32],
        options: &RecognitionOptions,
    ) -> Result<Transcript, EngineError> {
        let settings = &self.settings;
        let audio = padded(pcm_16k);
        match &options.language {
            LanguageChoice::Fixed(Language::En) => {
                let model =
                    self.english.as_mut().or(self.multilingual.as_mut()).ok_or_else(|| unsupported("en"))?;
                decode(model.state()?, &audio, Some("en"), settings)
            }
            LanguageChoice::Fixed(other) => {
                let model = self.multilingual.as_mut().ok_or_else(|| unsupported(other.code()))?;
                decode(model.state()?, &audio, Some(other.code()), settings)
            }
            LanguageChoice::Auto => match (self.multilingual.as_mut(), self.english.as_mut()) {
                (Some(multilingual), english) => {
                    let detection = multilingual.detection_state(settings.threads)?;
                    let language = detect_language(detection, &audio, settings)?;
                    match (language.as_str(), english) {
                        // English goes to the faster English-only model.
                        ("en", Some(english)) => decode(english.state()?, &audio, Some("en"), settings),
                        (code, _) => decode(multilingual.state()?, &audio, Some(code), settings),
                    }
                }
                (None, Some(english)) => decode(english.state()?, &audio, Some("en"), settings),
                (None, None) => Err(unsupported("auto")),
            },
        }
    }
}

/// Pads audio shorter than whisper.cpp's one-second minimum with silence.
fn padded(pcm_16k: &[f32]) -> Vec<f32> {
    let mut audio = pcm_16k.to_vec();
    if audio.len() < MIN_SAMPLES {
        audio.resize(MIN_SAMPLES, 0.0);
    }
    audio
}

/// The most probable of the configured languages (all languages if none are configured).
fn detect_language(
    state: &mut WhisperState,
    pcm_16k: &[f32],
    settings: &WhisperSettings,
) -> Result<String, EngineError> {
    let threads = settings.threads as usize;
    state.pcm_to_mel(pcm_16k, threads).map_err(inference)?;
    let (best, probabilities) = state.lang_detect(0, threads).map_err(inference)?;
    let candidates = settings
        .detect_among
        .iter()
        .filter_map(|code| whisper_rs::get_lang_id(code).map(|id| (code, id)))
        .filter_map(|(code, id)| probabilities.get(id as usize).map(|p| (code, *p)));
    let chosen = candidates.max_by(|a, b| a.1.total_cmp(&b.1)).map(|(code, _)| code.clone());
    match chosen {
        Some(code) => Ok(code),
        None => {
            whisper_rs::get_lang_str(best).map(str::to_owned).ok_or_else(|| inference("no language detected"))
        }
    }
}

fn unsupported(language: &str) -> EngineError {
    EngineError::UnsupportedLanguage { engine: ENGINE, language: language.to_owned() }
}

fn decode(
    state: &mut WhisperState,
    audio: &[f32],
    language: Option<&str>,
    settings: &WhisperSettings,
) -> Result<Transcript, EngineError> {
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(settings.threads as i32);
    params.set_language(Some(language.unwrap_or("auto")));
    params.set_no_context(true);
    params.set_no_timestamps(true);
    params.set_suppress_blank(true);
    params.set_suppress_nst(true);
    params.set_no_speech_thold(settings.no_speech_threshold);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    if !settings.temperature_fallback {
        params.set_temperature_inc(0.0);
    }
    if settings.fit_audio_ctx {
        params.set_audio_ctx(fitted_audio_ctx(audio.len()) as i32);
    }
    if language == Some("zh") {
        params.set_initial_prompt(CHINESE_PROMPT);
    }
    state.full(params, audio).map_err(inference)?;

    let mut text = String::new();
    let mut no_speech_sum = 0.0;
    let mut segments = 0;
    let (mut token_probability_sum, mut text_tokens) = (0.0f32, 0u32);
    for segment in state.as_iter() {
        let p = segment.no_speech_probability();
        no_speech_sum += p;
        segments += 1;
        if p > settings.no_speech_threshold {
            continue;
        }
        let piece = segment.to_str_lossy().map_err(inference)?;
        text.push_str(&piece);
        for token in (0..segment.n_tokens()).filter_map(|i| segment.get_token(i)) {
            // Special tokens ([_BEG_], <|en|>, timestamps) say nothing about the words.
            let special = token.to_str_lossy().is_ok_and(|t| t.starts_with("[_") || t.starts_with("<|"));
            if !special {
                token_probability_sum += token.token_probability();
                text_tokens += 1;
            }
        }
    }
    let detected = whisper_rs::get_lang_str(state.full_lang_id_from_state())
        .map(Language::from_code)
        .unwrap_or(Language::En);
    let language = language.map(Language::from_code).unwrap_or(detected);
    Ok(Transcript {
        text: clean_text(&text),
        language,
        no_speech_probability: if segments == 0 { 1.0 } else { no_speech_sum / segments as f32 },
        confidence: if text_tokens == 0 { 0.0 } else { token_probability_sum / text_tokens as f32 },
    })
}

/// Removes bracketed annotations (`[BLANK_AUDIO]`, `(music)`) and tidies spaces.
pub fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' | '(' | '（' | '【' => depth += 1,
            ']' | ')' | '）' | '】' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::{clean_text, fitted_audio_ctx};

    #[test]
    fn audio_ctx_fits_the_utterance_with_a_margin() {
        assert_eq!(fitted_audio_ctx(3 * 16_000), 512); // the floor
        assert_eq!(fitted_audio_ctx(11 * 16_000), 640); // 550 frames + 64, rounded to 64
        assert_eq!(fitted_audio_ctx(40 * 16_000), 1500);
    }

    #[test]
    fn annotations_are_removed() {
        assert_eq!(clean_text(" [BLANK_AUDIO]"), "");
        assert_eq!(clean_text(" Hello (music) there. "), "Hello there.");
    }
}
