//! End to end with a real SIP client: baresip (Debian `baresip-core`), headless,
//! driven over its `ctrl_tcp` JSON interface, calls the user agent on loopback
//! and plays a WAV through `aufile`; `sndfile` records what it heard from us.
//!
//! Skips (passing, with a note on stderr) when `baresip` is not installed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::{loopback_config, start};
use voicebot_rtp::DtmfDigit;
use voicebot_sip::{CallEvent, EndReason};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_wav(path: &Path, samples: &[i16]) {
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

/// Sends one ctrl_tcp command (netstring-framed JSON) and returns the raw reply.
fn command(ctrl: SocketAddr, command: &str, params: &str) -> String {
    let mut stream = TcpStream::connect(ctrl).unwrap();
    let json = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
    stream.write_all(format!("{}:{json},", json.len()).as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn energy(samples: &[i16]) -> f64 {
    samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_talks_presses_a_key_and_hangs_up() {
    if std::process::Command::new("baresip").arg("-h").output().is_err() {
        eprintln!("baresip not installed (apt-get install baresip-core): skipping");
        return;
    }
    let (agent, mut calls, _cancel) = start(loopback_config()).await;
    let dir = std::env::temp_dir().join(format!("voicebot-baresip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rec")).unwrap();
    let tone: Vec<i16> = (0..8000 * 4)
        .map(|n| (8000.0 * (n as f32 * 440.0 * std::f32::consts::TAU / 8000.0).sin()) as i16)
        .collect();
    write_wav(&dir.join("caller.wav"), &tone);
    let (sip_port, ctrl_port) = (free_port(), free_port());
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\naudio_source aufile,{wav}\naudio_player aufile,/dev/null\n\
         audio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
         module sndfile.so\nsnd_path {rec}\nmodule_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n",
        wav = dir.join("caller.wav").display(),
        rec = dir.join("rec").display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("accounts"), "<sip:5550123@127.0.0.1>;regint=0\n").unwrap();
    let mut baresip = tokio::process::Command::new("baresip")
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
    let target = format!("sip:support@{}", agent.udp_addr().unwrap());
    let reply = command(ctrl, "dial", &target);
    assert!(!reply.contains("\"ok\":false"), "dial: {reply}");

    let mut call =
        tokio::time::timeout(Duration::from_secs(10), calls.recv()).await.expect("baresip's call").unwrap();
    assert_eq!((call.info.caller.as_str(), call.info.dialled.as_str()), ("5550123", "support"));
    let clip = call.audio.play(tone[..8000].iter().map(|s| s / 2).collect()).await.unwrap();

    let mut voiced = 0;
    let mut digits = Vec::new();
    let mut finished = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), call.events.recv()).await {
            Ok(Some(CallEvent::CallerAudio(frame))) if energy(&frame) > 5.0e6 => voiced += 1,
            Ok(Some(CallEvent::PlaybackFinished(id))) if id == clip => finished = true,
            Ok(Some(CallEvent::Dtmf(d))) => digits.push(d),
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => panic!("call ended early"),
        }
    }
    assert!(voiced >= 50, "{voiced} voiced caller frames from baresip's aufile");
    assert!(finished, "bot clip played out");

    let reply = command(ctrl, "sndcode", "5");
    assert!(!reply.contains("\"ok\":false"), "sndcode: {reply}");
    let wait_digit = tokio::time::Instant::now() + Duration::from_secs(3);
    while digits.is_empty() && tokio::time::Instant::now() < wait_digit {
        if let Ok(Some(CallEvent::Dtmf(d))) =
            tokio::time::timeout(Duration::from_millis(200), call.events.recv()).await
        {
            digits.push(d);
        }
    }
    assert_eq!(digits, vec![DtmfDigit::Five]);

    command(ctrl, "hangup", "");
    let mut last = None;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), call.events.recv()).await {
        last = Some(event);
    }
    assert_eq!(last, Some(CallEvent::Ended(EndReason::CallerHungUp)));
    for _ in 0..100 {
        if agent.active_calls() == 0 && agent.running_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((agent.active_calls(), agent.running_tasks()), (0, 0));

    // What baresip decoded from our RTP (sndfile writes *-dec.wav per call).
    command(ctrl, "quit", "");
    let _ = tokio::time::timeout(Duration::from_secs(3), baresip.wait()).await;
    let recorded: Vec<_> = std::fs::read_dir(dir.join("rec")).unwrap().flatten().map(|e| e.path()).collect();
    let decoded = recorded
        .iter()
        .find(|p| p.to_string_lossy().contains("dec"))
        .unwrap_or_else(|| panic!("no decoded recording in {recorded:?}"));
    let bytes = std::fs::read(decoded).unwrap();
    let samples: Vec<i16> =
        bytes[44.min(bytes.len())..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let loud_ms = samples.chunks(160).filter(|c| energy(c) > 1.0e6).count() * 20;
    assert!(loud_ms >= 800, "baresip heard {loud_ms} ms of the bot's 1 s tone");
    let _ = std::fs::remove_dir_all(&dir);
}
