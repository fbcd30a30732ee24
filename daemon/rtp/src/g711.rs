//! G.711 µ-law (PCMU, static payload type 0) and A-law (PCMA, type 8) at 8 kHz.
//!
//! One byte per sample both ways, so a 20 ms frame is 160 bytes. The sample
//! conversions are `audio-codec-algorithms`' ITU tables.

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

/// A negotiated G.711 variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    Pcmu,
    Pcma,
}

impl G711 {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            G711::Pcmu => 0,
            G711::Pcma => 8,
        }
    }

    /// The SDP `rtpmap` encoding name.
    pub fn encoding_name(self) -> &'static str {
        match self {
            G711::Pcmu => "PCMU",
            G711::Pcma => "PCMA",
        }
    }

    /// The codec for an `rtpmap` name, case-insensitively.
    pub fn from_encoding_name(name: &str) -> Option<G711> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(G711::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(G711::Pcma)
        } else {
            None
        }
    }

    /// The codec of a static payload type.
    pub fn from_payload_type(pt: u8) -> Option<G711> {
        match pt {
            0 => Some(G711::Pcmu),
            8 => Some(G711::Pcma),
            _ => None,
        }
    }

    /// The byte that decodes to (near) zero: what comfort silence is made of.
    pub fn silence_byte(self) -> u8 {
        match self {
            G711::Pcmu => 0xff,
            G711::Pcma => 0xd5,
        }
    }

    /// Encodes linear samples, one byte each.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            G711::Pcmu => samples.iter().map(|&s| encode_ulaw(s)).collect(),
            G711::Pcma => samples.iter().map(|&s| encode_alaw(s)).collect(),
        }
    }

    /// Decodes bytes into linear samples, appending to `out`.
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            G711::Pcmu => out.extend(payload.iter().map(|&b| decode_ulaw(b))),
            G711::Pcma => out.extend(payload.iter().map(|&b| decode_alaw(b))),
        }
    }

    /// Decodes bytes into linear samples.
    pub fn decode(self, payload: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(payload.len());
        self.decode_into(payload, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(len: usize) -> Vec<i16> {
        (0..len).map(|i| ((i as f32 * 0.19).sin() * 12_000.0) as i16).collect()
    }

    #[test]
    fn both_laws_round_trip_a_tone_within_companding_error() {
        let input = tone(160);
        for codec in [G711::Pcmu, G711::Pcma] {
            let bytes = codec.encode(&input);
            assert_eq!(bytes.len(), 160);
            let output = codec.decode(&bytes);
            for (a, b) in input.iter().zip(&output) {
                // Logarithmic companding: error grows with amplitude, ~3% at most.
                let tolerance = (i32::from(*a).abs() / 16).max(16);
                assert!((i32::from(*a) - i32::from(*b)).abs() <= tolerance, "{codec:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn silence_bytes_decode_to_near_zero() {
        for codec in [G711::Pcmu, G711::Pcma] {
            let decoded = codec.decode(&[codec.silence_byte(); 4]);
            assert!(decoded.iter().all(|s| s.abs() <= 8), "{codec:?}: {decoded:?}");
        }
    }

    #[test]
    fn payload_types_and_names_map_both_ways() {
        for codec in [G711::Pcmu, G711::Pcma] {
            assert_eq!(G711::from_payload_type(codec.payload_type()), Some(codec));
            assert_eq!(G711::from_encoding_name(&codec.encoding_name().to_lowercase()), Some(codec));
        }
        assert_eq!(G711::from_payload_type(9), None);
        assert_eq!(G711::from_encoding_name("G722"), None);
    }
}
