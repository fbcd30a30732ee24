//! Fuzzes the SIP parser entry point: any bytes must give a verdict, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = voicebot_sip::wire::inspect(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = voicebot_sip::sdp::parse(text.as_bytes()).map(|offer| voicebot_sip::sdp::negotiate(&offer));
    }
});
