//! The SIP parser entry point: one raw message in, one [`Verdict`] out.
//!
//! ezk's transport frames and parses messages leniently, as a stack should. This
//! module applies RFC 3261's syntax and the checks RFC 4475 asks of a UAS on top,
//! so every request that reaches our code is either well-formed or answered with
//! the right 4xx/5xx. It is pure (bytes in, verdict out), never panics, and is
//! the target of the fuzzer in `fuzz/` and of the RFC 4475 torture test.
//!
//! A verdict is one of:
//! - [`Verdict::Accept`]: well-formed; process normally.
//! - [`Verdict::Reject`]: a request whose Via, From, To, Call-ID and CSeq parse, so
//!   it can be answered, but which breaks a rule: answer with the status given.
//! - [`Verdict::Drop`]: garbage that cannot be answered: drop and count it.

use bytes::Bytes;
use ezk_sip_types::header::typed::{CSeq, CallID, Contact, FromTo, Require, Via};
use ezk_sip_types::msg::{Line, PullParser};
use ezk_sip_types::parse::Parse;
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Headers, Name};

/// Option tags we support in `Require` (what ezk's INVITE layer implements).
pub const SUPPORTED_EXTENSIONS: [&str; 2] = ["100rel", "timer"];

/// What to do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept(Kind),
    Reject(Rejection),
    Drop(String),
}

/// What an accepted message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Request { method: String },
    Response { code: u16 },
    KeepAlive,
}

/// The answer to a request that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    /// Reason phrase, saying which rule.
    pub reason: String,
    /// For 420: the option tags we do not support (the `Unsupported` header).
    pub unsupported: Vec<String>,
}

impl Rejection {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Rejection { status, reason: reason.into(), unsupported: Vec::new() }
    }
}

/// Headers that may appear at most once in a message.
const SINGLE: [(Name, &str); 7] = [
    (Name::FROM, "From"),
    (Name::TO, "To"),
    (Name::CALL_ID, "Call-ID"),
    (Name::CSEQ, "CSeq"),
    (Name::MAX_FORWARDS, "Max-Forwards"),
    (Name::CONTENT_LENGTH, "Content-Length"),
    (Name::CONTENT_TYPE, "Content-Type"),
];

/// Inspects one complete message (one UDP datagram, or one framed TCP message).
pub fn inspect(message: &[u8]) -> Verdict {
    if message == b"\r\n\r\n" || message == b"\r\n" {
        return Verdict::Accept(Kind::KeepAlive);
    }
    let buffer = Bytes::copy_from_slice(message);
    let mut parser = PullParser::new(&buffer, 0);
    let mut first: Option<&str> = None;
    let mut headers = Headers::new();
    for line in &mut parser {
        let Ok(line) = line else { return Verdict::Drop("message head is incomplete".into()) };
        let Ok(line) = std::str::from_utf8(line) else {
            return Verdict::Drop("header line is not UTF-8".into());
        };
        if first.is_none() {
            first = Some(line);
            continue;
        }
        match Line::parse(&buffer, line) {
            Ok((_, line)) if !line.name.as_print_str().is_empty() => headers.insert(line.name, line.value),
            _ => return Verdict::Drop(format!("malformed header line {:?}", truncate(line))),
        }
    }
    let Some(first) = first else { return Verdict::Drop("empty message".into()) };
    let body_len = buffer.len() - parser.head_end();
    match start_line(first) {
        StartLine::Response(code) => match base_headers(&headers) {
            Ok(_) => Verdict::Accept(Kind::Response { code }),
            Err(problem) => Verdict::Drop(format!("response {code}: {problem}")),
        },
        StartLine::Garbage(problem) => Verdict::Drop(problem),
        StartLine::Request { method, uri, version } => {
            let base = match base_headers(&headers) {
                Ok(base) => base,
                Err(problem) => return Verdict::Drop(format!("{method} request: {problem}")),
            };
            match check_request(&method, uri, version, &headers, &base, body_len) {
                Ok(()) => Verdict::Accept(Kind::Request { method }),
                Err(rejection) => Verdict::Reject(rejection),
            }
        }
    }
}

fn truncate(s: &str) -> &str {
    s.get(..60).unwrap_or(s)
}

