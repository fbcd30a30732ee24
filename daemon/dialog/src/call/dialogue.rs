//! The call's memory and what the bot says back to one caller turn.
//!
//! [`Dialogue`] is plain data (cloneable), so the call can work out a reply
//! speculatively on a copy before the turn is known to be over, and keep the
//! copy only if it is. Everything here is decided from the turn, the pack and
//! the memory: no clock, no IO.

use std::sync::Arc;

use voicebot_core::Language;
use voicebot_understanding::analysis::Analysis;
use voicebot_understanding::answer;
use voicebot_understanding::emotion::{Emotion, Trajectory};
use voicebot_understanding::pack::{KnowledgePack, PromptKind, fill};
use voicebot_understanding::slots::{Slot, SlotKind};

use crate::escalation::{Escalation, EscalationReason, Priority, TurnFacts};
use crate::outcome::OutcomeTracker;
use crate::ticket::{CallerTurn, TicketBuilder};

/// Below this recogniser confidence, a number the answer depends on is read back first.
pub const CONFIRM_BELOW: f32 = 0.6;

/// Hand-overs on elder lines and for VIP callers queue at least at this priority (pack scale 1–9).
pub const PRIORITY_LINE_FLOOR: u8 = 7;

/// Why the bot is saying something; decides what happens when it has been said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Greeting,
    /// An answer (ends with "anything else?").
    Answer,
    /// A question for a missing slot.
    Ask(SlotKind),
    /// Reads back a value heard poorly.
    Confirm,
    /// Did not understand; may offer the keypad menu.
    Retry,
    /// After silence.
    Reprompt,
    /// The hand-over promise; the transfer follows it.
    Handover,
    /// The last words before the bot hangs up.
    Closing,
}

impl Purpose {
    /// Whether the bot waits for the caller after saying it.
    pub fn expects_reply(self) -> bool {
        !matches!(self, Purpose::Handover | Purpose::Closing)
    }
}

/// A hand-over decided on a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoverPlan {
    pub reason: EscalationReason,
    pub intent: String,
    pub skill_group: String,
    pub priority: u8,
    pub suggested_answer: Option<String>,
    pub emotion: Emotion,
}

/// What was understood of a caller turn and answered (masked: safe to print and publish).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnReport {
    pub turn: u32,
    pub transcript: String,
    pub language: String,
    pub intent: String,
    pub confidence: f32,
    pub emotion: Emotion,
    pub reply_text: String,
    pub reason: Option<EscalationReason>,
    /// The turn came from the keypad, not from speech.
    pub keypad: bool,
}

/// The bot's reply to a turn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub text: String,
    pub language: Language,
    pub purpose: Purpose,
    pub handover: Option<HandoverPlan>,
    pub report: TurnReport,
}

/// A caller turn: what was understood, and how sure the recogniser was.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerInput {
    pub analysis: Analysis,
    /// The recogniser's confidence in the words, 1.0 for keypad input and typed text.
    pub asr_confidence: f32,
    pub keypad: bool,
    pub pressed_zero: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Confirming {
    intent: String,
    faq: Option<String>,
    slot: Slot,
}

/// Everything the call remembers between turns.
#[derive(Debug, Clone)]
pub(crate) struct Dialogue {
    pack: Arc<KnowledgePack>,
    pub(crate) escalation: Escalation,
    pub(crate) outcome: OutcomeTracker,
    pub(crate) tickets: TicketBuilder,
    slots: Vec<Slot>,
    trajectory: Trajectory,
    /// The intent whose answer waits for a slot, and the slot.
    asking: Option<(String, SlotKind)>,
    confirming: Option<Confirming>,
    /// The last thing worth repeating (answers and questions, not reprompts).
    pub(crate) last_words: Option<String>,
    pub(crate) last_purpose: Option<Purpose>,
    pub(crate) language: Language,
    turns: u32,
    keypad_menu: bool,
}

fn neutral() -> Emotion {
    Emotion {
        valence: 0,
        arousal: 0.0,
        label: voicebot_understanding::emotion::EmotionLabel::Neutral,
        score: 0.0,
        prosody: None,
    }
}

impl Dialogue {
    pub(crate) fn new(
        pack: Arc<KnowledgePack>,
        escalation: Escalation,
        tickets: TicketBuilder,
        language: Language,
        keypad_menu: bool,
    ) -> Dialogue {
        Dialogue {
            pack,
            escalation,
            outcome: OutcomeTracker::new(),
            tickets,
            slots: Vec::new(),
            trajectory: Trajectory::new(),
            asking: None,
            confirming: None,
            last_words: None,
            last_purpose: None,
            language,
            turns: 0,
            keypad_menu,
        }
    }

    pub(crate) fn pack(&self) -> &KnowledgePack {
        &self.pack
    }

    pub(crate) fn prompt(&self, kind: PromptKind) -> String {
        self.pack.prompts.text(kind, &self.language).to_owned()
    }

