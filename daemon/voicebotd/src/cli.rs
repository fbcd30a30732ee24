//! The command line. Command names, flags and JSON fields are a contract that
//! scripts outside the repository rely on: change them only compatibly.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "voicebotd", version, about = "Edge voice-bot appliance daemon")]
pub(crate) struct Cli {
    /// Config file (TOML); the embedded default applies to every key it leaves out.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Transcribe a WAV file (any rate and channel count).
    Transcribe {
        file: PathBuf,
        /// Print {"text","language","audio_seconds","elapsed_seconds"}.
        #[arg(long)]
        json: bool,
        /// auto | en | zh (default: the config's asr.language).
        #[arg(long)]
        lang: Option<String>,
    },
    /// Speak text into a WAV file.
    Say {
        text: String,
        #[arg(long, value_name = "FILE.wav")]
        out: PathBuf,
        /// en | zh
        #[arg(long, default_value = "en")]
        lang: String,
        /// Speaking rate: 1.0 normal, below 1.0 slower (elder mode).
        #[arg(long)]
        rate: Option<f32>,
    },
    /// Play a caller's turns through the pipeline; one JSON line per turn.
    Simulate {
        /// The caller's turns: WAV files, or typed utterances with `--text`.
        #[arg(required = true, value_name = "TURN.wav")]
        turns: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
        /// The turns are typed utterances, not WAV files (no ASR).
        #[arg(long)]
        text: bool,
        /// auto | en | zh (default: the config's asr.language).
        #[arg(long)]
        lang: Option<String>,
        /// Where reply WAVs go (default: the config's simulate.reply_dir).
        #[arg(long, value_name = "DIR")]
        reply_dir: Option<PathBuf>,
        /// phone | kiosk: the greeting, the keypad menu and the ticket's channel.
        #[arg(long, default_value = "phone")]
        channel: String,
        /// elder: an elder line (slower voice, a person offered up front, priority).
        #[arg(long)]
        line: Option<String>,
    },
    /// Understand typed utterances: one per stdin line, one result per line.
    Understand {
        /// Print {"text","language","intent","confidence","slots","emotion","sensitive"}.
        #[arg(long)]
        json: bool,
        /// auto | en | zh (auto: detected from the text).
        #[arg(long)]
        lang: Option<String>,
    },
    /// Check a knowledge pack file and exit.
    CheckPack { file: PathBuf },
    /// Print the embedded default knowledge pack.
    PrintDefaultPack,
    /// Run the daemon.
    Run {
        /// The fleet broker, e.g. mqtt://127.0.0.1:1883 or mqtts://host:8883
        /// (overrides the config's [mqtt] url).
        #[arg(long, value_name = "URL")]
        mqtt_url: Option<String>,
    },
    /// Read the local hand-over ticket outbox (works with no broker configured).
    Tickets {
        #[command(subcommand)]
        action: TicketsAction,
    },
    /// Check a config file and exit.
    CheckConfig { file: PathBuf },
    /// Print the embedded default config.
    PrintDefaultConfig,
    /// Check this box: accelerator, libraries, models, audio devices, broker and SIP;
    /// one `PASS|WARN|FAIL <check>: <detail>` line each, exit 1 on any FAIL.
    Doctor {
        /// One JSON object per line: {"check","status","detail"}.
        #[arg(long)]
        json: bool,
    },
    /// List the audio devices the kiosk can use ([kiosk] input/output take the NAME column).
    Devices {
        /// One JSON object per line: {"name","description","input","output"}.
        #[arg(long)]
        json: bool,
    },
    /// Fetch, list and verify models.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModelsAction {
    /// Download, verify and convert every model into the model directory.
    Fetch {
        /// Only these models (comma-separated names).
        #[arg(long)]
        only: Option<String>,
    },
    /// List the manifest's models and whether their files are present.
    List,
    /// Check every file's sha256; non-zero exit if any is missing or corrupt.
    Verify,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TicketsAction {
    /// The newest tickets, newest first, with their delivery state.
    List {
        /// One JSON object per line: {"id","created_ms","delivered_ms","caller_id","summary"}.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print one ticket's JSON (as published on event/ticket).
    Show { id: String },
}
