//! The model manifest (`models/manifest.toml`) and checksum verification.
//!
//! The manifest is embedded in the binary, so a box always knows which bytes
//! each model file must have. Engines load a file only after
//! [`ModelStore::verified_path`] has checked its size and sha256: a corrupt or
//! truncated model gives a clear error, never a crash inside a native engine.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::engine::EngineError;

/// The manifest shipped with this build.
pub const EMBEDDED_MANIFEST: &str = include_str!("../../../models/manifest.toml");

/// The known clip in the model directory that model self-tests transcribe.
pub const SAMPLE_CLIP: &str = "samples/jfk.wav";
/// What [`SAMPLE_CLIP`] says.
pub const SAMPLE_CLIP_TEXT: &str = "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

/// Model files installed on this box by `model_update` jobs, in the model
/// directory. Their size and sha256 replace the embedded manifest's, so a
/// restart loads (and `models verify` checks) the updated bytes.
pub const LOCAL_UPDATES_FILE: &str = "installed-models.toml";

/// The parsed manifest. Only the fields the daemon needs are read; the fetch
/// script reads the rest (sources, conversions).
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
}

/// One model or runtime library set.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default, alias = "license")]
    pub licence: String,
    #[serde(default)]
    pub version: String,
    /// The CPU architecture this entry is for; `None` means any.
    #[serde(default)]
    pub arch: Option<String>,
    pub files: Vec<ModelFile>,
}

/// A final file in the model directory.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelFile {
    /// Relative to the model directory.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// The state of one file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    Ok,
    Missing,
    WrongSize { actual: u64 },
    WrongHash { actual: String },
}

impl FileStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, FileStatus::Ok)
    }
}

/// The contents of [`LOCAL_UPDATES_FILE`]: file path → what is installed there.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalUpdates {
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, InstalledFile>,
}

/// One updated model file and the version it replaced (kept as `<path>.previous`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledFile {
    pub sha256: String,
    pub size: u64,
    /// The job that installed it.
    #[serde(default)]
    pub job_id: String,
    #[serde(default)]
    pub installed_at_ms: u64,
    /// The version it replaced.
    #[serde(default)]
    pub previous_sha256: Option<String>,
    #[serde(default)]
    pub previous_size: Option<u64>,
}

/// [`LocalUpdates`] could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LocalUpdatesError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is invalid: {source}; fix or remove it (the embedded manifest then applies)")]
    Parse { path: PathBuf, source: toml::de::Error },
}