    /// The slot the bot asked for, if it waits for one.
    pub(crate) fn asking(&self) -> Option<(&str, SlotKind)> {
        self.asking.as_ref().map(|(intent, kind)| (intent.as_str(), *kind))
    }

    /// True when the caller is expected to read out or key in digits.
    pub(crate) fn wants_digits(&self) -> bool {
        matches!(self.asking, Some((_, SlotKind::OrderNumber | SlotKind::Phone)))
    }

    /// A keypad turn: digits for the slot asked for, a menu choice, or 0.
    pub(crate) fn keypad_input(
        &self,
        intent: &str,
        text: String,
        slots: Vec<Slot>,
        zero: bool,
    ) -> CallerInput {
        let sensitive = self.pack.intent(intent).is_some_and(|i| i.sensitive);
        CallerInput {
            analysis: Analysis {
                text,
                language: self.language.clone(),
                intent: voicebot_understanding::intent::IntentResult {
                    intent: intent.to_owned(),
                    confidence: 1.0,
                    faq: None,
                    sensitive,
                },
                slots,
                emotion: neutral(),
            },
            asr_confidence: 1.0,
            keypad: true,
            pressed_zero: zero,
        }
    }

    fn remember(&mut self, new: &[Slot]) {
        for slot in new {
            self.slots.retain(|s| s.kind != slot.kind);
            self.slots.push(slot.clone());
        }
    }

    /// Records what the bot said (masked text) in the transcript.
    pub(crate) fn bot_said(&mut self, text: &str, intent: &str, answered: bool, purpose: Purpose) {
        self.tickets.bot(text, intent, answered);
        if !matches!(purpose, Purpose::Reprompt | Purpose::Retry) {
            self.last_words = Some(text.to_owned());
        }
        self.last_purpose = Some(purpose);
    }

    /// Answers one caller turn.
    pub(crate) fn respond(&mut self, input: &CallerInput, priority: Priority) -> Reply {
        let heard = &input.analysis;
        self.turns += 1;
        if !input.keypad && !heard.text.trim().is_empty() {
            self.language = if heard.language == Language::Zh { Language::Zh } else { Language::En };
        }
        self.trajectory.push(heard.emotion);
        let intent = heard.intent.intent.clone();
        let after_anything_else = self.last_purpose == Some(Purpose::Answer);

        // A read-back: "yes" keeps the value, "no" asks again, anything else moves on.
        let mut new_slots = heard.slots.clone();
        let mut answering = (intent.clone(), heard.intent.faq.clone());
        let mut confirmed = false;
        if let Some(c) = self.confirming.take() {
            match intent.as_str() {
                "affirm" => {
                    new_slots.push(c.slot);
                    answering = (c.intent, c.faq);
                    confirmed = true;
                }
                "deny" => {
                    self.asking = Some((c.intent.clone(), c.slot.kind));
                    answering = (c.intent, None);
                    confirmed = true;
                }
                _ => {}
            }
        }
        // A follow-up that supplies the slot the bot asked for answers the earlier intent.
        if let Some((asked_intent, kind)) = self.asking.clone()
            && !confirmed
            && new_slots.iter().any(|s| s.kind == kind)
            && (matches!(intent.as_str(), "out_of_scope" | "affirm" | "deny" | "repeat")
                || intent == asked_intent)
        {
            answering = (asked_intent, None);
        }

        let masked = heard.masked();
        let facts = TurnFacts {
            intent: if confirmed { "affirm" } else { &intent },
            confidence: if confirmed { 1.0 } else { heard.intent.confidence },
            sensitive: heard.intent.sensitive,
            valence: heard.emotion.valence,
            worsening: self.trajectory.is_worsening(),
            pressed_zero: input.pressed_zero,
            new_information: !new_slots.is_empty() || confirmed,
        };
        let reason = self.escalation.assess(&facts);
        // "no" to "anything else?" is the caller saying they are done.
        let said = if after_anything_else && intent == "deny" { "goodbye" } else { intent.as_str() };
        if !(after_anything_else && intent == "affirm") {
            self.outcome.caller_said(said);
        }
        self.tickets.caller(&CallerTurn {
            text: &masked.text,
            language: &masked.language,
            intent: &masked.intent,
            confidence: masked.confidence,
            valence: heard.emotion.valence,
            emotion_label: heard.emotion.label.as_str(),
            slots: &masked.slots,
        });

        let (text, purpose, handover) = match reason {
            Some(reason) => self.hand_over(reason, &answering.0, heard.emotion, priority),
            None => self.reply(input, &answering, &new_slots, said, after_anything_else),
        };
        let report = TurnReport {
            turn: self.turns,
            transcript: masked.text,
            language: masked.language,
            intent: masked.intent,
            confidence: masked.confidence,
            emotion: heard.emotion,
            reply_text: text.clone(),
            reason,
            keypad: input.keypad,
        };
        Reply { text, language: self.language.clone(), purpose, handover, report }
    }

