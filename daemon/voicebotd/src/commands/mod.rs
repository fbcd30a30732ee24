//! One module per subcommand.

pub(crate) mod daemon;
pub(crate) mod devices;
pub(crate) mod doctor;
pub(crate) mod models;
pub(crate) mod say;
pub(crate) mod simulate;
pub(crate) mod tickets;
pub(crate) mod transcribe;
pub(crate) mod understand;

use voicebot_core::LanguageChoice;

use crate::error::CliError;

/// Parses a `--lang` value, falling back to the config's choice.
pub(crate) fn language_choice(
    flag: Option<&str>,
    default: &LanguageChoice,
) -> Result<LanguageChoice, CliError> {
    match flag {
        Some(s) => s
            .parse()
            .map_err(|e: voicebot_core::language::UnknownLanguage| CliError::Usage(format!("--lang: {e}"))),
        None => Ok(default.clone()),
    }
}
