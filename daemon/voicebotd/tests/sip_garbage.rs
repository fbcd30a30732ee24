//! SIP garbage end to end: `voicebotd run` with the log filter at `error`
//! gets datagrams (and a TCP message) ezk cannot parse on its SIP ports;
//! `/metrics` counts them in `voicebot_sip_dropped_total` (through ezk's own
//! log reports, which the user's filter must not hide from the counter), and
//! the daemon still answers a well-formed OPTIONS and stays healthy.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{bin, free_port, free_udp_port, scratch};

/// The daemon, killed (after SIGTERM) on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 GET; (status, body), or `None` while nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The value of the sample `name` (a counter's `..._total`) in `/metrics`.
fn sample(metrics: &str, name: &str) -> Option<u64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn metrics(port: u16) -> String {
    let (status, body) = get(port, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{body}");
    body
}

/// 200 bytes with no CR or LF (so ezk finds no line end: "incomplete"), not
/// starting like STUN, from a fixed seed.
fn random_bytes() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut bytes: Vec<u8> = (0..200)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state as u8 {
                b'\r' | b'\n' => b'#',
                b => b,
            }
        })
        .collect();
    bytes[0] = 0xff;
    bytes
}

fn request(start_line: &str, extra: &str, port: u16, branch: &str) -> String {
    format!(
        "{start_line}\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch}\r\n\
         From: <sip:tester@127.0.0.1>;tag=g{branch}\r\nTo: <sip:voicebot@127.0.0.1>\r\n\
         Call-ID: {branch}@garbage.test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{extra}\
         Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn unparseable_sip_is_dropped_and_counted_and_the_daemon_still_answers() {
    let dir = scratch("sip-garbage");
    let (sip_port, tcp_port, http_port) = (free_udp_port(), free_port(), free_port());
    let config = dir.join("voicebotd.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{sip_port}\"\nlisten_tcp = \"127.0.0.1:{tcp_port}\"\n\
             [fleet]\noutbox = \"{outbox}\"\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n\
             [report]\nstore = \"{report}\"\n[asr]\nlanguage = \"en\"\n",
            outbox = dir.join("outbox.db").display(),
            report = dir.join("report.db").display(),
        ),
    )
    .unwrap();
    let log_path = dir.join("stderr.log");
    let child = bin()
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("VOICEBOTD_LOG", "error")
        .stderr(Stdio::from(File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let mut daemon = Daemon(child);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // Ready (the "ready" line is info, filtered out): /healthz answers 200.
    let until = Instant::now() + Duration::from_secs(180);
    while get(http_port, "/healthz").map(|(s, _)| s) != Some(200) {
        assert!(daemon.0.try_wait().unwrap().is_none(), "voicebotd exited:\n{}", log());
        assert!(Instant::now() < until, "not healthy within 180 s:\n{}", log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = metrics(http_port);
    let dropped_before = sample(&before, "voicebot_sip_dropped_total").unwrap_or_else(|| panic!("{before}"));
    let unparseable_before = sample(&before, "voicebot_sip_unparseable_total").unwrap();
    assert!(sample(&before, "voicebot_sip_requests_total").is_some(), "{before}");

    let daemon_sip = SocketAddr::from(([127, 0, 0, 1], sip_port));
    let garbage = UdpSocket::bind("127.0.0.1:0").unwrap();
    let own = garbage.local_addr().unwrap().port();
    let datagrams = [
        random_bytes(),
        // A SIP version ezk does not parse: its request line parser takes only SIP/2.0.
        request("OPTIONS sip:voicebot@127.0.0.1 SIP/7.0", "", own, "badvers").into_bytes(),
        // A header line without a colon.
        request("OPTIONS sip:voicebot@127.0.0.1 SIP/2.0", "This line has no colon\r\n", own, "nocolon")
            .into_bytes(),
        // Parseable lines, but no Call-ID: ezk's endpoint drops it.
        request("OPTIONS sip:voicebot@127.0.0.1 SIP/2.0", "", own, "nocallid")
            .replace("Call-ID: nocallid@garbage.test\r\n", "")
            .into_bytes(),
    ];
    for datagram in &datagrams {
        garbage.send_to(datagram, daemon_sip).unwrap();
    }
    // Over TCP, ezk's stream decoder refuses the same bad version and closes the connection.
    let mut stream = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let own = stream.local_addr().unwrap().port();
    let bad = request("OPTIONS sip:voicebot@127.0.0.1 SIP/7.0", "", own, "tcpbadvers").replace("UDP", "TCP");
    stream.write_all(bad.as_bytes()).unwrap();
    assert_eq!(stream.read(&mut [0u8; 512]).ok(), Some(0), "the connection is closed, unanswered");
    let sent = datagrams.len() as u64 + 1;
    // Counted from ezk's warnings, asynchronously: wait a little for the last.
    let until = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let text = metrics(http_port);
        let dropped = sample(&text, "voicebot_sip_dropped_total").unwrap();
        if dropped >= dropped_before + sent || Instant::now() > until {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dropped = sample(&after, "voicebot_sip_dropped_total").unwrap();
    let unparseable = sample(&after, "voicebot_sip_unparseable_total").unwrap();
    eprintln!("dropped {dropped_before} -> {dropped}, unparseable {unparseable_before} -> {unparseable}");
    assert!(dropped >= dropped_before + sent, "dropped {dropped_before} -> {dropped}, sent {sent}\n{after}");
    assert!(unparseable >= unparseable_before + sent, "{after}");
    // Garbage is not answered.
    garbage.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 4096];
    assert!(garbage.recv_from(&mut buf).is_err(), "garbage got an answer");

    // A well-formed OPTIONS from a fresh socket still gets 200.
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    caller.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = caller.local_addr().unwrap().port();
    let options = request("OPTIONS sip:voicebot@127.0.0.1 SIP/2.0", "", port, "fine");
    caller.send_to(options.as_bytes(), daemon_sip).unwrap();
    let (n, _) =
        caller.recv_from(&mut buf).unwrap_or_else(|e| panic!("no answer to OPTIONS ({e}):\n{}", log()));
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert_eq!(get(http_port, "/healthz").map(|(s, _)| s), Some(200), "{}", log());

    // The user's filter (error) still decides what is logged: ezk's warnings
    // were counted, not printed (its malformed-header report is an error).
    let text = log();
    assert!(!text.contains("invalid Request/Status Line"), "{text}");
    assert!(!text.contains("Failed to get base headers"), "{text}");
    drop(daemon);
}
