//! Configuration, read in two stages and checked at start.
//!
//! 1. [`raw`]: the user's TOML is merged over the embedded default and parsed
//!    into plain serde structs that deny unknown keys.
//! 2. [`Config`]: values are validated into real types (languages, durations,
//!    bounded numbers). Every failure is a [`ConfigError`] naming the key.

pub mod dialog;
pub mod fleet;
pub mod http;
pub mod kiosk;
pub mod raw;
pub mod sip;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::language::{Language, LanguageChoice};
use crate::manifest::ModelStore;
use raw::RawConfig;

pub use dialog::DialogConfig;
pub use fleet::{BrokerUrl, FleetConfig, MqttConfig};
pub use http::{HttpConfig, ReportConfig};
pub use kiosk::{KioskAction, KioskConfig, KioskTrigger};
pub use sip::{CallerAuth, CallerSecret, PeerNet, RegistrarConfig, SipConfig, TransferConfig, TransferMode};

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("config {origin}: {key} = {value}: {problem}")]
    Value { origin: String, key: &'static str, value: String, problem: String },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub models: ModelsConfig,
    pub runtime: RuntimeConfig,
    pub asr: AsrConfig,
    pub vad: VadConfig,
    pub tts: TtsConfig,
    pub nlu: NluConfig,
    pub simulate: SimulateConfig,
    pub mqtt: MqttConfig,
    pub fleet: FleetConfig,
    pub sip: SipConfig,
    pub http: HttpConfig,
    pub report: ReportConfig,
    pub dialog: DialogConfig,
    pub kiosk: KioskConfig,
}

#[derive(Debug, Clone)]
pub struct NluConfig {
    /// `None`: the embedded default pack.
    pub pack: Option<PathBuf>,
    /// `None`: no sentence embeddings.
    pub embedding_model: Option<String>,
    pub sentiment_lexicon: String,
}

#[derive(Debug, Clone)]
pub struct ModelsConfig {
    pub dir: PathBuf,
    pub verify_checksums: bool,
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// `None`: use the ONNX Runtime of the sherpa-onnx runtime in the model directory.
    pub onnxruntime: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct AsrConfig {
    pub language: LanguageChoice,
    pub threads: u32,
    pub english_model: String,
    pub multilingual_model: String,
    pub no_speech_threshold: f32,
    pub detect_among: Vec<Language>,
    /// Size Whisper's encoder to the utterance instead of 30 s.
    pub fit_audio_ctx: bool,
    pub temperature_fallback: bool,
}

#[derive(Debug, Clone)]
pub struct VadConfig {
    pub model: String,
    pub threshold: f32,
    pub min_speech: Duration,
    pub min_silence: Duration,
    pub speech_pad: Duration,
}

impl VadConfig {
    /// The segmenter settings at the engines' 16 kHz.
    pub fn segmenter(&self) -> crate::speech_segments::SegmenterConfig {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        crate::speech_segments::SegmenterConfig::from_millis(
            self.threshold,
            ms(self.min_speech),
            ms(self.min_silence),
            ms(self.speech_pad),
            16_000,
        )
    }
}

#[derive(Debug, Clone)]
pub struct TtsConfig {
    pub english_voice: String,
    pub rate: f32,
    pub elder_rate: f32,
    pub threads: u32,
    /// `None`: search the usual Debian locations.
    pub espeak_data: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SimulateConfig {
    pub reply_dir: PathBuf,
}

impl Config {
    /// The embedded default, validated.
    ///
    /// # Errors
    /// Only if the embedded default is broken, which a unit test rules out.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Config::from_toml("", "(embedded default)")
    }

    /// Reads and validates a config file.
    ///
    /// # Errors
    /// Any read, syntax, unknown-key or value problem, naming the file and key.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// Parses `text`, fills what it leaves out from the embedded default, and
    /// validates the result.
    ///
    /// # Errors
    /// As [`Config::from_file`]; `origin` names the source in messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let user = parse_raw(text, origin)?;
        let default = parse_raw(DEFAULT_CONFIG, "(embedded default)")?;
        validate(user.or(default), origin)
    }
}

