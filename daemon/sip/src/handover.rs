//! What the SIP side carries when a caller is handed to a human, sans-IO.
//!
//! Conventions of contact centres (Genesys, Amazon Connect, FreeSWITCH, Asterisk):
//! - the ticket id travels in a `User-to-User` header (RFC 7433) embedded in the
//!   REFER's `Refer-To` URI, hex-encoded, `;encoding=hex;purpose=<configured>`, the
//!   whole value under 128 characters, so the transferee's INVITE to the agent
//!   carries it;
//! - `X-Ticket-Id`, `X-Intent`, `X-Emotion`, `X-Escalation-Reason` and `X-Priority`
//!   go on the REFER (and on a bridged INVITE) as plain headers.
//!
//! Never the transcript: only the key. Header values are cleaned to visible ASCII
//! (no CR/LF injection) and capped in length.
//!
//! NOTIFY progress comes as `message/sipfrag` (RFC 3515 §2.4.5): [`sipfrag_status`]
//! reads its status line.

use std::fmt::Write as _;

/// The ticket facts a transfer carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handover {
    /// The ticket's key: published with the full ticket before the transfer.
    pub ticket_id: String,
    pub intent: String,
    pub emotion: String,
    pub escalation_reason: String,
    pub priority: String,
    /// Picks the agent queue (`[sip.skill_queues]`); `None`: the default queue.
    pub skill_group: Option<String>,
}

/// Why a handover cannot be expressed in SIP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoverError {
    #[error(
        "ticket id {id:?} makes a User-to-User value of {len} characters; RFC 7433 users here need it under 128"
    )]
    TicketIdTooLong { id: String, len: usize },
    #[error("ticket id is empty")]
    EmptyTicketId,
    #[error("agent queue {0:?} is not a sip:/sips: URI")]
    BadQueueUri(String),
}

/// Longest X-header value we send.
const MAX_X_VALUE: usize = 64;

/// The `User-to-User` value for a ticket id: `<hex>;encoding=hex;purpose=<purpose>`.
///
/// # Errors
/// An empty id, or one whose value would reach 128 characters.
pub fn user_to_user(ticket_id: &str, purpose: &str) -> Result<String, HandoverError> {
    if ticket_id.is_empty() {
        return Err(HandoverError::EmptyTicketId);
    }
    let mut value = String::with_capacity(ticket_id.len() * 2 + 32);
    for byte in ticket_id.bytes() {
        let _ = write!(value, "{byte:02x}");
    }
    let _ = write!(value, ";encoding=hex;purpose={purpose}");
    if value.len() >= 128 {
        return Err(HandoverError::TicketIdTooLong { id: ticket_id.to_owned(), len: value.len() });
    }
    Ok(value)
}

/// Decodes the ticket id from a `User-to-User` value (for tests and agents' tools).
pub fn ticket_id_from_user_to_user(value: &str) -> Option<String> {
    let hex = value.split(';').next()?.trim();
    if !value.split(';').any(|p| p.trim().eq_ignore_ascii_case("encoding=hex")) || hex.len() % 2 == 1 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// Percent-encodes a URI header value (RFC 3261 §25.1 `hvalue`): unreserved and
/// `[ ] / ? : + $` stay, everything else (notably `;`, `=`, `&`, `%`) is escaped.
fn escape_hvalue(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The `Refer-To` header value: the queue URI in angle brackets with the
/// User-to-User header embedded (`<sip:q@h?User-to-User=...>`).
///
/// # Errors
/// A queue that is not a SIP URI or already carries URI headers.
pub fn refer_to(queue_uri: &str, user_to_user: &str) -> Result<String, HandoverError> {
    let uri = queue_uri.trim();
    let is_sip = uri.starts_with("sip:") || uri.starts_with("sips:");
    if !is_sip || uri.contains(['?', '<', '>', ' ']) {
        return Err(HandoverError::BadQueueUri(queue_uri.to_owned()));
    }
    Ok(format!("<{uri}?User-to-User={}>", escape_hvalue(user_to_user)))
}

/// A header value made safe: visible ASCII and spaces only, trimmed, capped.
fn clean(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' })
        .take(MAX_X_VALUE)
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() { "-".to_owned() } else { trimmed.to_owned() }
}

/// The X- headers, in a fixed order.
pub fn x_headers(handover: &Handover) -> [(&'static str, String); 5] {
    [
        ("X-Ticket-Id", clean(&handover.ticket_id)),
        ("X-Intent", clean(&handover.intent)),
        ("X-Emotion", clean(&handover.emotion)),
        ("X-Escalation-Reason", clean(&handover.escalation_reason)),
        ("X-Priority", clean(&handover.priority)),
    ]
}

/// The status code of a `message/sipfrag` body's first line (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts.next()?.parse().ok().filter(|code| (100..700).contains(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ezk_sip_types::header::typed::ReferTo;
    use ezk_sip_types::{Headers, Name};

    #[test]
    fn user_to_user_is_hex_with_encoding_and_purpose() {
        let value = user_to_user("T-42", "voicebot-ticket").unwrap();
        assert_eq!(value, "542d3432;encoding=hex;purpose=voicebot-ticket");
        assert_eq!(ticket_id_from_user_to_user(&value).as_deref(), Some("T-42"));
    }

    #[test]
    fn a_ulid_ticket_id_fits_and_an_overlong_one_is_refused() {
        let ulid = "01JD8X6W7K9V4E2R3T5Y6U7I8O";
        assert!(user_to_user(ulid, "voicebot-ticket").unwrap().len() < 128);
        let long = "x".repeat(60);
        assert!(matches!(user_to_user(&long, "voicebot-ticket"), Err(HandoverError::TicketIdTooLong { .. })));
        assert_eq!(user_to_user("", "p"), Err(HandoverError::EmptyTicketId));
    }

    #[test]
    fn refer_to_embeds_the_escaped_header_and_ezk_reads_it_back() {
        let uui = user_to_user("T-7", "voicebot-ticket").unwrap();
        let value = refer_to("sip:agents@127.0.0.1:5070", &uui).unwrap();
        assert_eq!(
            value,
            "<sip:agents@127.0.0.1:5070?User-to-User=542d37%3Bencoding%3Dhex%3Bpurpose%3Dvoicebot-ticket>"
        );
        let mut headers = Headers::new();
        headers.insert(Name::REFER_TO, value);
        let parsed: ReferTo = headers.get_named().unwrap();
        let embedded = parsed.uri.uri.header_params.get_val("User-to-User").expect("header param");
        assert_eq!(embedded.as_ref(), uui, "ezk percent-decodes the embedded header");
        assert!(refer_to("agents@host", &uui).is_err());
        assert!(refer_to("sip:a@h?X=1", &uui).is_err());
    }

    #[test]
    fn x_headers_are_cleaned_of_line_breaks_and_capped() {
        let handover = Handover {
            ticket_id: "T-1".into(),
            intent: "refund\r\nEvil: 1".into(),
            emotion: String::new(),
            escalation_reason: "x".repeat(200),
            priority: "high".into(),
            skill_group: None,
        };
        let headers = x_headers(&handover);
        assert_eq!(headers[0], ("X-Ticket-Id", "T-1".to_owned()));
        assert_eq!(headers[1].1, "refund__Evil: 1");
        assert_eq!(headers[2].1, "-");
        assert_eq!(headers[3].1.len(), MAX_X_VALUE);
    }

    #[test]
    fn sipfrag_status_lines_are_read() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(sipfrag_status(b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n"), Some(486));
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"\xff"), None);
    }
}
