//! Scenario tests: whole calls on a virtual clock, 20 ms frames, instant or
//! scripted recognition.

use std::time::{Duration, Instant};

use voicebot_core::Language;
use voicebot_understanding::analysis::Analysis;
use voicebot_understanding::emotion::{Emotion, EmotionLabel};
use voicebot_understanding::intent::IntentResult;
use voicebot_understanding::pack::KnowledgePack;
use voicebot_understanding::slots::{Slot, SlotKind};

use super::*;
use crate::escalation::EscalationReason;
use crate::ticket::FollowUp;

const FRAME: Duration = Duration::from_millis(20);

fn setup(channel: Channel, line: LineKind) -> CallSetup {
    CallSetup {
        channel,
        line,
        vip: false,
        language: Language::En,
        timing: Timing::default(),
        policy: EscalationPolicy::default(),
        speaking_rate: 1.0,
        elder_rate: 0.8,
        context: CallContext {
            channel: channel.code().into(),
            line: Some("line-1".into()),
            caller_id_masked: None,
            started_at_ms: 1_000_000,
        },
        ticket_id: "01JTEST0000000000000000000".into(),
        callback_ticket_id: "01JTEST0000000000000000001".into(),
    }
}

fn said(text: &str, intent: &str, confidence: f32, valence: i8) -> Analysis {
    let pack = KnowledgePack::embedded();
    let label = match valence {
        -2 => EmotionLabel::Angry,
        -1 => EmotionLabel::Frustrated,
        _ => EmotionLabel::Neutral,
    };
    Analysis {
        text: text.into(),
        language: if text.chars().any(voicebot_core::language::is_han) { Language::Zh } else { Language::En },
        intent: IntentResult {
            intent: intent.into(),
            confidence,
            faq: None,
            sensitive: pack.intent(intent).is_some_and(|i| i.sensitive),
        },
        slots: Vec::new(),
        emotion: Emotion { valence, arousal: 0.3, label, score: 0.0, prosody: None },
    }
}

fn with_slot(mut a: Analysis, kind: SlotKind, value: &str) -> Analysis {
    a.slots.push(Slot { kind, value: value.into() });
    a
}

/// A call on a virtual clock, with every action it took and when.
struct Sim {
    call: Call,
    t0: Instant,
    now: Instant,
    log: Vec<(Duration, Action)>,
    /// Playout level while the bot speaks (for the echo gate).
    playout_db: Option<f32>,
    finished: Vec<PromptId>,
    answered: Vec<UtteranceId>,
}

impl Sim {
    fn new(setup: CallSetup) -> Sim {
        let t0 = Instant::now();
        let call = Call::new(setup, Arc::new(KnowledgePack::embedded()), t0);
        let mut sim = Sim {
            call,
            t0,
            now: t0,
            log: Vec::new(),
            playout_db: None,
            finished: Vec::new(),
            answered: Vec::new(),
        };
        sim.drain();
        sim
    }

    fn phone() -> Sim {
        Sim::new(setup(Channel::Phone, LineKind::Standard))
    }

    fn at(&self) -> Duration {
        self.now - self.t0
    }

    fn drain(&mut self) {
        while let Some(action) = self.call.poll_action() {
            self.log.push((self.at(), action));
        }
    }

    fn input(&mut self, input: Input) {
        self.call.handle(input, self.now);
        self.drain();
    }

    /// Advances by one frame, firing timers that fall due.
    fn frame(&mut self, speech: bool, level_db: f32) {
        self.now += FRAME;
        if self.call.poll_timeout().is_some_and(|t| t <= self.now) {
            self.call.handle_timeout(self.now);
        }
        let playout = if self.speaking().is_some() { self.playout_db } else { None };
        self.call.handle(
            Input::Voice(VoiceFrame { duration: FRAME, speech, level_db, playout_db: playout }),
            self.now,
        );
        self.drain();
    }

    fn silence(&mut self, ms: u64) {
        for _ in 0..ms / 20 {
            self.frame(false, -70.0);
        }
    }

