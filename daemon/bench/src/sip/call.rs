//! One scripted conversation over SIP against `voicebotd run`: the caller
//! listens to the greeting, then says each turn once the bot's previous
//! answer has ended, and measures, per turn, the time from the RTP packet
//! carrying its last speech sample to the first packet of the bot's reply.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::uac::{self, Uac};

/// The bot's answer is over after this long without speech in its RTP.
/// Longer than the pauses between its sentences, shorter than the 7 s no-input timeout.
const QUIET: Duration = Duration::from_millis(1200);
/// RTP gaps longer than this break real time (the criterion).
pub(crate) const GAP_LIMIT: Duration = Duration::from_millis(60);

/// What one call measured.
#[derive(Debug, Clone, Serialize, Default)]
pub(crate) struct CallResult {
    pub(crate) call: String,
    /// INVITE sent → 200 OK received.
    pub(crate) setup_ms: f64,
    /// Per turn: the caller's last speech packet sent → the first reply packet received.
    pub(crate) latencies_ms: Vec<f64>,
    /// Turns the caller said (a turn without a reply has no latency).
    pub(crate) turns: usize,
    /// RTP packets received from the daemon.
    pub(crate) packets: usize,
    /// The longest time between two consecutive packets from the daemon.
    pub(crate) max_gap_ms: f64,
    /// Gaps longer than [`GAP_LIMIT`].
    pub(crate) gaps_over_limit: usize,
    /// The daemon hung up after the caller's goodbye (as it should).
    pub(crate) bot_hung_up: bool,
    pub(crate) error: Option<String>,
}

impl CallResult {
    /// Every turn answered, no error.
    pub(crate) fn complete(&self) -> bool {
        self.error.is_none() && self.latencies_ms.len() == self.turns
    }
}

/// Calls `target` and plays `turns` (8 kHz caller speech, one clip per turn).
pub(crate) fn converse(target: SocketAddr, id: &str, turns: &[Vec<i16>]) -> CallResult {
    let mut result = CallResult { call: id.to_owned(), turns: turns.len(), ..CallResult::default() };
    let mut caller = Uac::new(target, id, "5550100");
    let answered = match caller.invite(Duration::from_secs(15)) {
        Ok(a) => a,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    result.setup_ms = answered.setup.as_secs_f64() * 1000.0;
    if answered.codes.last() != Some(&200) {
        result.error = Some(format!("INVITE answered {:?}", answered.codes));
        return result;
    }
    let media = caller.start_media();
    if media.wait_until_bot_done(0, QUIET, Duration::from_secs(60)).is_none() {
        result.error = Some("no greeting within 60 s".into());
    }
    for turn in turns {
        if result.error.is_some() {
            break;
        }
        let from = media.received_count();
        media.say(turn);
        while !media.said() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let Some(sent) = media.last_speech_sent() else { break };
        let until = sent + Duration::from_secs(20);
        let reply = loop {
            let reply = media.first_speech_after(from, sent);
            if reply.is_some() || Instant::now() > until {
                break reply;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let Some((index, first)) = reply else {
            result.error = Some(format!("no reply within 20 s to turn {}", result.latencies_ms.len() + 1));
            break;
        };
        result.latencies_ms.push(first.at.duration_since(sent).as_secs_f64() * 1000.0);
        if media.wait_until_bot_done(index, QUIET, Duration::from_secs(60)).is_none() {
            result.error = Some("the reply did not end within 60 s".into());
        }
    }
    // After the goodbye the bot hangs up; otherwise the caller does.
    let until = Instant::now() + Duration::from_secs(10);
    while let Some(message) = caller.recv(until.saturating_duration_since(Instant::now())) {
        if message.is_request("BYE") {
            caller.respond(&message, 200, "OK");
            result.bot_hung_up = true;
            break;
        }
    }
    if !result.bot_hung_up {
        caller.bye(Duration::from_secs(5));
    }
    let received = media.stop();
    let (max_gap, over) = uac::arrival_gaps(&received, GAP_LIMIT);
    result.packets = received.len();
    result.max_gap_ms = max_gap.as_secs_f64() * 1000.0;
    result.gaps_over_limit = over;
    result
}

/// Calls `target` and hangs up as soon as it is answered: set-up time alone.
pub(crate) fn set_up_only(target: SocketAddr, id: &str) -> Result<f64, String> {
    let mut caller = Uac::new(target, id, "5550100");
    let answered = caller.invite(Duration::from_secs(15))?;
    if answered.codes.last() != Some(&200) {
        return Err(format!("INVITE answered {:?}", answered.codes));
    }
    caller.bye(Duration::from_secs(5)).filter(|&c| c == 200).ok_or("no 200 to BYE")?;
    Ok(answered.setup.as_secs_f64() * 1000.0)
}
