use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::Digest;

use super::*;
use crate::jobs::apply::DeviceHooks;

const TARGET: &str = "silero-vad/silero_vad.onnx";

fn sha(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Hooks whose "engine" passes its self-test when the file starts with `good`.
#[derive(Default)]
struct FakeHooks {
    loaded: Mutex<Vec<Vec<u8>>>,
    activated: AtomicUsize,
}

struct FakeModel {
    bytes: Vec<u8>,
    hooks: Arc<FakeHooks>,
    dropped: Arc<AtomicBool>,
}

impl PreparedModel for FakeModel {
    fn self_test(&mut self) -> Result<Value, String> {
        if self.bytes.starts_with(b"good") { Ok(json!({"ok": true})) } else { Err("it hears nothing".into()) }
    }
    fn activate(self: Box<Self>) {
        self.hooks.activated.fetch_add(1, Ordering::SeqCst);
        self.dropped.store(true, Ordering::SeqCst);
    }
}

struct Hooks(Arc<FakeHooks>);

impl DeviceHooks for Hooks {
    fn prepare_model(&self, candidate: &ModelCandidate) -> Result<Box<dyn PreparedModel>, String> {
        let bytes = fs::read(&candidate.staged).map_err(|e| e.to_string())?;
        self.0.loaded.lock().unwrap().push(bytes.clone());
        Ok(Box::new(FakeModel { bytes, hooks: Arc::clone(&self.0), dropped: Arc::default() }))
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    hooks: Arc<FakeHooks>,
    ctx: JobContext,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("silero-vad")).unwrap();
    fs::write(dir.path().join(TARGET), b"the shipped model").unwrap();
    fs::write(dir.path().join("new.onnx"), b"good new model").unwrap();
    fs::write(dir.path().join("bad.onnx"), b"bad new model").unwrap();
    let hooks = Arc::new(FakeHooks::default());
    let ctx = JobContext {
        config_path: None,
        pack_path: None,
        model_dir: dir.path().to_path_buf(),
        models_in_use: vec![TARGET.into()],
        hooks: Arc::new(Hooks(Arc::clone(&hooks))),
    };
    Fixture { dir, hooks, ctx }
}

fn job(params: Value) -> Job {
    Job {
        job_id: "MU-1".into(),
        command: "model_update".into(),
        site: "s".into(),
        device: "d".into(),
        issued_at_ms: 1,
        nonce: "nonce-mu-1".into(),
        params,
    }
}

fn update(f: &Fixture, params: Value) -> (Outcome, Vec<(String, Value)>) {
    let job = job(params);
    let params = serde_json::from_value(job.params.clone()).unwrap();
    let mut steps = vec![];
    let outcome = run(&job, &f.ctx, params, &mut |m: &str, d: Value| steps.push((m.to_owned(), d)));
    (outcome, steps)
}

#[test]
fn a_verified_model_that_passes_its_self_test_is_switched_and_the_old_one_kept() {
    let f = fixture();
    let (outcome, steps) = update(
        &f,
        json!({"model": "silero-vad", "url": "new.onnx", "sha256": sha(b"good new model"), "size": 14}),
    );
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(fs::read(f.dir.path().join(TARGET)).unwrap(), b"good new model");
    assert_eq!(fs::read(f.dir.path().join(format!("{TARGET}.previous"))).unwrap(), b"the shipped model");
    assert_eq!(f.hooks.activated.load(Ordering::SeqCst), 1);
    let names: Vec<&str> = steps.iter().map(|(m, _)| m.as_str()).collect();
    for step in ["downloading", "downloaded and verified", "loaded", "self-test passed"] {
        assert!(names.contains(&step), "{names:?}");
    }
    let store = ModelStore::new(f.dir.path().to_path_buf(), Manifest::embedded())
        .with_updates(&LocalUpdates::load(f.dir.path()).unwrap());
    assert!(store.verified(TARGET).is_ok(), "a restart must load the new bytes");
    assert_eq!(outcome.detail["versions"]["model_files"][TARGET], sha(b"good new model"));
    assert!(outcome.detail["versions"]["models"].as_str().unwrap().contains("+local-"));
}

#[test]
fn a_sha256_mismatch_fails_before_anything_loads_and_changes_nothing() {
    let f = fixture();
    let (outcome, _) =
        update(&f, json!({"model": TARGET, "url": "new.onnx", "sha256": sha(b"something else"), "size": 14}));
    assert!(!outcome.ok);
    assert!(outcome.message.contains("sha256 mismatch"), "{}", outcome.message);
    assert_eq!(fs::read(f.dir.path().join(TARGET)).unwrap(), b"the shipped model");
    assert!(f.hooks.loaded.lock().unwrap().is_empty());
    assert!(!f.dir.path().join(LOCAL_UPDATES_FILE).exists());
    assert_eq!(
        fs::read_dir(f.dir.path().join(STAGING_DIR)).unwrap().count(),
        0,
        "the bad download is deleted"
    );
}

#[test]
fn a_failed_self_test_rolls_back_and_says_why() {
    let f = fixture();
    let (outcome, _) = update(
        &f,
        json!({"model": "silero-vad", "url": "bad.onnx", "sha256": sha(b"bad new model"), "size": 13}),
    );
    assert!(!outcome.ok);
    assert!(outcome.message.contains("self-test failed: it hears nothing"), "{}", outcome.message);
    assert_eq!(fs::read(f.dir.path().join(TARGET)).unwrap(), b"the shipped model");
    assert_eq!(f.hooks.activated.load(Ordering::SeqCst), 0);
    assert!(!f.dir.path().join(format!("{TARGET}.previous")).exists());
}

#[test]
fn a_rollback_puts_the_previous_version_back_through_the_self_test() {
    let f = fixture();
    fs::write(f.dir.path().join(TARGET), b"good shipped model").unwrap();
    let (first, _) = update(
        &f,
        json!({"model": "silero-vad", "url": "new.onnx", "sha256": sha(b"good new model"), "size": 14}),
    );
    assert!(first.ok, "{first:?}");
    // The manifest's sha256 is not this test's file: record what was really there.
    let mut updates = LocalUpdates::load(f.dir.path()).unwrap();
    let entry = updates.files.get_mut(TARGET).unwrap();
    entry.previous_sha256 = Some(sha(b"good shipped model"));
    entry.previous_size = Some(18);
    fs::write(f.dir.path().join(LOCAL_UPDATES_FILE), updates.to_toml()).unwrap();

    let (back, _) = update(&f, json!({"model": "silero-vad", "rollback": true}));
    assert!(back.ok, "{back:?}");
    assert_eq!(fs::read(f.dir.path().join(TARGET)).unwrap(), b"good shipped model");
    assert_eq!(fs::read(f.dir.path().join(format!("{TARGET}.previous"))).unwrap(), b"good new model");
    assert_eq!(f.hooks.activated.load(Ordering::SeqCst), 2);
}

#[test]
fn a_model_with_several_files_takes_the_one_in_use_or_asks() {
    let mut f = fixture();
    let (outcome, _) = update(
        &f,
        json!({"model": "whisper-tiny.en", "url": "new.onnx", "sha256": sha(b"good new model"), "size": 14}),
    );
    assert!(outcome.message.contains("several files"), "{}", outcome.message);
    f.ctx.models_in_use.push("whisper-tiny.en/ggml-tiny.en.bin".into());
    let (outcome, _) = update(
        &f,
        json!({"model": "whisper-tiny.en", "url": "new.onnx", "sha256": sha(b"good new model"), "size": 14}),
    );
    assert!(outcome.ok, "{outcome:?}");
    assert!(f.dir.path().join("whisper-tiny.en/ggml-tiny.en.bin").exists());
}

#[test]
fn missing_or_malformed_download_fields_are_refused() {
    let f = fixture();
    let (outcome, _) = update(&f, json!({"model": "silero-vad", "url": "new.onnx"}));
    assert!(outcome.message.contains("needs \"url\", \"sha256\" and \"size\""), "{}", outcome.message);
    let (outcome, _) =
        update(&f, json!({"model": "silero-vad", "url": "new.onnx", "sha256": "abc", "size": 14}));
    assert!(outcome.message.contains("64 hex digits"), "{}", outcome.message);
    let (outcome, _) =
        update(&f, json!({"model": "no-such-model", "url": "new.onnx", "sha256": sha(b"x"), "size": 1}));
    assert!(outcome.message.contains("neither a model nor a model file"), "{}", outcome.message);
}
