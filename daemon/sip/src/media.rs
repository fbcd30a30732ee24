//! The per-call media task: owns the RTP socket, the jitter buffer, the outgoing
//! stream and the bot's playout queue, and runs one 20 ms tick at a time.
//!
//! Each tick, exactly once: pop one caller frame from the jitter buffer, decode it
//! (concealing a lost frame by repeating the last one at half level, once) and
//! send it to the conversation; take one frame of bot speech (or a DTMF event
//! packet, or silence) and send exactly one RTP packet. The tick uses
//! `MissedTickBehavior::Burst`, so after a stall the missed packets go out at
//! once and the RTP clock stays true to real time.
//!
//! Overload policy, written down: the event channel is bounded; caller audio
//! frames are dropped (and counted) when fewer than [`RESERVED_EVENTS`] slots are
//! free, so DTMF and playback events always find room. Bot audio is pulled from
//! its bounded channel only while less than a second is queued, which pushes
//! back on the producer. A flush (barge-in) bumps a shared generation counter;
//! the next tick drops everything queued before it.
//!
//! Symmetric RTP: we send to the SDP address until the first valid RTP packet
//! arrives from elsewhere, then to that source (callers behind NAT).
//!
//! Bridging (bridged transfer): two media tasks, one per call leg, are joined by
//! a pair of bounded channels ([`bridge_ports`]). Each tick a leg passes its
//! decoded peer frame and detected key presses to the other leg, and sends what
//! the other leg passed it instead of bot speech (bot clips wait while bridged).
//! Frames cross as decoded 8 kHz PCM, so the legs may use different G.711 laws.
//! Overload policy: a full outgoing bridge channel drops the frame (counted);
//! more than [`BRIDGE_AHEAD_FRAMES`] frames waiting to be sent drops the oldest
//! (counted), so the two legs' tickers drifting in phase never add latency.
//!
//! A one-way bridge (`BridgePort::feed`) joins a leg to a live local source
//! instead of another leg: the kiosk's microphone on an [`crate::AgentCall`].
//! The peer's audio then reaches only the event channel.
//!
//! The task ends when its token is cancelled; dropping it frees the socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use voicebot_rtp::sender::TickContent;
use voicebot_rtp::{
    DtmfDetector, DtmfDigit, DtmfSender, FRAME_DURATION, FRAME_SAMPLES, G711, JitterBuffer, JitterConfig,
    Playout, PlayoutQueue, RtpPacket, RtpSender, TelephoneEvent,
};

use crate::call::{CallEvent, Clip};

/// Event-channel slots kept free of audio for DTMF and playback events.
pub(crate) const RESERVED_EVENTS: usize = 16;
/// Bot audio queued ahead before the media task stops pulling clips: one second.
const PLAYOUT_AHEAD_SAMPLES: usize = 8000;
/// Frames from the other leg of a bridge kept waiting to be sent: 80 ms.
pub(crate) const BRIDGE_AHEAD_FRAMES: usize = 4;
/// Capacity of each direction of a bridge.
const BRIDGE_CHANNEL_FRAMES: usize = 8;

/// Counters of one call's media, readable while it runs.
#[derive(Debug, Default)]
pub(crate) struct MediaCounters {
    pub(crate) packets_sent: AtomicU64,
    pub(crate) packets_received: AtomicU64,
    pub(crate) invalid_datagrams: AtomicU64,
    pub(crate) caller_frames_dropped: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) concealed_frames: AtomicU64,
    pub(crate) bridge_frames_dropped: AtomicU64,
    pub(crate) jitter_us: AtomicU64,
}

/// A snapshot of a call's media counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub invalid_datagrams: u64,
    pub caller_frames_dropped: u64,
    pub send_errors: u64,
    pub concealed_frames: u64,
    /// Frames dropped at a bridge to or from another call leg (full queue, or
    /// more than 80 ms waiting); on an [`crate::AgentCall`], kiosk voice frames.
    pub bridge_frames_dropped: u64,
    /// RFC 3550 interarrival jitter of the caller's audio, microseconds.
    pub jitter_us: u64,
}

