//! `model_update` jobs: fetch, verify, load, self-test, switch, keep the previous.
//!
//! Blocking code for the job thread. The steps, each reported `in_progress`:
//! 1. resolve the target file from the embedded manifest (a model name, or a
//!    file path in the model directory);
//! 2. fetch it with resume into `<model dir>/.staging/` ([`super::download`])
//!    and check its size and sha256;
//! 3. load it and self-test it through [`DeviceHooks::prepare_model`];
//! 4. switch on disk (the file in use becomes `<file>.previous`, the staged
//!    file takes its name, [`LOCAL_UPDATES_FILE`] records the new sha256 so a
//!    restart loads and verifies the new bytes), then in memory
//!    ([`PreparedModel::activate`]: new calls get the new engine, calls in
//!    progress keep theirs).
//!
//! Invariant: until step 4 nothing the daemon uses has changed, so a failed
//! fetch, verification, load or self-test only discards the candidate — the
//! model in use keeps serving. A failed disk switch is undone before the
//! engine is swapped. `{"rollback": true}` puts `<file>.previous` back through
//! the same load, self-test and switch.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};
use voicebot_core::manifest::{InstalledFile, LOCAL_UPDATES_FILE, LocalUpdates, Manifest, ModelStore};

use super::apply::{JobContext, previous_path, replace_file};
use super::download::{self, Source};
use super::envelope::Job;
use super::machine::Outcome;

/// The largest model file a job may fetch.
pub const MAX_MODEL_BYTES: u64 = 4 << 30;
/// The staging directory, inside the model directory (same file system, so
/// the switch is a rename).
pub const STAGING_DIR: &str = ".staging";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    /// A model name from the manifest, or a file path in the model directory.
    model: String,
    /// Which file of a model that has several (its path in the model directory).
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    /// Put `<file>.previous` back instead of fetching.
    #[serde(default)]
    rollback: bool,
}

/// A verified candidate file the daemon should load and test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCandidate {
    /// The manifest model it belongs to.
    pub model: String,
    /// Its path in the model directory (what the config names).
    pub path: String,
    /// Where the candidate bytes are now.
    pub staged: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// A candidate loaded by the daemon, not yet in use.
pub trait PreparedModel: Send {
    /// Runs the model's self-test; the detail goes into the job result.
    ///
    /// # Errors
    /// Why the model is not fit to serve.
    fn self_test(&mut self) -> Result<Value, String>;

    /// Puts the model in use for new calls (calls in progress keep theirs).
    fn activate(self: Box<Self>);
}

fn failed(message: impl Into<String>, detail: Value) -> Outcome {
    Outcome { ok: false, message: message.into(), detail }
}

/// What the birth message reports about models: the manifest's identity,
/// extended when files were updated locally, and each updated file's sha256.
pub fn model_versions(model_dir: &Path) -> (String, std::collections::BTreeMap<String, String>) {
    use sha2::{Digest, Sha256};
    let manifest = super::apply::config_hash(voicebot_core::manifest::EMBEDDED_MANIFEST);
    let updates = LocalUpdates::load(model_dir).unwrap_or_default();
    let files: std::collections::BTreeMap<String, String> =
        updates.files.iter().map(|(path, f)| (path.clone(), f.sha256.clone())).collect();
    if files.is_empty() {
        return (format!("manifest-{}", &manifest[..12]), files);
    }
    let mut hasher = Sha256::new();
    for (path, sha) in &files {
        hasher.update(format!("{path}={sha}\n").as_bytes());
    }
    let local: String = hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    (format!("manifest-{}+local-{local}", &manifest[..12]), files)
}

