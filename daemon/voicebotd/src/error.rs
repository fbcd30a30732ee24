//! Errors at the top of the program, and the exit codes they map to.
//!
//! | code | meaning |
//! |---|---|
//! | 1 | runtime failure (IO, engine inference) |
//! | 2 | usage or configuration error |
//! | 3 | bad input (audio file, text) |
//! | 4 | models or runtime libraries missing or corrupt |
//! | 75 | `voicebotd run` stopped, after its drain, for a restart a fleet job asked for (`EX_TEMPFAIL`; the unit restarts it, see `systemd/README.md`) |

use voicebot_audio::AudioError;
use voicebot_core::EngineError;
use voicebot_core::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Pack(#[from] voicebot_understanding::pack::PackError),
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Fleet(#[from] voicebot_fleet::FleetError),
    #[error(transparent)]
    Outbox(#[from] voicebot_fleet::outbox::OutboxError),
    #[error(
        "stopped for a restart requested by fleet job {0}; exit code 75 asks the service manager to start it again"
    )]
    Restart(String),
}

impl From<voicebot_conversation::ConversationError> for CliError {
    fn from(error: voicebot_conversation::ConversationError) -> Self {
        use voicebot_conversation::ConversationError;
        match error {
            ConversationError::Engine(e) => CliError::Engine(e),
            ConversationError::Audio(e) => CliError::Audio(e),
            ConversationError::Setup(message) => CliError::Failed(message),
        }
    }
}

/// The exit code of a requested restart (`EX_TEMPFAIL`).
pub(crate) const RESTART_EXIT_CODE: u8 = 75;

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Restart(_) => RESTART_EXIT_CODE,
            CliError::Fleet(voicebot_fleet::FleetError::Outbox(_)) | CliError::Outbox(_) => 1,
            CliError::Fleet(_) => 2,
            CliError::Config(_) | CliError::Usage(_) | CliError::Pack(_) => 2,
            CliError::BadInput(_) => 3,
            CliError::Audio(AudioError::Write { .. }) => 1,
            CliError::Audio(_) => 3,
            CliError::Engine(EngineError::Inference { .. }) => 1,
            CliError::Engine(EngineError::UnsupportedLanguage { .. }) => 2,
            CliError::Engine(_) => 4,
        }
    }
}
