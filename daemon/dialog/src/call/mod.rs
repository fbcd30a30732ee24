//! One call's conversation as a sans-IO state machine.
//!
//! The driver (phone line, kiosk, `simulate`, the latency bench) feeds
//! [`Input`]s with the time they happened, asks [`Call::poll_timeout`] when to
//! call [`Call::handle_timeout`], and carries out the [`Action`]s it pops:
//! speaking, pausing or stopping the bot's audio, running recognition on a
//! stretch of caller audio, publishing the ticket, transferring, hanging up.
//! The machine does no IO and reads no clock, so scenario tests drive it on a
//! virtual clock.
//!
//! Invariants:
//! - exactly one [`Action::Ended`] per call, and nothing after it;
//! - a hand-over publishes its ticket before the transfer is asked for;
//! - speech over the bot pauses it within 200 ms ([`timing::BARGE_IN_LIMIT`]); a
//!   backchannel or the bot's own echo resumes it, anything else stops it;
//! - recognition results for audio the caller kept talking over are dropped.

mod dialogue;
mod keypad;
mod listening;
mod overlap;
pub mod timing;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use voicebot_core::Language;
use voicebot_understanding::analysis::Analysis;
use voicebot_understanding::pack::{KnowledgePack, PromptKind};

pub use dialogue::{CONFIRM_BELOW, CallerInput, HandoverPlan, PRIORITY_LINE_FLOOR, Purpose, TurnReport};
pub use listening::VoiceFrame;
pub use timing::Timing;

use crate::escalation::{Escalation, EscalationPolicy, Priority};
use crate::outcome::{CallEnd, Outcome};
use crate::ticket::{CallContext, FollowUp, Routing, Ticket, TicketBuilder};
use dialogue::{Dialogue, Reply};
use keypad::{Keypad, KeypadEvent};
use listening::{ListenEvent, Listener};

/// Where the caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Phone,
    Kiosk,
}

impl Channel {
    pub fn code(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Kiosk => "kiosk",
        }
    }
}

/// The line's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineKind {
    #[default]
    Standard,
    /// Slower, clearer voice; a person offered up front; priority in the agents' queue.
    Elder,
}

/// Everything a call is set up with.
#[derive(Debug, Clone)]
pub struct CallSetup {
    pub channel: Channel,
    pub line: LineKind,
    /// Per-caller policy: a person is offered and the ticket queues with priority.
    pub vip: bool,
    /// The language of the greeting.
    pub language: Language,
    pub timing: Timing,
    pub policy: EscalationPolicy,
    /// TTS speed for this call's prompts (1.0 normal).
    pub speaking_rate: f32,
    /// TTS speed on elder lines.
    pub elder_rate: f32,
    /// Channel, line id, masked caller id and wall-clock start, for the ticket.
    pub context: CallContext,
    /// The id the ticket gets if there is a hand-over (a ULID from the driver).
    pub ticket_id: String,
    /// The id of the call-back ticket if the transfer fails (another ULID).
    pub callback_ticket_id: String,
}

/// Identifies one prompt the bot speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PromptId(pub u32);

/// Identifies one stretch of caller audio sent for recognition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtteranceId(pub u32);

/// Something for the bot to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub id: PromptId,
    pub text: String,
    pub language: Language,
    /// TTS speed (1.0 normal; slower on elder lines).
    pub rate: f32,
    pub purpose: Purpose,
}

/// Caller audio to recognise: from `start` to `end` on the call's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtteranceRequest {
    pub id: UtteranceId,
    pub start: Instant,
    pub end: Instant,
    /// False when the call only guesses the turn is over (speech may resume).
    pub final_: bool,
}

/// What the driver must hand over to a person.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRequest {
    pub ticket_id: String,
    pub skill_group: String,
    pub reason: crate::escalation::EscalationReason,
    pub priority: u8,
    pub intent: String,
    pub emotion: String,
}

/// How the transfer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferResult {
    /// A person took the call; the bot leaves it.
    Connected,
    /// Nobody could take it (busy, unreachable, refused).
    Failed,
}