    fn speech(&mut self, ms: u64) {
        for _ in 0..ms / 20 {
            self.frame(true, -18.0);
        }
    }

    /// The prompt currently playing (spoken and neither finished nor stopped).
    fn speaking(&self) -> Option<Prompt> {
        let mut current = None;
        for (_, action) in &self.log {
            match action {
                Action::Speak(p) => current = Some(p.clone()),
                Action::StopSpeaking | Action::Ended(_) => current = None,
                _ => {}
            }
        }
        current.filter(|p| !self.finished.contains(&p.id))
    }

    /// Lets the current prompt play out.
    fn finish_prompt(&mut self) -> Prompt {
        let prompt = self.speaking().expect("a prompt is playing");
        self.finished.push(prompt.id);
        self.input(Input::PlaybackFinished(prompt.id));
        prompt
    }

    /// Requests for recognition not yet answered.
    fn requests(&self) -> Vec<UtteranceRequest> {
        self.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Understand(r) if !self.answered.contains(&r.id) => Some(*r),
                _ => None,
            })
            .collect()
    }

    fn hear(&mut self, id: UtteranceId, analysis: Analysis, asr_confidence: f32) {
        self.answered.push(id);
        self.input(Input::Heard { utterance: id, analysis: Box::new(analysis), asr_confidence });
    }

    /// The caller speaks for `ms`; recognition answers instantly with `analysis`
    /// whenever asked; returns once the bot starts its reply (or ends the call).
    fn says(&mut self, ms: u64, analysis: Analysis) -> Prompt {
        self.says_with(ms, analysis, 0.9)
    }

    fn says_with(&mut self, ms: u64, analysis: Analysis, asr_confidence: f32) -> Prompt {
        let before = self.spoken().len();
        self.speech(ms);
        for _ in 0..500 {
            for request in self.requests() {
                self.hear(request.id, analysis.clone(), asr_confidence);
            }
            if self.spoken().len() > before {
                return self.spoken().last().cloned().unwrap_or_else(|| unreachable!());
            }
            self.silence(20);
        }
        panic!("no reply to {:?}: {:?}", analysis.text, self.log);
    }

    fn spoken(&self) -> Vec<Prompt> {
        self.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Speak(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    fn when(&self, pred: impl Fn(&Action) -> bool) -> Option<Duration> {
        self.log.iter().find(|(_, a)| pred(a)).map(|(t, _)| *t)
    }

    fn outcome(&self) -> Option<Outcome> {
        let ends: Vec<Outcome> = self
            .log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Ended(o) => Some(*o),
                _ => None,
            })
            .collect();
        assert!(ends.len() <= 1, "more than one outcome: {ends:?}");
        ends.first().copied()
    }

    fn tickets(&self) -> Vec<Ticket> {
        self.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::PublishTicket(t) => Some((**t).clone()),
                _ => None,
            })
            .collect()
    }

    fn turns(&self) -> Vec<TurnReport> {
        self.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Turn(t) => Some((**t).clone()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn greetings_follow_the_channel_and_the_line() {
    let phone = Sim::phone();
    let kiosk = Sim::new(setup(Channel::Kiosk, LineKind::Standard));
    let elder = Sim::new(setup(Channel::Phone, LineKind::Elder));
    let pack = KnowledgePack::embedded();
    let text = |sim: &Sim| sim.spoken()[0].clone();
    assert_eq!(text(&phone).text, pack.prompts.text(PromptKind::GreetingPhone, &Language::En));
    assert_eq!(text(&kiosk).text, pack.prompts.text(PromptKind::GreetingKiosk, &Language::En));
    assert_eq!(text(&elder).text, pack.prompts.text(PromptKind::GreetingElder, &Language::En));
    assert_eq!(text(&phone).rate, 1.0);
    assert_eq!(text(&elder).rate, 0.8, "an elder line gets the slower voice");
    assert!(phone.log.iter().any(|(_, a)| *a == Action::StartListening));
}

#[test]
fn an_elder_caller_who_accepts_the_offer_goes_to_a_person_with_priority() {
    let mut sim = Sim::new(setup(Channel::Phone, LineKind::Elder));
    sim.finish_prompt();
    sim.silence(500);
    let reply = sim.says(600, said("yes please", "affirm", 0.95, 0));
    assert_eq!(reply.purpose, Purpose::Handover);
    assert_eq!(reply.rate, 0.8);
    let ticket = &sim.tickets()[0];
    assert_eq!(ticket.reason, EscalationReason::ElderLine);
    assert!(ticket.priority >= PRIORITY_LINE_FLOOR);
    sim.finish_prompt();
    sim.input(Input::Transfer(TransferResult::Connected));
    assert_eq!(sim.outcome(), Some(Outcome::Escalated(EscalationReason::ElderLine)));
}

#[test]
fn where_is_my_order_then_the_number_then_goodbye_is_resolved() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    let ask = sim.says(1200, said("where is my order", "order_status", 0.9, 0));
    assert_eq!(ask.purpose, Purpose::Ask(SlotKind::OrderNumber));
    sim.finish_prompt();
    let number =
        with_slot(said("four five seven one two", "out_of_scope", 0.3, 0), SlotKind::OrderNumber, "45712");
    let answer = sim.says(1500, number);
    assert_eq!(answer.purpose, Purpose::Answer);
    assert!(answer.text.contains("45712"), "{}", answer.text);
    sim.finish_prompt();
    let bye = sim.says(700, said("no thanks goodbye", "goodbye", 0.95, 1));
    assert_eq!(bye.purpose, Purpose::Closing);
    assert_eq!(sim.outcome(), None, "the goodbye plays out first");
    sim.finish_prompt();
    assert_eq!(sim.outcome(), Some(Outcome::Resolved));
    assert!(sim.log.iter().any(|(_, a)| *a == Action::HangUp));
    assert!(sim.tickets().is_empty());
}

#[test]
fn a_turn_ends_600_ms_after_speech_and_the_reply_is_prepared_before() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    sim.speech(1000);
    let end_of_speech = sim.at();
    let early_ms = u64::try_from(Timing::default().early_end_of_turn.as_millis()).unwrap();
    sim.silence(early_ms - 20);
    assert!(sim.requests().is_empty(), "nothing sent before {early_ms} ms of silence");
    sim.silence(20);
    let early = sim.requests();
    assert_eq!(early.len(), 1);
    assert!(!early[0].final_, "the first request is a guess");
    sim.hear(early[0].id, said("what time do you open", "store_hours", 0.9, 0), 0.9);
    assert!(sim.log.iter().any(|(_, a)| matches!(a, Action::Prepare(p) if p.purpose == Purpose::Answer)));
    assert_eq!(sim.spoken().len(), 1, "not spoken while the caller may go on");
    sim.silence(580 - early_ms);
    assert_eq!(sim.spoken().len(), 1, "580 ms of silence is not yet the end of the turn");
    sim.silence(20);
    let spoken_at = sim.when(|a| matches!(a, Action::Speak(p) if p.purpose == Purpose::Answer)).unwrap();
    assert_eq!(spoken_at - end_of_speech, Duration::from_millis(600));
    let prepared = sim.log.iter().find_map(|(_, a)| match a {
        Action::Prepare(p) => Some(p.id),
        _ => None,
    });
    assert_eq!(sim.spoken().last().map(|p| p.id), prepared, "the prepared prompt is the one spoken");
}

