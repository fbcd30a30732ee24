//! The phone line end to end, with real peers: `voicebotd run` answers a call
//! from baresip (Debian `baresip-core`, headless, `aufile` plays the caller's
//! recorded speech, `sndfile` records what the bot said), the caller asks for
//! an agent, the bot stores the ticket and tries the agent queue, a scripted
//! agent desk on loopback answers "486 Busy Here", and the bot tells the
//! caller a colleague will call back and hangs up. The test then runs ASR on
//! what baresip decoded from the bot's RTP, reads the ticket back from the
//! outbox, and checks the headers the agent desk received.
//!
//! Skips (passing, with a note on stderr) when baresip is not installed;
//! `scripts/setup.sh` installs it, so CI runs it.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::uac::wav_bytes;
use common::{Daemon, bin, fixture_call, free_port, scratch};

/// One baresip ctrl_tcp command (netstring-framed JSON); returns the raw reply.
fn command(ctrl: SocketAddr, command: &str, params: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(ctrl) else { return String::new() };
    let json = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
    let _ = stream.write_all(format!("{}:{json},", json.len()).as_bytes());
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A scripted agent desk: answers every INVITE with 486 Busy Here and reports its headers.
fn busy_agent_desk(port: u16) -> mpsc::Receiver<String> {
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

#[test]
fn a_caller_asks_for_an_agent_the_desk_is_busy_and_the_bot_promises_a_call_back() {
    if Command::new("baresip").arg("-h").output().is_err() {
        eprintln!("SKIPPED: baresip not installed (apt-get install baresip-core; scripts/setup.sh does)");
        return;
    }
    let dir = scratch("phone-busy");
    let (sip_port, desk_port, baresip_port, ctrl_port) = (free_port(), free_port(), free_port(), free_port());
    let desk = busy_agent_desk(desk_port);
    let outbox = dir.join("outbox.db");
    let config = dir.join("voicebotd.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{sip_port}\"\nlisten_tcp = \"\"\n\
             agent_queue = \"sip:agents@127.0.0.1:{desk_port}\"\ntransfer_mode = \"bridge\"\n\
             [fleet]\noutbox = \"{}\"\n[asr]\nlanguage = \"en\"\n",
            outbox.display()
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(&config, &[], SocketAddr::from(([127, 0, 0, 1], sip_port)));

    // The caller listens to the greeting (about 11 s), then asks for an agent.
    let mut caller = vec![0i16; 8000 * 14];
    caller.extend(fixture_call("agent-1.wav"));
    caller.extend(vec![0i16; 8000 * 40]);
    std::fs::write(dir.join("caller.wav"), wav_bytes(&caller)).unwrap();
    std::fs::create_dir_all(dir.join("rec")).unwrap();
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{baresip_port}\naudio_source aufile,{wav}\n\
             audio_player aufile,/dev/null\naudio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule aufile.so\nmodule sndfile.so\nsnd_path {rec}\nmodule_app account.so\n\
             module_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n",
            wav = dir.join("caller.wav").display(),
            rec = dir.join("rec").display(),
        ),
    )
    .unwrap();
    std::fs::write(dir.join("accounts"), "<sip:5550123@127.0.0.1>;regint=0\n").unwrap();
    let mut baresip = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
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
    let reply = command(ctrl, "dial", &format!("sip:hotline@127.0.0.1:{sip_port}"));
    assert!(!reply.contains("\"ok\":false"), "dial: {reply}");

    // The hand-over: the agent desk gets our INVITE with the ticket's headers.
    let invite = desk
        .recv_timeout(Duration::from_secs(90))
        .unwrap_or_else(|_| panic!("no INVITE at the agent desk:\n{}", daemon.text()));
    let ticket_id = invite
        .lines()
        .find_map(|l| l.strip_prefix("X-Ticket-Id: "))
        .unwrap_or_else(|| panic!("no X-Ticket-Id in\n{invite}"))
        .trim()
        .to_owned();
    assert!(invite.contains("X-Escalation-Reason: requested"), "{invite}");
    assert!(invite.contains("X-Intent: human_agent"), "{invite}");
    assert!(invite.to_ascii_lowercase().contains("user-to-user:"), "{invite}");

    // After the busy desk, the bot promises a call-back and hangs up.
    assert!(daemon.wait_for("call ended", 1, Duration::from_secs(60)), "{}", daemon.text());
    let log = daemon.text();
    assert!(log.contains("outcome=\"escalated\"") || log.contains("outcome=escalated"), "{log}");
    command(ctrl, "quit", "");
    let until = Instant::now() + Duration::from_secs(5);
    while baresip.try_wait().ok().flatten().is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = baresip.kill();

    // The ticket was stored before the transfer; the call-back is a new ticket that replaces it.
    let show = |id: &str| -> serde_json::Value {
        let out = bin().arg("--config").arg(&config).args(["tickets", "show", id]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let ticket = show(&ticket_id);
    assert_eq!(ticket["reason"], "requested", "{ticket}");
    assert_eq!(ticket["channel"], "phone");
    assert_eq!(ticket["follow_up"], "transfer", "{ticket}");
    assert_eq!(ticket["caller_id"], "***0123", "masked caller id: {ticket}");
    let out = bin().arg("--config").arg(&config).args(["tickets", "list", "--json"]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let other = listed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .find(|id| *id != ticket_id)
        .unwrap_or_else(|| panic!("no call-back ticket in the outbox: {listed}"));
    let callback = show(&other);
    assert_eq!(callback["follow_up"], "call_back", "{callback}");
    assert_eq!(callback["replaces"].as_str(), Some(ticket_id.as_str()), "{callback}");

    // What the caller heard, recognised from the RTP baresip decoded.
    let recordings: Vec<PathBuf> =
        std::fs::read_dir(dir.join("rec")).unwrap().flatten().map(|e| e.path()).collect();
    let heard = recordings
        .iter()
        .find(|p| p.to_string_lossy().contains("dec"))
        .unwrap_or_else(|| panic!("no decoded recording in {recordings:?}"));
    let out = bin().args(["transcribe", "--lang", "en"]).arg(heard).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    for words in ["thanks for calling", "colleague", "call you back"] {
        assert!(text.contains(words), "the caller should have heard {words:?}; ASR heard: {text}");
    }
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
