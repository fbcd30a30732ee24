//! Counting the messages ezk drops before any of our layers sees them.
//!
//! ezk-sip-core 0.9.2 frames and parses every datagram and stream itself and
//! offers no hook on the raw bytes (see the README's known gaps), but it logs
//! one `log` record for each message it throws away. The daemon's logger hands
//! those records (as `tracing` events, through `tracing-log`) to [`note`],
//! which recognises them by target, level and the start of the message, and
//! counts them in one process-wide counter, [`unparseable`]. The version is
//! pinned exactly (`=0.9.2`), so the texts below are stable; a test checks each.
//!
//! What this counts is what ezk *reports*, per process (all user agents in it
//! together), and only while something feeds [`note`] (voicebotd's logging
//! does, whatever the log filter). Dropped without a report, so not counted:
//! - over UDP, a datagram shorter than 20 bytes (other than the CR LF
//!   keep-alives), or one whose head looks like STUN but is cut short: ezk's
//!   STUN check answers `TooShort` / `YesIncomplete` and the datagram is
//!   ignored silently;
//! - over UDP, a datagram that starts with an empty line (CR LF then more):
//!   ezk's line parser finds no start line and returns without a word;
//! - over TCP, whatever follows a malformed message on the same connection
//!   (ezk closes the connection; we count the one report), and a message head
//!   that panics ezk's stream decoder (the panic ends that connection's task).
//!
//! Reported but deliberately not counted: a response no transaction waits for
//! ("orphaned response": late retransmissions are normal), and a TCP header
//! line ezk cannot parse (ezk skips that header and delivers the message; if
//! it was a base header, the "base headers" report that follows is counted).

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::Level;

/// Why ezk dropped a message, as its log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unparseable {
    /// UDP: a STUN message (by its head) that does not parse.
    Stun,
    /// UDP: the head does not end in an empty line (or a line end is cut short).
    IncompleteHead,
    /// UDP: a head line that is not UTF-8.
    InvalidUtf8,
    /// UDP: a first line that is no request or status line ezk accepts
    /// (including a SIP version other than `SIP/2.0`).
    BadStartLine,
    /// UDP: a header line without a name and colon ezk accepts.
    BadHeaderLine,
    /// UDP: fewer body bytes than `Content-Length` says.
    IncompleteBody,
    /// UDP or TCP: no parseable Via, From, To, Call-ID or CSeq.
    NoBaseHeaders,
    /// UDP or TCP: base headers from which no transaction key follows.
    NoTransactionKey,
    /// TCP: a message ezk's stream decoder refuses (bad start line, bad
    /// `Content-Length`, not UTF-8); ezk closes the connection.
    StreamMalformed,
    /// TCP: a message over 64 KiB; ezk closes the connection.
    StreamTooLarge,
}

/// (target, level, message prefix) of each report, from ezk-sip-core 0.9.2's source.
const REPORTS: [(&str, Level, &str, Unparseable); 10] = [
    (PARSE, Level::WARN, "failed to parse complete stun message", Unparseable::Stun),
    (PARSE, Level::WARN, "Incoming SIP messages is incomplete", Unparseable::IncompleteHead),
    (
        PARSE,
        Level::WARN,
        "Incoming SIP message contained invalid UTF8 in header line",
        Unparseable::InvalidUtf8,
    ),
    (
        PARSE,
        Level::WARN,
        "Incoming SIP message contained invalid Request/Status Line",
        Unparseable::BadStartLine,
    ),
    (PARSE, Level::ERROR, "Incoming SIP message has malformed header line", Unparseable::BadHeaderLine),
    (PARSE, Level::WARN, "Incoming SIP message has an incomplete body", Unparseable::IncompleteBody),
    (ENDPOINT, Level::WARN, "Failed to get base headers for incoming message", Unparseable::NoBaseHeaders),
    (ENDPOINT, Level::WARN, "Failed to get tsx key for incoming message", Unparseable::NoTransactionKey),
    (
        STREAMING,
        Level::WARN,
        "An error occurred when reading stream receiving message is malformed",
        Unparseable::StreamMalformed,
    ),
    (
        STREAMING,
        Level::WARN,
        "An error occurred when reading stream receiving message is too large",
        Unparseable::StreamTooLarge,
    ),
];

/// `transport/parse.rs`: UDP framing (`parse_complete`).
const PARSE: &str = "ezk_sip_core::transport::parse";
/// `endpoint.rs`: `Endpoint::do_receive`, for both transports.
const ENDPOINT: &str = "ezk_sip_core::endpoint";
/// `transport/streaming/mod.rs`: the TCP receive loop, on a decoder error.
const STREAMING: &str = "ezk_sip_core::transport::streaming";

/// The crate whose reports [`recognise`] knows: a logging filter that lets
/// `WARN` and above from this target through is enough.
pub const TARGET: &str = "ezk_sip_core";