#[test]
fn speech_that_resumes_after_a_pause_discards_the_guess() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    sim.speech(600);
    sim.silence(400);
    let guess = sim.requests()[0];
    sim.speech(800);
    sim.hear(guess.id, said("I want to", "out_of_scope", 0.2, 0), 0.9);
    assert!(!sim.log.iter().any(|(_, a)| matches!(a, Action::Prepare(_))), "a stale guess prepares nothing");
    sim.silence(600);
    let last = *sim.requests().last().unwrap();
    assert_eq!(last.start, guess.start, "the final request covers the whole utterance");
    assert!(last.end > guess.end);
    sim.hear(last.id, said("I want to return a jacket", "return_refund", 0.9, 0), 0.9);
    assert_eq!(sim.turns().len(), 1);
    assert_eq!(sim.turns()[0].intent, "return_refund");
}

#[test]
fn the_caller_speaking_over_an_answer_stops_it_within_200_ms() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    let answer = sim.says(800, said("what are your opening hours", "store_hours", 0.9, 0));
    sim.silence(1000);
    let onset = sim.at();
    sim.speech(900);
    let paused = sim.when(|a| *a == Action::PausePlayback).unwrap();
    assert!(paused - onset <= timing::BARGE_IN_LIMIT, "paused {:?} after the caller started", paused - onset);
    let reply = sim.says(0, said("actually where is my order", "order_status", 0.9, 0));
    assert!(sim.log.iter().any(|(_, a)| *a == Action::StopSpeaking), "the interrupted answer is dropped");
    assert_ne!(reply.id, answer.id);
    assert_eq!(reply.purpose, Purpose::Ask(SlotKind::OrderNumber));
}

