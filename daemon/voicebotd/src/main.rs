//! `voicebotd`: the edge voice-bot daemon and its command line.
//!
//! Every failure ends as one line on stderr naming what failed and with what
//! input, and a non-zero exit code (see [`error`]); nothing panics on bad input.

mod cli;
mod commands;
mod error;
mod logging;
mod nlu;
mod turn;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use error::CliError;
use voicebot_core::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Run { .. }));
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("voicebotd: error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn init_logging(daemon: bool) {
    // Reloadable, with a ring of recent lines for `diagnostics` jobs.
    logging::init(if daemon { "info" } else { "warn" });
}

/// The config from `--config`, or the embedded default.
fn load_config(cli: &Cli) -> Result<Config, CliError> {
    Ok(match &cli.config {
        Some(path) => Config::from_file(path)?,
        None => Config::embedded_default()?,
    })
}

fn dispatch(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::PrintDefaultConfig => {
            print!("{}", voicebot_core::config::DEFAULT_CONFIG);
            Ok(())
        }
        Command::CheckConfig { file } => {
            Config::from_file(file)?;
            println!("{}: ok", file.display());
            Ok(())
        }
        Command::Transcribe { file, json, lang } => {
            commands::transcribe::run(&load_config(&cli)?, file, *json, lang.as_deref())
        }
        Command::Say { text, out, lang, rate } => {
            commands::say::run(&load_config(&cli)?, text, out, lang, *rate)
        }
        Command::Simulate { turns, json, text, lang, reply_dir, channel, line } => {
            let options = commands::simulate::Options {
                json: *json,
                text: *text,
                lang: lang.clone(),
                reply_dir: reply_dir.clone(),
                channel: channel.clone(),
                line: line.clone(),
            };
            commands::simulate::run(&load_config(&cli)?, turns, &options)
        }
        Command::Understand { json, lang } => {
            commands::understand::run(&load_config(&cli)?, *json, lang.as_deref())
        }
        Command::CheckPack { file } => {
            let pack = voicebot_understanding::pack::KnowledgePack::load(file)?;
            println!(
                "{}: ok ({} {}, {} intents, {} FAQ entries, {} products)",
                file.display(),
                pack.name,
                pack.version,
                pack.intents.len(),
                pack.faqs.len(),
                pack.products.len()
            );
            Ok(())
        }
        Command::PrintDefaultPack => {
            print!("{}", voicebot_understanding::pack::DEFAULT_PACK);
            Ok(())
        }
        Command::Run { mqtt_url } => {
            let mut config = load_config(&cli)?;
            if let Some(url) = mqtt_url {
                let broker = voicebot_core::config::BrokerUrl::parse(url)
                    .map_err(|e| CliError::Usage(format!("--mqtt-url: {e}")))?;
                config.mqtt.url = Some(broker);
            }
            commands::daemon::run(config, cli.config.clone())
        }
        Command::Tickets { action } => commands::tickets::run(&load_config(&cli)?, action),
        Command::Models { action } => commands::models::run(&load_config(&cli)?, action),
        Command::Devices { json } => commands::devices::run(*json),
        Command::Doctor { json } => commands::doctor::run(cli.config.as_deref(), load_config(&cli), *json),
    }
}
