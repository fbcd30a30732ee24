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
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

const ENGINE: &str = "whisper";
/// whisper.cpp ignores input shorter than one second; pad up to this.
const MIN_SAMPLES: usize = 16_000 * 5 / 4;
/// Nudges Whisper towards simplified Chinese script.
const CHINESE_PROMPT: &str = "以下是普通话的句子。";

/// Decoding settings shared by every stream.
#[derive(Debug, Clone, Copy)]
pub struct WhisperSettings {
    pub threads: u32,
    pub no_speech_threshold: f32,
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
        Ok(WhisperRecognizer {
            english,
            multilingual,
            settings,
        })
    }
}

fn load_context(path: &Path) -> Result<Arc<WhisperContext>, EngineError> {
    let mut params = WhisperContextParameters::default();
    params.use_gpu(cfg!(feature = "cuda"));
    WhisperContext::new_with_params(path, params)
        .map(Arc::new)
        .map_err(|e| EngineError::Load {
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
            settings: self.settings,
        }))
    }
}

/// A model with its per-call state, created on first use.
struct ModelState {
    context: Arc<WhisperContext>,
    state: Option<WhisperState>,
}

impl ModelState {
    fn new(context: Arc<WhisperContext>) -> Self {
        ModelState {
            context,
            state: None,
        }
    }

    fn state(&mut self) -> Result<&mut WhisperState, EngineError> {
        if self.state.is_none() {
            let state = self.context.create_state().map_err(inference)?;
            self.state = Some(state);
        }
        // Just filled above.
        self.state
            .as_mut()
            .ok_or_else(|| inference("state missing"))
    }
}

struct WhisperStream {
    english: Option<ModelState>,
    multilingual: Option<ModelState>,
    settings: WhisperSettings,
}

fn inference(reason: impl ToString) -> EngineError {
    EngineError::Inference {
        engine: ENGINE,
        reason: reason.to_string(),
    }
}

impl RecognizerStream for WhisperStream {
    fn transcribe(
        &mut self,
        pcm_16k: &[f32],
        options: &RecognitionOptions,
    ) -> Result<Transcript, EngineError> {
        let settings = self.settings;
        let (model, language) = match &options.language {
            LanguageChoice::Fixed(Language::En) => {
                match (&mut self.english, &mut self.multilingual) {
                    (Some(m), _) | (None, Some(m)) => (m, Some("en")),
                    (None, None) => return Err(unsupported("en")),
                }
            }
            LanguageChoice::Fixed(other) => match &mut self.multilingual {
                Some(m) => (m, Some(other.code())),
                None => return Err(unsupported(other.code())),
            },
            LanguageChoice::Auto => match (&mut self.multilingual, &mut self.english) {
                (Some(m), _) => (m, None),
                (None, Some(m)) => (m, Some("en")),
                (None, None) => return Err(unsupported("auto")),
            },
        };
        let language_owned = language.map(str::to_owned);
        let state = model.state()?;
        decode(state, pcm_16k, language_owned.as_deref(), settings)
    }
}

fn unsupported(language: &str) -> EngineError {
    EngineError::UnsupportedLanguage {
        engine: ENGINE,
        language: language.to_owned(),
    }
}

fn decode(
    state: &mut WhisperState,
    pcm_16k: &[f32],
    language: Option<&str>,
    settings: WhisperSettings,
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
    if language == Some("zh") {
        params.set_initial_prompt(CHINESE_PROMPT);
    }
    let padded;
    let audio = if pcm_16k.len() < MIN_SAMPLES {
        padded = [pcm_16k, &vec![0.0; MIN_SAMPLES - pcm_16k.len()]].concat();
        &padded[..]
    } else {
        pcm_16k
    };
    state.full(params, audio).map_err(inference)?;

    let mut text = String::new();
    let mut no_speech_sum = 0.0;
    let mut segments = 0;
    for segment in state.as_iter() {
        let p = segment.no_speech_probability();
        no_speech_sum += p;
        segments += 1;
        if p > settings.no_speech_threshold {
            continue;
        }
        let piece = segment.to_str_lossy().map_err(inference)?;
        text.push_str(&piece);
    }
    let detected = whisper_rs::get_lang_str(state.full_lang_id_from_state())
        .map(Language::from_code)
        .unwrap_or(Language::En);
    let language = language.map(Language::from_code).unwrap_or(detected);
    Ok(Transcript {
        text: clean_text(&text),
        language,
        no_speech_probability: if segments == 0 {
            1.0
        } else {
            no_speech_sum / segments as f32
        },
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
    use super::clean_text;

    #[test]
    fn annotations_are_removed() {
        assert_eq!(clean_text(" [BLANK_AUDIO]"), "");
        assert_eq!(clean_text(" Hello (music) there. "), "Hello there.");
    }
}
