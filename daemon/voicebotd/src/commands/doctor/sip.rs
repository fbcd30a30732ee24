//! The doctor's SIP lines: our listen ports are free (or held by a running
//! voicebotd), and each agent queue and the registrar answer an OPTIONS over
//! UDP within [`SIP_TIMEOUT`]. voicebot-sip has no OPTIONS client, so the
//! request is built here (RFC 3261 §11); hosts are used as written, with no
//! DNS SRV/NAPTR lookup.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use voicebot_core::config::Config;

use super::{Line, SIP, Sink, Status};

/// A SIP OPTIONS answer (RFC 3261 retransmits at T1 = 500 ms, doubling).
const SIP_TIMEOUT: Duration = Duration::from_secs(2);

/// Listen ports first, then one line per agent queue and the registrar.
pub(super) fn check(config: &Config, sink: &Sink) {
    let sip = &config.sip;
    let mut probes = Vec::new();
    let listens = [("udp", sip.listen_udp), ("tcp", sip.listen_tcp)];
    for (i, (protocol, addr)) in listens.into_iter().enumerate() {
        if let Some(addr) = addr {
            sink.put(SIP, i, listen_line(protocol, addr));
        }
    }
    let default_queue = Config::embedded_default().map(|c| c.sip.transfer.default_queue).unwrap_or_default();
    let mut targets = vec![("agent queue".to_owned(), sip.transfer.default_queue.clone())];
    targets.extend(sip.transfer.queues.iter().map(|(group, uri)| (format!("{group} queue"), uri.clone())));
    if let Some(registrar) = &sip.registrar {
        targets.push(("registrar".to_owned(), registrar.uri.clone()));
    }
    for (n, (what, uri)) in targets.into_iter().enumerate() {
        let item = 2 + n;
        let unfinished = format!("{what} {uri}: no answer in time");
        sink.put(SIP, item, Line::new("sip", Status::Fail, unfinished));
        let placeholder = what == "agent queue" && uri == default_queue;
        let probe_sink = sink.clone();
        let started = std::thread::Builder::new()
            .name("doctor-sip-probe".into())
            .spawn(move || probe_sink.put(SIP, item, probe_line(&what, &uri, placeholder)));
        match started {
            Ok(probe) => probes.push(probe),
            Err(e) => {
                sink.put(SIP, item, Line::new("sip", Status::Fail, format!("cannot start the probe: {e}")))
            }
        }
    }
    for probe in probes {
        let _ = probe.join();
    }
}

fn listen_line(protocol: &str, addr: SocketAddr) -> Line {
    let key = format!("[sip] listen_{protocol}");
    if addr.port() == 0 {
        return Line::new(
            "sip",
            Status::Pass,
            format!("listen {protocol} {addr}: any free port, chosen at start"),
        );
    }
    let bound = match protocol {
        "udp" => UdpSocket::bind(addr).map(drop),
        _ => TcpListener::bind(addr).map(drop),
    };
    match bound {
        Ok(()) => Line::new("sip", Status::Pass, format!("listen {protocol} {addr}: free")),
        Err(e) if e.kind() == ErrorKind::AddrInUse => match port_owner(protocol, addr.port()) {
            Some((pid, name)) if name == "voicebotd" => Line::new(
                "sip",
                Status::Pass,
                format!("listen {protocol} {addr}: in use by a running voicebotd (pid {pid})"),
            ),
            Some((pid, name)) => Line::new(
                "sip",
                Status::Fail,
                format!("listen {protocol} {addr}: in use by {name} (pid {pid}); stop it or change {key}"),
            ),
            None => Line::new(
                "sip",
                Status::Fail,
                format!(
                    "listen {protocol} {addr}: in use by another process (a voicebotd of another user?); \
                     stop it or change {key}"
                ),
            ),
        },
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Line::new(
            "sip",
            Status::Fail,
            format!("listen {protocol} {addr}: {e}; ports below 1024 need CAP_NET_BIND_SERVICE"),
        ),
        Err(e) => Line::new("sip", Status::Fail, format!("listen {protocol} {addr}: {e}; fix {key}")),
    }
}

/// The process (pid, name) holding a `protocol` socket on local `port`, when
/// `/proc` lets us see it.
fn port_owner(protocol: &str, port: u16) -> Option<(u32, String)> {
    let mut inodes = Vec::new();
    for table in [format!("/proc/net/{protocol}"), format!("/proc/net/{protocol}6")] {
        let Ok(text) = std::fs::read_to_string(&table) else { continue };
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let local_port = local.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            // TCP: only the listening socket (state 0A), not connections.
            if local_port == Some(port) && (protocol == "udp" || *state == "0A") && *inode != "0" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for proc_entry in std::fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else { continue };
        let holds = fds
            .filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()));
        if holds {
            let name = std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
            return Some((pid, name.trim().to_owned()));
        }
    }
    None
}

fn probe_line(what: &str, uri: &str, placeholder: bool) -> Line {
    let started = Instant::now();
    match sip_options(uri, SIP_TIMEOUT) {
        Ok((code, reason)) => {
            let ms = started.elapsed().as_millis();
            let (status, note) = match code {
                200..=299 | 401 | 407 | 405 | 501 => (Status::Pass, ""),
                _ => (Status::Warn, "; the host is up but may not know this address"),
            };
            Line::new(
                "sip",
                status,
                format!("{what} {uri} answered OPTIONS with {code} {reason} in {ms} ms{note}"),
            )
        }
        Err(problem) if placeholder => Line::new(
            "sip",
            Status::Warn,
            format!(
                "{what} {uri}: {problem}; this is the built-in placeholder: set [sip] agent_queue to \
                 your agents' queue"
            ),
        ),
        Err(problem) => Line::new("sip", Status::Fail, format!("{what} {uri}: {problem}")),
    }
}

