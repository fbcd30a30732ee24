//! A sans-IO jitter buffer for one incoming RTP stream.
//!
//! The driver calls [`JitterBuffer::push`] for every audio packet as it arrives and
//! [`JitterBuffer::pop`] once per 20 ms playout tick; both take `now`, and nothing
//! here reads a clock, so tests run on a virtual one.
//!
//! Policy (fixed depth, chosen for a predictable latency budget on PBX/trunk links):
//! - **Start:** playout of a talkspurt begins once its first packet has waited
//!   `depth` (default 60 ms); until then `pop` says [`Playout::Silence`].
//! - **Order:** packets are kept by (wrap-extended) RTP timestamp, so reordering
//!   within the depth is undone; timestamps wrap at 2^32 transparently.
//! - **Loss:** a missing frame whose slot comes up is [`Playout::Conceal`] (the
//!   decoder repeats/fades); the clock moves on and the packet, if it comes later,
//!   is *late*: dropped and counted.
//! - **Duplicates** are dropped and counted.
//! - **Silence from the peer** (DTX, hold): after `max_concealed` consecutive
//!   concealments with nothing buffered, the buffer rebuffers and reports silence
//!   until the next talkspurt has waited `depth` again.
//! - **Overflow:** at most `capacity_frames` frames are held; beyond that the
//!   oldest is dropped and counted, which also catches up with a fast sender clock.
//! - **Resync:** a new SSRC, or a timestamp more than `resync_after` away from the
//!   playout point, restarts the buffer.
//!
//! Packets carry G.711, so payload bytes equal samples; a packet advances the
//! playout point by its payload length (20 ms packets: 160).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::FRAME_SAMPLES;
use crate::packet::RtpPacket;

const FRAME: u64 = FRAME_SAMPLES as u64;

/// Tuning of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// How long the first packet of a talkspurt waits before playout.
    pub depth: Duration,
    /// Most frames held; older ones are dropped beyond it.
    pub capacity_frames: usize,
    /// Consecutive concealed frames with an empty buffer before rebuffering.
    pub max_concealed: u32,
    /// Samples (at 8 kHz) between a packet and the playout point that force a resync.
    pub resync_after: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            depth: Duration::from_millis(60),
            capacity_frames: 50,
            max_concealed: 5,
            resync_after: 8000 * 3,
        }
    }
}

/// What to play for this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The packet for this slot.
    Frame(RtpPacket),
    /// This slot's packet is missing: conceal it.
    Conceal,
    /// Nothing is playing (buffering, or the peer is silent): play silence.
    Silence,
}

/// Counters for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    pub concealed: u64,
    pub late: u64,
    pub duplicates: u64,
    pub overflow_dropped: u64,
    pub resyncs: u64,
}

/// The buffer; see the module docs for its policy.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    packets: BTreeMap<u64, RtpPacket>,
    ssrc: Option<u32>,
    /// Extended timestamp used to unwrap the next 32-bit one.
    reference: Option<u64>,
    /// Next slot to play; `None` while buffering.
    next_play: Option<u64>,
    /// Everything before this was played or skipped: older packets are late.
    played_until: Option<u64>,
    buffering_since: Option<Instant>,
    concealed_run: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        JitterBuffer {
            config,
            packets: BTreeMap::new(),
            ssrc: None,
            reference: None,
            next_play: None,
            played_until: None,
            buffering_since: None,
            concealed_run: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Frames currently held.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Takes one arriving audio packet.
    pub fn push(&mut self, packet: RtpPacket, now: Instant) {
        if self.ssrc.is_some_and(|ssrc| ssrc != packet.ssrc) {
            self.restart();
        }
        self.ssrc = Some(packet.ssrc);
        let ext = self.extend(packet.timestamp);
        let anchor = self.next_play.or(self.played_until);
        if let Some(anchor) = anchor
            && ext.abs_diff(anchor) > u64::from(self.config.resync_after)
        {
            self.restart();
            return self.push(packet, now);
        }
        if self.played_until.is_some_and(|until| ext < until) {
            self.stats.late += 1;
            return;
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.received += 1;
        self.reference = Some(self.reference.map_or(ext, |r| r.max(ext)));
        self.packets.insert(ext, packet);
        if self.next_play.is_none() && self.buffering_since.is_none() {
            self.buffering_since = Some(now);
        }
        while self.packets.len() > self.config.capacity_frames {
            if let Some((oldest, dropped)) = self.packets.pop_first() {
                self.stats.overflow_dropped += 1;
                let end = oldest + advance(&dropped);
                self.played_until = Some(self.played_until.map_or(end, |u| u.max(end)));
                if let Some(next) = self.next_play.as_mut() {
                    *next = (*next).max(end);
                }
            }
        }
    }

    /// What to play in the tick at `now`.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let next = match self.next_play {
            Some(next) => next,
            None => {
                let ready =
                    self.buffering_since.is_some_and(|since| now.duration_since(since) >= self.config.depth);
                match self.packets.first_key_value() {
                    Some((&first, _)) if ready => {
                        self.buffering_since = None;
                        first
                    }
                    _ => return Playout::Silence,
                }
            }
        };
        // A packet starting inside this slot (odd alignment) is played now.
        let due = self.packets.range(..next + FRAME).next().map(|(&ts, _)| ts);
        if let Some(ts) = due
            && let Some(packet) = self.packets.remove(&ts)
        {
            let end = ts + advance(&packet);
            self.next_play = Some(end);
            self.played_until = Some(end);
            self.concealed_run = 0;
            self.stats.played += 1;
            return Playout::Frame(packet);
        }
        if self.packets.is_empty() && self.concealed_run >= self.config.max_concealed {
            self.next_play = None;
            self.buffering_since = None;
            self.concealed_run = 0;
            return Playout::Silence;
        }
        self.concealed_run += 1;
        self.stats.concealed += 1;
        self.next_play = Some(next + FRAME);
        self.played_until = Some(next + FRAME);
        Playout::Conceal
    }

    fn restart(&mut self) {
        self.stats.resyncs += 1;
        self.packets.clear();
        self.reference = None;
        self.next_play = None;
        self.played_until = None;
        self.buffering_since = None;
        self.concealed_run = 0;
    }

    /// Unwraps a 32-bit timestamp to the 64-bit value nearest the reference.
    fn extend(&self, timestamp: u32) -> u64 {
        // Start well above zero so unwrapping backwards never underflows.
        const ORIGIN: u64 = 1 << 40;
        match self.reference {
            None => ORIGIN + u64::from(timestamp),
            Some(reference) => {
                let delta = timestamp.wrapping_sub(reference as u32) as i32;
                reference.wrapping_add_signed(i64::from(delta))
            }
        }
    }
}

