//! RTP packets (RFC 3550 §5.1): parse from and encode to datagram bytes.
//!
//! Parsing never panics on any input: a datagram too short for its own header,
//! CSRC list, extension or padding is an [`RtpError`]. Header extensions and CSRCs
//! are skipped on parse (we never need them) and never written on encode.

/// An RTP packet as far as voicebotd cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// Why a datagram is not an RTP packet we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("RTP datagram of {len} bytes is shorter than its {needed}-byte header")]
    Truncated { len: usize, needed: usize },
    #[error("RTP version {0} is not 2")]
    Version(u8),
    #[error("RTP padding length {padding} exceeds the {available} payload bytes")]
    Padding { padding: usize, available: usize },
    #[error("payload type {0} is RTCP (RFC 5761 range 72-76), not RTP")]
    Rtcp(u8),
}

const FIXED_HEADER: usize = 12;

impl RtpPacket {
    /// Parses one datagram.
    ///
    /// # Errors
    /// See [`RtpError`]; the datagram is then dropped by the caller and counted.
    pub fn parse(datagram: &[u8]) -> Result<RtpPacket, RtpError> {
        let len = datagram.len();
        if len < FIXED_HEADER {
            return Err(RtpError::Truncated { len, needed: FIXED_HEADER });
        }
        let version = datagram[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = datagram[0] & 0x20 != 0;
        let has_extension = datagram[0] & 0x10 != 0;
        let csrc_count = usize::from(datagram[0] & 0x0f);
        let marker = datagram[1] & 0x80 != 0;
        let payload_type = datagram[1] & 0x7f;
        if (72..=76).contains(&payload_type) {
            return Err(RtpError::Rtcp(payload_type));
        }
        let mut header = FIXED_HEADER + 4 * csrc_count;
        if len < header {
            return Err(RtpError::Truncated { len, needed: header });
        }
        if has_extension {
            if len < header + 4 {
                return Err(RtpError::Truncated { len, needed: header + 4 });
            }
            let words = usize::from(u16::from_be_bytes([datagram[header + 2], datagram[header + 3]]));
            header += 4 + 4 * words;
            if len < header {
                return Err(RtpError::Truncated { len, needed: header });
            }
        }
        let mut end = len;
        if has_padding {
            let padding = usize::from(datagram[len - 1]);
            let available = len - header;
            if padding == 0 || padding > available {
                return Err(RtpError::Padding { padding, available });
            }
            end -= padding;
        }
        Ok(RtpPacket {
            marker,
            payload_type,
            sequence: u16::from_be_bytes([datagram[2], datagram[3]]),
            timestamp: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
            ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
            payload: datagram[header..end].to_vec(),
        })
    }

    /// Writes the packet (version 2, no padding, no extension, no CSRCs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_HEADER + self.payload.len());
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RtpPacket {
        RtpPacket {
            marker: true,
            payload_type: 8,
            sequence: 0xfffe,
            timestamp: 0xdead_beef,
            ssrc: 0x1234_5678,
            payload: vec![1, 2, 3, 4],
        }
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let packet = sample();
        let bytes = packet.encode();
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..2], &[0x80, 0x88]);
        assert_eq!(RtpPacket::parse(&bytes).unwrap(), packet);
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        let mut bytes = vec![0x80 | 0x20 | 0x10 | 0x02, 0x00, 0, 7, 0, 0, 0, 160, 0, 0, 0, 9];
        bytes.extend_from_slice(&[0xaa; 8]); // two CSRCs
        bytes.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x11, 0x22, 0x33, 0x44]); // one-word extension
        bytes.extend_from_slice(&[5, 6, 7]); // payload
        bytes.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(packet.payload, vec![5, 6, 7]);
        assert_eq!((packet.sequence, packet.timestamp, packet.ssrc), (7, 160, 9));
        assert!(!packet.marker);
    }

    #[test]
    fn truncated_and_foreign_datagrams_are_errors_not_panics() {
        assert!(matches!(RtpPacket::parse(&[0x80; 5]), Err(RtpError::Truncated { .. })));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::Version(1)));
        // CSRC count 15 promises 60 more bytes.
        assert!(matches!(RtpPacket::parse(&[0x8f; 20]), Err(RtpError::Truncated { .. })));
        // Padding byte larger than the payload.
        let mut bytes = sample().encode();
        bytes[0] |= 0x20;
        *bytes.last_mut().unwrap() = 200;
        assert!(matches!(RtpPacket::parse(&bytes), Err(RtpError::Padding { .. })));
        // RTCP sender report multiplexed on the RTP port.
        assert_eq!(RtpPacket::parse(&[0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]), Err(RtpError::Rtcp(72)));
    }

    #[test]
    fn every_short_prefix_of_every_byte_pattern_parses_or_errors() {
        for first in 0..=255u8 {
            let mut bytes = [first; 40];
            bytes[1] = first.wrapping_mul(7);
            for len in 0..bytes.len() {
                let _ = RtpPacket::parse(&bytes[..len]);
            }
        }
    }
}