/// Runs a `model_update` job.
pub(crate) fn run(
    job: &Job,
    ctx: &JobContext,
    params: Params,
    progress: &mut dyn FnMut(&str, Value),
) -> Outcome {
    let updates = match LocalUpdates::load(&ctx.model_dir) {
        Ok(u) => u,
        Err(e) => return failed(format!("{e}; nothing changed"), Value::Null),
    };
    let store = ModelStore::new(ctx.model_dir.clone(), Manifest::embedded()).with_updates(&updates);
    let (model, path) = match resolve(&store, &params, &ctx.models_in_use) {
        Ok(t) => t,
        Err(why) => return failed(format!("{why}; nothing changed"), Value::Null),
    };
    let current = store.manifest.model(&model).and_then(|m| m.files.iter().find(|f| f.path == path)).cloned();
    let Some(current) = current else {
        return failed(format!("{path} is not in the manifest; nothing changed"), Value::Null);
    };
    let target = ctx.model_dir.join(&path);
    let base = json!({"model": model, "path": path, "previous_sha256": current.sha256});
    progress("target resolved", base.clone());

    let (candidate, fetched) = if params.rollback {
        match rollback_candidate(&updates, &target, &model, &path) {
            Ok(c) => (c, Value::Null),
            Err(why) => return failed(format!("rollback impossible: {why}; nothing changed"), base),
        }
    } else {
        match fetch(ctx, &params, &model, &path, progress) {
            Ok(pair) => pair,
            Err(why) => return failed(format!("{why}; the model in use stays"), base),
        }
    };
    if !params.rollback && candidate.sha256.eq_ignore_ascii_case(&current.sha256) {
        let _ = fs::remove_file(&candidate.staged);
        return failed(format!("{path} already has sha256 {}; nothing to do", current.sha256), base);
    }
    let discard = |candidate: &ModelCandidate| {
        if !params.rollback {
            let _ = fs::remove_file(&candidate.staged);
        }
    };

    let mut prepared = match ctx.hooks.prepare_model(&candidate) {
        Ok(p) => p,
        Err(why) => {
            discard(&candidate);
            return failed(
                format!("the new {path} does not load ({why}); rolled back, the model in use stays"),
                base,
            );
        }
    };
    progress("loaded", json!({"path": path, "sha256": candidate.sha256}));
    let self_test = match prepared.self_test() {
        Ok(detail) => detail,
        Err(why) => {
            drop(prepared);
            discard(&candidate);
            return failed(
                format!(
                    "self-test failed: {why}; rolled back, {path} still serves sha256 {}",
                    current.sha256
                ),
                base,
            );
        }
    };
    progress("self-test passed", self_test.clone());

    let installed = InstalledFile {
        sha256: candidate.sha256.to_ascii_lowercase(),
        size: candidate.size,
        job_id: job.job_id.clone(),
        installed_at_ms: crate::now_ms(),
        previous_sha256: Some(current.sha256.clone()),
        previous_size: Some(current.size),
    };
    if let Err(why) = switch_on_disk(&ctx.model_dir, &target, &candidate, updates, installed) {
        drop(prepared);
        discard(&candidate);
        return failed(format!("cannot switch {path} on disk ({why}); the model in use stays"), base);
    }
    prepared.activate();
    let (models, model_files) = model_versions(&ctx.model_dir);
    let verb = if params.rollback { "rolled back to" } else { "switched to" };
    Outcome {
        ok: true,
        message: format!(
            "{path} {verb} sha256 {}; the previous version is kept as {}",
            candidate.sha256,
            previous_path(&target).display()
        ),
        detail: json!({
            "model": model,
            "path": path,
            "sha256": candidate.sha256,
            "size": candidate.size,
            "previous_sha256": current.sha256,
            "rollback": params.rollback,
            "download": fetched,
            "self_test": self_test,
            "versions": {"models": models, "model_files": model_files},
        }),
    }
}

/// `(model name, file path)` of the job's target.
fn resolve(store: &ModelStore, params: &Params, in_use: &[String]) -> Result<(String, String), String> {
    if let Some(model) = store.manifest.model(&params.model) {
        let paths: Vec<&str> = model.files.iter().map(|f| f.path.as_str()).collect();
        let path = match &params.file {
            Some(file) if paths.contains(&file.as_str()) => file.clone(),
            Some(file) => {
                return Err(format!("model {} has no file {file:?} (it has {paths:?})", model.name));
            }
            None if paths.len() == 1 => paths[0].to_owned(),
            None => {
                let used: Vec<&&str> = paths.iter().filter(|p| in_use.iter().any(|u| u == **p)).collect();
                match used.as_slice() {
                    [one] => (**one).to_owned(),
                    _ => {
                        return Err(format!(
                            "model {} has several files {paths:?}: name one with \"file\"",
                            model.name
                        ));
                    }
                }
            }
        };
        return Ok((model.name.clone(), path));
    }
    let file = params.file.as_deref().unwrap_or(&params.model);
    store
        .manifest
        .for_this_arch()
        .find(|m| m.files.iter().any(|f| f.path == file))
        .map(|m| (m.name.clone(), file.to_owned()))
        .ok_or_else(|| {
            format!(
                "{:?} is neither a model nor a model file in the manifest (see `voicebotd models list`)",
                params.model
            )
        })
}

