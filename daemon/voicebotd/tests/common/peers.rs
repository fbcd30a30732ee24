//! Real and scripted SIP peers for the daemon's end-to-end tests: baresip
//! (Debian `baresip-core`, headless, driven over `ctrl_tcp`; `aufile` plays a
//! WAV as its microphone, `sndfile` records what it decoded), and a scripted
//! agent desk that answers every INVITE 486 Busy Here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::free_port;

/// Whether baresip is installed; prints a loud SKIPPED line when it is not.
pub fn baresip_installed() -> bool {
    if Command::new("baresip").arg("-h").output().is_err() {
        eprintln!("SKIPPED: baresip not installed (apt-get install baresip-core; scripts/setup.sh does)");
        return false;
    }
    true
}

/// A running baresip in its own directory; quit and killed on drop.
pub struct Baresip {
    child: Child,
    ctrl: SocketAddr,
    /// Where it listens for SIP.
    pub port: u16,
    /// What it decoded and encoded (`sndfile`): `*-dec.wav`, `*-enc.wav`.
    pub recordings: PathBuf,
}

impl Baresip {
    /// Starts baresip in `dir`, playing `wav` (8 kHz mono) as its microphone;
    /// `auto_answer` makes it pick up incoming calls (an agent).
    pub fn start(dir: &Path, wav: &Path, user: &str, auto_answer: bool) -> Baresip {
        let (port, ctrl_port) = (free_port(), free_port());
        let recordings = dir.join("rec");
        std::fs::create_dir_all(&recordings).unwrap();
        std::fs::write(
            dir.join("config"),
            format!(
                "poll_method epoll\nsip_listen 127.0.0.1:{port}\naudio_source aufile,{wav}\n\
                 audio_player aufile,/dev/null\naudio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\n\
                 module g711.so\nmodule aufile.so\nmodule sndfile.so\nsnd_path {rec}\nmodule_app account.so\n\
                 module_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n",
                wav = wav.display(),
                rec = recordings.display(),
            ),
        )
        .unwrap();
        let answer = if auto_answer { ";answermode=auto" } else { "" };
        std::fs::write(dir.join("accounts"), format!("<sip:{user}@127.0.0.1>;regint=0{answer}\n")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ctrl: SocketAddr = format!("127.0.0.1:{ctrl_port}").parse().unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(ctrl).is_err() {
            assert!(Instant::now() < until, "baresip's control port did not open");
            std::thread::sleep(Duration::from_millis(100));
        }
        Baresip { child, ctrl, port, recordings }
    }

    /// One ctrl_tcp command (netstring-framed JSON); the raw reply.
    pub fn command(&self, command: &str, params: &str) -> String {
        let Ok(mut stream) = TcpStream::connect(self.ctrl) else { return String::new() };
        let json = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
        let _ = stream.write_all(format!("{}:{json},", json.len()).as_bytes());
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// The recording whose name contains `kind` (`dec`: what it heard, `enc`: what it sent).
    pub fn recording(&self, kind: &str) -> PathBuf {
        let files: Vec<PathBuf> =
            std::fs::read_dir(&self.recordings).unwrap().flatten().map(|e| e.path()).collect();
        files
            .iter()
            .find(|p| p.to_string_lossy().contains(kind))
            .unwrap_or_else(|| panic!("no {kind} recording in {files:?}"))
            .clone()
    }

    /// Quits (so the recordings are complete) and waits a little for it to exit.
    pub fn quit(&mut self) {
        self.command("quit", "");
        let until = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scripted agent desk on `port`: answers every INVITE with 486 Busy Here
/// and sends each INVITE's text to the receiver.
pub fn busy_agent_desk(port: u16) -> mpsc::Receiver<String> {
    let socket = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !message.starts_with("INVITE ") {
                continue;
            }
            let header = |name: &str| {
                message
                    .lines()
                    .filter(|l| {
                        l.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase()))
                    })
                    .map(|l| format!("{l}\r\n"))
                    .collect::<String>()
            };
            let to = header("To").trim_end().to_owned();
            let response = format!(
                "SIP/2.0 486 Busy Here\r\n{}{}{};tag=desk1\r\n{}{}Content-Length: 0\r\n\r\n",
                header("Via"),
                header("From"),
                to,
                header("Call-ID"),
                header("CSeq"),
            );
            let _ = socket.send_to(response.as_bytes(), from);
            if tx.send(message).is_err() {
                return;
            }
        }
    });
    rx
}
