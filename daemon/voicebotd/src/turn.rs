//! One caller turn through the engines, shared by `transcribe` and `simulate`
//! so they exercise exactly the path the channels use.

use voicebot_audio::{Audio, ENGINE_RATE};
use voicebot_core::config::Config;
use voicebot_core::{LanguageChoice, Transcript};
use voicebot_engines::hearing::Ear;
use voicebot_engines::loader::Engines;

use crate::error::CliError;

/// Creates the per-call ear for `engines`.
pub(crate) fn ear(engines: &Engines, config: &Config) -> Result<Ear, CliError> {
    Ok(Ear::new(engines, config.vad.segmenter())?)
}

/// Resamples a turn to the engines' rate and recognises it.
pub(crate) fn hear(ear: &mut Ear, audio: &Audio, language: &LanguageChoice) -> Result<Transcript, CliError> {
    let pcm = audio.at_rate(ENGINE_RATE)?.samples;
    Ok(ear.hear(&pcm, language)?)
}
