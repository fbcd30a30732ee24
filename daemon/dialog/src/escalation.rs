//! The escalation policy: when the bot hands the caller to a person.
//!
//! Rules, first match wins:
//! 1. `requested`: the caller asks for a person (intent `human_agent`) or presses 0.
//! 2. `sensitive`: the intent is flagged sensitive in the pack (fraud, account security).
//! 3. `negative_emotion`: valence at or below the limit (default −2), or a worsening trend.
//! 4. `repeated_failure`: this many consecutive unresolved turns (default 3): out of scope,
//!    confidence below the floor, or the same question asked again.
//! 5. `elder_line` / `vip`: the line or caller policy gives a person priority; offered up
//!    front rather than forced, so it applies when the caller accepts (`affirm`) the offer.

use serde::Serialize;

/// Why a caller was handed over (a contract: scripts and agents' queues use these codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    Requested,
    Sensitive,
    NegativeEmotion,
    RepeatedFailure,
    ElderLine,
    Vip,
}

impl EscalationReason {
    pub fn code(self) -> &'static str {
        match self {
            EscalationReason::Requested => "requested",
            EscalationReason::Sensitive => "sensitive",
            EscalationReason::NegativeEmotion => "negative_emotion",
            EscalationReason::RepeatedFailure => "repeated_failure",
            EscalationReason::ElderLine => "elder_line",
            EscalationReason::Vip => "vip",
        }
    }
}

/// Configurable thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    /// Consecutive unresolved turns before a hand-over.
    pub max_failed_turns: u32,
    /// Below this intent confidence a turn counts as unresolved.
    pub confidence_floor: f32,
    /// At or below this valence the caller is handed over.
    pub valence_limit: i8,
    /// Hand over when the emotion trajectory is worsening.
    pub on_worsening: bool,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            max_failed_turns: 3,
            confidence_floor: 0.55,
            valence_limit: -2,
            on_worsening: true,
        }
    }
}

impl EscalationPolicy {
    /// The `[dialog]` section's thresholds.
    pub fn from_config(config: &voicebot_core::config::DialogConfig) -> EscalationPolicy {
        EscalationPolicy {
            max_failed_turns: config.max_failed_turns,
            confidence_floor: config.confidence_floor,
            valence_limit: config.valence_limit,
            on_worsening: config.hand_over_on_worsening,
        }
    }
}

/// Per-line or per-caller priority for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    #[default]
    Standard,
    ElderLine,
    Vip,
}

/// What the policy needs to know about one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnFacts<'a> {
    pub intent: &'a str,
    pub confidence: f32,
    pub sensitive: bool,
    pub valence: i8,
    pub worsening: bool,
    /// DTMF 0 was pressed during the turn.
    pub pressed_zero: bool,
    /// The turn gave something new (a slot the bot asked for): a follow-up on
    /// the same intent, not the same question again.
    pub new_information: bool,
}

/// The policy with its per-call memory.
#[derive(Debug, Clone)]
pub struct Escalation {
    policy: EscalationPolicy,
    priority: Priority,
    failed_turns: u32,
    last_intent: Option<String>,
    offered_person: bool,
}

/// Intents that are conversational glue: repeating them is not asking the same question again.
const GLUE: [&str; 5] = ["greeting", "affirm", "deny", "repeat", "goodbye"];

impl Escalation {
    pub fn new(policy: EscalationPolicy, priority: Priority) -> Escalation {
        Escalation { policy, priority, failed_turns: 0, last_intent: None, offered_person: false }
    }

    /// True when the greeting should offer a person up front (elder lines, VIP callers).
    pub fn offers_person_up_front(&self) -> bool {
        self.priority != Priority::Standard
    }

    /// Records that the bot offered a person (so `affirm` accepts it).
    pub fn offered_person(&mut self) {
        self.offered_person = true;
    }

    pub fn failed_turns(&self) -> u32 {
        self.failed_turns
    }

    /// True after a failed turn when one more hands the caller over.
    pub fn next_failure_hands_over(&self) -> bool {
        self.failed_turns >= 1 && self.failed_turns + 1 >= self.policy.max_failed_turns
    }

