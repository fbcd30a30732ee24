//! Model updates and diagnostics through a real mosquitto and the real
//! daemon with real models: a model update whose sha256 does not match fails
//! and the old model keeps serving; one that passes (downloaded over HTTP from
//! a server that drops the connection halfway once, so the download resumes)
//! is self-tested on the known clip, switched, and announced in the birth
//! message. Diagnostics (self-test call, models verify, log level, log upload)
//! run against the live daemon.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use voicebot_core::manifest::{Manifest, ModelStore, sha256_file};
use voicebot_fleet::jobs::envelope::signed_message;

const SITE: &str = "default";
const DEVICE: &str = "model-box";
const ENGLISH: &str = "whisper-tiny.en/ggml-tiny.en.bin";
const REPLACEMENT: &str = "whisper-tiny.en/ggml-tiny.en-q8_0.bin";

fn mosquitto() -> Option<PathBuf> {
    let found = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        eprintln!(
            "\n######## SKIPPED: mosquitto is not installed (apt-get install mosquitto mosquitto-clients) ########\n"
        );
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills (and reaps) a child when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A one-file HTTP server that honours `Range` and, once, closes the
/// connection after sending half of a full response.
struct FileServer {
    port: u16,
    requests: Arc<AtomicUsize>,
    ranged: Arc<AtomicUsize>,
}

impl FileServer {
    fn start(body: Vec<u8>, drop_once: bool) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = Arc::new(body);
        let dropped = Arc::new(AtomicBool::new(!drop_once));
        let requests = Arc::new(AtomicUsize::new(0));
        let ranged = Arc::new(AtomicUsize::new(0));
        let (r, g) = (Arc::clone(&requests), Arc::clone(&ranged));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (body, dropped, r, g) =
                    (Arc::clone(&body), Arc::clone(&dropped), Arc::clone(&r), Arc::clone(&g));
                std::thread::spawn(move || serve(stream, &body, &dropped, &r, &g));
            }
        });
        FileServer { port, requests, ranged }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/model.bin", self.port)
    }
}

fn serve(
    mut stream: TcpStream,
    body: &[u8],
    dropped: &AtomicBool,
    requests: &AtomicUsize,
    ranged: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut start = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(range) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            start = range.trim().trim_end_matches('-').parse().unwrap_or(0);
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let rest = &body[start.min(body.len())..];
    let head = if start > 0 {
        ranged.fetch_add(1, Ordering::SeqCst);
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
            rest.len(),
            body.len() - 1,
            body.len()
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len())
    };
    let _ = stream.write_all(head.as_bytes());
    if start == 0 && !dropped.swap(true, Ordering::SeqCst) {
        let _ = stream.write_all(&rest[..rest.len() / 2]);
        let _ = stream.flush();
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return;
    }
    let _ = stream.write_all(rest);
}

/// Mirrors the real model directory with symlinks, so the test can replace
/// files without touching the shared models.
fn mirror(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            mirror(&src, &dst);
        } else {
            std::os::unix::fs::symlink(&src, &dst).unwrap();
        }
    }
}

/// Everything the daemon publishes, recorded by `mosquitto_sub -v`.
struct Recorder {
    file: PathBuf,
    _child: Reaped,
}

impl Recorder {
    fn start(port: u16, dir: &Path) -> Recorder {
        let file = dir.join("messages.txt");
        let out = std::fs::File::create(&file).unwrap();
        let child = Command::new("mosquitto_sub")
            .args(["-p", &port.to_string(), "-v", "-q", "1", "-t", &format!("voicebot/v1/{SITE}/{DEVICE}/#")])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (apt-get install mosquitto-clients)");
        Recorder { file, _child: Reaped(child) }
    }