enum StartLine<'a> {
    Request { method: String, uri: Uri<'a>, version: Version },
    Response(u16),
    Garbage(String),
}

enum Uri<'a> {
    Sip(&'a str),
    /// A syntactically valid absolute URI with another scheme.
    Other(&'a str),
    Invalid(&'a str),
}

#[derive(PartialEq)]
enum Version {
    Sip20,
    Other,
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
}

fn version_of(text: &str) -> Option<Version> {
    let numbers = text.strip_prefix("SIP/").or_else(|| text.strip_prefix("sip/"))?;
    let (major, minor) = numbers.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    (digits(major) && digits(minor)).then(|| if numbers == "2.0" { Version::Sip20 } else { Version::Other })
}

/// RFC 3261 §7.1/§7.2: exactly single spaces, no leading or trailing whitespace.
fn start_line(line: &str) -> StartLine<'_> {
    let parts: Vec<&str> = line.split(' ').collect();
    if let Some(version) = parts.first().and_then(|p| version_of(p)) {
        let code = parts.get(1).filter(|c| c.len() == 3).and_then(|c| c.parse::<u16>().ok());
        return match (version, code) {
            (Version::Sip20, Some(code @ 100..=699)) if parts.len() >= 2 => StartLine::Response(code),
            _ => StartLine::Garbage(format!("bad status line {:?}", truncate(line))),
        };
    }
    let [method, uri, version] = parts[..] else {
        return StartLine::Garbage(format!(
            "request line is not `METHOD SP URI SP SIP/2.0`: {:?}",
            truncate(line)
        ));
    };
    if !is_token(method) {
        return StartLine::Garbage(format!("method {:?} is not a token", truncate(method)));
    }
    let Some(version) = version_of(version) else {
        return StartLine::Garbage(format!("bad SIP version in {:?}", truncate(line)));
    };
    let uri = match uri.split_once(':') {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") => {
            Uri::Sip(uri)
        }
        Some((scheme, rest))
            if !rest.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            Uri::Other(uri)
        }
        _ => Uri::Invalid(uri),
    };
    StartLine::Request { method: method.to_owned(), uri, version }
}

struct Base {
    cseq: CSeq,
}

/// Via, From, To, Call-ID and CSeq: without them no response can be built.
fn base_headers(headers: &Headers) -> Result<Base, String> {
    let vias: Vec<Via> = headers.get_named().map_err(|e| format!("Via: {e}"))?;
    if vias.is_empty() {
        return Err("no Via".into());
    }
    headers.get::<FromTo>(Name::FROM).map_err(|e| format!("From: {e}"))?;
    headers.get::<FromTo>(Name::TO).map_err(|e| format!("To: {e}"))?;
    headers.get_named::<CallID>().map_err(|e| format!("Call-ID: {e}"))?;
    let cseq = headers.get_named::<CSeq>().map_err(|e| format!("CSeq: {e}"))?;
    Ok(Base { cseq })
}

fn single_value<'h>(headers: &'h Headers, name: &Name) -> Option<&'h str> {
    headers.get_raw(name).next().map(|v| v.as_ref())
}

