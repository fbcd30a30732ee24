//! RFC 4733 telephone-events for DTMF: the 4-byte payload, a detector that turns
//! a stream of event packets into one digit per key press, and a sender that
//! plays one key press as event packets.
//!
//! Detector invariants:
//! - a key press is identified by its RTP timestamp (all its packets share it);
//! - a press is reported exactly once: on its first end-bit packet, or, when every
//!   end packet was lost, as soon as a packet of a later press arrives;
//! - the three redundant end packets, retransmissions and packets of a press
//!   already reported are ignored, also when they arrive reordered.

/// A DTMF key (events 0-15 of RFC 4733 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfDigit {
    Zero,
    One,
    Two,
    Three,
    Four,
    Five,
    Six,
    Seven,
    Eight,
    Nine,
    Star,
    Pound,
    A,
    B,
    C,
    D,
}

const DIGITS: [DtmfDigit; 16] = [
    DtmfDigit::Zero,
    DtmfDigit::One,
    DtmfDigit::Two,
    DtmfDigit::Three,
    DtmfDigit::Four,
    DtmfDigit::Five,
    DtmfDigit::Six,
    DtmfDigit::Seven,
    DtmfDigit::Eight,
    DtmfDigit::Nine,
    DtmfDigit::Star,
    DtmfDigit::Pound,
    DtmfDigit::A,
    DtmfDigit::B,
    DtmfDigit::C,
    DtmfDigit::D,
];

impl DtmfDigit {
    /// The RFC 4733 event code.
    pub fn code(self) -> u8 {
        DIGITS.iter().position(|&d| d == self).unwrap_or(0) as u8
    }

    /// The digit of an event code; `None` for non-DTMF events (tones, flash).
    pub fn from_code(code: u8) -> Option<DtmfDigit> {
        DIGITS.get(usize::from(code)).copied()
    }

    /// The key's character: `0`-`9`, `*`, `#`, `A`-`D`.
    pub fn as_char(self) -> char {
        b"0123456789*#ABCD"[usize::from(self.code())] as char
    }

    /// The digit for a key character (case-insensitive for A-D).
    pub fn from_char(c: char) -> Option<DtmfDigit> {
        let upper = c.to_ascii_uppercase();
        b"0123456789*#ABCD".iter().position(|&k| k as char == upper).and_then(|i| Self::from_code(i as u8))
    }
}

impl std::fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub digit: DtmfDigit,
    pub end: bool,
    /// Power level in -dBm0, 0-63.
    pub volume: u8,
    /// Samples since the event began, at 8 kHz.
    pub duration: u16,
}

/// Why a telephone-event payload was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("telephone-event payload has {0} bytes, expected at least 4")]
    Short(usize),
    #[error("telephone-event code {0} is not a DTMF digit")]
    NotDtmf(u8),
}

impl TelephoneEvent {
    /// Parses the first four bytes of a payload (more may follow: RFC 4733 §2.5.1.5).
    ///
    /// # Errors
    /// A short payload or a non-DTMF event.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, EventError> {
        let [code, flags, hi, lo] = payload
            .get(..4)
            .and_then(|p| <[u8; 4]>::try_from(p).ok())
            .ok_or(EventError::Short(payload.len()))?;
        let digit = DtmfDigit::from_code(code).ok_or(EventError::NotDtmf(code))?;
        Ok(TelephoneEvent {
            digit,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([hi, lo]),
        })
    }

    pub fn encode(&self) -> [u8; 4] {
        let [hi, lo] = self.duration.to_be_bytes();
        [self.digit.code(), (u8::from(self.end) << 7) | (self.volume & 0x3f), hi, lo]
    }
}

/// A key press seen by the [`DtmfDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPress {
    pub digit: DtmfDigit,
    /// How long the key was held, at 8 kHz; `None` when every end packet was lost.
    pub duration: Option<u16>,
}

/// Turns telephone-event packets into one [`DtmfPress`] per key press.
#[derive(Debug, Default, Clone)]
pub struct DtmfDetector {
    /// The press in progress: its timestamp and digit, not yet reported.
    open: Option<(u32, DtmfDigit)>,
    /// Timestamps of recently reported presses, newest last.
    reported: Vec<u32>,
}

const REMEMBERED_PRESSES: usize = 8;

impl DtmfDetector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event packet (its RTP timestamp and payload); returns the presses
    /// it completes, at most two (an unterminated earlier press, then this one).
    pub fn push(&mut self, timestamp: u32, event: TelephoneEvent) -> Vec<DtmfPress> {
        let mut presses = Vec::new();
        if self.reported.contains(&timestamp) {
            return presses;
        }
        if let Some((open_ts, digit)) = self.open
            && open_ts != timestamp
        {
            // A packet of another press. Only a later one closes the open press.
            if timestamp.wrapping_sub(open_ts) < u32::MAX / 2 {
                presses.push(DtmfPress { digit, duration: None });
                self.remember(open_ts);
                self.open = None;
            } else {
                return presses; // a stale packet of an even older press
            }
        }
        if event.end {
            presses.push(DtmfPress { digit: event.digit, duration: Some(event.duration) });
            self.remember(timestamp);
            self.open = None;
        } else {
            self.open = Some((timestamp, event.digit));
        }
        presses
    }

    fn remember(&mut self, timestamp: u32) {
        if self.reported.len() == REMEMBERED_PRESSES {
            self.reported.remove(0);
        }
        self.reported.push(timestamp);
    }
}

/// Plays one key press as event packets, one per 20 ms tick (RFC 4733 §2.5.1):
/// updates every tick while the key is held, then the end packet three times.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    digit: DtmfDigit,
    held_ticks: u32,
    ticks_done: u32,
    volume: u8,
}