    /// Decides on one turn; `None` means the bot carries on.
    pub fn assess(&mut self, turn: &TurnFacts<'_>) -> Option<EscalationReason> {
        let repeated = !GLUE.contains(&turn.intent)
            && !turn.new_information
            && self.last_intent.as_deref() == Some(turn.intent);
        let unresolved =
            turn.intent == "out_of_scope" || turn.confidence < self.policy.confidence_floor || repeated;
        // Asking again shows the first answer did not help: that turn failed too.
        let before = if repeated { self.failed_turns.max(1) } else { self.failed_turns };
        self.failed_turns = if unresolved { before + 1 } else { 0 };
        self.last_intent = Some(turn.intent.to_owned());
        let accepted_offer = self.offered_person && turn.intent == "affirm";
        self.offered_person = false;

        if turn.intent == "human_agent" || turn.pressed_zero {
            Some(EscalationReason::Requested)
        } else if turn.sensitive {
            Some(EscalationReason::Sensitive)
        } else if turn.valence <= self.policy.valence_limit || (self.policy.on_worsening && turn.worsening) {
            Some(EscalationReason::NegativeEmotion)
        } else if self.failed_turns >= self.policy.max_failed_turns {
            Some(EscalationReason::RepeatedFailure)
        } else if accepted_offer {
            match self.priority {
                Priority::ElderLine => Some(EscalationReason::ElderLine),
                Priority::Vip => Some(EscalationReason::Vip),
                Priority::Standard => Some(EscalationReason::Requested),
            }
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(intent: &str) -> TurnFacts<'_> {
        TurnFacts {
            intent,
            confidence: 0.9,
            sensitive: false,
            valence: 0,
            worsening: false,
            pressed_zero: false,
            new_information: false,
        }
    }

    fn standard() -> Escalation {
        Escalation::new(EscalationPolicy::default(), Priority::Standard)
    }

    #[test]
    fn asking_for_a_person_or_pressing_zero_hands_over_at_once() {
        assert_eq!(standard().assess(&turn("human_agent")), Some(EscalationReason::Requested));
        let zero = TurnFacts { pressed_zero: true, ..turn("order_status") };
        assert_eq!(standard().assess(&zero), Some(EscalationReason::Requested));
    }

    #[test]
    fn a_sensitive_intent_hands_over() {
        let fraud = TurnFacts { sensitive: true, ..turn("account_security") };
        assert_eq!(standard().assess(&fraud), Some(EscalationReason::Sensitive));
    }

    #[test]
    fn very_negative_or_worsening_emotion_hands_over() {
        let angry = TurnFacts { valence: -2, ..turn("complaint") };
        assert_eq!(standard().assess(&angry), Some(EscalationReason::NegativeEmotion));
        let worse = TurnFacts { valence: -1, worsening: true, ..turn("order_status") };
        assert_eq!(standard().assess(&worse), Some(EscalationReason::NegativeEmotion));
        let annoyed = TurnFacts { valence: -1, ..turn("order_status") };
        assert_eq!(standard().assess(&annoyed), None);
    }

    #[test]
    fn three_unresolved_turns_in_a_row_hand_over() {
        let mut e = standard();
        assert_eq!(e.assess(&turn("out_of_scope")), None);
        let unsure = TurnFacts { confidence: 0.3, ..turn("store_hours") };
        assert_eq!(e.assess(&unsure), None);
        assert_eq!(e.assess(&turn("out_of_scope")), Some(EscalationReason::RepeatedFailure));
    }

    #[test]
    fn a_resolved_turn_resets_the_failure_count() {
        let mut e = standard();
        e.assess(&turn("out_of_scope"));
        e.assess(&turn("out_of_scope"));
        assert_eq!(e.assess(&turn("store_hours")), None);
        assert_eq!(e.failed_turns(), 0);
        assert_eq!(e.assess(&turn("out_of_scope")), None);
    }

    #[test]
    fn asking_the_same_question_again_counts_as_unresolved() {
        let mut e = standard();
        assert_eq!(e.assess(&turn("order_status")), None);
        assert_eq!(e.assess(&turn("order_status")), None);
        assert_eq!(e.assess(&turn("order_status")), Some(EscalationReason::RepeatedFailure));
        // Giving the order number the bot asked for is a follow-up, not a repeat.
        let mut e = standard();
        assert_eq!(e.assess(&turn("order_status")), None);
        let number = TurnFacts { new_information: true, ..turn("order_status") };
        assert_eq!(e.assess(&number), None);
        assert_eq!(e.failed_turns(), 0);
        // Saying "yes" twice is not a failure.
        let mut e = standard();
        for _ in 0..4 {
            assert_eq!(e.assess(&turn("affirm")), None);
        }
    }

    #[test]
    fn an_elder_line_offers_a_person_and_hands_over_when_accepted() {
        let mut e = Escalation::new(EscalationPolicy::default(), Priority::ElderLine);
        assert!(e.offers_person_up_front());
        e.offered_person();
        assert_eq!(e.assess(&turn("affirm")), Some(EscalationReason::ElderLine));
        let mut vip = Escalation::new(EscalationPolicy::default(), Priority::Vip);
        vip.offered_person();
        assert_eq!(vip.assess(&turn("deny")), None);
        assert!(!standard().offers_person_up_front());
    }

    #[test]
    fn reason_codes_are_the_contract_strings() {
        let codes: Vec<&str> = [
            EscalationReason::Requested,
            EscalationReason::Sensitive,
            EscalationReason::NegativeEmotion,
            EscalationReason::RepeatedFailure,
            EscalationReason::ElderLine,
            EscalationReason::Vip,
        ]
        .iter()
        .map(|r| r.code())
        .collect();
        assert_eq!(
            codes,
            ["requested", "sensitive", "negative_emotion", "repeated_failure", "elder_line", "vip"]
        );
    }
}
