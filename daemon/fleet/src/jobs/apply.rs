//! Carrying out accepted jobs: config update, knowledge-pack update,
//! diagnostics; model updates are in [`super::model_update`].
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
use super::model_update::{self, ModelCandidate, PreparedModel};

/// Lines per `upload_logs` chunk.
pub const LOG_CHUNK_LINES: usize = 50;
/// The most lines one `upload_logs` job sends.
pub const MAX_LOG_LINES: usize = 5_000;

/// What the daemon does for jobs. Every method has a default that refuses, so
/// a build without a capability reports it instead of pretending.
pub trait DeviceHooks: Send + Sync + 'static {
    /// A validated config was persisted; `changed` names the keys that differ
    /// from the file it replaced (`dialog.silence_timeout_ms`, …). Apply what
    /// can change live and return those keys; the rest takes effect on restart.
    ///
    /// # Errors
    /// Why it could not be applied; the previous file is then restored.
    fn config_applied(&self, _config: &Config, _changed: &[String]) -> Result<Vec<String>, String> {
        Ok(vec![])
    }

    /// Loads a verified candidate model file (not yet in use) for its self-test.
    ///
    /// # Errors
    /// Why it does not load; the candidate is then discarded.
    fn prepare_model(&self, _candidate: &ModelCandidate) -> Result<Box<dyn PreparedModel>, String> {
        Err("this daemon cannot load models live".into())
    }

    /// Runs a scripted call through the `simulate` path and reports how it went.
    ///
    /// # Errors
    /// The call could not run, or did not end as scripted.
    fn self_test_call(&self) -> Result<Value, String> {
        Err("this daemon cannot run a self-test call".into())
    }

    /// Schedules a restart (after this job's result is out); returns what will happen.
    ///
    /// # Errors
    /// A restart cannot be arranged.
    fn restart(&self) -> Result<String, String> {
        Err("this daemon cannot restart itself".into())
    }

    /// Presses the kiosk's button remotely: `talk` starts a conversation,
    /// `assist` one that goes straight to a person; returns what happened.
    ///
    /// # Errors
    /// This box has no kiosk running (or it does not take fleet triggers).
    fn kiosk_trigger(&self, _assist: bool) -> Result<String, String> {
        Err("this box runs no kiosk that takes fleet triggers ([kiosk] enabled, \"mqtt\" in triggers)".into())
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
    /// The model directory (`[models] dir`).
    pub model_dir: PathBuf,
    /// Model files the running config loads (paths in the model directory).
    pub models_in_use: Vec<String>,
    pub hooks: Arc<dyn DeviceHooks>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("config_path", &self.config_path)
            .field("pack_path", &self.pack_path)
            .field("model_dir", &self.model_dir)
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
enum KioskParams {
    Talk,
    Assist,
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum DiagnosticsParams {
    LogLevel { filter: String },
    ModelsVerify,
    UploadLogs { lines: Option<usize> },
    SelfTestCall,
    Restart,
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
                "diagnostics params must be {{\"action\": \"log_level\", \"filter\": …}}, {{\"action\": \"models_verify\"}}, {{\"action\": \"upload_logs\", \"lines\": n}}, {{\"action\": \"self_test_call\"}} or {{\"action\": \"restart\"}}: {e}"
            )),
        },
        "model_update" => match serde_json::from_value::<model_update::Params>(job.params.clone()) {
            Ok(p) => model_update::run(job, ctx, p, progress),
            Err(e) => failed(format!(
                "model_update params must be {{\"model\": \"<name or file>\", \"file\"?: …, \"url\": \"http(s)://…|file://…|path\", \"sha256\": …, \"size\": n}} or {{\"model\": …, \"rollback\": true}}: {e}"
            )),
        },
        "kiosk" => match serde_json::from_value::<KioskParams>(job.params.clone()) {
            Ok(p) => match ctx.hooks.kiosk_trigger(matches!(p, KioskParams::Assist)) {
                Ok(message) => Outcome { ok: true, message, detail: Value::Null },
                Err(e) => failed(format!("kiosk: {e}")),
            },
            Err(e) => failed(format!(
                "kiosk params must be {{\"action\": \"talk\"}} or {{\"action\": \"assist\"}}: {e}"
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
    let old_text = fs::read_to_string(path).unwrap_or_default();
    let changed = changed_keys(&old_text, text);
    let previous = match replace_file(path, text.as_bytes()) {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot write {}: {e}; nothing changed", path.display())),
    };
    match ctx.hooks.config_applied(&config, &changed) {
        Ok(live) => {
            let restart: Vec<&String> = changed.iter().filter(|k| !live.contains(k)).collect();
            let message = match (live.len(), restart.len()) {
                (0, 0) => format!("config persisted to {}; no setting changed", path.display()),
                (_, 0) => format!("config persisted to {} and applied live", path.display()),
                (0, _) => format!("config persisted to {}; takes effect on restart", path.display()),
                _ => format!(
                    "config persisted to {}; partly applied live, the rest on restart",
                    path.display()
                ),
            };
            Outcome {
                ok: true,
                message,
                detail: json!({
                    "config_hash": config_hash(text),
                    "path": path.display().to_string(),
                    "changed": changed,
                    "applied_live": live,
                    "restart_required": restart,
                }),
            }
        }
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
        DiagnosticsParams::SelfTestCall => match ctx.hooks.self_test_call() {
            Ok(detail) => Outcome { ok: true, message: "self-test call passed".into(), detail },
            Err(e) => failed(format!("self-test call failed: {e}")),
        },
        DiagnosticsParams::Restart => match ctx.hooks.restart() {
            Ok(message) => Outcome { ok: true, message, detail: Value::Null },
            Err(e) => failed(format!("restart: {e}")),
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

/// The dotted keys (`dialog.silence_timeout_ms`) whose values differ between
/// two config texts, including keys only one of them sets. A text that does
/// not parse counts as empty (the old file may be absent).
pub fn changed_keys(old: &str, new: &str) -> Vec<String> {
    fn flatten(prefix: &str, value: &toml::Value, out: &mut std::collections::BTreeMap<String, toml::Value>) {
        match value {
            toml::Value::Table(table) => {
                for (k, v) in table {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    flatten(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), other.clone());
            }
        }
    }
    let parse = |text: &str| {
        let mut out = std::collections::BTreeMap::new();
        if let Ok(table) = text.parse::<toml::Table>() {
            flatten("", &toml::Value::Table(table), &mut out);
        }
        out
    };
    let (old, new) = (parse(old), parse(new));
    let mut keys: Vec<String> =
        old.keys().chain(new.keys()).filter(|k| old.get(*k) != new.get(*k)).cloned().collect();
    keys.sort();
    keys.dedup();
    keys
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