const END_REPEATS: u32 = 3;

impl DtmfSender {
    /// A press lasting `held_ticks` frames (at least one), at 10 dBm0 below full scale.
    pub fn new(digit: DtmfDigit, held_ticks: u32) -> Self {
        DtmfSender { digit, held_ticks: held_ticks.max(1), ticks_done: 0, volume: 10 }
    }

    /// The payload for the next tick, whether it is the first, and how many ticks
    /// ago the event began; `None` once all packets were sent.
    pub fn next_tick(&mut self) -> Option<(TelephoneEvent, bool, u32)> {
        if self.ticks_done >= self.held_ticks + END_REPEATS {
            return None;
        }
        let tick = self.ticks_done;
        self.ticks_done += 1;
        let end = tick >= self.held_ticks;
        let frames = if end { self.held_ticks } else { tick + 1 };
        let duration = u16::try_from(frames * crate::FRAME_SAMPLES as u32).unwrap_or(u16::MAX);
        let event = TelephoneEvent { digit: self.digit, end, volume: self.volume, duration };
        Some((event, tick == 0, tick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(digit: DtmfDigit, duration: u16, end: bool) -> TelephoneEvent {
        TelephoneEvent { digit, end, volume: 10, duration }
    }

    #[test]
    fn payload_round_trips_and_reads_the_rfc_layout() {
        let event = ev(DtmfDigit::Pound, 1280, true);
        let bytes = event.encode();
        assert_eq!(bytes, [11, 0x80 | 10, 0x05, 0x00]);
        assert_eq!(TelephoneEvent::parse(&bytes).unwrap(), event);
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), Err(EventError::Short(3)));
        assert_eq!(TelephoneEvent::parse(&[16, 0, 0, 0]), Err(EventError::NotDtmf(16)));
    }

    #[test]
    fn digits_map_to_chars_and_codes() {
        for code in 0..16 {
            let digit = DtmfDigit::from_code(code).unwrap();
            assert_eq!(digit.code(), code);
            assert_eq!(DtmfDigit::from_char(digit.as_char()), Some(digit));
        }
        assert_eq!(DtmfDigit::from_char('*'), Some(DtmfDigit::Star));
        assert_eq!(DtmfDigit::from_char('x'), None);
    }

    #[test]
    fn one_press_with_triple_end_is_one_digit() {
        let mut detector = DtmfDetector::new();
        let mut presses = Vec::new();
        for duration in [160, 320, 480] {
            presses.extend(detector.push(8000, ev(DtmfDigit::Seven, duration, false)));
        }
        for _ in 0..3 {
            presses.extend(detector.push(8000, ev(DtmfDigit::Seven, 640, true)));
        }
        assert_eq!(presses, vec![DtmfPress { digit: DtmfDigit::Seven, duration: Some(640) }]);
    }

    #[test]
    fn the_same_digit_twice_is_two_presses() {
        let mut detector = DtmfDetector::new();
        let mut presses = Vec::new();
        for ts in [1000, 5000] {
            presses.extend(detector.push(ts, ev(DtmfDigit::One, 160, false)));
            presses.extend(detector.push(ts, ev(DtmfDigit::One, 800, true)));
            presses.extend(detector.push(ts, ev(DtmfDigit::One, 800, true)));
        }
        assert_eq!(presses.len(), 2);
    }

    #[test]
    fn a_press_whose_end_packets_were_lost_is_reported_when_the_next_begins() {
        let mut detector = DtmfDetector::new();
        assert!(detector.push(1000, ev(DtmfDigit::Two, 160, false)).is_empty());
        let presses = detector.push(9000, ev(DtmfDigit::Three, 160, true));
        assert_eq!(
            presses,
            vec![
                DtmfPress { digit: DtmfDigit::Two, duration: None },
                DtmfPress { digit: DtmfDigit::Three, duration: Some(160) },
            ]
        );
    }

    #[test]
    fn late_duplicates_of_a_reported_press_are_ignored_even_reordered() {
        let mut detector = DtmfDetector::new();
        assert_eq!(detector.push(1000, ev(DtmfDigit::Four, 480, true)).len(), 1);
        assert_eq!(detector.push(2000, ev(DtmfDigit::Five, 480, true)).len(), 1);
        // A delayed update and a delayed end of the first press arrive now.
        assert!(detector.push(1000, ev(DtmfDigit::Four, 320, false)).is_empty());
        assert!(detector.push(1000, ev(DtmfDigit::Four, 480, true)).is_empty());
    }

    #[test]
    fn sender_plays_updates_then_three_ends_sharing_one_start() {
        let mut sender = DtmfSender::new(DtmfDigit::Nine, 4);
        let ticks: Vec<_> = std::iter::from_fn(|| sender.next_tick()).collect();
        assert_eq!(ticks.len(), 7);
        assert!(ticks[0].1 && ticks.iter().skip(1).all(|t| !t.1));
        let durations: Vec<u16> = ticks.iter().map(|t| t.0.duration).collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 640, 640, 640]);
        assert_eq!(ticks.iter().filter(|t| t.0.end).count(), 3);
        assert_eq!(ticks.iter().map(|t| t.2).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn what_the_sender_plays_the_detector_reads_as_one_press() {
        let mut sender = DtmfSender::new(DtmfDigit::A, 5);
        let mut detector = DtmfDetector::new();
        let mut presses = Vec::new();
        while let Some((event, _, _)) = sender.next_tick() {
            presses.extend(detector.push(777, event));
        }
        assert_eq!(presses, vec![DtmfPress { digit: DtmfDigit::A, duration: Some(800) }]);
    }
}
