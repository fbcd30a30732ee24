//! A scripted SIP caller (UAC) over loopback UDP, blocking, with real G.711 RTP.
//!
//! Shared by the daemon's end-to-end tests (`tests/phone_refer.rs`,
//! `tests/phone_calls.rs`) and by `voicebot-bench sip`, which includes this file
//! by path, so the benchmark and the tests speak to `voicebotd run` the same way.
//!
//! The SIP side is deliberately plain text: one INVITE transaction, ACK, BYE,
//! answers to the daemon's in-dialog requests, and an in-dialog NOTIFY for a
//! REFER. [`Media`] runs two threads per call: a sender paced on an absolute
//! 20 ms clock (caller speech queued with [`Media::say`], PCMU silence
//! otherwise) and a receiver that timestamps every packet the daemon sends.
//! Only std and `voicebot-rtp`: no tokio, so a test or a benchmark can run
//! dozens of calls on plain threads.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use voicebot_rtp::{FRAME_SAMPLES, G711, RtpPacket};

/// One SIP message as text.
#[derive(Debug, Clone)]
pub(crate) struct Message(pub(crate) String);

impl Message {
    /// The status code of a response; `None` for a request.
    pub(crate) fn status(&self) -> Option<u16> {
        self.0.lines().next()?.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    /// The first header called `name` (case-insensitive), trimmed.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    /// Every header called `name`, in order.
    pub(crate) fn headers(&self, name: &str) -> Vec<String> {
        let head = self.0.split("\r\n\r\n").next().unwrap_or_default();
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub(crate) fn body(&self) -> &str {
        self.0.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    pub(crate) fn is_request(&self, method: &str) -> bool {
        self.0.starts_with(&format!("{method} "))
    }

    fn is_response_to(&self, method: &str) -> bool {
        self.status().is_some() && self.header("CSeq").is_some_and(|c| c.ends_with(method))
    }
}

/// How an INVITE went.
#[derive(Debug)]
pub(crate) struct Answered {
    /// Status codes in the order they arrived (provisionals, then the final one).
    pub(crate) codes: Vec<u16>,
    /// INVITE sent → final response received.
    pub(crate) setup: Duration,
}

/// A scripted caller: a SIP socket and an RTP socket on loopback.
pub(crate) struct Uac {
    sip: UdpSocket,
    rtp: Option<UdpSocket>,
    target: SocketAddr,
    pub(crate) call_id: String,
    caller: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
    branch: u32,
    /// Where the daemon wants our RTP (its SDP answer).
    pub(crate) remote_rtp: Option<SocketAddr>,
}

impl Uac {
    /// A caller `caller` (the From user part) that will call `target`.
    ///
    /// # Panics
    /// When loopback sockets cannot be bound.
    pub(crate) fn new(target: SocketAddr, call_id: &str, caller: &str) -> Uac {
        Uac {
            sip: UdpSocket::bind("127.0.0.1:0").expect("bind a SIP socket"),
            rtp: Some(UdpSocket::bind("127.0.0.1:0").expect("bind an RTP socket")),
            target,
            call_id: call_id.to_owned(),
            caller: caller.to_owned(),
            from_tag: format!("uac-{call_id}"),
            to_tag: None,
            cseq: 1,
            branch: 0,
            remote_rtp: None,
        }
    }

    fn local(&self) -> SocketAddr {
        self.sip.local_addr().expect("bound")
    }

    /// A request in our dialog (or the INVITE that opens it).
    pub(crate) fn request(&mut self, method: &str, cseq: u32, extra: &str, body: &str) -> String {
        self.branch += 1;
        let local = self.local();
        let to_tag = self.to_tag.as_ref().map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:hotline@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{id}x{b};rport\r\n\
             Max-Forwards: 70\r\nFrom: \"Caller\" <sip:{caller}@{local}>;tag={tag}\r\nTo: <sip:hotline@{target}>{to_tag}\r\n\
             Call-ID: {id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{caller}@{local}>\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
            target = self.target,
            id = self.call_id,
            b = self.branch,
            caller = self.caller,
            tag = self.from_tag,
            len = body.len(),
        )
    }

    pub(crate) fn send(&self, text: &str) {
        self.sip.send_to(text.as_bytes(), self.target).expect("send SIP");
    }

    /// The next SIP message, or `None` after `wait`.
    pub(crate) fn recv(&self, wait: Duration) -> Option<Message> {
        let mut buf = vec![0u8; 65_535];
        self.sip.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).ok()?;
        let (len, _) = self.sip.recv_from(&mut buf).ok()?;
        Some(Message(String::from_utf8_lossy(&buf[..len]).into_owned()))
    }

    /// Our answer to a request from the daemon.
    pub(crate) fn respond(&self, request: &Message, code: u16, reason: &str) {
        let vias: String = request.headers("Via").iter().map(|v| format!("Via: {v}\r\n")).collect();
        let h = |n: &str| request.header(n).unwrap_or_default();
        let response = format!(
            "SIP/2.0 {code} {reason}\r\n{vias}From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
             Contact: <sip:{}@{}>\r\nContent-Length: 0\r\n\r\n",
            h("From"),
            h("To"),
            h("Call-ID"),
            h("CSeq"),
            self.caller,
            self.local()
        );
        self.send(&response);
    }

    fn offer(&self) -> String {
        let port = self.rtp.as_ref().map_or(0, |s| s.local_addr().expect("bound").port());
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
        )
    }

