//! Turn-taking from voice-activity frames: when the caller starts, when they
//! speak over the bot, and when their turn ends.
//!
//! The driver feeds every frame of caller audio, silence included, each with
//! its VAD decision, its level and the level of the bot audio played at the
//! same time. Frames that are quieter than the bot's expected echo do not
//! count as the caller (the echo gate). Invariants: at most one utterance is
//! open; an utterance ends exactly once ([`ListenEvent::TurnEnded`]); a
//! barge-in is reported at most once per utterance.

use std::time::{Duration, Instant};

use super::timing::Timing;

/// One frame of caller audio as the voice-activity detector saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoiceFrame {
    /// The frame's length; the frame ends at the `now` it is handled with.
    pub duration: Duration,
    /// The detector judged the frame to be speech.
    pub speech: bool,
    /// The frame's RMS level in dBFS.
    pub level_db: f32,
    /// The RMS level (dBFS) of the bot audio played during this frame, if any.
    pub playout_db: Option<f32>,
}

/// What the listener noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenEvent {
    /// The caller began an utterance (after `min_speech` of speech).
    TurnStarted { start: Instant, over_bot: bool },
    /// The caller has been speaking over the bot for `barge_in_after`.
    BargeIn,
    /// A short silence: the utterance so far may be the whole turn.
    EarlyEnd { start: Instant, end: Instant },
    /// Speech came back after an [`ListenEvent::EarlyEnd`]: that guess was wrong.
    Resumed,
    /// The turn is over.
    TurnEnded { start: Instant, end: Instant, over_bot: bool },
}

#[derive(Debug, Clone, Copy)]
struct Utterance {
    start: Instant,
    last_speech: Instant,
    over_bot: bool,
    barged_in: bool,
    early_sent: bool,
}

/// The per-call listener state.
#[derive(Debug, Default)]
pub(crate) struct Listener {
    run_start: Option<Instant>,
    run: Duration,
    utterance: Option<Utterance>,
}

impl Listener {
    /// True while the caller is in the middle of an utterance.
    pub(crate) fn in_utterance(&self) -> bool {
        self.utterance.is_some()
    }

    /// Whether a frame is the caller speaking, after the echo gate.
    fn is_caller(frame: &VoiceFrame, timing: &Timing) -> bool {
        match frame.playout_db {
            Some(playout) if frame.speech => {
                frame.level_db >= playout - timing.echo_return_loss_db + timing.echo_margin_db
            }
            _ => frame.speech,
        }
    }

    /// Handles one frame ending at `now`. `bot_speaking`: bot audio is playing;
    /// `digits`: the caller is expected to read out a number (longer pauses).
    pub(crate) fn frame(
        &mut self,
        frame: &VoiceFrame,
        now: Instant,
        timing: &Timing,
        bot_speaking: bool,
        digits: bool,
        events: &mut Vec<ListenEvent>,
    ) {
        if Listener::is_caller(frame, timing) {
            let run_start = *self.run_start.get_or_insert(now.checked_sub(frame.duration).unwrap_or(now));
            self.run += frame.duration;
            if self.utterance.is_none() && self.run >= timing.min_speech {
                self.utterance = Some(Utterance {
                    start: run_start,
                    last_speech: now,
                    over_bot: bot_speaking,
                    barged_in: false,
                    early_sent: false,
                });
                events.push(ListenEvent::TurnStarted { start: run_start, over_bot: bot_speaking });
            }
            let Some(utterance) = self.utterance.as_mut() else { return };
            utterance.last_speech = now;
            if utterance.early_sent {
                utterance.early_sent = false;
                events.push(ListenEvent::Resumed);
            }
            if bot_speaking && !utterance.barged_in && self.run >= timing.barge_in_after {
                utterance.barged_in = true;
                utterance.over_bot = true;
                events.push(ListenEvent::BargeIn);
            }
            if now.saturating_duration_since(utterance.start) >= timing.max_utterance {
                self.end(now, events);
            }
            return;
        }
        self.run_start = None;
        self.run = Duration::ZERO;
        let Some(utterance) = self.utterance.as_mut() else { return };
        let silence = now.saturating_duration_since(utterance.last_speech);
        let end_of_turn = if digits { timing.end_of_turn_digits } else { timing.end_of_turn };
        // Guess the same lead before the real end whatever the end-of-turn silence is.
        let early = end_of_turn.saturating_sub(timing.end_of_turn.saturating_sub(timing.early_end_of_turn));
        if !utterance.early_sent && silence >= early {
            utterance.early_sent = true;
            events.push(ListenEvent::EarlyEnd { start: utterance.start, end: utterance.last_speech });
        }
        if silence >= end_of_turn {
            self.end(now, events);
        }
    }

    fn end(&mut self, _now: Instant, events: &mut Vec<ListenEvent>) {
        if let Some(u) = self.utterance.take() {
            events.push(ListenEvent::TurnEnded { start: u.start, end: u.last_speech, over_bot: u.over_bot });
        }
        self.run_start = None;
        self.run = Duration::ZERO;
    }

