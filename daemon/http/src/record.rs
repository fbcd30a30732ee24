//! What the daemon tells this crate about one finished call: plain data, built
//! by the daemon from the phone line's call summary, already free of PII
//! (transcripts are the dialog's masked text).

use std::time::Duration;

/// One finished call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub call_id: String,
    /// Unix milliseconds.
    pub ended_ms: u64,
    pub duration: Duration,
    /// `resolved`, `escalated`, `abandoned`, `timeout` or `error`.
    pub outcome: String,
    /// The escalation reason code when `outcome` is `escalated`.
    pub reason: Option<String>,
    pub turns: Vec<TurnRecord>,
    /// Caller stops → first reply audio to the line, per answered utterance.
    pub reply_latencies: Vec<Duration>,
    pub asr_rtf: Vec<f32>,
    pub tts_rtf: Vec<f32>,
    /// `None`: not a phone call (no RTP).
    pub rtp: Option<RtpRecord>,
}

/// One caller turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRecord {
    pub intent: String,
    /// -2 ..= +2; `None`: no emotion reading.
    pub valence: Option<i8>,
    /// The emotion label (`neutral`, `angry`, …).
    pub emotion: Option<String>,
    /// The masked transcript, kept only for questions the bot could not answer
    /// (`out_of_scope` turns): the report's hot topics.
    pub question: Option<String>,
}

/// The caller's RTP stream at call end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RtpRecord {
    pub packets_received: u64,
    /// Frames played from received packets.
    pub frames_played: u64,
    /// Frames lost or late (concealed).
    pub frames_lost: u64,
    /// RFC 3550 interarrival jitter.
    pub jitter: Duration,
}