impl MediaCounters {
    pub(crate) fn snapshot(&self) -> MediaStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MediaStats {
            packets_sent: get(&self.packets_sent),
            packets_received: get(&self.packets_received),
            invalid_datagrams: get(&self.invalid_datagrams),
            caller_frames_dropped: get(&self.caller_frames_dropped),
            send_errors: get(&self.send_errors),
            concealed_frames: get(&self.concealed_frames),
            bridge_frames_dropped: get(&self.bridge_frames_dropped),
            jitter_us: get(&self.jitter_us),
        }
    }
}

/// Changes to a running stream.
#[derive(Debug)]
pub(crate) enum MediaControl {
    /// A re-INVITE moved the stream or changed the codec.
    Renegotiated { remote: SocketAddr, codec: G711, event_payload_type: Option<u8> },
    /// Play a key press to the caller.
    Dtmf(DtmfDigit),
    /// Join this leg to another leg's media (bridged transfer).
    Bridge(BridgePort),
    /// Leave the bridge: back to bot speech and silence.
    Unbridge,
}

/// What crosses a bridge between two call legs, one 20 ms tick at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BridgeFrame {
    /// 160 decoded samples at 8 kHz.
    Audio(Vec<i16>),
    /// A key pressed on the other leg.
    Dtmf(DtmfDigit),
}

/// One leg's end of a bridge.
#[derive(Debug)]
pub(crate) struct BridgePort {
    /// `None` for a one-way bridge fed by a local source.
    pub(crate) to_peer: Option<mpsc::Sender<BridgeFrame>>,
    pub(crate) from_peer: mpsc::Receiver<BridgeFrame>,
}

impl BridgePort {
    /// A one-way bridge: the leg sends what arrives on the returned sender
    /// (bounded like a bridge direction) instead of bot speech.
    pub(crate) fn feed() -> (mpsc::Sender<BridgeFrame>, BridgePort) {
        let (tx, rx) = mpsc::channel(BRIDGE_CHANNEL_FRAMES);
        (tx, BridgePort { to_peer: None, from_peer: rx })
    }
}

/// Two connected bridge ends.
pub(crate) fn bridge_ports() -> (BridgePort, BridgePort) {
    let (a_tx, a_rx) = mpsc::channel(BRIDGE_CHANNEL_FRAMES);
    let (b_tx, b_rx) = mpsc::channel(BRIDGE_CHANNEL_FRAMES);
    (BridgePort { to_peer: Some(a_tx), from_peer: b_rx }, BridgePort { to_peer: Some(b_tx), from_peer: a_rx })
}

/// Everything the task needs; built by the call setup.
pub(crate) struct MediaTask {
    pub(crate) socket: UdpSocket,
    pub(crate) remote: SocketAddr,
    pub(crate) codec: G711,
    pub(crate) event_payload_type: Option<u8>,
    pub(crate) jitter: JitterConfig,
    pub(crate) events: mpsc::Sender<CallEvent>,
    pub(crate) clips: mpsc::Receiver<Clip>,
    pub(crate) control: mpsc::Receiver<MediaControl>,
    pub(crate) generation: Arc<AtomicU64>,
    pub(crate) counters: Arc<MediaCounters>,
    /// Random starting values for the outgoing stream: SSRC, sequence, timestamp.
    pub(crate) seeds: (u32, u16, u32),
}

struct State {
    jitter: JitterBuffer,
    detector: DtmfDetector,
    playout: PlayoutQueue,
    sender: RtpSender,
    dtmf: Option<DtmfSender>,
    codec: G711,
    event_payload_type: Option<u8>,
    remote: SocketAddr,
    latched: bool,
    last_frame: Vec<i16>,
    concealed_in_row: u32,
    seen_generation: u64,
    jitter_config: JitterConfig,
    bridge: Option<BridgePort>,
    /// Frames from the other leg waiting to be sent, at most [`BRIDGE_AHEAD_FRAMES`].
    bridged: VecDeque<Vec<i16>>,
    /// Interarrival jitter (RFC 3550 §6.4.1): the previous transit time and
    /// the running estimate, both in 8 kHz timestamp units.
    transit: Option<i64>,
    jitter_estimate: f64,
    epoch: Instant,
}

