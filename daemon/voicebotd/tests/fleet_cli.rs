//! The fleet's command-line contract: `tickets list|show` read the local
//! outbox with no broker configured, `run --mqtt-url` overrides `[mqtt] url`
//! and the running daemon announces itself on the real broker.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use voicebot_dialog::escalation::EscalationReason;
use voicebot_dialog::ticket::{CallContext, Routing, Ticket, TicketBuilder};
use voicebot_fleet::outbox::{Outbox, OutboxLimits};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voicebotd"))
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voicebotd-fleet-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ticket(id: &str) -> Ticket {
    let builder = TicketBuilder::new(CallContext { channel: "phone".into(), ..CallContext::default() });
    let routing = Routing {
        reason: EscalationReason::Requested,
        intent: "human_agent",
        skill_group: "general",
        priority: 5,
        suggested_answer: None,
    };
    builder.build(id.to_owned(), 2_000, &routing, "Connecting you.")
}

fn config_with_outbox(dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("voicebotd.toml");
    let outbox = dir.join("outbox.db");
    std::fs::write(
        &config,
        format!(
            "[fleet]\ndevice_id = \"cli-box\"\noutbox = \"{}\"\n[sip]\nlisten_udp = \"127.0.0.1:0\"\nlisten_tcp = \"\"\n{extra}",
            outbox.display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn tickets_list_and_show_read_the_local_outbox_without_a_broker() {
    let dir = scratch("tickets");
    let config = config_with_outbox(&dir, "");
    {
        let mut outbox = Outbox::open(&dir.join("outbox.db"), OutboxLimits::default()).unwrap();
        voicebot_fleet::enqueue_ticket(&mut outbox, &ticket("01JCLI0000000000000000000A"), 1).unwrap();
        voicebot_fleet::enqueue_ticket(&mut outbox, &ticket("01JCLI0000000000000000000B"), 2).unwrap();
    }
    let out = bin().arg("--config").arg(&config).args(["tickets", "list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["01JCLI0000000000000000000B", "01JCLI0000000000000000000A"], "newest first");
    let out = bin().arg("--config").arg(&config).args(["tickets", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 not yet delivered"));
    let out = bin()
        .arg("--config")
        .arg(&config)
        .args(["tickets", "show", "01JCLI0000000000000000000A"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown, serde_json::to_value(ticket("01JCLI0000000000000000000A")).unwrap());
    let out = bin().arg("--config").arg(&config).args(["tickets", "show", "NOPE"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ticket NOPE"));
}

#[test]
fn tickets_without_an_outbox_say_where_they_looked() {
    let dir = scratch("no-outbox");
    let config = config_with_outbox(&dir, "");
    let out = bin().arg("--config").arg(&config).args(["tickets", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no ticket outbox") && err.contains("outbox.db"), "{err}");
}

#[test]
fn a_bad_mqtt_url_is_a_usage_error() {
    let out = bin().args(["run", "--mqtt-url", "http://broker"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--mqtt-url") && err.contains("scheme"), "{err}");
}

/// The daemon with `--mqtt-url` publishes its retained birth, and a SIGTERM
/// leaves a retained `offline` status.
#[test]
fn run_with_mqtt_url_announces_the_box_on_the_broker() {
    let Some(mosquitto) =
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].iter().map(PathBuf::from).find(|p| p.exists())
    else {
        eprintln!(
            "\n######## SKIPPED: mosquitto is not installed (apt-get install mosquitto mosquitto-clients) ########\n"
        );
        return;
    };
    let dir = scratch("run");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut broker =
        Command::new(mosquitto).args(["-p", &port.to_string()]).stderr(Stdio::null()).spawn().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The config names no broker: the flag alone must bring it in.
    let config = config_with_outbox(&dir, "[mqtt]\nurl = \"\"\n");
    let mut daemon = bin()
        .arg("--config")
        .arg(&config)
        .args(["run", "--mqtt-url", &format!("mqtt://127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status_topic = "voicebot/v1/default/cli-box/status";
    let read_status = |want: &str| -> serde_json::Value {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let out = Command::new("mosquitto_sub")
                .args(["-p", &port.to_string(), "-t", status_topic, "-C", "1", "-W", "2"])
                .output()
                .expect("mosquitto_sub (apt-get install mosquitto-clients)");
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                && v["state"] == want
            {
                return v;
            }
            assert!(Instant::now() < until, "no retained {want} status");
        }
    };
    let birth = read_status("online");
    assert_eq!((birth["device"].as_str(), birth["site"].as_str()), (Some("cli-box"), Some("default")));
    assert!(birth["versions"]["pack"].as_str().is_some_and(|p| !p.is_empty()), "{birth}");
    assert_eq!(birth["config_hash"].as_str().map(str::len), Some(64));
    Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status().unwrap();
    let status = daemon.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(read_status("offline")["reason"], "shutdown");
    let _ = broker.kill();
    let _ = broker.wait();
}