    /// Sends the INVITE and waits (up to `wait`) for the final response; on 200
    /// remembers the dialog and the daemon's RTP address and sends the ACK.
    ///
    /// # Errors
    /// No final response within `wait`, or a 200 without a usable SDP answer.
    pub(crate) fn invite(&mut self, wait: Duration) -> Result<Answered, String> {
        let offer = self.offer();
        let invite = self.request("INVITE", self.cseq, "Content-Type: application/sdp\r\n", &offer);
        let sent = Instant::now();
        self.send(&invite);
        let until = sent + wait;
        let mut codes = Vec::new();
        let ok = loop {
            let left = until.saturating_duration_since(Instant::now());
            let message = self
                .recv(left)
                .ok_or_else(|| format!("no final response to INVITE within {wait:?}: {codes:?}"))?;
            if !message.is_response_to("INVITE") {
                continue;
            }
            let code = message.status().unwrap_or(0);
            codes.push(code);
            if code >= 200 {
                break message;
            }
        };
        let setup = sent.elapsed();
        if ok.status() != Some(200) {
            return Ok(Answered { codes, setup });
        }
        let to = ok.header("To").unwrap_or_default();
        self.to_tag = to.split(";tag=").nth(1).map(|t| t.split(';').next().unwrap_or(t).to_owned());
        let body = ok.body();
        let port: u16 = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|m| m.split(' ').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("no m=audio in the answer:\n{body}"))?;
        let ip = body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))
            .ok_or_else(|| format!("no c= in the answer:\n{body}"))?
            .trim();
        self.remote_rtp = Some(format!("{ip}:{port}").parse().map_err(|e| format!("{ip}:{port}: {e}"))?);
        let ack = self.request("ACK", self.cseq, "", "");
        self.send(&ack);
        Ok(Answered { codes, setup })
    }

    /// Starts the call's media threads (after a 200 to [`Uac::invite`]).
    ///
    /// # Panics
    /// Before a 200, or when called twice.
    pub(crate) fn start_media(&mut self) -> Media {
        let socket = self.rtp.take().expect("media started once");
        Media::start(socket, self.remote_rtp.expect("an answered call"))
    }

    /// Sends BYE and waits for its final response; returns its code.
    pub(crate) fn bye(&mut self, wait: Duration) -> Option<u16> {
        self.cseq += 1;
        let bye = self.request("BYE", self.cseq, "", "");
        self.send(&bye);
        let until = Instant::now() + wait;
        loop {
            let message = self.recv(until.saturating_duration_since(Instant::now()))?;
            if message.is_response_to("BYE") && message.status().is_some_and(|s| s >= 200) {
                return message.status();
            }
            if message.is_request("BYE") {
                // Both sides hung up at once: the daemon's BYE still gets its 200.
                self.respond(&message, 200, "OK");
            }
        }
    }

    /// Sends an in-dialog NOTIFY for a REFER (RFC 3515 §2.4.4) with `sipfrag` as body.
    pub(crate) fn notify_refer(&mut self, sipfrag: &str) {
        self.cseq += 1;
        let notify = self.request(
            "NOTIFY",
            self.cseq,
            "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag;version=2.0\r\n",
            sipfrag,
        );
        self.send(&notify);
    }
}

