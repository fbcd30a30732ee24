//! SDP offer/answer for one audio stream (RFC 3264), sans-IO.
//!
//! We accept offers carrying an RTP/AVP audio stream with PCMU or PCMA at 8 kHz
//! and answer with exactly one of them (the offerer's first preference) plus
//! `telephone-event/8000` when offered. Offers are parsed with ezk's SDP types;
//! the answer is written here as text, small enough to check by eye.
//!
//! Invariants: the answer keeps the offer's media line count and order (other
//! streams are rejected with port 0), echoes the telephone-event payload type the
//! offerer chose, and answers `sendrecv` offers `sendrecv`, `sendonly` ones
//! `recvonly` and so on.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytesstr::BytesStr;
use ezk_sdp_types::{Direction, MediaType, SessionDescription, TaggedAddress, TransportProtocol};
use voicebot_rtp::G711;

/// What an offer and our capabilities agree on.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    pub codec: G711,
    /// The offerer's telephone-event/8000 payload type, if offered.
    pub event_payload_type: Option<u8>,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Our direction in the answer.
    pub direction: Direction,
    /// Index of the accepted `m=` line.
    pub media_index: usize,
    /// Total `m=` lines in the offer (the answer has as many).
    media_count: usize,
    /// Media types of the offer's `m=` lines, for the rejected lines of the answer.
    media_types: Vec<&'static str>,
}

/// Why an offer cannot be answered: the INVITE gets 488 Not Acceptable Here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body is not UTF-8")]
    NotUtf8,
    #[error("SDP does not parse: {0}")]
    Syntax(String),
    #[error("SDP offers no RTP/AVP audio stream with PCMU or PCMA at 8000 Hz")]
    NoCommonCodec,
    #[error("SDP audio stream has no usable connection address (c=)")]
    NoAddress,
}

/// Parses an SDP body.
///
/// # Errors
/// [`SdpError::NotUtf8`] or [`SdpError::Syntax`].
pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
    SessionDescription::parse(&BytesStr::from(text)).map_err(|e| SdpError::Syntax(e.to_string()))
}

/// Chooses codec, events, remote address and direction for an offer.
///
/// # Errors
/// No acceptable audio stream, or no address for it.
pub fn negotiate(offer: &SessionDescription) -> Result<Negotiated, SdpError> {
    let media_types = offer
        .media_descriptions
        .iter()
        .map(|m| match m.media.media_type {
            MediaType::Audio => "audio",
            MediaType::Video => "video",
            MediaType::Text => "text",
            MediaType::App => "application",
        })
        .collect();
    for (index, media) in offer.media_descriptions.iter().enumerate() {
        if media.media.media_type != MediaType::Audio
            || media.media.port == 0
            || media.media.proto != TransportProtocol::RtpAvp
        {
            continue;
        }
        let clock_of = |pt: u8| media.rtpmap.iter().find(|m| m.payload == pt);
        let codec = media.media.fmts.iter().find_map(|&pt| match clock_of(pt) {
            Some(map) if map.clock_rate == 8000 => {
                G711::from_encoding_name(&map.encoding).filter(|c| c.payload_type() == pt)
            }
            Some(_) => None,
            None => G711::from_payload_type(pt),
        });
        let Some(codec) = codec else { continue };
        let event_payload_type = media.media.fmts.iter().copied().find(|&pt| {
            clock_of(pt)
                .is_some_and(|m| m.encoding.eq_ignore_ascii_case("telephone-event") && m.clock_rate == 8000)
        });
        let connection =
            media.connection.as_ref().or(offer.connection.as_ref()).ok_or(SdpError::NoAddress)?;
        let ip: IpAddr = match &connection.address {
            TaggedAddress::IP4(ip) => (*ip).into(),
            TaggedAddress::IP6(ip) => (*ip).into(),
            TaggedAddress::IP4FQDN(_) | TaggedAddress::IP6FQDN(_) => return Err(SdpError::NoAddress),
        };
        let offered = if media.direction == Direction::SendRecv { offer.direction } else { media.direction };
        return Ok(Negotiated {
            codec,
            event_payload_type,
            remote: SocketAddr::new(ip, media.media.port),
            direction: offered.flipped(),
            media_index: index,
            media_count: offer.media_descriptions.len(),
            media_types,
        });
    }
    Err(SdpError::NoCommonCodec)
}