#[test]
fn backchannels_over_the_bot_do_not_stop_it() {
    for word in ["mm", "ok", "yeah", "嗯", "好的"] {
        let mut sim = Sim::phone();
        sim.finish_prompt();
        let answer = sim.says(800, said("where is the flagship store", "store_location", 0.9, 0));
        sim.silence(1500);
        sim.speech(400);
        sim.silence(600);
        for request in sim.requests() {
            sim.hear(request.id, said(word, "affirm", 0.6, 0), 0.9);
        }
        assert!(sim.log.iter().any(|(_, a)| *a == Action::ResumePlayback), "{word}: resumed");
        assert!(!sim.log.iter().any(|(_, a)| *a == Action::StopSpeaking), "{word}: never stopped");
        assert_eq!(sim.turns().len(), 1, "{word}: a backchannel is not a turn");
        assert_eq!(sim.speaking().map(|p| p.id), Some(answer.id), "{word}: the answer carries on");
    }
}

#[test]
fn the_bots_own_echo_does_not_interrupt_it() {
    let mut sim = Sim::phone();
    sim.playout_db = Some(-10.0);
    // Echo at 6 dB below the playout, flagged as speech by the VAD.
    for _ in 0..100 {
        sim.frame(true, -16.0);
    }
    assert!(!sim.log.iter().any(|(_, a)| *a == Action::PausePlayback));
    // Echo loud enough to pass the level gate is recognised as the bot's own words.
    let greeting = sim.speaking().unwrap();
    for _ in 0..50 {
        sim.frame(true, -8.0);
    }
    assert!(sim.log.iter().any(|(_, a)| *a == Action::PausePlayback));
    sim.silence(600);
    let words: Vec<&str> = greeting.text.split_whitespace().skip(3).take(6).collect();
    for request in sim.requests() {
        sim.hear(request.id, said(&words.join(" "), "out_of_scope", 0.2, 0), 0.9);
    }
    assert!(sim.log.iter().any(|(_, a)| *a == Action::ResumePlayback));
    assert_eq!(sim.speaking().map(|p| p.id), Some(greeting.id));
    assert!(sim.turns().is_empty());
}

#[test]
fn silence_gets_two_reprompts_then_a_polite_close() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    sim.silence(6980);
    assert_eq!(sim.spoken().len(), 1);
    sim.silence(20);
    let reprompt = sim.speaking().unwrap();
    assert_eq!(reprompt.purpose, Purpose::Reprompt);
    assert!(reprompt.text.contains("still there"), "{}", reprompt.text);
    sim.finish_prompt();
    sim.silence(7000);
    sim.finish_prompt();
    sim.silence(7000);
    let close = sim.finish_prompt();
    assert_eq!(close.purpose, Purpose::Closing);
    assert_eq!(sim.outcome(), Some(Outcome::Timeout));
}

