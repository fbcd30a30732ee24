//! `voicebotd doctor`: one `PASS|WARN|FAIL <check>: <detail>` line per finding,
//! against real peers (a closed port, a real mosquitto, silent and answering
//! SIP hosts, the fetched models), exit 1 exactly when a line fails, and the
//! whole run within its time bound.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Broker, Daemon, bin, free_port, free_udp_port, scratch};
use serde_json::Value;

/// The doctor's budget is 9 s; allow for process start on a loaded machine.
const TIME_BOUND: Duration = Duration::from_secs(14);

/// A config: `[sip]` listening on UDP `listen_udp` only, plus `sip` keys, then
/// the other sections in `rest`.
fn config(dir: &Path, listen_udp: &str, sip: &str, rest: &str) -> PathBuf {
    let path = dir.join("voicebotd.toml");
    let text = format!("[sip]\nlisten_udp = \"{listen_udp}\"\nlisten_tcp = \"\"\n{sip}{rest}");
    std::fs::write(&path, text).unwrap();
    path
}

/// An empty model directory: the models fail at once instead of being hashed,
/// so tests about other checks run quickly.
fn no_models(dir: &Path) -> String {
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    format!("[models]\ndir = \"{}\"\n", models.display())
}

struct Report {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Report {
    fn lines(&self, prefix: &str) -> Vec<&str> {
        self.stdout.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    fn has(&self, prefix: &str) -> bool {
        !self.lines(prefix).is_empty()
    }
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?} after {:?}\n{}{}", self.code, self.elapsed, self.stdout, self.stderr)
    }
}

fn doctor(config: &Path, json: bool) -> Report {
    let mut command = bin();
    command.arg("--config").arg(config).arg("doctor");
    if json {
        command.arg("--json");
    }
    run(command)
}

fn doctor_with_env(config: &Path, env: &[(&str, &Path)]) -> Report {
    let mut command = bin();
    command.arg("--config").arg(config).arg("doctor").envs(env.iter().copied());
    run(command)
}

fn run(mut command: std::process::Command) -> Report {
    let started = Instant::now();
    let out = command.output().unwrap();
    let report = Report {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    assert!(!report.stderr.contains("panicked"), "{report:?}");
    assert!(report.elapsed < TIME_BOUND, "{report:?}");
    let failed = report.stdout.lines().any(|l| l.starts_with("FAIL ") || l.contains(r#""status":"FAIL""#));
    assert_eq!(report.code, Some(i32::from(failed)), "exit 1 exactly when a line fails: {report:?}");
    report
}

/// A UDP socket that never answers (so no ICMP "port unreachable" either).
fn silent_udp() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// A UDP SIP peer that answers every OPTIONS with 200 OK, copying the
/// transaction headers back, until the test process ends.
fn answering_udp() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let copied: String = request
                .lines()
                .filter(|l| ["Via:", "From:", "To:", "Call-ID:", "CSeq:"].iter().any(|h| l.starts_with(h)))
                .map(|l| format!("{l}\r\n"))
                .collect();
            let answer = format!("SIP/2.0 200 OK\r\n{copied}Content-Length: 0\r\n\r\n");
            let _ = socket.send_to(answer.as_bytes(), from);
        }
    });
    port
}

#[test]
fn a_closed_broker_port_fails_the_broker_line_and_the_exit_code_while_the_fetched_models_pass() {
    let dir = scratch("doctor-closed");
    let queue = silent_udp();
    let sip = format!("agent_queue = \"sip:agents@{}\"\n", queue.local_addr().unwrap());
    let mqtt = format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n", free_port());
    let report = doctor(&config(&dir, "127.0.0.1:0", &sip, &mqtt), false);
    assert_eq!(report.code, Some(1), "{report:?}");
    let broker = report.lines("FAIL broker: ");
    assert!(broker.len() == 1 && broker[0].contains("refused"), "{report:?}");
    assert!(report.stderr.contains("check(s) failed"), "{report:?}");
    // The models as fetched for the tests: each is either hashed and fine, or
    // (in a slow debug build) found with the right sizes and left for `models verify`.
    assert!(report.has("PASS models: "), "{report:?}");
    assert!(!report.has("FAIL models: "), "{report:?}");
    assert!(report.has("PASS config: loaded from "), "{report:?}");
    assert!(report.has("PASS libraries: ONNX Runtime 1."), "{report:?}");
    assert!(report.has("PASS libraries: sherpa-onnx "), "{report:?}");
    // CPU only is a pass; a GPU the runtime cannot use, a warning.
    let accelerator = report.stdout.lines().find(|l| l.contains(" accelerator: ")).unwrap_or_default();
    assert!(accelerator.starts_with("PASS") || accelerator.starts_with("WARN"), "{report:?}");
    assert!(!accelerator.contains("did not finish"), "{report:?}");
}

#[test]
fn a_real_broker_passes_the_broker_line() {
    let Some(broker) = Broker::start() else { return };
    let dir = scratch("doctor-broker");
    let rest = format!("{}[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n", no_models(&dir), broker.port);
    let report = doctor(&config(&dir, "127.0.0.1:0", "", &rest), false);
    let url = format!("PASS broker: connected to mqtt://127.0.0.1:{}", broker.port);
    assert!(report.has(&url), "{report:?}");
    assert!(report.has("FAIL models: "), "{report:?}");
    assert_eq!(report.code, Some(1), "the empty model directory fails: {report:?}");
}

