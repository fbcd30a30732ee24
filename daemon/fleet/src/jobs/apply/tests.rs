use std::sync::Mutex;

use super::*;

pub(crate) const MINIMAL_PACK: &str = r#"
[pack]
name = "t"
version = "2"
languages = ["en"]

[[intent]]
name = "human_agent"
examples.en = ["agent please"]
answer.en = "Connecting you."

[[intent]]
name = "out_of_scope"
answer.en = "Sorry."
"#;

#[derive(Default)]
struct Recorder {
    refuse_pack: bool,
    packs: Mutex<Vec<String>>,
    logs: Vec<String>,
}

impl DeviceHooks for Recorder {
    fn swap_pack(&self, pack: KnowledgePack) -> Result<(), String> {
        if self.refuse_pack {
            return Err("analyzer could not be built".into());
        }
        self.packs.lock().unwrap().push(pack.version);
        Ok(())
    }

    fn recent_logs(&self, lines: usize) -> Result<Vec<String>, String> {
        Ok(self.logs.iter().rev().take(lines).rev().cloned().collect())
    }
}

fn job(command: &str, params: Value) -> Job {
    Job {
        job_id: "J1".into(),
        command: command.into(),
        site: "s".into(),
        device: "d".into(),
        issued_at_ms: 0,
        nonce: "nonce-0001".into(),
        params,
    }
}

fn context(dir: &Path, hooks: Arc<dyn DeviceHooks>) -> JobContext {
    JobContext {
        config_path: Some(dir.join("voicebotd.toml")),
        pack_path: Some(dir.join("pack.toml")),
        model_dir: dir.join("models"),
        models_in_use: vec![],
        hooks,
    }
}

fn run(job: &Job, ctx: &JobContext) -> (Outcome, Vec<Value>) {
    let mut steps = vec![];
    let outcome = execute(job, ctx, &mut |_, detail| steps.push(detail));
    (outcome, steps)
}

#[test]
fn a_valid_config_is_persisted_atomically_keeping_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), Arc::new(NoHooks));
    std::fs::write(ctx.config_path.as_ref().unwrap(), "[asr]\nthreads = 2\n").unwrap();
    let text = "[asr]\nthreads = 3\n";
    let (outcome, _) = run(&job("config_update", json!({"toml": text})), &ctx);
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(std::fs::read_to_string(ctx.config_path.as_ref().unwrap()).unwrap(), text);
    let previous = previous_path(ctx.config_path.as_ref().unwrap());
    assert_eq!(std::fs::read_to_string(previous).unwrap(), "[asr]\nthreads = 2\n");
    assert_eq!(outcome.detail["config_hash"], config_hash(text));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left behind");
}

#[test]
fn an_invalid_config_is_rejected_with_the_checker_message_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), Arc::new(NoHooks));
    std::fs::write(ctx.config_path.as_ref().unwrap(), "[asr]\nthreads = 2\n").unwrap();
    let (outcome, _) = run(&job("config_update", json!({"toml": "[asr]\nthreads = 99\n"})), &ctx);
    assert!(!outcome.ok);
    assert!(
        outcome.message.contains("asr.threads") && outcome.message.contains("job J1"),
        "{}",
        outcome.message
    );
    assert_eq!(std::fs::read_to_string(ctx.config_path.as_ref().unwrap()).unwrap(), "[asr]\nthreads = 2\n");
    let (outcome, _) = run(&job("config_update", json!({"text": "x"})), &ctx);
    assert!(!outcome.ok && outcome.message.contains("params"), "{}", outcome.message);
}

#[test]
fn a_config_update_without_a_config_file_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = JobContext { config_path: None, ..context(dir.path(), Arc::new(NoHooks)) };
    let (outcome, _) = run(&job("config_update", json!({"toml": ""})), &ctx);
    assert!(!outcome.ok && outcome.message.contains("--config"), "{}", outcome.message);
}

#[test]
fn a_valid_pack_is_swapped_in() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = Arc::new(Recorder::default());
    let ctx = context(dir.path(), hooks.clone());
    let (outcome, _) = run(&job("pack_update", json!({"toml": MINIMAL_PACK})), &ctx);
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(*hooks.packs.lock().unwrap(), ["2"]);
    assert_eq!(std::fs::read_to_string(ctx.pack_path.as_ref().unwrap()).unwrap(), MINIMAL_PACK);
}

#[test]
fn a_pack_the_daemon_cannot_use_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), Arc::new(Recorder { refuse_pack: true, ..Recorder::default() }));
    let old = MINIMAL_PACK.replace("version = \"2\"", "version = \"1\"");
    std::fs::write(ctx.pack_path.as_ref().unwrap(), &old).unwrap();
    let (outcome, _) = run(&job("pack_update", json!({"toml": MINIMAL_PACK})), &ctx);
    assert!(!outcome.ok && outcome.message.contains("rolled back"), "{}", outcome.message);
    assert_eq!(std::fs::read_to_string(ctx.pack_path.as_ref().unwrap()).unwrap(), old);
}

#[test]
fn an_invalid_pack_is_rejected_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), Arc::new(Recorder::default()));
    let (outcome, _) = run(&job("pack_update", json!({"toml": "[pack]\nname = 1\n"})), &ctx);
    assert!(!outcome.ok && outcome.message.contains("pack rejected"), "{}", outcome.message);
    assert!(!ctx.pack_path.as_ref().unwrap().exists());
}

#[test]
fn logs_are_uploaded_in_numbered_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<String> = (0..120).map(|i| format!("line {i}")).collect();
    let ctx = context(dir.path(), Arc::new(Recorder { logs, ..Recorder::default() }));
    let (outcome, steps) = run(&job("diagnostics", json!({"action": "upload_logs", "lines": 110})), &ctx);
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(steps.len(), 3);
    assert_eq!((steps[0]["chunk"].as_u64(), steps[0]["of"].as_u64()), (Some(1), Some(3)));
    assert_eq!(steps[0]["lines"][0], "line 10");
    assert_eq!(steps[2]["lines"].as_array().unwrap().len(), 10);
}

#[test]
fn a_capability_the_daemon_lacks_fails_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), Arc::new(NoHooks));
    let (outcome, _) = run(&job("diagnostics", json!({"action": "log_level", "filter": "debug"})), &ctx);
    assert!(!outcome.ok && outcome.message.contains("cannot change its log level"), "{}", outcome.message);
    let (outcome, _) = run(&job("diagnostics", json!({"action": "reboot"})), &ctx);
    assert!(!outcome.ok && outcome.message.contains("diagnostics params"), "{}", outcome.message);
}