fn check_request(
    method: &str,
    uri: Uri<'_>,
    version: Version,
    headers: &Headers,
    base: &Base,
    body_len: usize,
) -> Result<(), Rejection> {
    let bad = |reason: String| Rejection::new(400, reason);
    for (name, print) in &SINGLE {
        if headers.get_raw(name).count() > 1 {
            return Err(bad(format!("{print} appears more than once")));
        }
    }
    if base.cseq.cseq >= 1 << 31 {
        return Err(bad("CSeq number is 2^31 or more".into()));
    }
    if base.cseq.method.to_string() != method {
        return Err(bad(format!("CSeq method {} does not match {method}", base.cseq.method)));
    }
    if let Some(value) = single_value(headers, &Name::MAX_FORWARDS)
        && value.trim().parse::<u8>().is_err()
    {
        return Err(bad(format!("Max-Forwards {:?} is not 0-255", truncate(value))));
    }
    if let Some(value) = single_value(headers, &Name::CONTENT_LENGTH) {
        match value.trim().parse::<usize>() {
            Ok(len) if len <= body_len => {}
            Ok(len) => return Err(bad(format!("Content-Length {len} exceeds the {body_len}-byte body"))),
            Err(_) => return Err(bad(format!("Content-Length {:?} is not a length", truncate(value)))),
        }
    }
    if let Some(value) = single_value(headers, &Name::EXPIRES)
        && value.trim().parse::<u32>().is_err()
    {
        return Err(bad(format!("Expires {:?} is not delta-seconds", truncate(value))));
    }
    for date in headers.get_raw(&Name::DATE) {
        if !date.trim_end().ends_with("GMT") {
            return Err(bad("Date is not in GMT (RFC 3261 §20.17)".into()));
        }
    }
    for name in [Name::FROM, Name::TO] {
        if let Some(value) = single_value(headers, &name) {
            check_name_addr(value).map_err(|problem| bad(format!("{}: {problem}", name.as_print_str())))?;
        }
    }
    for value in headers.get_raw(&Name::VIA) {
        for via in split_outside_quotes(value, ',') {
            if via.trim().is_empty() || has_empty_param(via) {
                return Err(bad("Via has an empty value or parameter".into()));
            }
        }
    }
    for value in headers.get_raw(&Name::CONTACT) {
        if value.trim() == "*" {
            continue;
        }
        for contact in split_outside_quotes(value, ',') {
            check_name_addr(contact).map_err(|problem| bad(format!("Contact: {problem}")))?;
            if has_empty_param(contact) {
                return Err(bad("Contact has an empty parameter".into()));
            }
        }
    }
    if headers.contains(&Name::CONTACT) && !headers.get_raw(&Name::CONTACT).any(|v| v.trim() == "*") {
        headers.get_named::<Vec<Contact>>().map_err(|e| bad(format!("Contact: {e}")))?;
    }
    let sip_uri = match uri {
        Uri::Invalid(text) => return Err(bad(format!("Request-URI {:?} is not a URI", truncate(text)))),
        Uri::Other(text) => {
            return Err(Rejection::new(416, format!("Unsupported URI Scheme in {:?}", truncate(text))));
        }
        Uri::Sip(text) => text,
    };
    SipUri::parse_str(sip_uri)
        .map_err(|_| bad(format!("Request-URI {:?} does not parse", truncate(sip_uri))))?;
    // `?` may appear in the user part; headers begin at a `?` after the host.
    let host_part = sip_uri.rsplit_once('@').map_or(sip_uri, |(_, host)| host);
    if host_part.contains('?') {
        return Err(bad("Request-URI must not carry headers (RFC 3261 §19.1.5)".into()));
    }
    if version == Version::Other {
        return Err(Rejection::new(505, "Version Not Supported"));
    }
    if !matches!(method, "ACK" | "CANCEL") {
        let required: Vec<Require> = headers.get_named().unwrap_or_default();
        let unsupported: Vec<String> = required
            .iter()
            .map(|r| r.0.to_string())
            .filter(|tag| !SUPPORTED_EXTENSIONS.contains(&tag.as_str()))
            .collect();
        if !unsupported.is_empty() {
            return Err(Rejection { status: 420, reason: "Bad Extension".into(), unsupported });
        }
    }
    if method == "INVITE" {
        if let Some(content_type) = single_value(headers, &Name::CONTENT_TYPE)
            && body_len > 0
            && !media_type(content_type).eq_ignore_ascii_case("application/sdp")
        {
            return Err(Rejection::new(415, "Unsupported Media Type"));
        }
        let accepts: Vec<&str> =
            headers.get_raw(&Name::ACCEPT).flat_map(|v| v.split(',')).map(media_type).collect();
        let takes_sdp = |t: &&str| {
            ["application/sdp", "application/*", "*/*"].iter().any(|ok| t.eq_ignore_ascii_case(ok))
        };
        if !accepts.is_empty() && !accepts.iter().any(takes_sdp) {
            return Err(Rejection::new(406, "Not Acceptable: we answer with application/sdp"));
        }
    }
    Ok(())
}

/// Whether a header value's parameters (after any `<...>`) include an empty one (`;;`).
fn has_empty_param(value: &str) -> bool {
    let params = value.rfind('>').map_or(value, |close| &value[close + 1..]);
    let params = if value.contains('>') { params } else { params.split_once(';').map_or("", |(_, p)| p) };
    let params = params.trim();
    let params = params.strip_prefix(';').unwrap_or(params);
    !params.is_empty() && split_outside_quotes(params, ';').iter().any(|p| p.trim().is_empty())
}

fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

/// Splits at `sep` outside double quotes and angle brackets.
fn split_outside_quotes(value: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut angle, mut escaped) = (Vec::new(), 0, false, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            c if c == sep && !quoted && !angle => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// RFC 3261 §20.10/§25.1 name-addr / addr-spec rules ezk's parser is lenient about:
/// balanced quotes, token-only unquoted display names, no spaces inside `<...>`,
/// and no `?headers`, `,` or `;` inside a bare addr-spec's URI.
fn check_name_addr(value: &str) -> Result<(), &'static str> {
    let value = value.trim();
    let quotes = value.matches('"').count().saturating_sub(value.matches("\\\"").count());
    if quotes % 2 == 1 {
        return Err("unbalanced quotes");
    }
    match value.find('<') {
        Some(open) if !value[..open].contains('"') || value[..open].trim_end().ends_with('"') => {
            let display = value[..open].trim();
            if !display.starts_with('"') && !display.split_whitespace().all(is_token) {
                return Err("display name with non-token characters must be quoted");
            }
            let Some(close) = value[open..].find('>') else { return Err("unterminated <") };
            let inner = &value[open + 1..open + close];
            if inner.starts_with(char::is_whitespace) || inner.ends_with(char::is_whitespace) {
                return Err("whitespace inside <>");
            }
            Ok(())
        }
        Some(_) => Ok(()), // '<' inside a quoted display name
        None => {
            let uri = value.split(';').next().unwrap_or("");
            if uri.contains('?') {
                return Err("a URI with headers must be enclosed in <>");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n\
        From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: x1\r\nCSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    fn with(replace: &str, by: &str) -> Vec<u8> {
        OPTIONS.replace(replace, by).into_bytes()
    }

    fn status(verdict: Verdict) -> Option<u16> {
        match verdict {
            Verdict::Reject(r) => Some(r.status),
            _ => None,
        }
    }

    #[test]
    fn a_plain_options_and_a_keepalive_are_accepted() {
        assert_eq!(inspect(OPTIONS.as_bytes()), Verdict::Accept(Kind::Request { method: "OPTIONS".into() }));
        assert_eq!(inspect(b"\r\n\r\n"), Verdict::Accept(Kind::KeepAlive));
    }

    #[test]
    fn answerable_violations_get_their_status() {
        assert_eq!(status(inspect(&with("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"))), Some(400));
        assert_eq!(status(inspect(&with("Max-Forwards: 70", "Max-Forwards: 300"))), Some(400));
        assert_eq!(status(inspect(&with("Content-Length: 0", "Content-Length: 10"))), Some(400));
        assert_eq!(status(inspect(&with("Call-ID: x1", "Call-ID: x1\r\nCall-ID: x2"))), Some(400));
        assert_eq!(status(inspect(&with("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"))), Some(505));
        assert_eq!(status(inspect(&with("OPTIONS sip:bot", "OPTIONS tel:+1555"))), Some(416));
        let Verdict::Reject(r) = inspect(&with("Max-Forwards", "Require: foo, timer\r\nMax-Forwards")) else {
            panic!("Require: foo must be rejected")
        };
        assert_eq!((r.status, r.unsupported), (420, vec!["foo".to_owned()]));
    }

    #[test]
    fn unanswerable_garbage_is_dropped() {
        for garbage in [&b""[..], b"hello", b"\x00\x01\x02\r\n\r\n", b"SIP/2.0 99999 x\r\n\r\n"] {
            assert!(matches!(inspect(garbage), Verdict::Drop(_)), "{garbage:?}");
        }
        assert!(matches!(inspect(&with("Call-ID: x1\r\n", "")), Verdict::Drop(_)), "no Call-ID: no response");
    }

    #[test]
    fn every_prefix_of_a_valid_message_is_handled_without_panic() {
        let invite =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/sip-torture/esc01.dat"))
                .unwrap_or_else(|_| OPTIONS.as_bytes().to_vec());
        for len in 0..invite.len() {
            let _ = inspect(&invite[..len]);
        }
    }
}