    /// Forgets any utterance in progress (the bot stopped listening).
    pub(crate) fn reset(&mut self) {
        *self = Listener::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    struct Feed {
        listener: Listener,
        timing: Timing,
        now: Instant,
        events: Vec<(Duration, ListenEvent)>,
        t0: Instant,
    }

    impl Feed {
        fn new() -> Feed {
            let now = Instant::now();
            Feed {
                listener: Listener::default(),
                timing: Timing::default(),
                now,
                events: Vec::new(),
                t0: now,
            }
        }

        fn frames(&mut self, ms: u64, frame: VoiceFrame, bot: bool, digits: bool) {
            for _ in 0..ms / 20 {
                self.now += FRAME;
                let mut out = Vec::new();
                self.listener.frame(&frame, self.now, &self.timing, bot, digits, &mut out);
                let at = self.now - self.t0;
                self.events.extend(out.into_iter().map(|e| (at, e)));
            }
        }

        fn speech(&mut self, ms: u64) {
            self.frames(ms, loud(), false, false);
        }

        fn silence(&mut self, ms: u64) {
            self.frames(ms, quiet(), false, false);
        }

        fn names(&self) -> Vec<&'static str> {
            self.events
                .iter()
                .map(|(_, e)| match e {
                    ListenEvent::TurnStarted { .. } => "started",
                    ListenEvent::BargeIn => "barge-in",
                    ListenEvent::EarlyEnd { .. } => "early",
                    ListenEvent::Resumed => "resumed",
                    ListenEvent::TurnEnded { .. } => "ended",
                })
                .collect()
        }
    }

    fn loud() -> VoiceFrame {
        VoiceFrame { duration: FRAME, speech: true, level_db: -20.0, playout_db: None }
    }

    fn quiet() -> VoiceFrame {
        VoiceFrame { duration: FRAME, speech: false, level_db: -60.0, playout_db: None }
    }

    #[test]
    fn a_turn_ends_after_600_ms_of_silence() {
        let mut f = Feed::new();
        f.speech(1000);
        f.silence(580);
        assert_eq!(f.names(), ["started", "early"]);
        f.silence(20);
        assert_eq!(f.names(), ["started", "early", "ended"]);
        let (at, ListenEvent::TurnEnded { start, end, .. }) = f.events[2] else { panic!() };
        assert_eq!(at, Duration::from_millis(1600));
        assert_eq!(end - start, Duration::from_millis(1000));
    }

    #[test]
    fn a_pause_shorter_than_the_endpoint_keeps_the_turn_open() {
        let mut f = Feed::new();
        f.speech(500);
        f.silence(400);
        f.speech(500);
        f.silence(600);
        assert_eq!(f.names(), ["started", "early", "resumed", "early", "ended"]);
    }

    #[test]
    fn digits_get_a_longer_endpoint() {
        let mut f = Feed::new();
        f.frames(500, loud(), false, true);
        f.frames(1000, quiet(), false, true);
        assert_eq!(f.names(), ["started"], "a 1 s pause between digits does not end the turn");
        f.frames(500, quiet(), false, true);
        assert_eq!(f.names(), ["started", "early", "ended"]);
    }

    #[test]
    fn clicks_shorter_than_min_speech_are_not_turns() {
        let mut f = Feed::new();
        for _ in 0..5 {
            f.speech(60);
            f.silence(200);
        }
        assert!(f.events.is_empty());
    }

    #[test]
    fn speech_over_the_bot_barges_in_within_200_ms() {
        let mut f = Feed::new();
        f.frames(1000, quiet(), true, false);
        f.frames(400, loud(), true, false);
        let (at, _) = f.events.iter().find(|(_, e)| *e == ListenEvent::BargeIn).unwrap();
        let onset = Duration::from_millis(1000);
        assert!(*at - onset <= Duration::from_millis(200), "barge-in after {:?}", *at - onset);
    }

    #[test]
    fn the_bots_own_echo_is_gated_out() {
        let mut f = Feed::new();
        // The bot plays at -12 dBFS; its echo comes back 10 dB down, flagged as speech by the VAD.
        let echo = VoiceFrame { duration: FRAME, speech: true, level_db: -22.0, playout_db: Some(-12.0) };
        f.frames(2000, echo, true, false);
        assert!(f.events.is_empty(), "{:?}", f.names());
        // The caller talking over it is louder than the echo can be.
        let caller = VoiceFrame { level_db: -10.0, ..echo };
        f.frames(300, caller, true, false);
        assert_eq!(f.names(), ["started", "barge-in"]);
    }

    #[test]
    fn a_never_ending_utterance_is_cut() {
        let mut f = Feed::new();
        f.speech(21_000);
        assert_eq!(f.names()[..2], ["started", "ended"]);
        assert_eq!(f.events[1].0, Duration::from_secs(20));
        assert_eq!(f.names().len(), 3, "what the caller says next is a new utterance");
    }
}