/// One packet the daemon sent us, with when it arrived.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) at: Instant,
    pub(crate) packet: RtpPacket,
}

impl Received {
    /// The largest absolute sample of a PCMU payload (0 for comfort silence).
    pub(crate) fn peak(&self) -> i32 {
        if self.packet.payload_type != 0 {
            return 0;
        }
        G711::Pcmu.decode(&self.packet.payload).iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0)
    }
}

/// Above this peak (about −50 dBFS) a frame is bot speech, not comfort silence.
pub(crate) const SPEECH_PEAK: i32 = 100;

struct Shared {
    stop: AtomicBool,
    queue: Mutex<VecDeque<i16>>,
    /// When the last frame taken from the queue went out.
    last_speech_sent: Mutex<Option<Instant>>,
    received: Mutex<Vec<Received>>,
}

/// The caller's RTP: a paced sender and a timestamping receiver.
pub(crate) struct Media {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Media {
    fn start(socket: UdpSocket, remote: SocketAddr) -> Media {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
            last_speech_sent: Mutex::new(None),
            received: Mutex::new(Vec::new()),
        });
        let receiver = socket.try_clone().expect("clone the RTP socket");
        receiver.set_read_timeout(Some(Duration::from_millis(50))).expect("read timeout");
        let rx = Arc::clone(&shared);
        let receive = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !rx.stop.load(Ordering::Relaxed) {
                if let Ok((len, _)) = receiver.recv_from(&mut buf) {
                    let at = Instant::now();
                    if let Ok(packet) = RtpPacket::parse(&buf[..len]) {
                        rx.received.lock().expect("not poisoned").push(Received { at, packet });
                    }
                }
            }
        });
        let tx = Arc::clone(&shared);
        let send = std::thread::spawn(move || {
            let start = Instant::now();
            let ssrc = 0x5ca1_ab1e;
            for n in 0u32.. {
                if tx.stop.load(Ordering::Relaxed) {
                    return;
                }
                let due = start + Duration::from_millis(20) * n;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let (frame, speech) = {
                    let mut queue = tx.queue.lock().expect("not poisoned");
                    if queue.is_empty() {
                        (vec![0i16; FRAME_SAMPLES], false)
                    } else {
                        let take = queue.len().min(FRAME_SAMPLES);
                        let mut frame: Vec<i16> = queue.drain(..take).collect();
                        frame.resize(FRAME_SAMPLES, 0);
                        (frame, true)
                    }
                };
                let packet = RtpPacket {
                    marker: n == 0,
                    payload_type: 0,
                    sequence: (n & 0xffff) as u16,
                    timestamp: n.wrapping_mul(FRAME_SAMPLES as u32),
                    ssrc,
                    payload: G711::Pcmu.encode(&frame),
                };
                let _ = socket.send_to(&packet.encode(), remote);
                if speech {
                    *tx.last_speech_sent.lock().expect("not poisoned") = Some(Instant::now());
                }
            }
        });
        Media { shared, threads: vec![receive, send] }
    }

    /// Queues caller speech (8 kHz) after whatever is still queued.
    pub(crate) fn say(&self, samples: &[i16]) {
        self.shared.queue.lock().expect("not poisoned").extend(samples.iter().copied());
    }

    /// Whether everything queued has gone out.
    pub(crate) fn said(&self) -> bool {
        self.shared.queue.lock().expect("not poisoned").is_empty()
    }

    /// When the last queued speech frame went out.
    pub(crate) fn last_speech_sent(&self) -> Option<Instant> {
        *self.shared.last_speech_sent.lock().expect("not poisoned")
    }

    /// How many packets have arrived so far.
    pub(crate) fn received_count(&self) -> usize {
        self.shared.received.lock().expect("not poisoned").len()
    }

    /// A copy of the packets that arrived so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("not poisoned").clone()
    }

    /// The first packet from index `from` on, arrived after `after`, that
    /// carries bot speech; with its index.
    pub(crate) fn first_speech_after(&self, from: usize, after: Instant) -> Option<(usize, Received)> {
        let received = self.shared.received.lock().expect("not poisoned");
        let found =
            received.iter().enumerate().skip(from).find(|(_, r)| r.at > after && r.peak() > SPEECH_PEAK);
        found.map(|(i, r)| (i, r.clone()))
    }

    /// Waits until the bot has spoken and then been quiet for `quiet`; returns
    /// when its last speech packet arrived, or `None` after `wait`.
    pub(crate) fn wait_until_bot_done(
        &self,
        from: usize,
        quiet: Duration,
        wait: Duration,
    ) -> Option<Instant> {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            {
                let received = self.shared.received.lock().expect("not poisoned");
                let last_speech = received.iter().skip(from).rev().find(|r| r.peak() > SPEECH_PEAK);
                if let Some(last) = last_speech
                    && last.at.elapsed() >= quiet
                {
                    return Some(last.at);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops both threads; returns every packet received.
    pub(crate) fn stop(mut self) -> Vec<Received> {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.shared.received.lock().expect("not poisoned"))
    }
}

impl Drop for Media {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// The daemon's audio as 8 kHz PCM, in sequence order (lost packets as silence).
pub(crate) fn decode(received: &[Received]) -> Vec<i16> {
    let mut packets: Vec<&RtpPacket> =
        received.iter().map(|r| &r.packet).filter(|p| p.payload_type == 0).collect();
    let Some(first) = packets.first().map(|p| p.sequence) else { return Vec::new() };
    packets.sort_by_key(|p| p.sequence.wrapping_sub(first));
    let mut pcm = Vec::new();
    let mut next = first;
    for packet in packets {
        while next != packet.sequence && packet.sequence.wrapping_sub(next) < 0x8000 {
            pcm.extend(std::iter::repeat_n(0i16, FRAME_SAMPLES));
            next = next.wrapping_add(1);
        }
        G711::Pcmu.decode_into(&packet.payload, &mut pcm);
        next = packet.sequence.wrapping_add(1);
    }
    pcm
}

/// The longest time between two consecutive arrivals, and how many gaps exceed `limit`.
pub(crate) fn arrival_gaps(received: &[Received], limit: Duration) -> (Duration, usize) {
    let gaps = received.windows(2).map(|w| w[1].at.saturating_duration_since(w[0].at));
    gaps.fold((Duration::ZERO, 0), |(max, over), gap| (max.max(gap), over + usize::from(gap > limit)))
}

/// A 16-bit mono 8 kHz WAV.
pub(crate) fn wav_bytes(samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).expect("under 4 GiB");
    let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&[16, 0, 0, 0, 1, 0, 1, 0]);
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&16000u32.to_le_bytes());
    bytes.extend_from_slice(&[2, 0, 16, 0, b'd', b'a', b't', b'a']);
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    bytes
}

/// The resident set of process `pid` in KiB (`VmRSS` in /proc/PID/status).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}