/// Our SDP answer text for a negotiated stream, received on `local` (CRLF lines).
pub fn answer(negotiated: &Negotiated, local: SocketAddr, session_id: u64, version: u64) -> String {
    let family = if local.is_ipv4() { "IP4" } else { "IP6" };
    let ip = local.ip();
    let mut sdp = String::with_capacity(320);
    let _ = write!(sdp, "v=0\r\no=voicebotd {session_id} {version} IN {family} {ip}\r\ns=voicebotd\r\n");
    let _ = write!(sdp, "c=IN {family} {ip}\r\nt=0 0\r\n");
    for index in 0..negotiated.media_count {
        if index != negotiated.media_index {
            let kind = negotiated.media_types.get(index).copied().unwrap_or("audio");
            let _ = write!(sdp, "m={kind} 0 RTP/AVP 0\r\n");
            continue;
        }
        let pt = negotiated.codec.payload_type();
        let _ = write!(sdp, "m=audio {} RTP/AVP {pt}", local.port());
        if let Some(event) = negotiated.event_payload_type {
            let _ = write!(sdp, " {event}");
        }
        let _ = write!(sdp, "\r\na=rtpmap:{pt} {}/8000\r\n", negotiated.codec.encoding_name());
        if let Some(event) = negotiated.event_payload_type {
            let _ = write!(sdp, "a=rtpmap:{event} telephone-event/8000\r\na=fmtp:{event} 0-15\r\n");
        }
        let _ = write!(sdp, "a=ptime:20\r\na={}\r\n", negotiated.direction.as_str());
    }
    sdp
}

/// An SDP offer for an outgoing call leg, offering PCMU, PCMA and events (PT 101).
pub fn offer(local: SocketAddr, session_id: u64) -> String {
    let family = if local.is_ipv4() { "IP4" } else { "IP6" };
    let ip = local.ip();
    format!(
        "v=0\r\no=voicebotd {session_id} 1 IN {family} {ip}\r\ns=voicebotd\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
        local.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 9 8 0 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";

    #[test]
    fn the_offerers_first_g711_codec_and_its_event_type_are_chosen() {
        let n = negotiate(&parse(BARESIP_OFFER.as_bytes()).unwrap()).unwrap();
        assert_eq!(n.codec, G711::Pcma);
        assert_eq!(n.event_payload_type, Some(101));
        assert_eq!(n.remote, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(n.direction, Direction::SendRecv);
    }

    #[test]
    fn static_payload_types_without_rtpmap_are_understood() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n";
        let n = negotiate(&parse(offer.as_bytes()).unwrap()).unwrap();
        assert_eq!((n.codec, n.event_payload_type), (G711::Pcmu, None));
        assert_eq!(n.remote, "10.0.0.2:5004".parse().unwrap(), "media-level c= wins");
    }

    #[test]
    fn an_offer_without_g711_is_not_acceptable() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            m=audio 5004 RTP/AVP 9 111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(negotiate(&parse(offer.as_bytes()).unwrap()), Err(SdpError::NoCommonCodec));
        assert!(matches!(parse(b"\xff\xfe"), Err(SdpError::NotUtf8)));
    }

    #[test]
    fn the_answer_parses_and_mirrors_the_offer_shape() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            m=video 6000 RTP/AVP 31\r\nm=audio 5004 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
        let n = negotiate(&parse(offer.as_bytes()).unwrap()).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        let text = answer(&n, "192.0.2.7:30000".parse().unwrap(), 42, 1);
        let parsed = parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.media_descriptions.len(), 2);
        assert_eq!(parsed.media_descriptions[0].media.port, 0);
        let audio = &parsed.media_descriptions[1];
        assert_eq!((audio.media.port, audio.media.fmts.clone()), (30000, vec![0, 101]));
        assert_eq!(audio.direction, Direction::RecvOnly);
        // Our answer is itself an acceptable offer: negotiating it gives back our choice.
        let back = negotiate(&parsed).unwrap();
        assert_eq!((back.codec, back.event_payload_type), (G711::Pcmu, Some(101)));
    }

    #[test]
    fn our_offer_is_negotiable() {
        let text = offer("127.0.0.1:4000".parse().unwrap(), 7);
        let n = negotiate(&parse(text.as_bytes()).unwrap()).unwrap();
        assert_eq!((n.codec, n.event_payload_type), (G711::Pcmu, Some(101)));
    }
}
