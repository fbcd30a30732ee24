//! Peers shared by the integration tests: a scripted SIP UAC over UDP with a
//! real RTP socket, a scripted agent desk ([`agent`]), a real baresip
//! ([`baresip`]), and a user agent started on free loopback ports.

#![allow(dead_code, unreachable_pub)]

pub mod agent;
pub mod baresip;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use voicebot_core::config::{Config, SipConfig};
use voicebot_rtp::{G711, RtpPacket, TelephoneEvent};
use voicebot_sip::{IncomingCall, UserAgent};

/// The embedded default `[sip]`, on free loopback ports.
pub fn loopback_config() -> SipConfig {
    let mut config = Config::embedded_default().unwrap().sip;
    config.listen_udp = Some("127.0.0.1:0".parse().unwrap());
    config.listen_tcp = Some("127.0.0.1:0".parse().unwrap());
    config
}

pub async fn start(
    config: SipConfig,
) -> (UserAgent, tokio::sync::mpsc::Receiver<IncomingCall>, CancellationToken) {
    let cancel = CancellationToken::new();
    let (agent, calls) = UserAgent::start(config, cancel.clone()).await.unwrap();
    (agent, calls, cancel)
}

/// A SIP response as text, with helpers.
#[derive(Debug, Clone)]
pub struct Message(pub String);

impl Message {
    pub fn status(&self) -> Option<u16> {
        let line = self.0.lines().next()?;
        line.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.0.split("\r\n\r\n").next()?.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        })
    }

    pub fn body(&self) -> &str {
        self.0.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    pub fn is_request(&self, method: &str) -> bool {
        self.0.starts_with(&format!("{method} "))
    }
}

/// Answers a request from the UA with `code`, echoing its dialog headers.
pub fn response_to(request: &Message, code: u16, reason: &str) -> String {
    let h = |n: &str| request.header(n).unwrap_or_default();
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq")
    )
}

/// A scripted UAC: one SIP socket, one RTP socket.
pub struct Uac {
    pub sip: UdpSocket,
    pub rtp: UdpSocket,
    pub target: SocketAddr,
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: Option<String>,
    pub cseq: u32,
    pub remote_rtp: Option<SocketAddr>,
}

impl Uac {
    pub async fn new(target: SocketAddr, call_id: &str) -> Uac {
        Uac {
            sip: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            rtp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            target,
            call_id: call_id.to_owned(),
            from_tag: format!("ft{call_id}"),
            to_tag: None,
            cseq: 1,
            remote_rtp: None,
        }
    }

    fn local(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    pub fn request(&self, method: &str, cseq: u32, extra: &str, body: &str) -> String {
        let local = self.local();
        let to_tag = self.to_tag.as_ref().map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:support@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{method}{cseq}{id}\r\n\
             Max-Forwards: 70\r\nFrom: \"Alice\" <sip:5550100@{local}>;tag={tag}\r\nTo: <sip:support@{target}>{to_tag}\r\n\
             Call-ID: {id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice@{local}>\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
            target = self.target,
            id = self.call_id,
            tag = self.from_tag,
            len = body.len(),
        )
    }

    pub async fn send(&self, text: &str) {
        self.sip.send_to(text.as_bytes(), self.target).await.unwrap();
    }

    /// The next SIP message, or `None` after `wait`.
    pub async fn recv(&self, wait: Duration) -> Option<Message> {
        let mut buf = vec![0u8; 65535];
        let (len, _) = tokio::time::timeout(wait, self.sip.recv_from(&mut buf)).await.ok()?.ok()?;
        Some(Message(String::from_utf8_lossy(&buf[..len]).into_owned()))
    }

    /// Receives until a final response (or `wait` passes); returns all seen.
    pub async fn until_final(&self, wait: Duration) -> Vec<Message> {
        let mut seen = Vec::new();
        while let Some(m) = self.recv(wait).await {
            let done = m.status().is_some_and(|s| s >= 200);
            seen.push(m);
            if done {
                break;
            }
        }
        seen
    }

    pub fn offer(&self) -> String {
        let port = self.rtp.local_addr().unwrap().port();
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        )
    }

    /// INVITE → responses; on 200 remembers the To tag and RTP address and sends ACK.
    pub async fn invite(&mut self) -> Vec<Message> {
        let invite = self.request("INVITE", self.cseq, "Content-Type: application/sdp\r\n", &self.offer());
        self.send(&invite).await;
        let seen = self.until_final(Duration::from_secs(5)).await;
        if let Some(ok) = seen.last().filter(|m| m.status() == Some(200)) {
            let to = ok.header("To").unwrap();
            self.to_tag = to.split(";tag=").nth(1).map(|t| t.split(';').next().unwrap().to_owned());
            let body = ok.body();
            let port: u16 = body
                .lines()
                .find_map(|l| l.strip_prefix("m=audio "))
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let ip = body.lines().find_map(|l| l.strip_prefix("c=IN IP4 ")).unwrap().trim();
            self.remote_rtp = Some(format!("{ip}:{port}").parse().unwrap());
            let ack = self.request("ACK", self.cseq, "", "");
            self.send(&ack).await;
        }
        seen
    }

    pub async fn bye(&mut self) -> Option<Message> {
        self.cseq += 1;
        let bye = self.request("BYE", self.cseq, "", "");
        self.send(&bye).await;
        self.until_final(Duration::from_secs(5)).await.pop()
    }

    /// Waits for a request of `method` from the UA, answering other requests 200
    /// (re-INVITEs and the like are not expected here).
    pub async fn expect(&self, method: &str, wait: Duration) -> Message {
        let end = tokio::time::Instant::now() + wait;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            let m =
                self.recv(left).await.unwrap_or_else(|| panic!("no {method} from the UA within {wait:?}"));
            if m.is_request(method) {
                return m;
            }
        }
    }

    pub async fn send_rtp(&self, packet: &RtpPacket) {
        self.rtp.send_to(&packet.encode(), self.remote_rtp.unwrap()).await.unwrap();
    }

    /// Sends `frames` 20 ms PCMU frames of `samples`, paced in real time, starting at `seq`.
    pub async fn talk(&self, samples: &[i16], frames: u16, seq: u16) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for i in 0..frames {
            tick.tick().await;
            let payload = G711::Pcmu.encode(samples);
            let packet = RtpPacket {
                marker: i == 0,
                payload_type: 0,
                sequence: seq + i,
                timestamp: u32::from(seq + i) * 160,
                ssrc: 99,
                payload,
            };
            self.send_rtp(&packet).await;
        }
    }

    pub async fn press(&self, event: TelephoneEvent, timestamp: u32, seq: u16) {
        let packet = RtpPacket {
            marker: false,
            payload_type: 101,
            sequence: seq,
            timestamp,
            ssrc: 99,
            payload: event.encode().to_vec(),
        };
        self.send_rtp(&packet).await;
    }

    /// RTP packets received within `wait`.
    pub async fn collect_rtp(&self, wait: Duration) -> Vec<RtpPacket> {
        let mut packets = Vec::new();
        let mut buf = vec![0u8; 2048];
        let end = tokio::time::Instant::now() + wait;
        while let Ok(Ok((len, _))) = tokio::time::timeout_at(end, self.rtp.recv_from(&mut buf)).await {
            if let Ok(p) = RtpPacket::parse(&buf[..len]) {
                packets.push(p);
            }
        }
        packets
    }
}
