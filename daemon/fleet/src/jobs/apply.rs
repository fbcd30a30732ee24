//! Carrying out accepted jobs: config update, knowledge-pack update, diagnostics.
//!
//! Blocking code (file writes with fsync, validation); the driver runs it on a
//! blocking thread. Invariants: a job that fails leaves the files as they
//! were (validation happens before any write; a live swap that fails restores
//! the previous file); every file replacement is atomic (write a temporary
//! beside it, fsync, rename, fsync the directory) and keeps the previous
//! version as `<file>.previous`. What only the daemon can do (swap the pack in
//! use, change the log level, verify models) goes through [`DeviceHooks`].

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use voicebot_core::config::Config;
use voicebot_understanding::pack::KnowledgePack;

use super::envelope::Job;
use super::machine::Outcome;

/// Lines per `upload_logs` chunk.
pub const LOG_CHUNK_LINES: usize = 50;
/// The most lines one `upload_logs` job sends.
pub const MAX_LOG_LINES: usize = 5_000;

/// What the daemon does for jobs. Every method has a default that refuses, so
/// a build without a capability reports it instead of pretending.
pub trait DeviceHooks: Send + Sync + 'static {
    /// A validated config was persisted: apply what can change live and name
    /// those keys; the rest takes effect on restart.
    ///
    /// # Errors
    /// Why it could not be applied; the previous file is then restored.
    fn config_applied(&self, _config: &Config) -> Result<Vec<String>, String> {
        Ok(vec![])
    }

    /// Puts a validated pack in use (atomically, for new calls).
    ///
    /// # Errors
    /// Why not; the previous pack file is then restored.
    fn swap_pack(&self, _pack: KnowledgePack) -> Result<(), String> {
        Err("this daemon cannot swap knowledge packs live".into())
    }

    /// Changes the log filter (`info`, `debug`, `voicebot_fleet=trace`…).
    ///
    /// # Errors
    /// A bad filter, or no reloadable logger.
    fn set_log_level(&self, _filter: &str) -> Result<(), String> {
        Err("this daemon cannot change its log level at run time".into())
    }

    /// Checks every model file against the manifest (`voicebotd models verify`).
    ///
    /// # Errors
    /// Missing or corrupt files, described.
    fn verify_models(&self) -> Result<Value, String> {
        Err("this daemon cannot verify models".into())
    }

    /// The most recent log lines, oldest first.
    ///
    /// # Errors
    /// No log buffer.
    fn recent_logs(&self, _lines: usize) -> Result<Vec<String>, String> {
        Err("this daemon keeps no log buffer".into())
    }
}

/// Hooks that refuse everything they can refuse (tests, tools).
#[derive(Debug, Default)]
pub struct NoHooks;

impl DeviceHooks for NoHooks {}

/// Where jobs write, and the daemon's hooks.
#[derive(Clone)]
pub struct JobContext {
    /// The daemon's `--config` file; `None`: it runs on the embedded default.
    pub config_path: Option<PathBuf>,
    /// The knowledge-pack file (`[nlu] pack`); `None`: the embedded pack.
    pub pack_path: Option<PathBuf>,
    pub hooks: Arc<dyn DeviceHooks>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("config_path", &self.config_path)
            .field("pack_path", &self.pack_path)
            .finish()
    }
}

