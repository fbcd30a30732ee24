//! The MQTT link over TLS against a real mosquitto, with a throwaway PKI made
//! by `openssl`: the broker is verified against `[mqtt] ca_file` by IP address
//! and by name; a broker the CA did not sign is refused with a log line that
//! says why, and its tickets wait in the outbox until the config is fixed;
//! mutual TLS with each client key format; a password login over TLS.
//!
//! The box's `[mqtt]` settings are written as TOML and go through the same
//! validation as the daemon's config file. Tests run on a `current_thread`
//! runtime so that the fleet's log lines can be captured ([`common::logs`]).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::logs::Logs;
use common::pki::{self, Ca, Issued, KeyFormat};
use common::{Broker, Subscriber, context, free_port, mosquitto, settings, ticket, ticket_ids};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voicebot_core::config::{Config, MqttConfig};
use voicebot_fleet::Fleet;
use voicebot_fleet::outbox::Outbox;

const TICKETS: &str = "voicebot/v1/test/box-1/event/ticket";
const STATUS: &str = "voicebot/v1/test/box-1/status";

/// `[mqtt]` as an operator writes it, validated like the daemon's config.
fn mqtt_config(lines: &str) -> MqttConfig {
    let text = format!("[mqtt]\n{lines}");
    Config::from_toml(&text, "test.toml").unwrap_or_else(|e| panic!("{text}\n{e}")).mqtt
}

fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// `[mqtt]` for an `mqtts://host:port` broker trusting `ca`, with an optional client certificate.
fn tls_config(host: &str, port: u16, ca: &Path, client: Option<&Issued>) -> MqttConfig {
    let mut lines = format!("url = \"mqtts://{host}:{port}\"\nca_file = {}\n", toml_path(ca));
    if let Some(client) = client {
        lines +=
            &format!("client_cert = {}\nclient_key = {}\n", toml_path(&client.cert), toml_path(&client.key));
    }
    mqtt_config(&lines)
}

fn backlog(path: &Path) -> u64 {
    Outbox::open_existing(path).unwrap().stats().unwrap().backlog
}