#[test]
fn json_lines_parse_and_carry_check_status_and_detail() {
    let dir = scratch("doctor-json");
    let port = answering_udp();
    let sip = format!("agent_queue = \"sip:agents@127.0.0.1:{port}\"\n");
    let report = doctor(&config(&dir, "127.0.0.1:0", &sip, &no_models(&dir)), true);
    let lines: Vec<Value> = report
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let mut checks = Vec::new();
    for line in &lines {
        let object = line.as_object().unwrap();
        assert_eq!(object.len(), 3, "{line}");
        let status = line["status"].as_str().unwrap();
        assert!(["PASS", "WARN", "FAIL"].contains(&status), "{line}");
        assert!(!line["detail"].as_str().unwrap().is_empty(), "{line}");
        checks.push(line["check"].as_str().unwrap().to_owned());
    }
    for check in ["config", "accelerator", "libraries", "models", "audio", "broker", "sip"] {
        assert!(checks.iter().any(|c| c == check), "no {check} line: {report:?}");
    }
    // The runtime library lives in the (empty) model directory: a FAIL naming the path and the fix.
    let runtime = lines.iter().find(|l| l["check"] == "libraries" && l["status"] == "FAIL").unwrap();
    let detail = runtime["detail"].as_str().unwrap();
    assert!(detail.contains("libonnxruntime.so") && detail.contains("models fetch"), "{runtime}");
    let broker = lines.iter().find(|l| l["check"] == "broker").unwrap();
    assert_eq!(broker["status"], "PASS");
    assert!(broker["detail"].as_str().unwrap().starts_with("not configured"), "{broker}");
    assert_eq!(report.code, Some(1), "the empty model directory fails: {report:?}");
}

#[test]
fn a_sip_queue_that_never_answers_fails_within_the_time_bound_and_an_answering_one_passes() {
    let dir = scratch("doctor-sip");
    let silent = silent_udp();
    let answering = answering_udp();
    // Our own listen port, taken by this test process: not a voicebotd.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sip = format!(
        "agent_queue = \"sip:agents@{}\"\n[sip.skill_queues]\nbilling = \"sip:billing@127.0.0.1:{}\"\n",
        silent.local_addr().unwrap(),
        answering
    );
    let path = config(&dir, &taken.local_addr().unwrap().to_string(), &sip, &no_models(&dir));
    let started = Instant::now();
    let report = doctor(&path, false);
    let silent_line = format!("FAIL sip: agent queue sip:agents@{}: no answer", silent.local_addr().unwrap());
    assert!(report.has(&silent_line), "{report:?}");
    assert!(started.elapsed() < TIME_BOUND, "{report:?}");
    let answered =
        format!("PASS sip: billing queue sip:billing@127.0.0.1:{answering} answered OPTIONS with 200 OK");
    assert!(report.has(&answered), "{report:?}");
    let listen = format!("FAIL sip: listen udp {}: in use by ", taken.local_addr().unwrap());
    assert!(report.has(&listen), "{report:?}");
    assert_eq!(report.code, Some(1), "{report:?}");
}

#[test]
fn a_bad_config_is_a_fail_line_and_the_other_checks_still_run() {
    let dir = scratch("doctor-bad-config");
    let path = dir.join("voicebotd.toml");
    std::fs::write(&path, "[sip]\nlisten_udp = \"nowhere\"\n").unwrap();
    // The embedded default's model directory is $VOICEBOTD_MODEL_DIR: an empty one.
    let report = doctor_with_env(&path, &[("VOICEBOTD_MODEL_DIR", &dir.join("models"))]);
    let config = report.lines("FAIL config: ");
    assert!(config.len() == 1 && config[0].contains("sip.listen_udp"), "{report:?}");
    assert!(config[0].contains("the checks below use the embedded default"), "{report:?}");
    assert!(report.has("PASS broker: not configured"), "{report:?}");
}

#[test]
fn a_model_file_with_the_wrong_bytes_fails_its_models_line() {
    let dir = scratch("doctor-corrupt");
    let models = no_models(&dir);
    // The VADER lexicon's size (models/manifest.toml), but not its bytes.
    let lexicon = dir.join("models/vader/vader_lexicon.txt");
    std::fs::create_dir_all(lexicon.parent().unwrap()).unwrap();
    std::fs::write(&lexicon, vec![0u8; 434_304]).unwrap();
    let report = doctor(&config(&dir, "127.0.0.1:0", "", &models), false);
    let vader = report.lines("FAIL models: vader-lexicon");
    assert!(vader.len() == 1 && vader[0].contains("sha256") && vader[0].contains("expected"), "{report:?}");
    assert!(vader[0].contains("models fetch"), "{report:?}");
}

#[test]
fn a_sip_port_held_by_a_running_voicebotd_is_named_not_failed() {
    let dir = scratch("doctor-running");
    let port = free_udp_port();
    let sections =
        format!("[fleet]\noutbox = \"{}\"\n[http]\nlisten = \"\"\n", dir.join("outbox.db").display());
    let daemon_config = config(&dir, &format!("127.0.0.1:{port}"), "", &sections);
    let daemon = Daemon::start(&daemon_config, &[], SocketAddr::from(([127, 0, 0, 1], port)));
    // The doctor's own config: the same SIP port, no models to hash.
    let doctor_dir = dir.join("doctor");
    std::fs::create_dir_all(&doctor_dir).unwrap();
    let doctor_config = config(&doctor_dir, &format!("127.0.0.1:{port}"), "", &no_models(&doctor_dir));
    let report = doctor(&doctor_config, false);
    let expected = format!(
        "PASS sip: listen udp 127.0.0.1:{port}: in use by a running voicebotd (pid {})",
        daemon.pid()
    );
    assert!(report.has(&expected), "{report:?}");
}