/// The sha256 of a config text, as the birth message and `config/reported` show it.
pub fn config_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn failed(message: impl Into<String>) -> Outcome {
    Outcome { ok: false, message: message.into(), detail: Value::Null }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlParams {
    toml: String,
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum DiagnosticsParams {
    LogLevel { filter: String },
    ModelsVerify,
    UploadLogs { lines: Option<usize> },
}

/// Runs one job. `progress` publishes an `in_progress` step.
pub fn execute(job: &Job, ctx: &JobContext, progress: &mut dyn FnMut(&str, Value)) -> Outcome {
    match job.command.as_str() {
        "config_update" => match serde_json::from_value::<TomlParams>(job.params.clone()) {
            Ok(p) => config_update(job, ctx, &p.toml),
            Err(e) => failed(format!("config_update params must be {{\"toml\": \"<config file>\"}}: {e}")),
        },
        "pack_update" => match serde_json::from_value::<TomlParams>(job.params.clone()) {
            Ok(p) => pack_update(job, ctx, &p.toml),
            Err(e) => failed(format!("pack_update params must be {{\"toml\": \"<pack file>\"}}: {e}")),
        },
        "diagnostics" => match serde_json::from_value::<DiagnosticsParams>(job.params.clone()) {
            Ok(p) => diagnostics(ctx, p, progress),
            Err(e) => failed(format!(
                "diagnostics params must be {{\"action\": \"log_level\", \"filter\": …}}, {{\"action\": \"models_verify\"}} or {{\"action\": \"upload_logs\", \"lines\": n}}: {e}"
            )),
        },
        other => failed(format!("no executor for command {other:?}")),
    }
}

fn config_update(job: &Job, ctx: &JobContext, text: &str) -> Outcome {
    let Some(path) = &ctx.config_path else {
        return failed(
            "the daemon runs on the embedded default config (no --config file): nowhere to persist; start it with --config",
        );
    };
    let config = match Config::from_toml(text, &format!("job {}", job.job_id)) {
        Ok(c) => c,
        Err(e) => return failed(format!("config rejected, nothing changed: {e}")),
    };
    let previous = match replace_file(path, text.as_bytes()) {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot write {}: {e}; nothing changed", path.display())),
    };
    match ctx.hooks.config_applied(&config) {
        Ok(live) => Outcome {
            ok: true,
            message: format!("config persisted to {}", path.display()),
            detail: json!({
                "config_hash": config_hash(text),
                "path": path.display().to_string(),
                "applied_live": live,
                "restart_required": true,
            }),
        },
        Err(why) => {
            let restored = restore(path, previous.as_deref());
            failed(format!("config could not be applied ({why}); {restored}"))
        }
    }
}

fn pack_update(job: &Job, ctx: &JobContext, text: &str) -> Outcome {
    let Some(path) = &ctx.pack_path else {
        return failed(
            "the daemon uses the embedded knowledge pack ([nlu] pack is empty): set [nlu] pack with a config_update first",
        );
    };
    let pack = match KnowledgePack::parse(text, &format!("job {}", job.job_id)) {
        Ok(p) => p,
        Err(e) => return failed(format!("pack rejected, the pack in use stays: {e}")),
    };
    let (name, version) = (pack.name.clone(), pack.version.clone());
    let previous = match replace_file(path, text.as_bytes()) {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot write {}: {e}; the pack in use stays", path.display())),
    };
    match ctx.hooks.swap_pack(pack) {
        Ok(()) => Outcome {
            ok: true,
            message: format!("knowledge pack {name} {version} in use"),
            detail: json!({"name": name, "version": version, "path": path.display().to_string()}),
        },
        Err(why) => {
            let restored = restore(path, previous.as_deref());
            failed(format!("pack could not be put in use ({why}); {restored}"))
        }
    }
}

fn diagnostics(
    ctx: &JobContext,
    params: DiagnosticsParams,
    progress: &mut dyn FnMut(&str, Value),
) -> Outcome {
    match params {
        DiagnosticsParams::LogLevel { filter } => match ctx.hooks.set_log_level(&filter) {
            Ok(()) => {
                Outcome { ok: true, message: format!("log filter is now {filter:?}"), detail: Value::Null }
            }
            Err(e) => failed(format!("log level unchanged: {e}")),
        },
        DiagnosticsParams::ModelsVerify => match ctx.hooks.verify_models() {
            Ok(detail) => Outcome { ok: true, message: "all model files verified".into(), detail },
            Err(e) => failed(format!("models verify: {e}")),
        },
        DiagnosticsParams::UploadLogs { lines } => {
            let wanted = lines.unwrap_or(500).clamp(1, MAX_LOG_LINES);
            let logs = match ctx.hooks.recent_logs(wanted) {
                Ok(l) => l,
                Err(e) => return failed(format!("upload_logs: {e}")),
            };
            let chunks = logs.len().div_ceil(LOG_CHUNK_LINES);
            for (i, chunk) in logs.chunks(LOG_CHUNK_LINES).enumerate() {
                progress("log chunk", json!({"chunk": i + 1, "of": chunks, "lines": chunk}));
            }
            Outcome {
                ok: true,
                message: format!("sent {} log lines in {chunks} chunks", logs.len()),
                detail: json!({"lines": logs.len(), "chunks": chunks}),
            }
        }
    }
}

/// The previous version's path beside `path`.
pub fn previous_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".previous");
    path.with_file_name(name)
}

/// Atomically replaces `path` with `bytes`, keeping the old file as
/// `<path>.previous`. Returns that path if there was an old file.
///
/// # Errors
/// Any IO error; `path` is then unchanged.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<Option<PathBuf>> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let previous = if path.exists() {
        let prev = previous_path(path);
        fs::copy(path, &prev)?;
        File::open(&prev)?.sync_all()?;
        Some(prev)
    } else {
        None
    };
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()?;
    Ok(previous)
}

/// Puts `<path>.previous` back; says what happened, for the result message.
fn restore(path: &Path, previous: Option<&Path>) -> String {
    match previous {
        Some(prev) => match fs::copy(prev, path).and_then(|_| File::open(path)?.sync_all()) {
            Ok(()) => format!("rolled back to the previous {}", path.display()),
            Err(e) => format!(
                "ROLLBACK FAILED: {} could not be restored from {}: {e}",
                path.display(),
                prev.display()
            ),
        },
        None => match fs::remove_file(path) {
            Ok(()) => format!("removed the new {} (there was no previous one)", path.display()),
            Err(e) => format!("ROLLBACK FAILED: cannot remove {}: {e}", path.display()),
        },
    }
}

#[cfg(test)]
mod tests;