async fn wait_backlog_zero(path: &Path) {
    let until = Instant::now() + Duration::from_secs(20);
    while backlog(path) != 0 {
        assert!(Instant::now() < until, "outbox backlog stayed at {}", backlog(path));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A started fleet, stopped (flushed) by [`Running::stop`].
struct Running {
    fleet: Fleet,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Running {
    fn start(mqtt: MqttConfig, outbox: &Path) -> Running {
        let mut settings = settings(1883, outbox);
        settings.mqtt = mqtt;
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let fleet = Fleet::start(settings, context(), &tasks, shutdown.clone()).expect("fleet starts");
        Running { fleet, tasks, shutdown }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        tokio::time::timeout(Duration::from_secs(15), self.tasks.wait()).await.expect("fleet stops");
    }
}

/// Waits for a WARN/ERROR line containing every one of `needles`; returns it.
async fn wait_for_warning(logs: &Logs, needles: &[&str]) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = logs.warnings().into_iter().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line;
        }
        assert!(Instant::now() < until, "no warning with {needles:?}; the log:\n{}", logs.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A scratch dir with a CA and the broker's certificate.
struct Scratch {
    dir: tempfile::TempDir,
    ca: Ca,
    server: Issued,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new(&dir.path().join("pki"), "voicebot-test-ca");
        let server = ca.server();
        Scratch { dir, ca, server }
    }

    fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox.db")
    }
}

#[tokio::test]
async fn mqtts_with_the_ca_file_delivers_tickets_by_ip_and_by_name_and_retains_the_birth() {
    let Some(bin) = mosquitto() else { return };
    let s = Scratch::new();
    let broker = Broker::start_with(
        &bin,
        s.dir.path(),
        free_port(),
        &(pki::tls_listener(&s.ca, &s.server) + "allow_anonymous true\n"),
    );
    let sub = Subscriber::connect_with(broker.port, "voicebot/v1/#", pki::over_tls(&s.ca, None)).await;
    for (host, id) in
        [("127.0.0.1", "01JTLSIP000000000000000001"), ("localhost", "01JTLSNAME0000000000000001")]
    {
        let fleet = Running::start(tls_config(host, broker.port, &s.ca.cert, None), &s.outbox());
        let sent = ticket(id);
        fleet.fleet.hand_over(&sent).await.unwrap();
        let got = sub
            .wait_until(Duration::from_secs(10), &format!("ticket via {host}"), |m| {
                ticket_ids(m, TICKETS).iter().any(|t| t == id)
            })
            .await;
        let received = got.iter().find(|m| m.topic == TICKETS && m.json()["id"] == id).unwrap().json();
        assert_eq!(received, serde_json::to_value(&sent).unwrap(), "the full ticket over TLS");
        wait_backlog_zero(&s.outbox()).await;
        // The birth, retained: a subscriber arriving now still gets it.
        let late = Subscriber::connect_with(broker.port, STATUS, pki::over_tls(&s.ca, None)).await;
        let status = late.wait_until(Duration::from_secs(10), "retained birth", |m| !m.is_empty()).await;
        assert!(status[0].retain, "the birth is retained");
        assert_eq!(status[0].json()["state"], "online");
        assert_eq!(status[0].json()["device"], "box-1");
        fleet.stop().await;
    }
    // A clean stop over TLS leaves the retained offline status.
    sub.wait_until(Duration::from_secs(5), "offline status", |m| {
        m.iter().rev().find(|m| m.topic == STATUS).is_some_and(|m| m.json()["reason"] == "shutdown")
    })
    .await;
}

#[tokio::test]
async fn a_broker_the_ca_did_not_sign_is_refused_clearly_and_its_tickets_wait_for_the_fixed_config() {
    let Some(bin) = mosquitto() else { return };
    let (logs, _guard) = Logs::capture();
    let s = Scratch::new();
    let other_ca = Ca::new(&s.dir.path().join("other"), "some-other-ca");
    let broker = Broker::start_with(
        &bin,
        s.dir.path(),
        free_port(),
        &(pki::tls_listener(&s.ca, &s.server) + "allow_anonymous true\n"),
    );
    let sub = Subscriber::connect_with(broker.port, "voicebot/v1/#", pki::over_tls(&s.ca, None)).await;
    let fleet = Running::start(tls_config("127.0.0.1", broker.port, &other_ca.cert, None), &s.outbox());
    let ids: Vec<String> = (0..5).map(|i| format!("01JWRONGCA{i:016}")).collect();
    for id in &ids {
        fleet.fleet.hand_over(&ticket(id)).await.unwrap();
    }
    let line = wait_for_warning(&logs, &["fleet", "UnknownIssuer", "[mqtt] ca_file"]).await;
    eprintln!("wrong CA, the operator reads: {line}");
    tokio::time::sleep(Duration::from_millis(500)).await; // a few more refused attempts
    assert_eq!(backlog(&s.outbox()), 5, "every ticket still in the outbox");
    assert!(ticket_ids(&sub.messages(), TICKETS).is_empty(), "nothing reached the broker");
    let repeats = logs.warnings().iter().filter(|l| l.contains("certificate")).count();
    assert!(repeats <= 2, "the same failure is not repeated at WARN on every retry:\n{}", logs.text());
    fleet.stop().await;
    assert_eq!(backlog(&s.outbox()), 5, "stopping keeps them");

    // A name the broker's certificate does not carry is refused too.
    logs.clear();
    let server_by_name = s.ca.issue(
        "named-only",
        KeyFormat::RsaPkcs8,
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:broker.invalid\n",
    );
    drop(broker);
    let broker = Broker::start_with(
        &bin,
        s.dir.path(),
        free_port(),
        &(pki::tls_listener(&s.ca, &server_by_name) + "allow_anonymous true\n"),
    );
    let fleet = Running::start(tls_config("127.0.0.1", broker.port, &s.ca.cert, None), &s.outbox());
    let line = wait_for_warning(&logs, &["fleet", "not valid for name", "[mqtt] url host"]).await;
    eprintln!("wrong name, the operator reads: {line}");
    assert_eq!(backlog(&s.outbox()), 5);
    fleet.stop().await;

    // Fixed: the right CA, the right certificate. Everything arrives.
    drop(broker);
    let broker = Broker::start_with(
        &bin,
        s.dir.path(),
        free_port(),
        &(pki::tls_listener(&s.ca, &s.server) + "allow_anonymous true\n"),
    );
    let sub = Subscriber::connect_with(broker.port, TICKETS, pki::over_tls(&s.ca, None)).await;
    let fleet = Running::start(tls_config("127.0.0.1", broker.port, &s.ca.cert, None), &s.outbox());
    let got =
        sub.wait_until(Duration::from_secs(20), "5 tickets", |m| ticket_ids(m, TICKETS).len() >= 5).await;
    let mut received = ticket_ids(&got, TICKETS);
    received.sort();
    received.dedup();
    assert_eq!(received, ids, "nothing lost");
    wait_backlog_zero(&s.outbox()).await;
    fleet.stop().await;
}

#[tokio::test]
async fn a_broker_requiring_client_certificates_refuses_a_box_without_one_and_takes_each_key_format() {
    let Some(bin) = mosquitto() else { return };
    let (logs, _guard) = Logs::capture();
    let s = Scratch::new();
    // No anonymous logins: the client certificate's CN is the only login there is.
    let broker = Broker::start_with(
        &bin,
        s.dir.path(),
        free_port(),
        &(pki::tls_listener(&s.ca, &s.server)
            + "require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n"),
    );
    let observer = s.ca.client("observer", KeyFormat::EcSec1);
    let sub = Subscriber::connect_with(broker.port, TICKETS, pki::over_tls(&s.ca, Some(&observer))).await;

    let fleet = Running::start(tls_config("127.0.0.1", broker.port, &s.ca.cert, None), &s.outbox());
    fleet.fleet.hand_over(&ticket("01JNOCLIENTCERT00000000001")).await.unwrap();
    let line = wait_for_warning(&logs, &["fleet", "CertificateRequired", "client_cert"]).await;
    eprintln!("no client certificate, the operator reads: {line}");
    assert_eq!(backlog(&s.outbox()), 1, "kept in the outbox");
    fleet.stop().await;

    logs.clear();
    let stranger =
        Ca::new(&s.dir.path().join("stranger"), "stranger-ca").client("box-1", KeyFormat::RsaPkcs8);
    let fleet =
        Running::start(tls_config("127.0.0.1", broker.port, &s.ca.cert, Some(&stranger)), &s.outbox());
    let line = wait_for_warning(&logs, &["fleet", "UnknownCA", "client_cert"]).await;
    eprintln!("a client certificate from another CA, the operator reads: {line}");
    assert_eq!(backlog(&s.outbox()), 1, "kept in the outbox");
    assert!(sub.messages().is_empty());
    fleet.stop().await;

    let mut want = vec!["01JNOCLIENTCERT00000000001".to_owned()];
    for (i, format) in KeyFormat::ALL.into_iter().enumerate() {
        let client = s.ca.client("box-1", format);
        let fleet =
            Running::start(tls_config("127.0.0.1", broker.port, &s.ca.cert, Some(&client)), &s.outbox());
        let id = format!("01JCLIENTCERT{i:013}");
        fleet.fleet.hand_over(&ticket(&id)).await.unwrap();
        want.push(id);
        sub.wait_until(Duration::from_secs(10), &format!("tickets with a {format:?} key"), |m| {
            want.iter().all(|w| ticket_ids(m, TICKETS).contains(w))
        })
        .await;
        wait_backlog_zero(&s.outbox()).await;
        fleet.stop().await;
    }
}

#[tokio::test]
async fn username_and_password_over_tls_a_wrong_password_is_refused_clearly_and_loses_nothing() {
    let Some(bin) = mosquitto() else { return };
    let (logs, _guard) = Logs::capture();
    let s = Scratch::new();
    let passwd = s.dir.path().join("passwd");
    let made = std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwd)
        .args(["box-1", "s3cret"])
        .status()
        .expect("mosquitto_passwd (apt-get install mosquitto)");
    assert!(made.success());
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let broker = Broker::start_with(
        &bin,
        s.dir.path(),
        free_port(),
        &(pki::tls_listener(&s.ca, &s.server)
            + &format!("allow_anonymous false\npassword_file {}\n", passwd.display())),
    );
    let observer = mqtt_login_observer(&s, broker.port).await;
    let tls = format!("url = \"mqtts://127.0.0.1:{}\"\nca_file = {}\n", broker.port, toml_path(&s.ca.cert));

    let fleet = Running::start(
        mqtt_config(&format!("{tls}username = \"box-1\"\npassword = \"wrong\"\n")),
        &s.outbox(),
    );
    fleet.fleet.hand_over(&ticket("01JPASSWORD000000000000001")).await.unwrap();
    let line = wait_for_warning(&logs, &["fleet", "refused"]).await;
    eprintln!("wrong password, the operator reads: {line}");
    assert!(line.contains("username") || line.contains("password"), "{line}");
    assert_eq!(backlog(&s.outbox()), 1);
    fleet.stop().await;

    let fleet = Running::start(
        mqtt_config(&format!("{tls}username = \"box-1\"\npassword = \"s3cret\"\n")),
        &s.outbox(),
    );
    observer
        .wait_until(Duration::from_secs(10), "the ticket", |m| {
            ticket_ids(m, TICKETS) == ["01JPASSWORD000000000000001"]
        })
        .await;
    wait_backlog_zero(&s.outbox()).await;
    fleet.stop().await;
}

/// A subscriber that logs in as `box-1` with the right password, over TLS.
async fn mqtt_login_observer(s: &Scratch, port: u16) -> Subscriber {
    let tls = pki::over_tls(&s.ca, None);
    Subscriber::connect_with(port, TICKETS, |options| {
        tls(options);
        options.set_credentials("box-1", "s3cret");
    })
    .await
}
