//! The outgoing RTP stream of one call: sequence numbers, timestamps and SSRC.
//!
//! Invariants (RFC 3550 §5.1, RFC 4733 §2.5):
//! - every packet takes the next sequence number, wrapping at 2^16;
//! - the media clock advances exactly one frame (160 samples) per [`RtpSender::tick`]
//!   whatever was sent in it, so timestamps stay true to real time across
//!   silence and DTMF;
//! - a telephone-event keeps the timestamp of the tick it began in for all its packets;
//! - the marker bit is set on the first audio packet of the stream and on the first
//!   packet of each event.
//!
//! The sender never stops: with nothing to say it sends encoded silence
//! ([`TickContent::Silence`]), which keeps NAT pinholes and the peer's jitter buffer
//! alive and needs no comfort-noise negotiation.
//!
//! The initial sequence number, timestamp and SSRC should be random; the caller
//! supplies them, keeping this type deterministic.

use crate::FRAME_SAMPLES;
use crate::dtmf::TelephoneEvent;
use crate::g711::G711;
use crate::packet::RtpPacket;

/// What to send in one 20 ms tick.
#[derive(Debug, Clone, PartialEq)]
pub enum TickContent<'a> {
    /// One frame of bot speech, 160 samples at 8 kHz.
    Speech(&'a [i16]),
    /// Nothing to say: one frame of encoded silence.
    Silence,
    /// A packet of a telephone-event that began `started_ticks_ago` ticks before this one.
    Event { event: TelephoneEvent, first: bool, started_ticks_ago: u32 },
}

/// Builds the packets of one outgoing stream.
#[derive(Debug, Clone)]
pub struct RtpSender {
    codec: G711,
    event_payload_type: Option<u8>,
    ssrc: u32,
    next_sequence: u16,
    next_timestamp: u32,
    sent_first_audio: bool,
    packets_sent: u64,
}

impl RtpSender {
    /// A stream with the given random starting values.
    pub fn new(
        codec: G711,
        event_payload_type: Option<u8>,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
    ) -> Self {
        RtpSender {
            codec,
            event_payload_type,
            ssrc,
            next_sequence: sequence,
            next_timestamp: timestamp,
            sent_first_audio: false,
            packets_sent: 0,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn codec(&self) -> G711 {
        self.codec
    }

    /// Switches codec after a re-INVITE; sequence and clock continue.
    pub fn set_codec(&mut self, codec: G711, event_payload_type: Option<u8>) {
        self.codec = codec;
        self.event_payload_type = event_payload_type;
    }

    pub fn packets_sent(&self) -> u64 {
        self.packets_sent
    }

    /// The packet for this tick; advances the media clock by one frame.
    ///
    /// A `Speech` frame shorter than 160 samples is padded with silence, a longer
    /// one is cut. An `Event` without a negotiated telephone-event payload type
    /// is sent as silence.
    pub fn tick(&mut self, content: TickContent<'_>) -> RtpPacket {
        let tick_timestamp = self.next_timestamp;
        self.next_timestamp = self.next_timestamp.wrapping_add(FRAME_SAMPLES as u32);
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.packets_sent += 1;
        let audio = |this: &mut Self, payload: Vec<u8>| {
            let marker = !this.sent_first_audio;
            this.sent_first_audio = true;
            RtpPacket {
                marker,
                payload_type: this.codec.payload_type(),
                sequence,
                timestamp: tick_timestamp,
                ssrc: this.ssrc,
                payload,
            }
        };
        match content {
            TickContent::Speech(samples) => {
                let mut payload = self.codec.encode(&samples[..samples.len().min(FRAME_SAMPLES)]);
                payload.resize(FRAME_SAMPLES, self.codec.silence_byte());
                audio(self, payload)
            }
            TickContent::Silence => audio(self, vec![self.codec.silence_byte(); FRAME_SAMPLES]),
            TickContent::Event { event, first, started_ticks_ago } => match self.event_payload_type {
                Some(payload_type) => RtpPacket {
                    marker: first,
                    payload_type,
                    sequence,
                    timestamp: tick_timestamp
                        .wrapping_sub(started_ticks_ago.wrapping_mul(FRAME_SAMPLES as u32)),
                    ssrc: self.ssrc,
                    payload: event.encode().to_vec(),
                },
                None => audio(self, vec![self.codec.silence_byte(); FRAME_SAMPLES]),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::DtmfDigit;

    #[test]
    fn sequence_and_timestamp_advance_per_tick_and_wrap() {
        let mut sender = RtpSender::new(G711::Pcmu, Some(101), 42, 0xfffe, u32::MAX - 100);
        let a = sender.tick(TickContent::Silence);
        let b = sender.tick(TickContent::Speech(&[1000; 160]));
        let c = sender.tick(TickContent::Silence);
        assert_eq!((a.sequence, b.sequence, c.sequence), (0xfffe, 0xffff, 0));
        assert_eq!(b.timestamp, a.timestamp.wrapping_add(160));
        assert_eq!(c.timestamp, a.timestamp.wrapping_add(320));
        assert!(a.marker && !b.marker && !c.marker, "marker only on the first audio packet");
        assert!([a.ssrc, b.ssrc, c.ssrc].iter().all(|&s| s == 42));
        assert_eq!(sender.packets_sent(), 3);
    }

    #[test]
    fn silence_is_a_full_frame_of_the_codecs_silence_byte() {
        let mut sender = RtpSender::new(G711::Pcma, None, 1, 0, 0);
        let packet = sender.tick(TickContent::Silence);
        assert_eq!(packet.payload_type, 8);
        assert_eq!(packet.payload, vec![0xd5; 160]);
    }

    #[test]
    fn short_speech_is_padded_to_a_frame() {
        let mut sender = RtpSender::new(G711::Pcmu, None, 1, 0, 0);
        let packet = sender.tick(TickContent::Speech(&[8000; 100]));
        assert_eq!(packet.payload.len(), 160);
        assert_eq!(packet.payload[150], 0xff);
        assert_ne!(packet.payload[0], 0xff);
    }

    #[test]
    fn event_packets_keep_their_start_timestamp_while_the_clock_runs() {
        let mut sender = RtpSender::new(G711::Pcmu, Some(101), 7, 10, 1000);
        let event = |duration, end| TelephoneEvent { digit: DtmfDigit::Five, end, volume: 10, duration };
        let first =
            sender.tick(TickContent::Event { event: event(160, false), first: true, started_ticks_ago: 0 });
        let second =
            sender.tick(TickContent::Event { event: event(320, true), first: false, started_ticks_ago: 1 });
        let after = sender.tick(TickContent::Silence);
        assert_eq!((first.timestamp, second.timestamp), (1000, 1000));
        assert_eq!(first.payload_type, 101);
        assert!(first.marker && !second.marker);
        assert_eq!(after.timestamp, 1000 + 2 * 160, "audio resumes on the real-time clock");
        assert_eq!((first.sequence, second.sequence, after.sequence), (10, 11, 12));
    }

    #[test]
    fn events_without_a_negotiated_payload_type_become_silence() {
        let mut sender = RtpSender::new(G711::Pcmu, None, 7, 0, 0);
        let event = TelephoneEvent { digit: DtmfDigit::Star, end: false, volume: 10, duration: 160 };
        let packet = sender.tick(TickContent::Event { event, first: true, started_ticks_ago: 0 });
        assert_eq!(packet.payload_type, 0);
        assert_eq!(packet.payload, vec![0xff; 160]);
    }
}
