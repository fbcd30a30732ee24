//! The appliance side of `voicebotd run`, end to end with the real binary and
//! real models: the HTTP endpoints (health, metrics, tickets with their bearer
//! token, the service report), systemd's notify/watchdog protocol against a
//! `NOTIFY_SOCKET` the test owns, the SIGTERM drain, and `systemd-analyze
//! verify` on the units. Ports are free ports, never 5060 or 9464.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{free_port, scratch};
use voicebot_fleet::outbox::{NewTicket, Outbox, OutboxLimits};
use voicebot_http::{CallRecord, ReportStore, TurnRecord};

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A config with SIP on a free UDP port, HTTP on a free port, files in `dir`.
fn write_config(dir: &Path, http_port: u16, token_file: Option<&Path>) -> PathBuf {
    let config = dir.join("voicebotd.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{sip}\"\nlisten_tcp = \"\"\n\
             [fleet]\noutbox = \"{outbox}\"\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\ntoken_file = \"{token}\"\n\
             [report]\nstore = \"{report}\"\n[asr]\nlanguage = \"en\"\n",
            sip = free_port(),
            outbox = dir.join("outbox.db").display(),
            token = token_file.map(|p| p.display().to_string()).unwrap_or_default(),
            report = dir.join("report.db").display(),
        ),
    )
    .unwrap();
    config
}

struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl Daemon {
    fn start(config: &Path, env: &[(&str, String)]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_voicebotd"));
        command.arg("--config").arg(config).arg("run").env("VOICEBOTD_LOG", "info").stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines, seen: String::new() }
    }

    fn wait_for(&mut self, needle: &str, within: Duration) -> bool {
        let until = Instant::now() + within;
        while !self.seen.contains(needle) {
            match self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                }
                Err(_) => return false,
            }
        }
        true
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < until, "voicebotd did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 GET; returns (status, headers, body).
fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

#[test]
fn http_serves_health_metrics_tickets_with_a_bearer_token_and_the_report() {
    let dir = scratch("appliance-http");
    // A ticket in the outbox before start, as a hand-over would leave it.
    let ticket_id = "01JAPPLIANCETEST0000000001";
    let ticket_json = format!(r#"{{"id":"{ticket_id}","summary":"card lost","intent":"card_lost"}}"#);
    let mut outbox = Outbox::open(&dir.join("outbox.db"), OutboxLimits::default()).unwrap();
    let ticket = NewTicket {
        id: ticket_id,
        caller_id: None,
        summary: "card lost",
        ticket_json: ticket_json.as_bytes(),
        assist_json: b"{}",
    };
    assert!(outbox.enqueue(&ticket, now_ms()).unwrap().inserted);
    drop(outbox);
    // A call from an hour ago in the report store.
    let mut store = ReportStore::open(&dir.join("report.db")).unwrap();
    store
        .insert(&CallRecord {
            call_id: "earlier".into(),
            ended_ms: now_ms() - 3_600_000,
            duration: Duration::from_secs(50),
            outcome: "escalated".into(),
            reason: Some("requested".into()),
            turns: vec![TurnRecord {
                intent: "out_of_scope".into(),
                valence: Some(-1),
                emotion: Some("negative".into()),
                question: Some("do you sell gift cards".into()),
            }],
            reply_latencies: vec![],
            asr_rtf: vec![],
            tts_rtf: vec![],
            rtp: None,
        })
        .unwrap();
    drop(store);
    let token = "s3cret-token-for-the-agents-desktop";
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let http = free_port();
    let config = write_config(&dir, http, Some(&token_file));
    let mut daemon = Daemon::start(&config, &[]);
    assert!(daemon.wait_for("voicebotd ready", Duration::from_secs(180)), "{}", daemon.seen);

    let (status, _, body) = get(http, "/healthz", None);
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));

    let (status, head, metrics) = get(http, "/metrics", None);
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
    for name in [
        "# TYPE voicebot_calls counter",
        "voicebot_calls_total{outcome=\"resolved\",reason=\"none\"} 0\n",
        "# TYPE voicebot_asr_real_time_factor histogram",
        "# TYPE voicebot_tts_real_time_factor histogram",
        "# TYPE voicebot_voice_to_voice_latency_seconds histogram",
        "# TYPE voicebot_rtp_packets_lost counter",
        "# TYPE voicebot_rtp_jitter_seconds histogram",
        "voicebot_outbox_backlog 1\n",
        "voicebot_healthy 1\n",
        "voicebot_calls_active 0\n",
        "voicebot_model_info{firmware=",
    ] {
        assert!(metrics.contains(name), "{name:?} missing from\n{metrics}");
    }
    assert!(metrics.contains("asr=\"whisper-tiny.en/ggml-tiny.en.bin\""), "{metrics}");

    let path = format!("/tickets/{ticket_id}");
    assert_eq!(get(http, &path, None).0, 401, "no token");
    let (status, head, _) = get(http, &path, Some("s3cret-token-for-the-agents-desktoq"));
    assert_eq!(status, 401, "a wrong token");
    assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer"), "{head}");
    assert_eq!(get(http, "/tickets/01JUNKNOWN", Some(token)).0, 404, "an unknown id");
    let (status, _, body) = get(http, &path, Some(token));
    assert_eq!((status, body.as_str()), (200, ticket_json.as_str()));

    let (status, head, page) = get(http, "/report", None);
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "{head}");
    assert!(page.contains("<th>Calls</th><td>1</td>"), "{page}");
    assert!(page.contains("do you sell gift cards") && page.contains("<svg"), "{page}");
    let (status, _, json) = get(http, "/report.json", None);
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["transfer_rate_by_reason"]["requested"], 1.0, "{json}");
    assert_eq!(report["top_unanswered"][0]["count"], 1, "{json}");

    assert_eq!(get(http, "/nope", None).0, 404);
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}\n{}", daemon.seen);
}

