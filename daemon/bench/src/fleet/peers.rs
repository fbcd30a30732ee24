//! The peers of `voicebot-bench fleet`: mosquitto, the subscriber that
//! timestamps every ticket it receives, and the bare rumqttc client that is the
//! reference for publishing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use voicebot_fleet::connection::MAX_PACKET;
use voicebot_fleet::{MAX_TICKETS_IN_FLIGHT, REQUEST_QUEUE};

/// Where the bare reference client publishes: beside the device's topics.
pub(super) const REF_TICKETS: &str = "bench/reference/event/ticket";
pub(super) const REF_ASSIST: &str = "bench/reference/agent/assist";

/// mosquitto on a free loopback port, killed on drop. Like the fleet tests'
/// `Broker`, but without persistence and without the cap on messages queued per client
/// (1,000 by default), which would drop replayed tickets on their way to a
/// subscriber that falls behind and count them as lost.
pub(super) struct Mosquitto {
    child: Child,
    pub(super) port: u16,
}

impl Mosquitto {
    pub(super) fn start(bin: &Path, dir: &Path) -> Result<Mosquitto> {
        let port = free_port()?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n\
                 log_dest stderr\nlog_type error\nlog_type warning\n"
            ),
        )?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let broker = Mosquitto { child, port };
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > until {
                bail!("mosquitto did not listen on 127.0.0.1:{port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(broker)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ticket as the subscriber saw it.
pub(super) struct Arrival {
    pub(super) reference: bool,
    pub(super) id: String,
    pub(super) at: Instant,
}

/// A rumqttc subscriber on its own thread and runtime, on the device's tickets
/// topic and the reference's: every ticket that arrives, timestamped first.
pub(super) fn subscribe(
    port: u16,
    tickets: &str,
    stop: CancellationToken,
) -> Result<mpsc::Receiver<Arrival>> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let filters = [tickets.to_owned(), REF_TICKETS.to_owned()];
    std::thread::Builder::new().name("bench-subscriber".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => return eprintln!("fleet bench: subscriber runtime: {e}"),
        };
        runtime.block_on(async move {
            let mut options = MqttOptions::new("bench-subscriber", "127.0.0.1", port);
            options.set_keep_alive(Duration::from_secs(30));
            options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
            let (client, mut eventloop) = AsyncClient::new(options, 16);
            for filter in &filters {
                let _ = client.subscribe(filter.clone(), QoS::AtLeastOnce).await;
            }
            let mut subacks = 0;
            loop {
                let polled = tokio::select! {
                    polled = eventloop.poll() => polled,
                    () = stop.cancelled() => return,
                };
                match polled {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let at = Instant::now();
                        let id = serde_json::from_slice::<Value>(&p.payload)
                            .ok()
                            .and_then(|v| v["id"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        if tx.send(Arrival { reference: p.topic == REF_TICKETS, id, at }).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subacks += 1;
                        if subacks == filters.len() {
                            let _ = ready_tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("fleet bench: subscriber: {e}; reconnecting");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    })?;
    ready_rx.recv_timeout(Duration::from_secs(10)).context("the subscriber got no SUBACK from mosquitto")?;
    Ok(rx)
}

/// Waits for ticket `id` (from the fleet, or the reference); returns when it
/// arrived and how many other arrivals were skipped on the way.
pub(super) fn arrival(
    arrivals: &mpsc::Receiver<Arrival>,
    reference: bool,
    id: &str,
) -> Result<(Instant, usize)> {
    let until = Instant::now() + Duration::from_secs(15);
    let mut skipped = 0;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let a = arrivals
            .recv_timeout(left)
            .with_context(|| format!("ticket {id} never reached the subscriber"))?;
        if a.reference == reference && a.id == id {
            return Ok((a.at, skipped));
        }
        skipped += 1;
    }
}

/// The bare reference: a plain rumqttc client, QoS 1, no outbox, the fleet's
/// in-flight window. Its PUBACK instants arrive on `acks`.
pub(super) struct Bare {
    pub(super) client: AsyncClient,
    pub(super) acks: mpsc::Receiver<Instant>,
}

impl Bare {
    pub(super) fn connect(runtime: &Runtime, port: u16, stop: CancellationToken) -> Result<Bare> {
        let mut options = MqttOptions::new("bench-reference", "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        options.set_inflight(MAX_TICKETS_IN_FLIGHT as u16);
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
        let (tx, acks) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        runtime.spawn(async move {
            loop {
                let polled = tokio::select! {
                    polled = eventloop.poll() => polled,
                    () = stop.cancelled() => return,
                };
                match polled {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        let _ = tx.send(Instant::now());
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("fleet bench: reference client: {e}; reconnecting");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).context("the reference client got no CONNACK")?;
        Ok(Bare { client, acks })
    }
}

/// A free TCP port on loopback (closed again, so the broker can bind it).
pub(super) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `mosquitto` on PATH, else Debian's /usr/sbin/mosquitto.
pub(super) fn find_mosquitto() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("mosquitto"))
        .chain([PathBuf::from("/usr/sbin/mosquitto")])
        .find(|p| p.is_file())
}
