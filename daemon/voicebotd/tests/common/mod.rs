//! Peers shared by the daemon's end-to-end tests: `voicebotd run` on free
//! loopback ports with its log captured, a real mosquitto broker, the
//! scripted SIP caller in [`uac`], baresip and a busy agent desk in
//! [`peers`], and a virtual sound card in [`sound`].

#![allow(dead_code, unreachable_pub)]

pub mod peers;
pub mod sound;
pub mod uac;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voicebotd"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free UDP port on loopback (for the daemon's SIP socket).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voicebotd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A bundled caller recording (`tests/fixtures/calls/NAME`, 16-bit mono 8 kHz).
pub fn fixture_call(name: &str) -> Vec<i16> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/calls").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 8000, "{} is 8 kHz", path.display());
    let data = bytes.windows(4).position(|w| w == b"data").expect("data chunk") + 8;
    bytes[data..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// `voicebotd run` with its stderr (the log) read line by line.
pub struct Daemon {
    pub child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    /// Every log line so far, with when the test read it.
    pub log: Vec<(Instant, String)>,
    pub sip: SocketAddr,
}

impl Daemon {
    /// Starts `voicebotd --config CONFIG run EXTRA...` and waits for "voicebotd ready".
    pub fn start(config: &Path, extra: &[&str], sip: SocketAddr) -> Daemon {
        Daemon::start_with_env(config, extra, sip, &[])
    }

    /// As [`Daemon::start`], with extra environment variables for the daemon.
    pub fn start_with_env(config: &Path, extra: &[&str], sip: SocketAddr, env: &[(&str, &str)]) -> Daemon {
        let mut child = bin()
            .arg("--config")
            .arg(config)
            .arg("run")
            .args(extra)
            .envs(env.iter().copied())
            .env("VOICEBOTD_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon { child, lines, log: Vec::new(), sip };
        assert!(daemon.wait_for("voicebotd ready", 1, Duration::from_secs(180)), "{}", daemon.text());
        daemon
    }

    /// Waits until `needle` has appeared in `count` log lines; false after `within`.
    pub fn wait_for(&mut self, needle: &str, count: usize, within: Duration) -> bool {
        let until = Instant::now() + within;
        while self.count(needle) < count {
            match self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(line) => self.log.push(line),
                Err(_) => return false,
            }
        }
        true
    }

    /// Log lines containing `needle` so far.
    pub fn count(&self, needle: &str) -> usize {
        self.log.iter().filter(|(_, l)| l.contains(needle)).count()
    }

    /// The whole log so far.
    pub fn text(&self) -> String {
        self.log.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// A mosquitto broker on a free loopback port; killed on drop.
pub struct Broker {
    child: Child,
    pub port: u16,
}

impl Broker {
    /// `None` (after a loud SKIPPED line) when mosquitto is not installed.
    pub fn start() -> Option<Broker> {
        let Some(mosquitto) =
            ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].iter().map(PathBuf::from).find(|p| p.exists())
        else {
            eprintln!(
                "\n######## SKIPPED: mosquitto is not installed (apt-get install mosquitto mosquitto-clients) ########\n"
            );
            return None;
        };
        let port = free_port();
        let child = Command::new(mosquitto)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let broker = Broker { child, port };
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(broker)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
