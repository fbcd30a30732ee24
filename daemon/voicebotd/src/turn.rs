//! One caller turn through the engines: audio → speech gate → ASR, and
//! text → reply speech. Shared by `transcribe`, `say` and `simulate` so they
//! exercise exactly the path the channels use.

use voicebot_audio::{Audio, ENGINE_RATE};
use voicebot_core::config::Config;
use voicebot_core::engine::{RecognitionOptions, RecognizerStream, VadStream};
use voicebot_core::speech_segments::{detect_speech, speech_span};
use voicebot_core::{Language, LanguageChoice, Transcript, VoiceActivityModel};
use voicebot_engines::loader::Engines;

use crate::error::CliError;

/// Per-call listening state: a VAD stream and an ASR stream.
pub(crate) struct Ear {
    vad: Box<dyn VadStream>,
    frame_len: usize,
    asr: Box<dyn RecognizerStream>,
    segmenter: voicebot_core::speech_segments::SegmenterConfig,
}

impl Ear {
    pub(crate) fn new(engines: &Engines, config: &Config) -> Result<Ear, CliError> {
        let missing = |what: &str| CliError::Failed(format!("{what} engine not loaded"));
        let vad_model: &dyn VoiceActivityModel = engines.vad.as_deref().ok_or_else(|| missing("VAD"))?;
        let asr = engines.asr.as_ref().ok_or_else(|| missing("ASR"))?.new_stream()?;
        Ok(Ear {
            vad: vad_model.new_stream()?,
            frame_len: vad_model.frame_len(),
            asr,
            segmenter: config.vad.segmenter(),
        })
    }

    /// Recognises one turn. Audio without speech gives an empty transcript
    /// without running ASR at all, so silence and noise cannot become text.
    pub(crate) fn hear(&mut self, audio: &Audio, language: &LanguageChoice) -> Result<Transcript, CliError> {
        let pcm = audio.at_rate(ENGINE_RATE)?.samples;
        let segments = detect_speech(self.vad.as_mut(), self.frame_len, &pcm, self.segmenter)?;
        let speech = speech_span(&pcm, &segments);
        if speech.is_empty() {
            let language = match language {
                LanguageChoice::Fixed(l) => l.clone(),
                LanguageChoice::Auto => Language::En,
            };
            return Ok(Transcript { text: String::new(), language, no_speech_probability: 1.0 });
        }
        let options = RecognitionOptions { language: language.clone() };
        Ok(self.asr.transcribe(speech, &options)?)
    }
}