impl LocalUpdates {
    /// The file in `dir`; empty when there is none.
    ///
    /// # Errors
    /// An unreadable or malformed file.
    pub fn load(dir: &Path) -> Result<LocalUpdates, LocalUpdatesError> {
        let path = dir.join(LOCAL_UPDATES_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|source| LocalUpdatesError::Parse { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LocalUpdates::default()),
            Err(source) => Err(LocalUpdatesError::Read { path, source }),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// A manifest parse error.
#[derive(Debug, thiserror::Error)]
#[error("model manifest is invalid: {0}")]
pub struct ManifestError(#[from] toml::de::Error);

impl Manifest {
    /// Parses manifest text.
    ///
    /// # Errors
    /// Fails on TOML that does not match the manifest's shape.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Ok(toml::from_str(text)?)
    }

    /// The manifest embedded in this binary.
    pub fn embedded() -> Manifest {
        // The embedded manifest is checked by a unit test, so this cannot fail at run time.
        Manifest::parse(EMBEDDED_MANIFEST).unwrap_or_else(|e| panic!("embedded manifest: {e}"))
    }

    /// Entries for this machine's architecture.
    pub fn for_this_arch(&self) -> impl Iterator<Item = &ModelEntry> {
        self.models.iter().filter(|m| m.arch.as_deref().is_none_or(|a| a == std::env::consts::ARCH))
    }

    /// Looks a model up by name, for this architecture.
    pub fn model(&self, name: &str) -> Option<&ModelEntry> {
        self.for_this_arch().find(|m| m.name == name)
    }
}

/// A model directory checked against a manifest.
#[derive(Debug, Clone)]
pub struct ModelStore {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// When false, files are only checked for presence and size (faster start).
    pub verify_hashes: bool,
}

impl ModelStore {
    pub fn new(dir: PathBuf, manifest: Manifest) -> Self {
        ModelStore { dir, manifest, verify_hashes: true }
    }

    /// Applies [`LocalUpdates`]: an updated file's size and sha256 replace the
    /// manifest's. Paths not in the manifest are ignored.
    pub fn with_updates(mut self, updates: &LocalUpdates) -> Self {
        for model in &mut self.manifest.models {
            for file in &mut model.files {
                if let Some(installed) = updates.files.get(&file.path) {
                    file.sha256.clone_from(&installed.sha256);
                    file.size = installed.size;
                }
            }
        }
        self
    }

    /// The default directory: `$VOICEBOTD_MODEL_DIR`, else the XDG cache.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("VOICEBOTD_MODEL_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("/var/lib"));
        cache.join("voicebotd").join("models")
    }

    /// Checks one manifest file on disk.
    pub fn status(&self, file: &ModelFile) -> FileStatus {
        file_status(&self.dir.join(&file.path), file, self.verify_hashes)
    }

    /// The path of `file_path` of model `model`, after checking it against the manifest.
    ///
    /// # Errors
    /// `ModelMissing` when absent, `ChecksumMismatch` when its size or sha256 differ.
    pub fn verified_path(&self, model: &str, file_path: &str) -> Result<PathBuf, EngineError> {
        let path = self.dir.join(file_path);
        let entry = self
            .manifest
            .model(model)
            .and_then(|m| m.files.iter().find(|f| f.path == file_path))
            .ok_or_else(|| EngineError::Load {
                engine: "model store",
                path: path.clone(),
                reason: format!("{model}/{file_path} is not in the model manifest"),
            })?;
        match self.status(entry) {
            FileStatus::Ok => Ok(path),
            FileStatus::Missing => Err(EngineError::ModelMissing { path }),
            FileStatus::WrongSize { actual } => Err(EngineError::ChecksumMismatch {
                path,
                expected: format!("{} ({} bytes)", entry.sha256, entry.size),
                actual: format!("unknown ({actual} bytes)"),
            }),
            FileStatus::WrongHash { actual } => {
                Err(EngineError::ChecksumMismatch { path, expected: entry.sha256.clone(), actual })
            }
        }
    }

    /// A file listed anywhere in the manifest (by its path in the model
    /// directory), after checking it.
    ///
    /// # Errors
    /// As [`ModelStore::verified_path`], or `Load` when the path is not listed.
    pub fn verified(&self, file_path: &str) -> Result<PathBuf, EngineError> {
        let model = self
            .manifest
            .for_this_arch()
            .find(|m| m.files.iter().any(|f| f.path == file_path))
            .map(|m| m.name.clone())
            .ok_or_else(|| EngineError::Load {
                engine: "model store",
                path: self.dir.join(file_path),
                reason: format!("{file_path} is not in the model manifest; see `voicebotd models list`"),
            })?;
        self.verified_path(&model, file_path)
    }

    /// The first file of `model` whose path ends with `suffix`, verified.
    ///
    /// # Errors
    /// As [`ModelStore::verified_path`], or `Load` when no such file is listed.
    pub fn verified_file_ending(&self, model: &str, suffix: &str) -> Result<PathBuf, EngineError> {
        let file = self
            .manifest
            .model(model)
            .and_then(|m| m.files.iter().find(|f| f.path.ends_with(suffix)))
            .ok_or_else(|| EngineError::Load {
                engine: "model store",
                path: self.dir.join(model),
                reason: format!("model {model} has no *{suffix} file in the manifest"),
            })?;
        self.verified_path(model, &file.path.clone())
    }
}

/// Checks a file's size and, if asked, its sha256.
pub fn file_status(path: &Path, file: &ModelFile, verify_hash: bool) -> FileStatus {
    let Ok(meta) = std::fs::metadata(path) else {
        return FileStatus::Missing;
    };
    if meta.len() != file.size {
        return FileStatus::WrongSize { actual: meta.len() };
    }
    if !verify_hash {
        return FileStatus::Ok;
    }
    match sha256_file(path) {
        Ok(actual) if actual.eq_ignore_ascii_case(&file.sha256) => FileStatus::Ok,
        Ok(actual) => FileStatus::WrongHash { actual },
        Err(_) => FileStatus::Missing,
    }
}

/// The hex sha256 of a file, streamed.
///
/// # Errors
/// Fails when the file cannot be read.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_manifest_parses_and_names_the_core_models() {
        let manifest = Manifest::embedded();
        for name in ["whisper-tiny.en", "whisper-base", "silero-vad", "piper-en-us-joe"] {
            let model = manifest.model(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(!model.files.is_empty());
            assert!(!model.licence.is_empty(), "{name} has no licence");
            for f in &model.files {
                assert_eq!(f.sha256.len(), 64, "{name}/{}", f.path);
            }
        }
    }

    fn store_with(dir: &Path, content: &[u8]) -> ModelStore {
        let sha = hex(&Sha256::digest(content));
        let manifest = Manifest::parse(&format!(
            "[[model]]\nname = \"m\"\nfiles = [{{ path = \"m/f.bin\", sha256 = \"{sha}\", size = {} }}]\n",
            content.len()
        ))
        .unwrap();
        ModelStore::new(dir.to_path_buf(), manifest)
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vb-manifest-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("m")).unwrap();
        dir
    }