/// What the driver tells the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// One frame of caller audio through the VAD, ending now.
    Voice(VoiceFrame),
    /// Recognition and understanding of a requested utterance.
    Heard {
        utterance: UtteranceId,
        analysis: Box<Analysis>,
        asr_confidence: f32,
    },
    /// Recognition failed for a requested utterance (treated as "did not catch").
    NotHeard {
        utterance: UtteranceId,
    },
    /// A keypad digit (RFC 4733 or SIP INFO): `0`-`9`, `*`, `#`.
    Dtmf(char),
    /// The caller asked for a person other than by speech or keypad (a kiosk's
    /// "call assistance" button): as pressing `0`, even while digits are
    /// being collected.
    PersonRequested,
    /// The prompt finished playing.
    PlaybackFinished(PromptId),
    Transfer(TransferResult),
    /// The caller hung up.
    HungUp,
    /// The service is stopping: close the call politely.
    Shutdown,
}

/// What the call wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Listen to the caller (VAD and buffering on).
    StartListening,
    StopListening,
    /// Say this (stop whatever was playing first).
    Speak(Prompt),
    /// Synthesise this ahead of time: it will probably be spoken next.
    Prepare(Prompt),
    /// Pause the bot's audio (the caller spoke over it); resume or stop follows.
    PausePlayback,
    ResumePlayback,
    /// Stop and discard the bot's audio.
    StopSpeaking,
    /// Recognise and understand this stretch of caller audio; answer with
    /// [`Input::Heard`] or [`Input::NotHeard`].
    Understand(UtteranceRequest),
    /// Store and publish the hand-over ticket (before any transfer).
    PublishTicket(Box<Ticket>),
    /// Hand the caller to a person; answer with [`Input::Transfer`].
    Transfer(TransferRequest),
    HangUp,
    /// A caller turn was answered (for logs, metrics and `simulate`).
    Turn(Box<TurnReport>),
    /// The call is over, with its one outcome.
    Ended(Outcome),
}

#[derive(Debug, Clone)]
struct Playing {
    prompt: Prompt,
    paused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Conversing,
    /// The hand-over promise is playing.
    HandingOver,
    Transferring,
    /// The last words are playing; then hang up with this end.
    Closing(CallEnd),
    Ended,
}

/// An utterance sent for recognition, and what came back.
#[derive(Debug)]
struct Pending {
    id: UtteranceId,
    start: Instant,
    end: Instant,
    over_bot: bool,
    final_: bool,
    heard: Option<CallerInput>,
    /// A reply worked out before the turn was final, on a copy of the dialogue at `version`.
    speculation: Option<(u64, Box<Dialogue>, Reply, PromptId)>,
}

/// One call.
#[derive(Debug)]
pub struct Call {
    setup: CallSetup,
    priority: Priority,
    started: Instant,
    dialogue: Dialogue,
    /// Bumped whenever the dialogue changes, to invalidate speculation.
    version: u64,
    listener: Listener,
    keypad: Keypad,
    playing: Option<Playing>,
    phase: Phase,
    pending: VecDeque<Pending>,
    next_prompt: u32,
    next_utterance: u32,
    no_input_at: Option<Instant>,
    silences: u32,
    handover: Option<HandoverPlan>,
    ticket: Option<Ticket>,
    actions: VecDeque<Action>,
}

impl Call {
    /// Starts a call at `now`: greets the caller and listens.
    pub fn new(setup: CallSetup, pack: Arc<KnowledgePack>, now: Instant) -> Call {
        let priority = match (setup.line, setup.vip) {
            (LineKind::Elder, _) => Priority::ElderLine,
            (_, true) => Priority::Vip,
            _ => Priority::Standard,
        };
        let escalation = Escalation::new(setup.policy.clone(), priority);
        let tickets = TicketBuilder::new(setup.context.clone());
        let dialogue =
            Dialogue::new(pack, escalation, tickets, setup.language.clone(), setup.channel == Channel::Phone);
        let mut call = Call {
            setup,
            priority,
            started: now,
            dialogue,
            version: 0,
            listener: Listener::default(),
            keypad: Keypad::default(),
            playing: None,
            phase: Phase::Conversing,
            pending: VecDeque::new(),
            next_prompt: 0,
            next_utterance: 0,
            no_input_at: None,
            silences: 0,
            handover: None,
            ticket: None,
            actions: VecDeque::new(),
        };
        call.greet();
        call.actions.push_back(Action::StartListening);
        call
    }