#[test]
fn systemd_hears_ready_then_watchdog_pings_then_stopping_on_sigterm() {
    let dir = scratch("appliance-notify");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let config = write_config(&dir, free_port(), None);
    // WATCHDOG_USEC = 1 s: the daemon pings every 0.5 s.
    let mut daemon = Daemon::start(
        &config,
        &[("NOTIFY_SOCKET", socket_path.display().to_string()), ("WATCHDOG_USEC", "1000000".into())],
    );
    let mut messages: Vec<(Instant, String)> = vec![];
    let mut buf = [0u8; 4096];
    let receive = |messages: &mut Vec<(Instant, String)>, buf: &mut [u8]| {
        if let Ok(n) = socket.recv(buf) {
            messages.push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into_owned()));
        }
    };
    let until = Instant::now() + Duration::from_secs(180);
    while !messages.iter().any(|(_, m)| m.lines().any(|l| l == "READY=1")) {
        assert!(Instant::now() < until, "no READY=1; got {messages:?}");
        assert!(daemon.child.try_wait().unwrap().is_none(), "voicebotd exited early: {messages:?}");
        receive(&mut messages, &mut buf);
    }
    // READY comes only once the daemon is ready (its own log says so first).
    assert!(daemon.wait_for("voicebotd ready", Duration::from_secs(5)), "{}", daemon.seen);
    assert!(!messages.iter().any(|(_, m)| m.contains("WATCHDOG=1")), "no ping before READY: {messages:?}");
    let ready_at = Instant::now();
    while ready_at.elapsed() < Duration::from_millis(2600) {
        receive(&mut messages, &mut buf);
    }
    let pings: Vec<Instant> =
        messages.iter().filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1")).map(|(at, _)| *at).collect();
    assert!(pings.len() >= 4, "expected a ping every 0.5 s for 2.6 s: {messages:?}");
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap < Duration::from_millis(900), "watchdog gap {gap:?}: {messages:?}");
    }
    let _ = Command::new("kill").args(["-TERM", &daemon.child.id().to_string()]).status();
    let until = Instant::now() + Duration::from_secs(10);
    while !messages.iter().any(|(_, m)| m.lines().any(|l| l == "STOPPING=1")) {
        assert!(Instant::now() < until, "no STOPPING=1 after SIGTERM: {messages:?}");
        receive(&mut messages, &mut buf);
    }
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}\n{}", daemon.seen);
}

#[test]
fn the_units_verify_and_the_sysusers_entry_creates_the_user() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd");
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("SKIPPED: systemd-analyze not installed (apt-get install systemd)");
        return;
    }
    // Point ExecStart at the binary under test so verify can check it.
    let dir = scratch("appliance-units");
    let unit = std::fs::read_to_string(units.join("voicebotd.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/voicebotd --config /etc/voicebotd/voicebotd.toml run"));
    let unit = unit.replace("/usr/bin/voicebotd", env!("CARGO_BIN_EXE_voicebotd"));
    std::fs::write(dir.join("voicebotd.service"), unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join("voicebotd.service"))
        .env("SYSTEMD_LOG_LEVEL", "info")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let problems: Vec<&str> = text.lines().filter(|l| l.contains("voicebotd.service")).collect();
    assert!(out.status.success() && problems.is_empty(), "systemd-analyze verify:\n{text}");

    if Command::new("systemd-sysusers").arg("--version").output().is_err() {
        eprintln!("SKIPPED: systemd-sysusers not installed");
        return;
    }
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.display()))
        .arg(units.join("sysusers.d/voicebotd.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("voicebotd:") && l.ends_with(":/var/lib/voicebotd:/usr/sbin/nologin")),
        "{passwd}"
    );
}
