//! A real SIP peer: baresip (Debian `baresip-core`), headless in its own
//! scratch directory, driven over its `ctrl_tcp` JSON interface. Its audio
//! source plays a WAV (`aufile`); `sndfile` records what it decoded from us.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A running baresip; killed when dropped.
pub struct Baresip {
    pub dir: PathBuf,
    /// Where baresip listens for SIP (UDP, loopback).
    pub sip: SocketAddr,
    ctrl: SocketAddr,
    child: tokio::process::Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn write_wav(path: &Path, samples: &[i16]) {
    let mut bytes = Vec::new();
    let data_len = (samples.len() * 2) as u32;
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&[16, 0, 0, 0, 1, 0, 1, 0]);
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&16000u32.to_le_bytes());
    bytes.extend_from_slice(&[2, 0, 16, 0]);
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// The samples of a 16-bit mono WAV with a 44-byte header (what sndfile writes).
pub fn read_wav(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap();
    bytes[44.min(bytes.len())..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// Mean power of a frame.
pub fn energy(samples: &[i16]) -> f64 {
    samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64
}

/// An 8 kHz sine of `seconds` at amplitude 8000.
pub fn sine(freq: f32, seconds: usize) -> Vec<i16> {
    (0..8000 * seconds)
        .map(|n| (8000.0 * (n as f32 * freq * std::f32::consts::TAU / 8000.0).sin()) as i16)
        .collect()
}

impl Baresip {
    /// Starts baresip with one account (`account`: an accounts-file line) whose
    /// audio source plays `source`. `None` (with a note on stderr) when baresip
    /// is not installed.
    pub async fn start(name: &str, account: &str, source: &[i16]) -> Option<Baresip> {
        if std::process::Command::new("baresip").arg("-h").output().is_err() {
            eprintln!("baresip not installed (apt-get install baresip-core): skipping");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("voicebot-baresip-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rec")).unwrap();
        write_wav(&dir.join("source.wav"), source);
        let (sip_port, ctrl_port) = (free_port(), free_port());
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\naudio_source aufile,{wav}\naudio_player aufile,/dev/null\n\
             audio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
             module sndfile.so\nsnd_path {rec}\nmodule_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n",
            wav = dir.join("source.wav").display(),
            rec = dir.join("rec").display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
        let child = tokio::process::Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let ctrl: SocketAddr = format!("127.0.0.1:{ctrl_port}").parse().unwrap();
        for _ in 0..50 {
            if TcpStream::connect(ctrl).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let sip = format!("127.0.0.1:{sip_port}").parse().unwrap();
        Some(Baresip { dir, sip, ctrl, child })
    }

    /// Sends one ctrl_tcp command (netstring-framed JSON) and returns the raw reply.
    pub fn command(&self, command: &str, params: &str) -> String {
        let mut stream = TcpStream::connect(self.ctrl).unwrap();
        let json = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
        stream.write_all(format!("{}:{json},", json.len()).as_bytes()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Quits baresip (which closes its recordings) and returns what it decoded
    /// from us, one recording per call (`*-dec.wav`), oldest first.
    pub async fn quit(mut self) -> Vec<PathBuf> {
        self.command("quit", "");
        let _ = tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await;
        let mut decoded: Vec<PathBuf> = std::fs::read_dir(self.dir.join("rec"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("dec"))
            .collect();
        decoded.sort();
        decoded
    }

    /// Removes the scratch directory (call after the checks passed).
    pub fn clean(dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
    }
}
