//! A scripted agent-side UAS on loopback UDP, for bridged transfers: takes the
//! user agent's INVITE, answers (or refuses) it, exchanges real RTP, and sends
//! or answers BYE.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use voicebot_rtp::{G711, RtpPacket, TelephoneEvent};

use super::Message;

/// One agent desk: a SIP socket and an RTP socket.
pub struct AgentUas {
    pub sip: UdpSocket,
    pub rtp: UdpSocket,
    /// Where the user agent's INVITE came from (its SIP transport).
    pub peer: Option<SocketAddr>,
    /// Where the user agent wants the agent leg's RTP (its SDP offer).
    pub remote_rtp: Option<SocketAddr>,
    pub codec: G711,
    pub to_tag: String,
    pub cseq: u32,
}

fn header(message: &Message, name: &str) -> String {
    message.header(name).unwrap_or_default()
}

impl AgentUas {
    pub async fn new(codec: G711) -> AgentUas {
        AgentUas {
            sip: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            rtp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            peer: None,
            remote_rtp: None,
            codec,
            to_tag: "agent-tag".into(),
            cseq: 1,
        }
    }

    /// The queue URI that reaches this desk.
    pub fn uri(&self) -> String {
        format!("sip:agents@{}", self.sip.local_addr().unwrap())
    }

    /// The next SIP message and its source, or `None` after `wait`.
    pub async fn recv(&self, wait: Duration) -> Option<(Message, SocketAddr)> {
        let mut buf = vec![0u8; 65535];
        let (len, from) = tokio::time::timeout(wait, self.sip.recv_from(&mut buf)).await.ok()?.ok()?;
        Some((Message(String::from_utf8_lossy(&buf[..len]).into_owned()), from))
    }

    /// Waits for a request of `method`, skipping anything else.
    pub async fn expect(&mut self, method: &str, wait: Duration) -> Message {
        let end = tokio::time::Instant::now() + wait;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            let (message, from) =
                self.recv(left).await.unwrap_or_else(|| panic!("no {method} at the agent within {wait:?}"));
            if message.is_request(method) {
                self.peer = Some(from);
                return message;
            }
        }
    }

    /// A response to `request`; the To tag is added except to CANCEL's 200 echo.
    pub fn response(&self, request: &Message, code: u16, reason: &str, extra: &str, body: &str) -> String {
        let to = header(request, "To");
        let to = if to.contains(";tag=") { to } else { format!("{to};tag={}", self.to_tag) };
        let vias: String = request
            .0
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .lines()
            .filter(|l| {
                l.to_ascii_lowercase().starts_with("via:") || l.to_ascii_lowercase().starts_with("v:")
            })
            .map(|l| format!("{l}\r\n"))
            .collect();
        format!(
            "SIP/2.0 {code} {reason}\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
             Contact: <sip:desk@{}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            header(request, "From"),
            header(request, "Call-ID"),
            header(request, "CSeq"),
            self.sip.local_addr().unwrap(),
            body.len()
        )
    }

    pub async fn send(&self, text: &str) {
        self.sip.send_to(text.as_bytes(), self.peer.expect("a peer")).await.unwrap();
    }

    /// Our SDP answer: the one codec we were built with, plus telephone-event 101.
    pub fn sdp_answer(&self) -> String {
        let port = self.rtp.local_addr().unwrap().port();
        let pt = self.codec.payload_type();
        format!(
            "v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\n\
             a=rtpmap:{pt} {}/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n",
            self.codec.encoding_name()
        )
    }

    /// 180 then 200 with SDP; remembers the offer's RTP address; waits for the ACK.
    pub async fn answer(&mut self, invite: &Message) {
        self.send(&self.response(invite, 180, "Ringing", "", "")).await;
        let offer = invite.body();
        let port: u16 = offer
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|m| m.split(' ').next())
            .and_then(|p| p.parse().ok())
            .expect("m=audio in the offer");
        let ip = offer.lines().find_map(|l| l.strip_prefix("c=IN IP4 ")).expect("c= in the offer").trim();
        self.remote_rtp = Some(format!("{ip}:{port}").parse().unwrap());
        let ok = self.response(invite, 200, "OK", "Content-Type: application/sdp\r\n", &self.sdp_answer());
        self.send(&ok).await;
        self.expect("ACK", Duration::from_secs(5)).await;
    }

    /// An in-dialog request from the agent to the user agent (e.g. BYE).
    pub fn request(&mut self, invite: &Message, method: &str) -> String {
        self.cseq += 1;
        let local = self.sip.local_addr().unwrap();
        let from = header(invite, "To");
        let from = if from.contains(";tag=") { from } else { format!("{from};tag={}", self.to_tag) };
        let contact = header(invite, "Contact");
        let target = contact.trim_start_matches('<').split('>').next().unwrap().to_owned();
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKagent{method}{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            header(invite, "From"),
            header(invite, "Call-ID"),
            cseq = self.cseq,
        )
    }

    /// Sends BYE and waits for its 200.
    pub async fn bye(&mut self, invite: &Message) -> Option<u16> {
        let bye = self.request(invite, "BYE");
        self.send(&bye).await;
        let end = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Some((message, _)) =
            self.recv(end.saturating_duration_since(tokio::time::Instant::now())).await
        {
            if message.status().is_some() && header(&message, "CSeq").ends_with("BYE") {
                return message.status();
            }
        }
        None
    }

    /// Sends `frames` 20 ms frames of `samples` in our codec, paced in real time.
    pub async fn talk(&self, samples: &[i16], frames: u16) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for i in 0..frames {
            tick.tick().await;
            let packet = RtpPacket {
                marker: i == 0,
                payload_type: self.codec.payload_type(),
                sequence: 500 + i,
                timestamp: u32::from(i) * 160,
                ssrc: 0xa6e7,
                payload: self.codec.encode(samples),
            };
            self.rtp.send_to(&packet.encode(), self.remote_rtp.unwrap()).await.unwrap();
        }
    }

    pub async fn press(&self, event: TelephoneEvent, timestamp: u32, seq: u16) {
        let packet = RtpPacket {
            marker: false,
            payload_type: 101,
            sequence: seq,
            timestamp,
            ssrc: 0xa6e7,
            payload: event.encode().to_vec(),
        };
        self.rtp.send_to(&packet.encode(), self.remote_rtp.unwrap()).await.unwrap();
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