fn advance(packet: &RtpPacket) -> u64 {
    if packet.payload.is_empty() { FRAME } else { packet.payload.len() as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(20);

    fn packet(seq: u16, ts: u32) -> RtpPacket {
        RtpPacket {
            marker: false,
            payload_type: 0,
            sequence: seq,
            timestamp: ts,
            ssrc: 1,
            payload: vec![seq as u8; 160],
        }
    }

    /// A virtual call: packet `i` is sent at `i * 20 ms` and arrives after `delay(i)`;
    /// playout ticks every 20 ms. Returns the sequence numbers played (None = conceal
    /// or silence) for `ticks` ticks.
    fn simulate(
        buffer: &mut JitterBuffer,
        count: u16,
        first_ts: u32,
        delay: impl Fn(u16) -> Option<Duration>,
        ticks: u32,
    ) -> Vec<Option<u16>> {
        let t0 = Instant::now();
        let mut arrivals: Vec<(Duration, RtpPacket)> = (0..count)
            .filter_map(|i| {
                let d = delay(i)?;
                Some((TICK * u32::from(i) + d, packet(i, first_ts.wrapping_add(u32::from(i) * 160))))
            })
            .collect();
        arrivals.sort_by_key(|(at, _)| *at);
        let mut arrivals = arrivals.into_iter().peekable();
        let mut played = Vec::new();
        for tick in 0..ticks {
            let now = TICK * tick + Duration::from_millis(10); // ticks are offset half a frame
            while let Some((at, _)) = arrivals.peek() {
                if *at > now {
                    break;
                }
                let (at, p) = arrivals.next().unwrap();
                buffer.push(p, t0 + at);
            }
            played.push(match buffer.pop(t0 + now) {
                Playout::Frame(p) => Some(p.sequence),
                Playout::Conceal | Playout::Silence => None,
            });
        }
        played
    }

    fn frames(played: &[Option<u16>]) -> Vec<u16> {
        played.iter().flatten().copied().collect()
    }

    #[test]
    fn an_in_order_stream_plays_every_frame_after_the_depth() {
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        let played = simulate(&mut buffer, 20, 1000, |_| Some(Duration::from_millis(5)), 30);
        assert_eq!(frames(&played), (0..20).collect::<Vec<_>>());
        // 60 ms depth: the first frame plays on the fourth tick (at 70 ms, arrived at 5 ms).
        assert_eq!(played.iter().position(Option::is_some), Some(3));
        assert_eq!(buffer.stats().played, 20);
        assert_eq!(buffer.stats().late + buffer.stats().duplicates, 0);
    }

    #[test]
    fn reordering_within_the_depth_is_undone() {
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        // Every odd packet is 35 ms late, overtaking its successor.
        let delay = |i: u16| Some(Duration::from_millis(if i % 2 == 1 { 35 } else { 5 }));
        // Frames play in ticks 3..=22; stop there, before the stream's end is concealed.
        let played = simulate(&mut buffer, 20, 0, delay, 23);
        assert_eq!(frames(&played), (0..20).collect::<Vec<_>>());
        assert_eq!(buffer.stats().concealed, 0);
    }

    #[test]
    fn a_lost_packet_is_concealed_in_its_slot_and_playout_continues() {
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        let played = simulate(&mut buffer, 10, 0, |i| (i != 4).then_some(Duration::from_millis(5)), 13);
        let start = played.iter().position(Option::is_some).unwrap();
        let expected: Vec<Option<u16>> = (0..10).map(|i| (i != 4).then_some(i)).collect();
        assert_eq!(&played[start..start + 10], &expected[..]);
        assert_eq!(buffer.stats().concealed, 1);
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        let t0 = Instant::now();
        for _ in 0..3 {
            buffer.push(packet(0, 0), t0);
        }
        buffer.push(packet(1, 160), t0);
        assert_eq!(buffer.stats().duplicates, 2);
        assert_eq!(buffer.len(), 2);
    }

    #[test]
    fn a_packet_arriving_after_its_slot_is_late_and_dropped() {
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        let played =
            simulate(&mut buffer, 10, 0, |i| Some(Duration::from_millis(if i == 5 { 200 } else { 5 })), 20);
        assert!(!frames(&played).contains(&5));
        assert_eq!(buffer.stats().late, 1);
        assert_eq!(buffer.stats().played, 9);
        // Also a duplicate of a frame already played is late.
        buffer.push(packet(2, 320), Instant::now());
        assert_eq!(buffer.stats().late, 2);
    }

    #[test]
    fn timestamps_wrapping_at_two_to_the_32_play_in_order() {
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        let delay = |i: u16| Some(Duration::from_millis(if i.is_multiple_of(3) { 30 } else { 2 }));
        let played = simulate(&mut buffer, 20, u32::MAX - 5 * 160 + 1, delay, 30);
        assert_eq!(frames(&played), (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn a_silent_peer_gets_silence_then_the_next_talkspurt_rebuffers() {
        let config = JitterConfig { max_concealed: 2, ..JitterConfig::default() };
        let mut buffer = JitterBuffer::new(config);
        let t0 = Instant::now();
        buffer.push(packet(0, 0), t0);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(buffer.pop(at(60)), Playout::Frame(packet(0, 0)));
        assert_eq!(buffer.pop(at(80)), Playout::Conceal);
        assert_eq!(buffer.pop(at(100)), Playout::Conceal);
        assert_eq!(buffer.pop(at(120)), Playout::Silence);
        assert_eq!(buffer.pop(at(140)), Playout::Silence);
        // Peer resumes 10 s of timestamps later (within resync range after DTX is not
        // required: the buffer starts the new talkspurt on its own timeline).
        buffer.push(packet(1, 160 * 50), at(150));
        assert_eq!(buffer.pop(at(160)), Playout::Silence, "waits the depth again");
        assert!(matches!(buffer.pop(at(210)), Playout::Frame(p) if p.sequence == 1));
    }

    #[test]
    fn a_burst_beyond_capacity_drops_the_oldest() {
        let config = JitterConfig { capacity_frames: 4, ..JitterConfig::default() };
        let mut buffer = JitterBuffer::new(config);
        let t0 = Instant::now();
        for i in 0..10 {
            buffer.push(packet(i, u32::from(i) * 160), t0);
        }
        assert_eq!(buffer.len(), 4);
        assert_eq!(buffer.stats().overflow_dropped, 6);
        assert!(matches!(buffer.pop(t0 + TICK * 3), Playout::Frame(p) if p.sequence == 6));
        // A straggler from before the dropped range is late.
        buffer.push(packet(2, 320), t0);
        assert_eq!(buffer.stats().late, 1);
    }

    #[test]
    fn a_new_ssrc_or_a_timestamp_jump_restarts_the_buffer() {
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        let t0 = Instant::now();
        buffer.push(packet(0, 0), t0);
        assert!(matches!(buffer.pop(t0 + TICK * 3), Playout::Frame(_)));
        let mut other = packet(1, 999_999);
        other.ssrc = 2;
        buffer.push(other, t0 + TICK * 4);
        assert_eq!(buffer.stats().resyncs, 1);
        assert_eq!(buffer.pop(t0 + TICK * 4), Playout::Silence);
        assert!(matches!(buffer.pop(t0 + TICK * 7), Playout::Frame(p) if p.sequence == 1));
        // Same SSRC, timestamp a minute away.
        let mut jump = packet(2, 999_999 + 8000 * 60);
        jump.ssrc = 2;
        buffer.push(jump, t0 + TICK * 8);
        assert_eq!(buffer.stats().resyncs, 2);
        assert!(matches!(buffer.pop(t0 + TICK * 11), Playout::Frame(p) if p.sequence == 2));
    }
}
