//! RFC 4475 torture messages through the parser entry point ([`voicebot_sip::wire::inspect`]).
//!
//! Every file in `tests/fixtures/sip-torture/` (copied from ../shared, MIT, see its README) has an expected verdict here, taken from
//! the RFC's text for that message; a file without one fails the test, so a new
//! fixture cannot slip through unjudged.

use std::path::PathBuf;

use ezk_sip_types::msg::MessageLine;
use ezk_sip_types::parse::Parse;
use voicebot_sip::wire::{Kind, Verdict, inspect};

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// §3.1.1 and the well-formed §3.2-3.4 messages: parsed and processed.
    Valid,
    /// Answered with exactly this status.
    Status(u16),
    /// §3.1.2: rejected — answered 400 where the message allows an answer, else dropped.
    Invalid,
}

fn expected(file: &str) -> Option<Expect> {
    use Expect::*;
    Some(match file {
        // 3.1.1 valid messages
        "wsinv" | "intmeth" | "esc01" | "escnull" | "esc02" | "lwsdisp" | "longreq" | "dblreq"
        | "semiuri" | "transports" | "mpart01" | "unreason" | "noreason" => Valid,
        // 3.1.2 invalid messages
        "badinv01" | "clerr" | "ncl" | "scalar02" | "scalarlg" | "quotbal" | "ltgtruri" | "lwsruri"
        | "lwsstart" | "trws" | "escruri" | "baddate" | "regbadct" | "badaspec" | "baddn" | "mismatch01"
        | "mismatch02" | "bigcode" => Invalid,
        "badvers" => Status(505),
        // 3.2 transaction layer: a bare magic-cookie branch is still a valid message.
        "badbranch" => Valid,
        // 3.3 application layer
        "insuf" => Invalid, // no Call-ID/From/To: 400 if answerable, which it is not
        "unkscm" | "novelsc" => Status(416),
        "unksm2" => Invalid, // From/To with non-SIP schemes: processed by the RFC, see README
        "bext01" => Status(420),
        "invut" => Status(415),
        "regaut01" | "cparam01" | "cparam02" | "regescrt" => Valid,
        "multi01" | "mcl01" => Status(400),
        "bcast" => Valid,
        "zeromf" => Valid, // a UAS processes Max-Forwards: 0
        "sdp01" => Status(406),
        // 3.4 RFC 2543 compatibility
        "inv2543" => Valid,
        _ => return None,
    })
}

/// Messages that never reach our checker on the live path: ezk drops them before
/// any layer, and ezk-sip-core 0.9.2 has no hook to see a message's bytes first
/// (see the README's known gaps). Kept explicit so the deviation is visible and
/// re-checked; [`each_deviation_is_only_the_documented_cause`] pins the cause.
const KNOWN_DEVIATIONS: [(&str, &str); 2] = [
    (
        "wsinv",
        "valid, but ezk's quoted-string parser rejects the From display name `\"J Rosenberg \\\\\\\"\"` \
         (an escaped backslash before an escaped quote), so ezk drops it (`Endpoint::do_receive`, base headers); \
         line folding is not the cause: ezk's `PullParser` keeps folded lines whole and its parsers take CRLF SP as whitespace",
    ),
    (
        "badvers",
        "should get 505, but ezk's request-line parser only takes `SIP/2.0` (ezk-sip-types `RequestLine::parse`), \
         so ezk's transport drops it before any layer (UDP: `parse_complete_sip`; TCP: the decoder closes the connection)",
    ),
];

#[test]
fn every_torture_message_gets_the_rfc_4475_verdict() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sip-torture");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("torture fixtures at {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 49, "RFC 4475 has 49 torture messages");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let bytes = std::fs::read(path).unwrap();
        let verdict = inspect(&bytes);
        let Some(expect) = expected(&name) else {
            failures.push(format!("{name}: no expected verdict (got {verdict:?})"));
            continue;
        };
        if let Some((_, why)) = KNOWN_DEVIATIONS.iter().find(|(file, _)| *file == name) {
            // Still deviating the documented way? (If ezk fixes it, this fails: update the list.)
            if !matches!(verdict, Verdict::Drop(_)) {
                failures.push(format!("{name}: listed as a known deviation ({why}) but got {verdict:?}"));
            }
            continue;
        }
        let ok = match (expect, &verdict) {
            (Expect::Valid, Verdict::Accept(Kind::Request { .. } | Kind::Response { .. })) => true,
            (Expect::Status(code), Verdict::Reject(r)) => r.status == code,
            (Expect::Invalid, Verdict::Reject(r)) => r.status == 400,
            (Expect::Invalid, Verdict::Drop(_)) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: expected {expect:?}, got {verdict:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} wrong:\n{}", failures.len(), files.len(), failures.join("\n"));
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../tests/fixtures/sip-torture/{name}.dat"));
    String::from_utf8(std::fs::read(&path).unwrap()).unwrap()
}

/// The deviations are exactly what `KNOWN_DEVIATIONS` says, and our checker gives the
/// RFC's verdict once the cause is out of the way: if ezk ever hands us these
/// messages (or gets a raw-bytes hook), nothing else stands in the way.
#[test]
fn each_deviation_is_only_the_documented_cause() {
    let wsinv = fixture("wsinv");
    let unfolded = wsinv.replace("\r\n ", " ").replace("\r\n\t", " ");
    assert!(matches!(inspect(unfolded.as_bytes()), Verdict::Drop(_)), "unfolding alone does not help");
    let plain_name = wsinv.replace(r#""J Rosenberg \\\"""#, r#""J Rosenberg""#);
    assert_ne!(plain_name, wsinv, "the display name is in the fixture");
    assert_eq!(inspect(plain_name.as_bytes()), Verdict::Accept(Kind::Request { method: "INVITE".into() }));

    let badvers = fixture("badvers");
    // On the live path ezk's transport drops it at the request line, before any header.
    let buffer = bytes::Bytes::from(badvers.clone());
    let request_line = std::str::from_utf8(&buffer).unwrap().lines().next().unwrap();
    assert!(MessageLine::parse(&buffer)(request_line).is_err(), "ezk now takes {request_line:?}");
    let Verdict::Drop(why) = inspect(badvers.as_bytes()) else {
        panic!("badvers: ezk's Via parser takes SIP/7.0?")
    };
    assert!(why.contains("Via"), "{why}");
    let via_2_0 = badvers.replace("SIP/7.0/UDP", "SIP/2.0/UDP");
    assert!(via_2_0.starts_with("OPTIONS sip:t.watson@example.org SIP/7.0\r\n"), "{via_2_0}");
    let Verdict::Reject(rejection) = inspect(via_2_0.as_bytes()) else {
        panic!("a SIP/7.0 request line is answered")
    };
    assert_eq!(rejection.status, 505);
}
