//! Fuzzes the SIP parser entry points: any bytes must give a verdict, never a panic.
//!
//! Two stages run on every input, as on every datagram the daemon receives:
//! 1. ezk's framing (ezk-sip-core 0.9.2 `transport/parse.rs`, `parse_complete`),
//!    which runs inside ezk's single UDP receive task, so a panic there would end
//!    the UDP listener. It is crate-private, so this replays its public calls in
//!    the same order: the STUN check and parse (ezk-stun-types), then
//!    `PullParser`, `MessageLine::parse`, `Line::parse`, `Content-Length`
//!    (ezk-sip-types).
//! 2. Our checker, [`voicebot_sip::wire::inspect`] (which also runs ezk's typed
//!    Via/From/To/Call-ID/CSeq/Contact/Require parsers), and the SDP offer/answer.
#![no_main]

use bytes::Bytes;
use ezk_sip_types::Headers;
use ezk_sip_types::header::typed::ContentLength;
use ezk_sip_types::msg::{Line, MessageLine, PullParser};
use ezk_sip_types::parse::Parse;
use libfuzzer_sys::fuzz_target;
use stun_types::IsStunMessageInfo;

fn ezk_framing(data: &[u8]) {
    if data == b"\r\n\r\n" || data == b"\r\n" {
        return;
    }
    match stun_types::is_stun_message(data) {
        IsStunMessageInfo::TooShort | IsStunMessageInfo::YesIncomplete { .. } => return,
        IsStunMessageInfo::Yes { len } => {
            let _ = stun_types::Message::parse(&data[..len]);
            return;
        }
        IsStunMessageInfo::No => {}
    }
    let buffer = Bytes::copy_from_slice(data);
    let mut parser = PullParser::new(&buffer, 0);
    let mut headers = Headers::new();
    let mut first = true;
    for line in &mut parser {
        let Ok(line) = line else { return };
        let Ok(line) = std::str::from_utf8(line) else { return };
        if first {
            if MessageLine::parse(&buffer)(line).is_err() {
                return;
            }
            first = false;
        } else {
            match Line::parse(&buffer, line) {
                Ok((_, line)) => headers.insert(line.name, line.value),
                Err(_) => return,
            }
        }
    }
    let head_end = parser.head_end();
    if let Ok(len) = headers.get_named::<ContentLength>()
        && len.0 > 0
        && buffer.len() >= head_end + len.0
    {
        let _ = buffer.slice(head_end..head_end + len.0);
    }
}

fuzz_target!(|data: &[u8]| {
    ezk_framing(data);
    let _ = voicebot_sip::wire::inspect(data);
    let _ = voicebot_sip::sdp::parse(data).map(|offer| voicebot_sip::sdp::negotiate(&offer));
});