#[test]
fn elder_lines_wait_longer_for_an_answer() {
    let mut sim = Sim::new(setup(Channel::Phone, LineKind::Elder));
    sim.finish_prompt();
    sim.silence(9000);
    assert_eq!(sim.spoken().len(), 1, "no reprompt after 9 s on an elder line");
    sim.silence(1000);
    assert_eq!(sim.spoken().len(), 2);
}

#[test]
fn repeat_replays_the_last_answer_by_voice_or_star() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    let answer = sim.says(800, said("when do you open on sunday", "store_hours", 0.9, 0));
    sim.finish_prompt();
    let again = sim.says(600, said("say that again", "repeat", 0.9, 0));
    assert!(again.text.ends_with(&answer.text), "{}", again.text);
    sim.finish_prompt();
    sim.input(Input::Dtmf('*'));
    assert!(sim.speaking().unwrap().text.ends_with(&answer.text));
}

#[test]
fn pressing_zero_hands_over_and_the_ticket_goes_out_before_the_transfer() {
    let mut sim = Sim::phone();
    sim.input(Input::Dtmf('0'));
    assert!(sim.log.iter().any(|(_, a)| *a == Action::StopSpeaking), "keys interrupt the greeting");
    let promise = sim.finish_prompt();
    assert_eq!(promise.purpose, Purpose::Handover);
    let published = sim.log.iter().position(|(_, a)| matches!(a, Action::PublishTicket(_))).unwrap();
    let transfer = sim.log.iter().position(|(_, a)| matches!(a, Action::Transfer(_))).unwrap();
    assert!(published < transfer);
    let Action::Transfer(request) = &sim.log[transfer].1 else { unreachable!() };
    assert_eq!(request.reason, EscalationReason::Requested);
    assert_eq!(request.ticket_id, sim.tickets()[0].id);
    sim.input(Input::Transfer(TransferResult::Connected));
    assert_eq!(sim.outcome(), Some(Outcome::Escalated(EscalationReason::Requested)));
}

#[test]
fn a_call_assistance_button_hands_over_even_while_digits_are_collected() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    let ask = sim.says(600, said("where is my order", "order_status", 0.9, 0));
    assert!(ask.text.to_lowercase().contains("order number"), "{}", ask.text);
    sim.finish_prompt();
    // A `0` key now would be a digit of the order number; the button is not.
    sim.input(Input::PersonRequested);
    let promise = sim.finish_prompt();
    assert_eq!(promise.purpose, Purpose::Handover);
    let Some(Action::Transfer(request)) =
        sim.log.iter().map(|(_, a)| a).find(|a| matches!(a, Action::Transfer(_))).cloned()
    else {
        panic!("no transfer: {:?}", sim.log)
    };
    assert_eq!(request.reason, EscalationReason::Requested);
}

#[test]
fn failing_speech_offers_the_keypad_menu_then_hands_over() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    let first = sim.says(900, said("blue elephant tuesday", "out_of_scope", 0.1, 0));
    assert!(!first.text.contains("press 1"), "{}", first.text);
    sim.finish_prompt();
    let second = sim.says(900, said("purple monkey dishwasher", "out_of_scope", 0.1, 0));
    assert!(second.text.contains("press 1") && second.text.contains("zero"), "{}", second.text);
    sim.finish_prompt();
    sim.input(Input::Dtmf('1'));
    assert_eq!(sim.speaking().unwrap().purpose, Purpose::Ask(SlotKind::OrderNumber));
    for key in ['4', '5', '7', '1', '2', '#'] {
        sim.input(Input::Dtmf(key));
    }
    let answer = sim.speaking().unwrap();
    assert!(answer.text.contains("45712"), "{}", answer.text);
    assert!(sim.turns().iter().filter(|t| t.keypad).count() == 2);
}

#[test]
fn three_failed_turns_hand_over_as_repeated_failure() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    for nonsense in ["blue elephant", "purple monkey", "green giraffe"] {
        sim.says(900, said(nonsense, "out_of_scope", 0.1, 0));
        sim.finish_prompt();
    }
    assert_eq!(sim.tickets()[0].reason, EscalationReason::RepeatedFailure);
    assert_eq!(sim.turns().len(), 3);
}