    #[test]
    fn a_matching_file_verifies() {
        let dir = temp_dir("ok");
        std::fs::write(dir.join("m/f.bin"), b"weights").unwrap();
        let store = store_with(&dir, b"weights");
        assert_eq!(store.verified_path("m", "m/f.bin").unwrap(), dir.join("m/f.bin"));
    }

    #[test]
    fn a_corrupt_file_is_reported_with_both_hashes() {
        let dir = temp_dir("bad");
        std::fs::write(dir.join("m/f.bin"), b"weightz").unwrap();
        let store = store_with(&dir, b"weights");
        let err = store.verified_path("m", "m/f.bin").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EngineError::ChecksumMismatch { .. }), "{msg}");
        assert!(msg.contains("f.bin") && msg.contains("expected"), "{msg}");
    }

    #[test]
    fn a_truncated_file_is_caught_by_its_size() {
        let dir = temp_dir("short");
        std::fs::write(dir.join("m/f.bin"), b"weig").unwrap();
        let store = store_with(&dir, b"weights");
        assert!(matches!(store.verified_path("m", "m/f.bin"), Err(EngineError::ChecksumMismatch { .. })));
    }

    #[test]
    fn a_locally_updated_file_verifies_against_its_update_not_the_manifest() {
        let dir = temp_dir("updated");
        std::fs::write(dir.join("m/f.bin"), b"new weights").unwrap();
        let store = store_with(&dir, b"weights");
        assert!(store.verified_path("m", "m/f.bin").is_err());
        let mut updates = LocalUpdates::default();
        updates.files.insert(
            "m/f.bin".into(),
            InstalledFile {
                sha256: hex(&Sha256::digest(b"new weights")),
                size: 11,
                job_id: "J".into(),
                installed_at_ms: 1,
                previous_sha256: None,
                previous_size: None,
            },
        );
        std::fs::write(dir.join(LOCAL_UPDATES_FILE), updates.to_toml()).unwrap();
        let store = store.with_updates(&LocalUpdates::load(&dir).unwrap());
        assert_eq!(store.verified_path("m", "m/f.bin").unwrap(), dir.join("m/f.bin"));
    }

    #[test]
    fn a_missing_file_says_how_to_fetch_it() {
        let dir = temp_dir("missing");
        let store = store_with(&dir, b"weights");
        let msg = store.verified_path("m", "m/f.bin").unwrap_err().to_string();
        assert!(msg.contains("models fetch"), "{msg}");
    }
}
