//! Half-duplex echo gating: while the kiosk's speaker plays (the bot, or an
//! agent after a hand-over), microphone frames quieter than the gate are
//! muted, so the speaker's sound coming back into the microphone never starts
//! a turn, interrupts the bot, or echoes back to the agent. Someone speaking
//! up over it, close to the microphone, still gets through (barge-in).
//!
//! No maintained Rust echo canceller builds here without network access
//! (webrtc-audio-processing vendors and builds the WebRTC sources; Debian 12's
//! libwebrtc-audio-processing is the old 0.3 API), so the gate is what the
//! kiosk has; the dialog adds its own echo checks (level and own words).

/// The gate: a level in dBFS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EchoGate {
    pub(crate) threshold_dbfs: f32,
}

impl EchoGate {
    /// Mutes `frame` in place when the speaker is playing and the frame is
    /// below the gate; says whether it did.
    pub(crate) fn apply(&self, frame: &mut [f32], speaker_playing: bool) -> bool {
        if !speaker_playing || voicebot_conversation::level_db(frame) >= self.threshold_dbfs {
            return false;
        }
        frame.fill(0.0);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f32) -> Vec<f32> {
        (0..320).map(|i| amplitude * (i as f32 * 0.2).sin()).collect()
    }

    #[test]
    fn quiet_frames_are_muted_only_while_the_speaker_plays() {
        let gate = EchoGate { threshold_dbfs: -30.0 };
        // About -43 dBFS: the speaker's echo.
        let mut echo = tone(0.01);
        assert!(!gate.apply(&mut echo, false), "nothing is gated while the speaker is quiet");
        assert!(echo.iter().any(|s| *s != 0.0));
        assert!(gate.apply(&mut echo, true));
        assert!(echo.iter().all(|s| *s == 0.0));
        // About -13 dBFS: someone speaking up close.
        let mut voice = tone(0.3);
        assert!(!gate.apply(&mut voice, true), "a voice above the gate barges in");
        assert!(voice.iter().any(|s| *s != 0.0));
    }
}