    fn messages(&self, leaf: &str) -> Vec<Value> {
        let topic = format!("voicebot/v1/{SITE}/{DEVICE}/{leaf} ");
        let mut text = String::new();
        std::fs::File::open(&self.file).unwrap().read_to_string(&mut text).unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix(&topic))
            .filter_map(|payload| serde_json::from_str(payload).ok())
            .collect()
    }

    /// Waits for the terminal result of `job_id` on `cmd/<command>/result`.
    fn result(&self, command: &str, job_id: &str, timeout: Duration) -> (Value, Vec<Value>) {
        let until = Instant::now() + timeout;
        loop {
            let steps: Vec<Value> = self
                .messages(&format!("cmd/{command}/result"))
                .into_iter()
                .filter(|r| r["job_id"] == job_id)
                .collect();
            if let Some(last) = steps
                .iter()
                .find(|r| ["succeeded", "failed", "rejected"].contains(&r["status"].as_str().unwrap_or("")))
            {
                return (last.clone(), steps);
            }
            assert!(Instant::now() < until, "no result for {job_id}; steps so far: {steps:#?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn births(&self) -> Vec<Value> {
        self.messages("status").into_iter().filter(|s| s["state"] == "online").collect()
    }
}

struct JobSender {
    key: SigningKey,
    port: u16,
    next: usize,
}

impl JobSender {
    fn send(&mut self, command: &str, params: Value) -> String {
        self.next += 1;
        let job_id = format!("T-{command}-{}", self.next);
        let job = json!({"job_id": job_id, "command": command, "site": SITE, "device": DEVICE,
                         "issued_at_ms": voicebot_fleet::now_ms(), "nonce": format!("nonce-{job_id}-{}", std::process::id()),
                         "params": params})
        .to_string();
        let sig = self.key.sign(&signed_message(&job));
        let b64 = base64_encode(&sig.to_bytes());
        let body = json!({"job": job, "sig": b64}).to_string();
        let status = Command::new("mosquitto_pub")
            .args([
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-t",
                &format!("voicebot/v1/{SITE}/{DEVICE}/cmd/{command}"),
                "-m",
                &body,
            ])
            .status()
            .unwrap();
        assert!(status.success());
        job_id
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn model_updates_fail_safe_on_a_bad_sha256_and_switch_after_a_resumed_download_and_self_test() {
    let Some(mosquitto) = mosquitto() else { return };
    let models = ModelStore::default_dir();
    let store = ModelStore::new(models.clone(), Manifest::embedded());
    if store.verified(ENGLISH).is_err() || store.verified(REPLACEMENT).is_err() {
        eprintln!(
            "\n######## SKIPPED: {ENGLISH} or {REPLACEMENT} not in {} (voicebotd models fetch) ########\n",
            models.display()
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("voicebotd-fleet-models-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model_dir = dir.join("models");
    mirror(&models, &model_dir);

    let port = free_port();
    let _broker = Reaped(
        Command::new(mosquitto).args(["-p", &port.to_string()]).stderr(Stdio::null()).spawn().unwrap(),
    );
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let recorder = Recorder::start(port, &dir);

    let key = SigningKey::from_bytes(&[42u8; 32]);
    std::fs::write(dir.join("fleet.pub"), base64_encode(key.verifying_key().as_bytes())).unwrap();
    let config = dir.join("voicebotd.toml");
    std::fs::write(
        &config,
        format!(
            "[models]\ndir = \"{}\"\n[fleet]\ndevice_id = \"{DEVICE}\"\noutbox = \"{}\"\npublic_key = \"{}\"\n[sip]\nlisten_udp = \"127.0.0.1:0\"\nlisten_tcp = \"\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n[http]\nlisten = \"\"\n",
            model_dir.display(),
            dir.join("outbox.db").display(),
            dir.join("fleet.pub").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut daemon = Reaped(
        Command::new(env!("CARGO_BIN_EXE_voicebotd"))
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("VOICEBOTD_MODEL_DIR", &model_dir)
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let until = Instant::now() + Duration::from_secs(180);
    while recorder.births().is_empty() {
        let log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
        assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon exited: {}", log());
        assert!(Instant::now() < until, "no birth; daemon log: {}", log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let first_birth = recorder.births()[0].clone();
    // What the box can do: the phone line (SIP is on here), and where the models run.
    assert_eq!(first_birth["capabilities"]["channels"], json!(["phone"]), "{first_birth}");
    assert_eq!(first_birth["capabilities"]["accelerator"], "onnx=CPU, whisper=CPU", "{first_birth}");
    let shipped = sha256_file(&model_dir.join(ENGLISH)).unwrap();
    let mut jobs = JobSender { key, port, next: 0 };

    // 1. A wrong sha256: the download is refused, nothing switches, calls still work.
    let replacement = std::fs::read(model_dir.join(REPLACEMENT)).unwrap();
    let real_sha = sha256_file(&model_dir.join(REPLACEMENT)).unwrap();
    let server = FileServer::start(replacement.clone(), false);
    let wrong_sha = "0".repeat(64);
    let id = jobs.send("model_update", json!({"model": "whisper-tiny.en", "url": server.url(), "sha256": wrong_sha, "size": replacement.len()}));
    let (result, _) = recorder.result("model_update", &id, Duration::from_secs(120));
    assert_eq!(result["status"], "failed", "{result}");
    let message = result["message"].as_str().unwrap();
    assert!(message.contains("sha256 mismatch") && message.contains("the model in use stays"), "{message}");
    assert_eq!(sha256_file(&model_dir.join(ENGLISH)).unwrap(), shipped);
    let id = jobs.send("diagnostics", json!({"action": "self_test_call"}));
    let (result, _) = recorder.result("diagnostics", &id, Duration::from_secs(120));
    assert_eq!(result["status"], "succeeded", "the old model keeps serving: {result}");
    assert!(!result["detail"]["turns"].as_array().unwrap().is_empty(), "{result}");
    assert_eq!(recorder.births().len(), 1, "no new birth after a failed update");

    // 2. The right sha256, served by a server that drops the first response halfway.
    let server = FileServer::start(replacement.clone(), true);
    let id = jobs.send("model_update", json!({"model": "whisper-tiny.en", "url": server.url(), "sha256": real_sha, "size": replacement.len()}));
    let (result, steps) = recorder.result("model_update", &id, Duration::from_secs(300));
    assert_eq!(result["status"], "succeeded", "{result}\nsteps: {steps:#?}");
    let detail = &result["detail"];
    assert!(
        !detail["download"]["resumed_at"].as_array().unwrap().is_empty(),
        "the download must have resumed: {detail}"
    );
    assert!(server.ranged.load(Ordering::SeqCst) >= 1 && server.requests.load(Ordering::SeqCst) >= 2);
    assert!(detail["self_test"]["wer"].as_f64().unwrap() <= 0.2, "{detail}");
    let step_names: Vec<&str> = steps.iter().filter_map(|s| s["message"].as_str()).collect();
    for step in ["downloading", "downloaded and verified", "loaded", "self-test passed"] {
        assert!(step_names.contains(&step), "{step_names:?}");
    }
    assert_eq!(sha256_file(&model_dir.join(ENGLISH)).unwrap(), real_sha, "switched on disk");
    assert_eq!(
        sha256_file(&model_dir.join(format!("{ENGLISH}.previous"))).unwrap(),
        shipped,
        "previous kept"
    );
    let until = Instant::now() + Duration::from_secs(30);
    while recorder.births().len() < 2 {
        assert!(Instant::now() < until, "no birth after the model update");
        std::thread::sleep(Duration::from_millis(200));
    }
    let birth = recorder.births().last().unwrap().clone();
    assert_eq!(birth["versions"]["model_files"][ENGLISH], real_sha.as_str(), "{birth}");
    assert_ne!(birth["versions"]["models"], first_birth["versions"]["models"]);

    // The new model serves calls, and `models verify` accepts the updated file.
    let id = jobs.send("diagnostics", json!({"action": "self_test_call"}));
    let (result, _) = recorder.result("diagnostics", &id, Duration::from_secs(120));
    assert_eq!(result["status"], "succeeded", "{result}");
    let id = jobs.send("diagnostics", json!({"action": "models_verify"}));
    let (result, _) = recorder.result("diagnostics", &id, Duration::from_secs(300));
    assert_eq!(result["status"], "succeeded", "{result}");
    let english =
        result["detail"]["files"].as_array().unwrap().iter().find(|f| f["path"] == ENGLISH).cloned();
    assert_eq!(english.unwrap()["sha256"], real_sha.as_str());

    // Log level and the log ring.
    let id = jobs.send("diagnostics", json!({"action": "log_level", "filter": "debug"}));
    assert_eq!(recorder.result("diagnostics", &id, Duration::from_secs(30)).0["status"], "succeeded");
    let id = jobs.send("diagnostics", json!({"action": "upload_logs", "lines": 200}));
    let (result, steps) = recorder.result("diagnostics", &id, Duration::from_secs(30));
    assert_eq!(result["status"], "succeeded", "{result}");
    let lines: Vec<String> = steps
        .iter()
        .filter(|s| s["message"] == "log chunk")
        .flat_map(|s| s["detail"]["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()))
        .collect();
    assert!(lines.iter().any(|l| l.contains("model swapped by a fleet job")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("log filter changed")), "{lines:#?}");

    // A config update: [dialog] applies live (for new conversations), the rest on restart.
    let before = std::fs::read_to_string(&config).unwrap();
    let updated =
        format!("{before}[dialog]\nend_of_turn_ms = 700\nelder_lines = [\"8001\"]\n[tts]\nrate = 1.1\n");
    let id = jobs.send("config_update", json!({"toml": updated}));
    let (result, _) = recorder.result("config_update", &id, Duration::from_secs(30));
    assert_eq!(result["status"], "succeeded", "{result}");
    let keys = |field: &str| -> Vec<String> {
        result["detail"][field].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(keys("applied_live"), ["dialog.elder_lines", "dialog.end_of_turn_ms"], "{result}");
    assert_eq!(keys("restart_required"), ["tts.rate"], "{result}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), updated, "persisted");
    // A `kiosk` job on a box without a kiosk fails and says why.
    let id = jobs.send("kiosk", json!({"action": "assist"}));
    let (result, _) = recorder.result("kiosk", &id, Duration::from_secs(30));
    assert_eq!(result["status"], "failed", "{result}");
    assert!(result["message"].as_str().unwrap().contains("no kiosk runs here"), "{result}");

    Command::new("kill").arg("-TERM").arg(daemon.0.id().to_string()).status().unwrap();
    let status = daemon.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