#[test]
fn sensitive_and_angry_callers_are_handed_over_with_a_routed_ticket() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    let promise = sim.says(1200, said("my card was stolen", "account_security", 0.95, -1));
    assert!(promise.text.contains("security"), "{}", promise.text);
    let ticket = &sim.tickets()[0];
    assert_eq!((ticket.reason, ticket.skill_group.as_str()), (EscalationReason::Sensitive, "security"));
    assert!(sim.log.iter().any(|(_, a)| *a == Action::StopListening));

    let mut sim = Sim::phone();
    sim.finish_prompt();
    sim.says(1500, said("this is ridiculous, the worst service ever", "complaint", 0.9, -2));
    assert_eq!(sim.tickets()[0].reason, EscalationReason::NegativeEmotion);
}

#[test]
fn a_failed_transfer_promises_a_call_back_on_a_new_ticket() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    sim.says(800, said("agent please", "human_agent", 0.95, 0));
    sim.finish_prompt();
    sim.input(Input::Transfer(TransferResult::Failed));
    let sorry = sim.finish_prompt();
    assert!(sorry.text.contains("call you back"), "{}", sorry.text);
    let tickets = sim.tickets();
    assert_eq!(tickets.len(), 2);
    assert_eq!(tickets[1].follow_up, FollowUp::CallBack);
    assert_ne!(tickets[1].id, tickets[0].id, "receivers de-duplicate by id: a follow-up is a new ticket");
    assert_eq!(tickets[1].replaces.as_deref(), Some(tickets[0].id.as_str()));
    assert_eq!(tickets[0].replaces, None);
    assert_eq!(sim.outcome(), Some(Outcome::Escalated(EscalationReason::Requested)));
}

#[test]
fn a_hang_up_after_an_answer_is_abandoned_not_resolved() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    sim.says(800, said("when do you open", "store_hours", 0.9, 0));
    sim.input(Input::HungUp);
    assert_eq!(sim.outcome(), Some(Outcome::Abandoned));
    assert!(!sim.log.iter().any(|(_, a)| *a == Action::HangUp), "the caller hung up, not the bot");
    sim.input(Input::Dtmf('0'));
    assert!(sim.tickets().is_empty(), "nothing happens after the end");
}

#[test]
fn a_poorly_heard_number_is_read_back_before_it_is_used() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    sim.says(1000, said("where is my order", "order_status", 0.9, 0));
    sim.finish_prompt();
    let number =
        with_slot(said("four five seven one two", "out_of_scope", 0.3, 0), SlotKind::OrderNumber, "45712");
    let check = sim.says_with(1500, number.clone(), 0.4);
    assert_eq!(check.purpose, Purpose::Confirm);
    assert!(check.text.contains("4 5 7 1 2"), "{}", check.text);
    sim.finish_prompt();
    let again = sim.says(500, said("no", "deny", 0.9, 0));
    assert_eq!(again.purpose, Purpose::Ask(SlotKind::OrderNumber));
    sim.finish_prompt();
    sim.says_with(1500, number, 0.4);
    sim.finish_prompt();
    let answer = sim.says(500, said("yes", "affirm", 0.9, 0));
    assert_eq!(answer.purpose, Purpose::Answer);
    assert!(answer.text.contains("45712"), "{}", answer.text);
}

#[test]
fn shutdown_closes_the_call_politely() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    sim.input(Input::Shutdown);
    let last = sim.finish_prompt();
    assert_eq!(last.text, KnowledgePack::embedded().prompts.text(PromptKind::ShuttingDown, &Language::En));
    assert_eq!(sim.outcome(), Some(Outcome::Error));
}

#[test]
fn a_chinese_caller_is_answered_in_chinese() {
    let mut sim = Sim::phone();
    sim.finish_prompt();
    let reply = sim.says(1000, said("你们几点开门", "store_hours", 0.9, 0));
    assert_eq!(reply.language, Language::Zh);
    assert!(reply.text.chars().any(voicebot_core::language::is_han));
}