    fn hand_over(
        &mut self,
        reason: EscalationReason,
        intent: &str,
        emotion: Emotion,
        priority: Priority,
    ) -> (String, Purpose, Option<HandoverPlan>) {
        self.outcome.escalated(reason);
        let pack_intent = self.pack.intent(intent);
        // A sensitive intent's own answer says where the caller is going ("our security team").
        let promise_intent = if pack_intent.is_some_and(|i| i.sensitive) { intent } else { "human_agent" };
        let promise = answer::compose(&self.pack, promise_intent, None, &self.slots, &self.language).text;
        let routed = pack_intent.filter(|i| !matches!(i.name.as_str(), "out_of_scope" | "human_agent"));
        let suggested = routed
            .map(|i| answer::compose(&self.pack, &i.name, None, &self.slots, &self.language))
            .filter(|a| a.asking_for.is_none())
            .map(|a| a.text);
        let mut queue_priority = pack_intent.map_or(1, |i| i.priority);
        if priority != Priority::Standard {
            queue_priority = queue_priority.max(PRIORITY_LINE_FLOOR);
        }
        let plan = HandoverPlan {
            reason,
            intent: intent.to_owned(),
            skill_group: routed.map_or("general", |i| i.skill_group.as_str()).to_owned(),
            priority: queue_priority,
            suggested_answer: suggested,
            emotion,
        };
        self.bot_said(&promise, intent, false, Purpose::Handover);
        (promise, Purpose::Handover, Some(plan))
    }

    fn reply(
        &mut self,
        input: &CallerInput,
        (intent, faq): &(String, Option<String>),
        new_slots: &[Slot],
        said: &str,
        after_anything_else: bool,
    ) -> (String, Purpose, Option<HandoverPlan>) {
        let compose =
            |d: &Dialogue, name: &str| answer::compose(&d.pack, name, None, &d.slots, &d.language).text;
        let (text, purpose, answered) = match said {
            "repeat" => {
                let again = compose(self, "repeat");
                let last = self.last_words.clone().unwrap_or_default();
                (
                    format!("{again} {last}").trim().to_owned(),
                    self.last_purpose.unwrap_or(Purpose::Answer),
                    false,
                )
            }
            "goodbye" => (compose(self, "goodbye"), Purpose::Closing, false),
            "affirm" if after_anything_else => (compose(self, "deny"), Purpose::Retry, false),
            _ if input.analysis.text.trim().is_empty() => {
                (self.with_menu(self.prompt(PromptKind::DidNotCatch), input), Purpose::Retry, false)
            }
            _ => {
                // A poorly heard number the answer depends on is read back before it is used.
                let doubtful = new_slots
                    .iter()
                    .find(|s| matches!(s.kind, SlotKind::OrderNumber | SlotKind::Phone))
                    .filter(|_| input.asr_confidence < CONFIRM_BELOW);
                match doubtful {
                    Some(slot) => {
                        let spelled: Vec<String> = slot.value.chars().map(String::from).collect();
                        let text = fill(&self.prompt(PromptKind::Confirm), &[("value", &spelled.join(" "))]);
                        let others: Vec<Slot> = new_slots.iter().filter(|s| *s != slot).cloned().collect();
                        self.remember(&others);
                        self.confirming =
                            Some(Confirming { intent: intent.clone(), faq: faq.clone(), slot: slot.clone() });
                        (text, Purpose::Confirm, false)
                    }
                    None => {
                        self.remember(new_slots);
                        let reply =
                            answer::compose(&self.pack, intent, faq.as_deref(), &self.slots, &self.language);
                        if let Some(kind) = reply.asking_for {
                            self.asking = Some((intent.clone(), kind));
                            (reply.text, Purpose::Ask(kind), false)
                        } else if intent == "out_of_scope" {
                            (self.with_menu(reply.text, input), Purpose::Retry, false)
                        } else if matches!(intent.as_str(), "greeting" | "affirm" | "deny") {
                            (reply.text, Purpose::Retry, false)
                        } else {
                            self.asking = None;
                            self.outcome.answered();
                            let more = self.prompt(PromptKind::AnythingElse);
                            (format!("{} {more}", reply.text), Purpose::Answer, true)
                        }
                    }
                }
            }
        };
        self.bot_said(&text, intent, answered, purpose);
        (text, purpose, None)
    }

    /// Appends the keypad menu when speech has failed once already and the next failure hands over.
    fn with_menu(&self, text: String, input: &CallerInput) -> String {
        let failing = self.escalation.next_failure_hands_over();
        if !self.keypad_menu || input.keypad || self.pack.menu.is_empty() || !failing {
            return text;
        }
        let option = self.prompt(PromptKind::MenuOption);
        let options: Vec<String> = self
            .pack
            .menu
            .iter()
            .map(|m| {
                let label = m.labels.get(&self.language).or_else(|| m.labels.values().next());
                fill(&option, &[("digit", &m.digit.to_string()), ("label", label.map_or("", String::as_str))])
            })
            .collect();
        format!("{text} {}", fill(&self.prompt(PromptKind::Menu), &[("options", &options.join(" "))]))
    }
}