impl MediaTask {
    /// Runs until `cancel` fires.
    ///
    /// # Cancel safety
    /// Meant to be spawned and stopped by its token, not dropped mid-poll; dropping
    /// it is still safe (the socket closes, nothing is left half-sent).
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let (ssrc, sequence, timestamp) = self.seeds;
        let mut state = State {
            jitter: JitterBuffer::new(self.jitter),
            detector: DtmfDetector::new(),
            playout: PlayoutQueue::new(),
            sender: RtpSender::new(self.codec, self.event_payload_type, ssrc, sequence, timestamp),
            dtmf: None,
            codec: self.codec,
            event_payload_type: self.event_payload_type,
            remote: self.remote,
            latched: false,
            last_frame: vec![0; FRAME_SAMPLES],
            concealed_in_row: 0,
            seen_generation: self.generation.load(Ordering::Acquire),
            jitter_config: self.jitter,
            bridge: None,
            bridged: VecDeque::with_capacity(BRIDGE_AHEAD_FRAMES + 1),
            transit: None,
            jitter_estimate: 0.0,
            epoch: Instant::now(),
        };
        let mut ticker = tokio::time::interval(FRAME_DURATION);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut buf = vec![0u8; 2048];
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(control) = self.control.recv() => state.apply(control),
                _ = ticker.tick() => self.tick(&mut state).await,
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, source)) => self.datagram(&mut state, &buf[..len], source),
                    // ICMP port unreachable and the like: the peer may come back.
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                },
            }
        }
    }

    fn datagram(&self, state: &mut State, datagram: &[u8], source: SocketAddr) {
        let Ok(packet) = RtpPacket::parse(datagram) else {
            self.counters.invalid_datagrams.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.counters.packets_received.fetch_add(1, Ordering::Relaxed);
        if !state.latched {
            state.latched = true;
            state.remote = source;
        }
        if packet.payload_type == state.codec.payload_type() {
            let arrival = (state.epoch.elapsed().as_micros() as i64) * 8 / 1000;
            let transit = arrival.wrapping_sub(i64::from(packet.timestamp));
            if let Some(previous) = state.transit.replace(transit) {
                // Timestamps wrap at 2^32: take the difference modulo that.
                let d = ((transit - previous) as i32).unsigned_abs();
                state.jitter_estimate += (f64::from(d) - state.jitter_estimate) / 16.0;
                self.counters.jitter_us.store((state.jitter_estimate * 125.0) as u64, Ordering::Relaxed);
            }
            state.jitter.push(packet, Instant::now().into_std());
        } else if Some(packet.payload_type) == state.event_payload_type
            && let Ok(event) = TelephoneEvent::parse(&packet.payload)
        {
            for press in state.detector.push(packet.timestamp, event) {
                let _ = self.events.try_send(CallEvent::Dtmf(press.digit));
                if let Some(to_peer) = state.bridge.as_ref().and_then(|b| b.to_peer.as_ref()) {
                    let _ = to_peer.try_send(BridgeFrame::Dtmf(press.digit));
                }
            }
        }
    }

    async fn tick(&mut self, state: &mut State) {
        // Caller → conversation.
        let frame = match state.jitter.pop(Instant::now().into_std()) {
            Playout::Frame(packet) => {
                state.concealed_in_row = 0;
                let mut samples = state.codec.decode(&packet.payload);
                samples.resize(FRAME_SAMPLES, 0);
                state.last_frame.clone_from(&samples);
                samples
            }
            Playout::Conceal => {
                self.counters.concealed_frames.fetch_add(1, Ordering::Relaxed);
                state.concealed_in_row += 1;
                if state.concealed_in_row == 1 {
                    state.last_frame.iter().map(|s| s / 2).collect()
                } else {
                    vec![0; FRAME_SAMPLES]
                }
            }
            Playout::Silence => vec![0; FRAME_SAMPLES],
        };
        if let Some(to_peer) = state.bridge.as_ref().and_then(|b| b.to_peer.as_ref())
            && to_peer.try_send(BridgeFrame::Audio(frame.clone())).is_err()
        {
            self.counters.bridge_frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
        if self.events.capacity() > RESERVED_EVENTS {
            let _ = self.events.try_send(CallEvent::CallerAudio(frame));
        } else {
            self.counters.caller_frames_dropped.fetch_add(1, Ordering::Relaxed);
        }

        // Conversation → caller.
        let generation = self.generation.load(Ordering::Acquire);
        if generation != state.seen_generation {
            state.seen_generation = generation;
            let cut = state.playout.flush();
            if !cut.is_empty() {
                let _ = self.events.try_send(CallEvent::PlaybackStopped(cut));
            }
        }
        while state.playout.queued_samples() < PLAYOUT_AHEAD_SAMPLES {
            match self.clips.try_recv() {
                Ok(clip) if clip.generation >= generation => state.playout.push(clip.id, clip.samples),
                Ok(clip) => {
                    let _ = self.events.try_send(CallEvent::PlaybackStopped(vec![clip.id]));
                }
                Err(_) => break,
            }
        }
        self.take_bridged(state);
        // Bot clips wait while the other leg of a bridge speaks.
        let bridged = state.bridge.as_ref().map(|_| state.bridged.pop_front());
        let mut speech = voicebot_rtp::playout::PlayoutFrame { samples: None, finished: Vec::new() };
        if bridged.is_none() {
            speech = state.playout.next_frame();
        }
        for id in std::mem::take(&mut speech.finished) {
            let _ = self.events.try_send(CallEvent::PlaybackFinished(id));
        }
        let dtmf_tick = state.dtmf.as_mut().and_then(DtmfSender::next_tick);
        if dtmf_tick.is_none() {
            state.dtmf = None;
        }
        let content = match (&dtmf_tick, &speech.samples, &bridged) {
            (Some((event, first, ago)), _, _) => {
                TickContent::Event { event: *event, first: *first, started_ticks_ago: *ago }
            }
            (None, _, Some(Some(samples))) => TickContent::Speech(samples),
            (None, Some(samples), None) => TickContent::Speech(samples),
            (None, _, _) => TickContent::Silence,
        };
        let packet = state.sender.tick(content);
        match self.socket.send_to(&packet.encode(), state.remote).await {
            Ok(_) => self.counters.packets_sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.counters.send_errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

impl MediaTask {
    /// Moves what the other leg sent since the last tick into the send queue.
    fn take_bridged(&self, state: &mut State) {
        let Some(bridge) = state.bridge.as_mut() else { return };
        while let Ok(frame) = bridge.from_peer.try_recv() {
            match frame {
                BridgeFrame::Audio(samples) => {
                    state.bridged.push_back(samples);
                    if state.bridged.len() > BRIDGE_AHEAD_FRAMES {
                        state.bridged.pop_front();
                        self.counters.bridge_frames_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                BridgeFrame::Dtmf(digit) if state.event_payload_type.is_some() => {
                    state.dtmf = Some(DtmfSender::new(digit, 5));
                }
                BridgeFrame::Dtmf(_) => {}
            }
        }
    }
}

impl State {
    fn apply(&mut self, control: MediaControl) {
        match control {
            MediaControl::Renegotiated { remote, codec, event_payload_type } => {
                if remote != self.remote && !self.latched {
                    self.remote = remote;
                }
                if codec != self.codec {
                    self.jitter = JitterBuffer::new(self.jitter_config);
                }
                self.codec = codec;
                self.event_payload_type = event_payload_type;
                self.sender.set_codec(codec, event_payload_type);
            }
            MediaControl::Dtmf(digit) => self.dtmf = Some(DtmfSender::new(digit, 5)),
            MediaControl::Bridge(port) => {
                self.bridged.clear();
                self.bridge = Some(port);
            }
            MediaControl::Unbridge => {
                self.bridged.clear();
                self.bridge = None;
            }
        }
    }
}