/// Where a `sip:` URI's requests go (no DNS SRV/NAPTR: the host and port as written).
#[derive(Debug, PartialEq, Eq)]
struct SipTarget {
    tls: bool,
    host: String,
    port: u16,
}

fn sip_target(uri: &str) -> Result<SipTarget, String> {
    let (tls, rest) = if let Some(rest) = uri.strip_prefix("sips:") {
        (true, rest)
    } else if let Some(rest) = uri.strip_prefix("sip:") {
        (false, rest)
    } else {
        return Err("not a sip: or sips: URI".into());
    };
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hostport = hostport.split([';', '?']).next().unwrap_or_default();
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed '[' in an IPv6 host")?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => {
            if tls {
                5061
            } else {
                5060
            }
        }
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| format!("bad port {p:?}"))?,
    };
    Ok(SipTarget { tls, host: host.to_owned(), port })
}

/// An OPTIONS request from `local` (RFC 3261 §11), with `id` making branch, tag and Call-ID unique.
fn options_request(uri: &str, local: SocketAddr, id: &str) -> String {
    format!(
        "OPTIONS {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:doctor@{host}>;tag={id}\r\n\
         To: <{uri}>\r\n\
         Call-ID: {id}@{host}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: <sip:doctor@{local}>\r\n\
         Accept: application/sdp\r\n\
         User-Agent: voicebotd-doctor/{version}\r\n\
         Content-Length: 0\r\n\r\n",
        host = local.ip(),
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// The status code and reason of a final response to our request `id`, if
/// `datagram` is one.
fn final_response(datagram: &[u8], id: &str) -> Option<(u16, String)> {
    let text = std::str::from_utf8(datagram).ok()?;
    let status_line = text.lines().next()?.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = status_line.split_once(' ').unwrap_or((status_line, ""));
    let code: u16 = code.parse().ok()?;
    let ours = text.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        (l.starts_with("call-id:") || l.starts_with("i:")) && l.contains(&id.to_ascii_lowercase())
    });
    (ours && code >= 200).then(|| (code, reason.trim().to_owned()))
}

/// Sends OPTIONS over UDP to `uri`, retransmitting, and waits up to `timeout`
/// for a final response.
fn sip_options(uri: &str, timeout: Duration) -> Result<(u16, String), String> {
    let target = sip_target(uri)?;
    if target.tls {
        return Err("a sips: URI (TLS) is not probed; check it with your PBX".into());
    }
    let deadline = Instant::now() + timeout;
    let addr = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", target.host))?;
    let any: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(any).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket.connect(addr).map_err(|e| format!("no route to {addr}: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let id = ulid::Ulid::new().to_string().to_ascii_lowercase();
    let request = options_request(uri, local, &id);
    let mut interval = Duration::from_millis(500);
    let mut buf = [0u8; 4096];
    loop {
        socket.send(request.as_bytes()).map_err(|e| unreachable_or(addr, e))?;
        let resend_at = (Instant::now() + interval).min(deadline);
        loop {
            let wait = resend_at.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(answer) = final_response(&buf[..n], &id) {
                        return Ok(answer);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(unreachable_or(addr, e)),
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("no answer to OPTIONS from {addr} within {} s", timeout.as_secs()));
        }
        interval *= 2;
    }
}

fn unreachable_or(addr: SocketAddr, e: io::Error) -> String {
    if e.kind() == ErrorKind::ConnectionRefused {
        format!("{addr} is unreachable (ICMP port unreachable: nothing listens there)")
    } else {
        format!("{addr}: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_targets_take_host_and_port_and_default_the_port() {
        let t = sip_target("sip:agents@192.0.2.10:5070;transport=udp").unwrap();
        assert_eq!(t, SipTarget { tls: false, host: "192.0.2.10".into(), port: 5070 });
        assert_eq!(sip_target("sip:pbx.example.net").unwrap().port, 5060);
        assert_eq!(
            sip_target("sips:q@[2001:db8::1]").unwrap(),
            SipTarget { tls: true, host: "2001:db8::1".into(), port: 5061 }
        );
        assert!(sip_target("tel:+15551234").is_err());
        assert!(sip_target("sip:a@h:0").is_err());
    }

    #[test]
    fn an_options_request_is_answered_only_by_its_own_final_response() {
        let local: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let request = options_request("sip:agents@192.0.2.10:5070", local, "abc123");
        assert!(request.starts_with("OPTIONS sip:agents@192.0.2.10:5070 SIP/2.0\r\n"));
        assert!(request.contains("Via: SIP/2.0/UDP 192.0.2.1:40000;branch=z9hG4bKabc123;rport\r\n"));
        assert!(request.contains("Call-ID: abc123@192.0.2.1\r\n") && request.ends_with("\r\n\r\n"));
        let answer = b"SIP/2.0 200 OK\r\nCall-ID: abc123@192.0.2.1\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(final_response(answer, "abc123"), Some((200, "OK".into())));
        let other = b"SIP/2.0 200 OK\r\nCall-ID: zzz@192.0.2.1\r\n\r\n";
        assert_eq!(final_response(other, "abc123"), None);
        let provisional = b"SIP/2.0 100 Trying\r\ni: abc123@192.0.2.1\r\n\r\n";
        assert_eq!(final_response(provisional, "abc123"), None);
        assert_eq!(final_response(b"\xff\xfe", "abc123"), None);
    }
}