fn fetch(
    ctx: &JobContext,
    params: &Params,
    model: &str,
    path: &str,
    progress: &mut dyn FnMut(&str, Value),
) -> Result<(ModelCandidate, Value), String> {
    let (Some(url), Some(sha256), Some(size)) = (&params.url, &params.sha256, params.size) else {
        return Err("a model update needs \"url\", \"sha256\" and \"size\" (or \"rollback\": true)".into());
    };
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("sha256 {sha256:?} is not 64 hex digits"));
    }
    if size == 0 || size > MAX_MODEL_BYTES {
        return Err(format!("size {size} is out of range (1..={MAX_MODEL_BYTES})"));
    }
    let source = Source::parse(url, &ctx.model_dir)?;
    let sha256 = sha256.to_ascii_lowercase();
    let part = ctx.model_dir.join(STAGING_DIR).join(format!("{sha256}.part"));
    progress("downloading", json!({"url": url, "size": size, "staging": part.display().to_string()}));
    let mut reported = 0u64;
    let mut on_bytes = |have: u64, of: u64| {
        // One report per quarter: enough to follow, few enough for the broker.
        let quarter = have.saturating_mul(4) / of.max(1);
        if quarter > reported && have < of {
            reported = quarter;
            progress("downloading", json!({"bytes": have, "of": of}));
        }
    };
    let fetched = download::fetch(&source, &part, size, &sha256, &mut on_bytes).map_err(|e| e.to_string())?;
    let detail =
        json!({"received": fetched.received, "resumed_at": fetched.resumed_at, "attempts": fetched.attempts});
    progress("downloaded and verified", json!({"sha256": sha256, "size": size, "download": detail}));
    let candidate =
        ModelCandidate { model: model.to_owned(), path: path.to_owned(), staged: part, sha256, size };
    Ok((candidate, detail))
}

fn rollback_candidate(
    updates: &LocalUpdates,
    target: &Path,
    model: &str,
    path: &str,
) -> Result<ModelCandidate, String> {
    let record = updates.files.get(path).ok_or_else(|| format!("{path} was never updated on this box"))?;
    let (Some(sha256), Some(size)) = (&record.previous_sha256, record.previous_size) else {
        return Err(format!("no previous version of {path} is recorded"));
    };
    let previous = previous_path(target);
    let actual = voicebot_core::manifest::sha256_file(&previous)
        .map_err(|e| format!("{} is unreadable: {e}", previous.display()))?;
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(format!("{} has sha256 {actual}, not the recorded {sha256}", previous.display()));
    }
    Ok(ModelCandidate {
        model: model.to_owned(),
        path: path.to_owned(),
        staged: previous,
        sha256: sha256.clone(),
        size,
    })
}

/// The file in use becomes `<file>.previous`, the candidate takes its name,
/// and the local updates record the new bytes. Undone on any failure.
fn switch_on_disk(
    model_dir: &Path,
    target: &Path,
    candidate: &ModelCandidate,
    mut updates: LocalUpdates,
    installed: InstalledFile,
) -> Result<(), String> {
    let previous = previous_path(target);
    let mut outgoing = target.as_os_str().to_owned();
    outgoing.push(".outgoing");
    let outgoing = PathBuf::from(outgoing);
    let had_target = target.exists();
    if had_target {
        fs::rename(target, &outgoing).map_err(|e| format!("rename {}: {e}", target.display()))?;
    }
    let undo = |why: String| {
        if had_target {
            let _ = fs::rename(target, &candidate.staged);
            let _ = fs::rename(&outgoing, target);
        }
        why
    };
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir).map_err(|e| undo(format!("create {}: {e}", dir.display())))?;
    }
    fs::rename(&candidate.staged, target)
        .map_err(|e| undo(format!("rename {} to {}: {e}", candidate.staged.display(), target.display())))?;
    updates.files.insert(candidate.path.clone(), installed);
    replace_file(&model_dir.join(LOCAL_UPDATES_FILE), updates.to_toml().as_bytes())
        .map_err(|e| undo(format!("write {LOCAL_UPDATES_FILE}: {e}")))?;
    if had_target {
        // Only now is the old version no longer needed under its own name.
        fs::rename(&outgoing, &previous).map_err(|e| format!("keep {}: {e}", previous.display()))?;
    }
    if let Some(dir) = target.parent() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