fn parse_raw(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let location = e
            .span()
            .map(|span| {
                let start = span.start.min(text.len());
                let line = text[..start].matches('\n').count() + 1;
                let content = text.lines().nth(line - 1).unwrap_or("").trim();
                format!(" (line {line}: `{content}`)")
            })
            .unwrap_or_default();
        ConfigError::Syntax { origin: origin.to_owned(), message: format!("{}{location}", e.message()) }
    })
}

/// Takes a key that the merged config must have.
fn required<T>(value: Option<T>, key: &'static str, origin: &str) -> Result<T, ConfigError> {
    value.ok_or_else(|| ConfigError::Value {
        origin: origin.to_owned(),
        key,
        value: "(missing)".into(),
        problem: "no value and no default".into(),
    })
}

fn validate(raw: RawConfig, origin: &str) -> Result<Config, ConfigError> {
    let bad = |key: &'static str, value: String, problem: &str| ConfigError::Value {
        origin: origin.to_owned(),
        key,
        value,
        problem: problem.to_owned(),
    };
    macro_rules! take {
        ($section:ident . $field:ident) => {
            required(
                raw.$section.$field.clone(),
                concat!(stringify!($section), ".", stringify!($field)),
                origin,
            )?
        };
    }
    let language_text: String = take!(asr.language);
    let language = language_text
        .parse::<LanguageChoice>()
        .map_err(|e| bad("asr.language", format!("{language_text:?}"), &e.to_string()))?;
    let threads: u32 = take!(asr.threads);
    if !(1..=64).contains(&threads) {
        return Err(bad("asr.threads", threads.to_string(), "must be 1 to 64"));
    }
    let no_speech_threshold: f32 = take!(asr.no_speech_threshold);
    if !(0.0..=1.0).contains(&no_speech_threshold) {
        let v = no_speech_threshold.to_string();
        return Err(bad("asr.no_speech_threshold", v, "must be between 0 and 1"));
    }
    let detect_text: Vec<String> = take!(asr.detect_among);
    let detect_among = detect_text
        .iter()
        .map(|code| code.parse::<Language>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("asr.detect_among", format!("{detect_text:?}"), &e.to_string()))?;
    if detect_among.is_empty() {
        return Err(bad("asr.detect_among", "[]".into(), "name at least one language"));
    }
    let audio_ctx: String = take!(asr.audio_ctx);
    let fit_audio_ctx = match audio_ctx.as_str() {
        "full" => false,
        "fit" => true,
        other => {
            return Err(bad("asr.audio_ctx", format!("{other:?}"), "expected \"full\" or \"fit\""));
        }
    };
    let vad_threshold: f32 = take!(vad.threshold);
    if !(0.15..1.0).contains(&vad_threshold) {
        return Err(bad("vad.threshold", vad_threshold.to_string(), "must be in [0.15, 1)"));
    }
    let rate: f32 = take!(tts.rate);
    let elder_rate: f32 = take!(tts.elder_rate);
    for (key, value) in [("tts.rate", rate), ("tts.elder_rate", elder_rate)] {
        if !(0.3..=3.0).contains(&value) {
            return Err(bad(key, value.to_string(), "must be between 0.3 and 3.0"));
        }
    }
    let tts_threads: u32 = take!(tts.threads);
    if !(1..=16).contains(&tts_threads) {
        return Err(bad("tts.threads", tts_threads.to_string(), "must be 1 to 16"));
    }
    let non_empty = |s: String| (!s.trim().is_empty()).then(|| PathBuf::from(s));
    let millis = |ms: u32| Duration::from_millis(u64::from(ms));
    Ok(Config {
        models: ModelsConfig {
            dir: non_empty(take!(models.dir)).unwrap_or_else(ModelStore::default_dir),
            verify_checksums: take!(models.verify_checksums),
        },
        runtime: RuntimeConfig { onnxruntime: non_empty(take!(runtime.onnxruntime)) },
        asr: AsrConfig {
            language,
            threads,
            english_model: take!(asr.english_model),
            multilingual_model: take!(asr.multilingual_model),
            no_speech_threshold,
            detect_among,
            fit_audio_ctx,
            temperature_fallback: take!(asr.temperature_fallback),
        },
        vad: VadConfig {
            model: take!(vad.model),
            threshold: vad_threshold,
            min_speech: millis(take!(vad.min_speech_ms)),
            min_silence: millis(take!(vad.min_silence_ms)),
            speech_pad: millis(take!(vad.speech_pad_ms)),
        },
        tts: TtsConfig {
            english_voice: take!(tts.english_voice),
            rate,
            elder_rate,
            threads: tts_threads,
            espeak_data: non_empty(take!(tts.espeak_data)),
        },
        nlu: NluConfig {
            pack: non_empty(take!(nlu.pack)),
            embedding_model: Some(take!(nlu.embedding_model)).filter(|m: &String| !m.trim().is_empty()),
            sentiment_lexicon: take!(nlu.sentiment_lexicon),
        },
        simulate: SimulateConfig { reply_dir: PathBuf::from(take!(simulate.reply_dir)) },
        mqtt: fleet::validate_mqtt(&raw.mqtt, origin)?,
        fleet: fleet::validate_fleet(&raw.fleet, origin)?,
        sip: sip::validate_sip(&raw.sip, origin)?,
        http: http::validate_http(&raw.http, origin)?,
        report: http::validate_report(&raw.report, origin)?,
        dialog: dialog::validate_dialog(&raw.dialog, origin)?,
        kiosk: kiosk::validate_kiosk(&raw.kiosk, origin)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let config = Config::embedded_default().unwrap();
        assert_eq!(config.asr.language, LanguageChoice::Auto);
        assert_eq!(config.asr.english_model, "whisper-tiny.en/ggml-tiny.en.bin");
    }

    #[test]
    fn a_partial_file_keeps_the_other_defaults() {
        let config = Config::from_toml("[asr]\nlanguage = \"zh\"\n", "t.toml").unwrap();
        assert_eq!(config.asr.language, LanguageChoice::Fixed(Language::Zh));
        assert_eq!(config.asr.threads, 2);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = Config::from_toml("[asr]\nlangauge = \"en\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("langauge") && err.to_string().contains("line 2"), "{err}");
        assert!(err.to_string().contains("t.toml"), "{err}");
    }

    #[test]
    fn an_unknown_section_is_an_error_naming_it() {
        let err = Config::from_toml("[sipp]\nport = 1\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("sipp"), "{err}");
    }

    #[test]
    fn a_wrong_type_is_an_error_naming_the_key() {
        let err = Config::from_toml("[asr]\nthreads = \"two\"\n", "t.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("threads") && msg.contains("line 2") && msg.contains("t.toml"), "{msg}");
    }

    #[test]
    fn a_bad_value_names_key_and_value() {
        let err = Config::from_toml("[asr]\nlanguage = \"fr\"\n", "t.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("asr.language") && msg.contains("fr"), "{msg}");
        let err = Config::from_toml("[tts]\nrate = 9.0\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("tts.rate"), "{err}");
    }

    #[test]
    fn audio_ctx_and_detection_languages_are_checked() {
        let err = Config::from_toml("[asr]\naudio_ctx = \"half\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("asr.audio_ctx"), "{err}");
        let err = Config::from_toml("[asr]\ndetect_among = [\"en\", \"xx\"]\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("asr.detect_among"), "{err}");
        let config = Config::from_toml("[asr]\naudio_ctx = \"fit\"\n", "t.toml").unwrap();
        assert!(config.asr.fit_audio_ctx);
        assert_eq!(config.asr.detect_among, vec![Language::En, Language::Zh]);
    }

    #[test]
    fn a_syntax_error_names_the_file() {
        let err = Config::from_toml("[asr\n", "bad.toml").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }));
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }
}
