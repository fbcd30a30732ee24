//! Fuzzes RTP and telephone-event parsing, and the jitter buffer fed with the result.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = voicebot_rtp::RtpPacket::parse(data) {
        let _ = voicebot_rtp::TelephoneEvent::parse(&packet.payload);
        let now = std::time::Instant::now();
        let mut buffer = voicebot_rtp::JitterBuffer::new(voicebot_rtp::JitterConfig::default());
        buffer.push(packet, now);
        let _ = buffer.pop(now + std::time::Duration::from_millis(100));
    }
});
