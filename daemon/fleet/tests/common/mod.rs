//! Shared test peers: a real mosquitto broker on a free loopback port, a
//! rumqttc subscriber that records everything, tickets, and fleet settings;
//! [`pki`]: a throwaway CA and certificates made with `openssl`; [`logs`]:
//! what the fleet logs, captured for assertions.
#![allow(dead_code, unreachable_pub)]

pub mod logs;
pub mod pki;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use voicebot_core::config::{BrokerUrl, MqttConfig};
use voicebot_dialog::escalation::EscalationReason;
use voicebot_dialog::ticket::{CallContext, CallerTurn, Routing, Ticket, TicketBuilder};
use voicebot_fleet::FleetSettings;
use voicebot_fleet::jobs::JobPolicy;
use voicebot_fleet::messages::{Capabilities, DeviceInfo, Versions};
use voicebot_fleet::outbox::OutboxLimits;

/// The mosquitto binary, or `None` (the test then says so loudly and skips).
pub fn mosquitto() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("mosquitto")).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = candidates.into_iter().chain([PathBuf::from("/usr/sbin/mosquitto")]).find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "\n######## SKIPPED: mosquitto is not installed (apt-get install mosquitto); this test needs a real broker ########\n"
        );
    }
    found
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A mosquitto process with persistence, so sessions survive a graceful restart.
pub struct Broker {
    bin: PathBuf,
    pub port: u16,
    dir: PathBuf,
    /// mosquitto.conf lines after the `listener` line: TLS files, who may log in.
    listener: String,
    child: Option<Child>,
}

impl Broker {
    /// A plain listener that lets anyone in.
    pub fn start(bin: &Path, dir: &Path, port: u16) -> Broker {
        Broker::start_with(bin, dir, port, "allow_anonymous true\n")
    }

    /// A listener configured by `listener` (mosquitto.conf lines such as
    /// `cafile …`, `require_certificate true`, `allow_anonymous false`).
    pub fn start_with(bin: &Path, dir: &Path, port: u16, listener: &str) -> Broker {
        let mut broker = Broker {
            bin: bin.to_path_buf(),
            port,
            dir: dir.to_path_buf(),
            listener: listener.to_owned(),
            child: None,
        };
        broker.up();
        broker
    }

    pub fn up(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let conf = self.dir.join("mosquitto.conf");
        let data = self.dir.join("mosquitto-data");
        std::fs::create_dir_all(&data).unwrap();
        // Run as root, mosquitto drops to its own user: let it reach its data.
        use std::os::unix::fs::PermissionsExt;
        for dir in [&self.dir, &data] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\n{}persistence true\npersistence_location {}/\nlog_dest stderr\nlog_type error\nlog_type warning\n",
                self.port,
                self.listener,
                data.display()
            ),
        )
        .unwrap();
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "mosquitto did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM: mosquitto saves its sessions and exits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Message {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| panic!("{} is not JSON: {e}", self.topic))
    }
}

/// A rumqttc client with a persistent session that records every message on `filter`.
pub struct Subscriber {
    pub client: AsyncClient,
    log: Arc<Mutex<Vec<Message>>>,
}

impl Subscriber {
    pub async fn connect(port: u16, filter: &str) -> Subscriber {
        Subscriber::connect_with(port, filter, |_| {}).await
    }

    /// With options changed by `configure` (TLS, a login).
    pub async fn connect_with(
        port: u16,
        filter: &str,
        configure: impl FnOnce(&mut MqttOptions),
    ) -> Subscriber {
        let mut options = MqttOptions::new(format!("test-sub-{}", free_port()), "127.0.0.1", port);
        options.set_clean_session(false);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_max_packet_size(4 << 20, 4 << 20);
        configure(&mut options);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let log = Arc::new(Mutex::new(vec![]));
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => sink.lock().unwrap().push(Message {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                    }),
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx).await.expect("suback").unwrap();
        Subscriber { client, log }
    }

    pub fn messages(&self) -> Vec<Message> {
        self.log.lock().unwrap().clone()
    }

    pub fn on(&self, topic: &str) -> Vec<Message> {
        self.messages().into_iter().filter(|m| m.topic == topic).collect()
    }

    /// Waits until `done` holds for the messages so far, or panics after `limit`.
    pub async fn wait_until(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[Message]) -> bool,
    ) -> Vec<Message> {
        let until = Instant::now() + limit;
        loop {
            let messages = self.messages();
            if done(&messages) {
                return messages;
            }
            assert!(Instant::now() < until, "timed out waiting for {what}; got {} messages", messages.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn ticket(id: &str) -> Ticket {
    let mut builder = TicketBuilder::new(CallContext {
        channel: "phone".into(),
        line: Some("hotline-1".into()),
        caller_id_masked: Some("*******0958".into()),
        started_at_ms: 1_000,
    });
    builder.caller(&CallerTurn {
        text: "agent please",
        language: "en",
        intent: "human_agent",
        confidence: 1.0,
        valence: 0,
        emotion_label: "neutral",
        slots: &BTreeMap::new(),
    });
    let routing = Routing {
        reason: EscalationReason::Requested,
        intent: "human_agent",
        skill_group: "general",
        priority: 5,
        suggested_answer: None,
    };
    builder.build(id.to_owned(), 2_000, &routing, "Connecting you.")
}

pub fn settings(port: u16, outbox: &Path) -> FleetSettings {
    FleetSettings {
        site: "test".into(),
        device: "box-1".into(),
        mqtt: MqttConfig {
            url: Some(BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}")).unwrap()),
            username: None,
            password: None,
            ca_file: None,
            client_auth: None,
            keepalive: Duration::from_secs(5),
        },
        outbox_path: outbox.to_path_buf(),
        limits: OutboxLimits::default(),
        telemetry_interval: Duration::from_secs(3600),
        policy: JobPolicy {
            key: None,
            site: "test".into(),
            device: "box-1".into(),
            window: Duration::from_secs(300),
        },
        info: DeviceInfo {
            versions: Versions {
                firmware: "0.1.0".into(),
                models: "m1".into(),
                model_files: Default::default(),
                pack: "retail 1".into(),
            },
            capabilities: Capabilities {
                channels: vec!["phone".into()],
                languages: vec!["en".into()],
                accelerator: None,
                commands: vec!["config_update".into()],
            },
            config_hash: "abc".into(),
        },
        flush_deadline: Duration::from_secs(3),
        backoff: (Duration::from_millis(100), Duration::from_millis(400)),
    }
}

/// The ids of tickets received on `topic`, in arrival order (duplicates kept).
pub fn ticket_ids(messages: &[Message], topic: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.topic == topic)
        .map(|m| m.json()["id"].as_str().expect("ticket id").to_owned())
        .collect()
}

/// A job context with no config, pack or models, and hooks that refuse.
pub fn context() -> voicebot_fleet::jobs::JobContext {
    voicebot_fleet::jobs::JobContext {
        config_path: None,
        pack_path: None,
        model_dir: std::env::temp_dir().join("voicebot-fleet-no-models"),
        models_in_use: vec![],
        hooks: std::sync::Arc::new(voicebot_fleet::jobs::NoHooks),
    }
}