static UNPARSEABLE: AtomicU64 = AtomicU64::new(0);

/// Whether a log event is ezk reporting a message it dropped, and why.
///
/// `target` is the `log` record's target (ezk's module path), `message` its text.
pub fn recognise(target: &str, level: Level, message: &str) -> Option<Unparseable> {
    REPORTS
        .iter()
        .find(|(t, l, prefix, _)| *t == target && *l == level && message.starts_with(prefix))
        .map(|(.., kind)| *kind)
}

/// Counts the event in [`unparseable`] when [`recognise`] knows it.
pub fn note(target: &str, level: Level, message: &str) -> Option<Unparseable> {
    let kind = recognise(target, level, message)?;
    UNPARSEABLE.fetch_add(1, Ordering::Relaxed);
    Some(kind)
}

/// Messages ezk reported dropping since the process started (see the module docs
/// for what it cannot see).
pub fn unparseable() -> u64 {
    UNPARSEABLE.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each report as ezk-sip-core 0.9.2 formats it (the arguments are examples).
    const SAMPLES: [(&str, Level, &str, Unparseable); 10] = [
        (PARSE, Level::WARN, "failed to parse complete stun message, invalid attribute", Unparseable::Stun),
        (PARSE, Level::WARN, "Incoming SIP messages is incomplete", Unparseable::IncompleteHead),
        (
            PARSE,
            Level::WARN,
            "Incoming SIP message contained invalid UTF8 in header line",
            Unparseable::InvalidUtf8,
        ),
        (
            PARSE,
            Level::WARN,
            "Incoming SIP message contained invalid Request/Status Line: \"OPTIONS sip:x SIP/7.0\"",
            Unparseable::BadStartLine,
        ),
        (
            PARSE,
            Level::ERROR,
            "Incoming SIP message has malformed header line, Parsing Error: Error { input: \"x\" }",
            Unparseable::BadHeaderLine,
        ),
        (PARSE, Level::WARN, "Incoming SIP message has an incomplete body", Unparseable::IncompleteBody),
        (
            ENDPOINT,
            Level::WARN,
            "Failed to get base headers for incoming message, missing header Call-ID",
            Unparseable::NoBaseHeaders,
        ),
        (
            ENDPOINT,
            Level::WARN,
            "Failed to get tsx key for incoming message, invalid CSeq",
            Unparseable::NoTransactionKey,
        ),
        (
            STREAMING,
            Level::WARN,
            "An error occurred when reading stream receiving message is malformed",
            Unparseable::StreamMalformed,
        ),
        (
            STREAMING,
            Level::WARN,
            "An error occurred when reading stream receiving message is too large",
            Unparseable::StreamTooLarge,
        ),
    ];

    #[test]
    fn each_drop_report_of_ezk_is_recognised() {
        for (target, level, message, kind) in SAMPLES {
            assert_eq!(recognise(target, level, message), Some(kind), "{message}");
        }
    }

    #[test]
    fn the_same_text_from_another_module_or_level_is_not_a_drop() {
        for (target, level, message, _) in SAMPLES {
            assert_eq!(recognise("voicebot_sip::agent", level, message), None, "{message}");
            let other = if level == Level::WARN { Level::ERROR } else { Level::WARN };
            assert_eq!(recognise(target, other, message), None, "{message}");
        }
        // The TCP decoder logs this, skips the header and still delivers the message.
        let decoder = "ezk_sip_core::transport::streaming::decode";
        let skipped = "Incoming SIP message has malformed header line, Parsing Error";
        assert_eq!(recognise(decoder, Level::ERROR, skipped), None);
    }

    #[test]
    fn reports_that_are_not_garbage_are_not_counted() {
        let endpoint = [
            "the received message is an orphaned response",
            "No layer handled the request",
            "Failed to respond to unhandled incoming request, Io(..)",
        ];
        for message in endpoint {
            assert_eq!(recognise(ENDPOINT, Level::WARN, message), None, "{message}");
            assert_eq!(recognise(ENDPOINT, Level::ERROR, message), None, "{message}");
        }
        // A connection reset is not garbage.
        let reset = "An error occurred when reading stream Connection reset by peer (os error 104)";
        assert_eq!(recognise(STREAMING, Level::WARN, reset), None);
        assert_eq!(recognise("ezk_sip_core::transport::udp", Level::ERROR, "UDP recv error Os"), None);
    }

    #[test]
    fn noting_a_report_counts_it_and_noting_anything_else_does_not() {
        // The counter is process-wide: other tests may add to it meanwhile, never subtract.
        let before = unparseable();
        assert_eq!(
            note(ENDPOINT, Level::WARN, "Failed to get base headers for incoming message, x"),
            Some(Unparseable::NoBaseHeaders)
        );
        assert!(unparseable() > before);
        assert_eq!(note(ENDPOINT, Level::WARN, "the received message is an orphaned response"), None);
    }
}