    fn greet(&mut self) {
        let kind = match (self.setup.line, self.setup.channel) {
            (LineKind::Elder, _) => PromptKind::GreetingElder,
            (_, Channel::Kiosk) => PromptKind::GreetingKiosk,
            (_, Channel::Phone) => PromptKind::GreetingPhone,
        };
        if self.setup.line == LineKind::Elder {
            // The elder greeting asks whether the caller wants a person now: "yes" hands over.
            self.dialogue.escalation.offered_person();
        }
        let text = self.dialogue.prompt(kind);
        self.dialogue.bot_said(&text, "greeting", false, Purpose::Greeting);
        self.speak(text, Purpose::Greeting);
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Call::handle_timeout`] must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Ended {
            return None;
        }
        [self.no_input_at, self.keypad.deadline()].into_iter().flatten().min()
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// The line's speaking rate.
    fn rate(&self) -> f32 {
        match self.setup.line {
            LineKind::Elder => self.setup.elder_rate,
            LineKind::Standard => self.setup.speaking_rate,
        }
    }

    fn speak(&mut self, text: String, purpose: Purpose) {
        let id = PromptId(self.next_prompt);
        self.next_prompt += 1;
        self.say(Prompt { id, text, language: self.dialogue.language.clone(), rate: self.rate(), purpose });
    }

    fn say(&mut self, prompt: Prompt) {
        if self.playing.take().is_some() {
            self.actions.push_back(Action::StopSpeaking);
        }
        self.no_input_at = None;
        self.actions.push_back(Action::Speak(prompt.clone()));
        self.playing = Some(Playing { prompt, paused: false });
    }

    /// Handles one input at `now`.
    pub fn handle(&mut self, input: Input, now: Instant) {
        if self.phase == Phase::Ended {
            return;
        }
        match input {
            Input::Voice(frame) => self.voice(&frame, now),
            Input::Heard { utterance, analysis, asr_confidence } => {
                let heard =
                    CallerInput { analysis: *analysis, asr_confidence, keypad: false, pressed_zero: false };
                self.heard(utterance, heard, now);
            }
            Input::NotHeard { utterance } => {
                let heard = CallerInput {
                    analysis: self
                        .dialogue
                        .keypad_input("out_of_scope", String::new(), Vec::new(), false)
                        .analysis,
                    asr_confidence: 0.0,
                    keypad: false,
                    pressed_zero: false,
                };
                self.heard(utterance, heard, now);
            }
            Input::Dtmf(digit) => self.dtmf(digit, now),
            Input::PersonRequested => {
                if self.phase == Phase::Conversing {
                    self.no_input_at = None;
                    self.silences = 0;
                    self.keypad_event(KeypadEvent::Zero, now);
                }
            }
            Input::PlaybackFinished(id) => self.finished(id, now),
            Input::Transfer(result) => self.transferred(result, now),
            Input::HungUp => self.end(CallEnd::CallerHungUp),
            Input::Shutdown => self.shut_down(),
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase != Phase::Conversing {
            return;
        }
        if let Some(event) = self.keypad.timeout(now) {
            self.keypad_event(event, now);
        }
        if self.no_input_at.is_some_and(|at| now >= at) {
            self.no_input_at = None;
            self.silences += 1;
            if self.silences > self.setup.timing.max_no_input_reprompts {
                self.close(PromptKind::NoInputClose, CallEnd::NoInput);
            } else {
                let again = match self.dialogue.last_purpose {
                    Some(Purpose::Answer) => self.dialogue.prompt(PromptKind::AnythingElse),
                    _ => self.dialogue.last_words.clone().unwrap_or_default(),
                };
                let text = format!("{} {again}", self.dialogue.prompt(PromptKind::NoInput)).trim().to_owned();
                self.dialogue.bot_said(&text, "no_input", false, Purpose::Reprompt);
                self.speak(text, Purpose::Reprompt);
            }
        }
    }

    fn voice(&mut self, frame: &VoiceFrame, now: Instant) {
        let mut events = Vec::new();
        let speaking = self.playing.as_ref().is_some_and(|p| !p.paused);
        self.listener.frame(
            frame,
            now,
            &self.setup.timing,
            speaking,
            self.dialogue.wants_digits(),
            &mut events,
        );
        if self.phase != Phase::Conversing {
            return;
        }
        for event in events {
            match event {
                ListenEvent::TurnStarted { .. } => {
                    self.no_input_at = None;
                    self.silences = 0;
                }
                ListenEvent::BargeIn => {
                    if let Some(playing) = self.playing.as_mut().filter(|p| p.prompt.purpose.expects_reply())
                    {
                        playing.paused = true;
                        self.actions.push_back(Action::PausePlayback);
                    }
                }
                ListenEvent::EarlyEnd { start, end } => {
                    let over_bot = self.playing.as_ref().is_some_and(|p| p.paused);
                    if self.pending.back().is_none_or(|p| p.final_) {
                        self.request(start, end, over_bot, false);
                    }
                }
                ListenEvent::Resumed => {
                    if self.pending.back().is_some_and(|p| !p.final_) {
                        self.pending.pop_back();
                    }
                }
                ListenEvent::TurnEnded { start, end, over_bot } => {
                    let paused = self.playing.as_ref().is_some_and(|p| p.paused);
                    if over_bot && !paused {
                        // Too short to pause the bot, or over a prompt that cannot be interrupted.
                        if self.pending.back().is_some_and(|p| !p.final_) {
                            self.pending.pop_back();
                        }
                        continue;
                    }
                    match self.pending.back_mut() {
                        Some(p) if !p.final_ && p.start == start && p.end == end => p.final_ = true,
                        _ => {
                            if self.pending.back().is_some_and(|p| !p.final_) {
                                self.pending.pop_back();
                            }
                            self.request(start, end, paused, true);
                        }
                    }
                    self.advance(now);
                }
            }
        }
    }

    fn request(&mut self, start: Instant, end: Instant, over_bot: bool, final_: bool) {
        let id = UtteranceId(self.next_utterance);
        self.next_utterance += 1;
        self.pending.push_back(Pending { id, start, end, over_bot, final_, heard: None, speculation: None });
        self.actions.push_back(Action::Understand(UtteranceRequest { id, start, end, final_ }));
    }

    fn heard(&mut self, id: UtteranceId, heard: CallerInput, now: Instant) {
        let Some(pending) = self.pending.iter_mut().find(|p| p.id == id) else {
            return; // The caller kept talking: a newer request covers this audio.
        };
        pending.heard = Some(heard);
        self.advance(now);
    }

    /// True when speech over the bot was only a backchannel or the bot's own echo.
    fn only_overlap(&self, pending: &Pending, heard: &CallerInput) -> bool {
        let Some(playing) = self.playing.as_ref().filter(|p| p.paused) else { return false };
        let short = pending.end.saturating_duration_since(pending.start) <= self.setup.timing.backchannel_max;
        let text = &heard.analysis.text;
        (short && overlap::is_backchannel(text)) || overlap::is_echo(text, &playing.prompt.text)
    }

    /// Acts on the oldest finished turn, or prepares the reply to the newest.
    fn advance(&mut self, now: Instant) {
        while let Some(head) = self.pending.front() {
            let Some(heard) = head.heard.as_ref() else { return };
            if head.over_bot && self.only_overlap(head, heard) {
                if !head.final_ {
                    return;
                }
                self.pending.pop_front();
                if let Some(playing) = self.playing.as_mut().filter(|p| p.paused) {
                    playing.paused = false;
                    self.actions.push_back(Action::ResumePlayback);
                }
                continue;
            }
            if !head.final_ {
                if head.speculation.is_none() {
                    let mut trial = self.dialogue.clone();
                    let reply = trial.respond(heard, self.priority);
                    let id = PromptId(self.next_prompt);
                    self.next_prompt += 1;
                    let prompt = self.prompt_for(id, &reply);
                    self.actions.push_back(Action::Prepare(prompt));
                    if let Some(head) = self.pending.front_mut() {
                        head.speculation = Some((self.version, Box::new(trial), reply, id));
                    }
                }
                return;
            }
            let Some(head) = self.pending.pop_front() else { return };
            let heard = head.heard.unwrap_or_else(|| unreachable!("checked above"));
            let (reply, prompt_id) = match head.speculation {
                Some((version, trial, reply, id)) if version == self.version => {
                    self.dialogue = *trial;
                    (reply, id)
                }
                _ => {
                    let reply = self.dialogue.respond(&heard, self.priority);
                    let id = PromptId(self.next_prompt);
                    self.next_prompt += 1;
                    (reply, id)
                }
            };
            self.commit(reply, prompt_id, now);
            if self.phase != Phase::Conversing {
                self.pending.clear();
                return;
            }
        }
    }

    fn prompt_for(&self, id: PromptId, reply: &Reply) -> Prompt {
        Prompt {
            id,
            text: reply.text.clone(),
            language: reply.language.clone(),
            rate: self.rate(),
            purpose: reply.purpose,
        }
    }

    /// Carries out a reply: the dialogue already holds its effects.
    fn commit(&mut self, reply: Reply, prompt_id: PromptId, now: Instant) {
        self.version += 1;
        self.actions.push_back(Action::Turn(Box::new(reply.report.clone())));
        let prompt = self.prompt_for(prompt_id, &reply);
        match reply.handover {
            Some(plan) => {
                let ticket = self.cut_ticket(&plan, &reply.text, now, FollowUp::Transfer);
                self.actions.push_back(Action::PublishTicket(Box::new(ticket.clone())));
                self.ticket = Some(ticket);
                self.handover = Some(plan);
                self.phase = Phase::HandingOver;
                self.listener.reset();
                self.actions.push_back(Action::StopListening);
                self.say(prompt);
            }
            None if reply.purpose == Purpose::Closing => {
                self.phase = Phase::Closing(CallEnd::BotHungUp);
                self.say(prompt);
            }
            None => self.say(prompt),
        }
    }

    fn cut_ticket(&self, plan: &HandoverPlan, promise: &str, now: Instant, follow_up: FollowUp) -> Ticket {
        let elapsed =
            u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX);
        let routing = Routing {
            reason: plan.reason,
            intent: &plan.intent,
            skill_group: &plan.skill_group,
            priority: plan.priority,
            suggested_answer: plan.suggested_answer.as_deref(),
        };
        let id = match follow_up {
            FollowUp::Transfer => self.setup.ticket_id.clone(),
            FollowUp::CallBack => self.setup.callback_ticket_id.clone(),
        };
        let mut ticket = self.dialogue.tickets.build(
            id,
            self.setup.context.started_at_ms.saturating_add(elapsed),
            &routing,
            promise,
        );
        ticket.follow_up = follow_up;
        if follow_up == FollowUp::CallBack {
            ticket.replaces = Some(self.setup.ticket_id.clone());
        }
        ticket
    }

    fn finished(&mut self, id: PromptId, now: Instant) {
        if self.playing.as_ref().is_none_or(|p| p.prompt.id != id) {
            return;
        }
        let Some(done) = self.playing.take() else { return };
        match self.phase {
            Phase::HandingOver => {
                if let Some(plan) = &self.handover {
                    self.phase = Phase::Transferring;
                    self.actions.push_back(Action::Transfer(TransferRequest {
                        ticket_id: self.setup.ticket_id.clone(),
                        skill_group: plan.skill_group.clone(),
                        reason: plan.reason,
                        priority: plan.priority,
                        intent: plan.intent.clone(),
                        emotion: plan.emotion.label.as_str().to_owned(),
                    }));
                }
            }
            Phase::Closing(end) => self.end(end),
            Phase::Conversing if done.prompt.purpose.expects_reply() && !self.listener.in_utterance() => {
                let wait = match self.setup.line {
                    LineKind::Elder => self.setup.timing.no_input_elder,
                    LineKind::Standard => self.setup.timing.no_input,
                };
                self.no_input_at = Some(now + wait);
            }
            _ => {}
        }
    }

    fn transferred(&mut self, result: TransferResult, now: Instant) {
        if self.phase != Phase::Transferring {
            return;
        }
        match result {
            TransferResult::Connected => self.end(CallEnd::BotHungUp),
            TransferResult::Failed => {
                // Nobody could take the call: promise a call-back, on a ticket that says so.
                let text = self.dialogue.prompt(PromptKind::TransferFailed);
                if let Some(plan) = self.handover.clone() {
                    let ticket = self.cut_ticket(&plan, &text, now, FollowUp::CallBack);
                    self.actions.push_back(Action::PublishTicket(Box::new(ticket.clone())));
                    self.ticket = Some(ticket);
                }
                self.dialogue.bot_said(&text, "transfer_failed", false, Purpose::Closing);
                self.phase = Phase::Closing(CallEnd::BotHungUp);
                self.speak(text, Purpose::Closing);
            }
        }
    }

    fn close(&mut self, kind: PromptKind, end: CallEnd) {
        let text = self.dialogue.prompt(kind);
        self.dialogue.bot_said(&text, kind.key(), false, Purpose::Closing);
        self.phase = Phase::Closing(end);
        self.pending.clear();
        self.keypad = Keypad::default();
        self.speak(text, Purpose::Closing);
    }

    fn shut_down(&mut self) {
        match self.phase {
            Phase::Conversing => self.close(PromptKind::ShuttingDown, CallEnd::Failed),
            // A hand-over or goodbye in progress finishes on its own.
            Phase::HandingOver | Phase::Transferring | Phase::Closing(_) | Phase::Ended => {}
        }
    }

    fn end(&mut self, end: CallEnd) {
        if self.phase == Phase::Ended {
            return;
        }
        if self.playing.take().is_some() {
            self.actions.push_back(Action::StopSpeaking);
        }
        if end != CallEnd::CallerHungUp {
            self.actions.push_back(Action::HangUp);
        }
        self.actions.push_back(Action::StopListening);
        self.phase = Phase::Ended;
        self.no_input_at = None;
        self.actions.push_back(Action::Ended(self.dialogue.outcome.finish(end)));
    }

    fn dtmf(&mut self, digit: char, now: Instant) {
        if self.phase != Phase::Conversing {
            return;
        }
        self.no_input_at = None;
        self.silences = 0;
        let collecting = self.dialogue.wants_digits();
        if let Some(event) = self.keypad.press(digit, collecting, now, self.setup.timing.digit_timeout) {
            self.keypad_event(event, now);
        }
    }

    fn keypad_event(&mut self, event: KeypadEvent, now: Instant) {
        let input = match event {
            KeypadEvent::Zero => {
                self.dialogue.keypad_input("human_agent", "[keypad 0]".into(), Vec::new(), true)
            }
            KeypadEvent::Star => self.dialogue.keypad_input("repeat", "[keypad *]".into(), Vec::new(), false),
            KeypadEvent::Digits(digits) => {
                let Some((intent, kind)) = self.dialogue.asking() else { return };
                let slot = voicebot_understanding::slots::Slot { kind, value: digits.clone() };
                let intent = intent.to_owned();
                self.dialogue.keypad_input(&intent, digits, vec![slot], false)
            }
            KeypadEvent::Choice(digit) => {
                let chosen =
                    self.dialogue.pack().menu.iter().find(|m| m.digit == digit).map(|m| m.intent.clone());
                let intent = chosen.unwrap_or_else(|| "out_of_scope".to_owned());
                self.dialogue.keypad_input(&intent, format!("[keypad {digit}]"), Vec::new(), false)
            }
        };
        // Keys interrupt the bot at once, like speech that is not a backchannel.
        self.pending.clear();
        let reply = self.dialogue.respond(&input, self.priority);
        let id = PromptId(self.next_prompt);
        self.next_prompt += 1;
        self.commit(reply, id, now);
    }
}

#[cfg(test)]
mod tests;
