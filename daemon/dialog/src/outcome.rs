//! How a call ends: exactly one outcome per call, decided honestly.
//!
//! - `resolved`: the caller said goodbye, or confirmed, after the bot answered.
//! - `escalated`: handed to a person, with the reason.
//! - `abandoned`: the caller hung up before resolution. A hang-up is never
//!   counted as resolved, however well the call seemed to go.
//! - `timeout` / `error`: the bot gave up on silence, or something failed.

use serde::Serialize;

use crate::escalation::EscalationReason;

/// The one outcome of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum Outcome {
    Resolved,
    Escalated(EscalationReason),
    Abandoned,
    Timeout,
    Error,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Resolved => "resolved",
            Outcome::Escalated(_) => "escalated",
            Outcome::Abandoned => "abandoned",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
        }
    }

    pub fn reason(self) -> Option<EscalationReason> {
        match self {
            Outcome::Escalated(reason) => Some(reason),
            _ => None,
        }
    }
}

/// How the call's media ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The caller hung up (or, in `simulate`, ran out of turns).
    CallerHungUp,
    /// The bot ended the call after a goodbye.
    BotHungUp,
    /// The bot ended the call after repeated silence.
    NoInput,
    Failed,
}

/// Tracks what has happened so the outcome can be decided once, at the end.
#[derive(Debug, Clone, Default)]
pub struct OutcomeTracker {
    answered: bool,
    resolved: bool,
    escalated: Option<EscalationReason>,
}

impl OutcomeTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bot gave a real answer (not a question for a slot, not "I did not understand").
    pub fn answered(&mut self) {
        self.answered = true;
    }

    /// The caller's turn: a goodbye or confirmation after an answer resolves the call.
    pub fn caller_said(&mut self, intent: &str) {
        if self.answered && matches!(intent, "goodbye" | "affirm") {
            self.resolved = true;
        }
    }

    /// The call was handed to a person; this decides the outcome.
    pub fn escalated(&mut self, reason: EscalationReason) {
        self.escalated.get_or_insert(reason);
    }

    /// The one outcome, given how the call ended.
    pub fn finish(&self, end: CallEnd) -> Outcome {
        if let Some(reason) = self.escalated {
            return Outcome::Escalated(reason);
        }
        match end {
            CallEnd::Failed => Outcome::Error,
            _ if self.resolved => Outcome::Resolved,
            CallEnd::NoInput => Outcome::Timeout,
            CallEnd::CallerHungUp | CallEnd::BotHungUp => Outcome::Abandoned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goodbye_after_an_answer_is_resolved() {
        let mut t = OutcomeTracker::new();
        t.caller_said("order_status");
        t.answered();
        t.caller_said("goodbye");
        assert_eq!(t.finish(CallEnd::CallerHungUp), Outcome::Resolved);
    }

    #[test]
    fn a_hang_up_without_resolution_is_abandoned_never_resolved() {
        let mut t = OutcomeTracker::new();
        t.caller_said("order_status");
        t.answered();
        assert_eq!(t.finish(CallEnd::CallerHungUp), Outcome::Abandoned);
        let mut early = OutcomeTracker::new();
        early.caller_said("goodbye");
        assert_eq!(early.finish(CallEnd::CallerHungUp), Outcome::Abandoned, "goodbye before any answer");
    }

    #[test]
    fn escalation_decides_the_outcome_with_its_reason() {
        let mut t = OutcomeTracker::new();
        t.answered();
        t.caller_said("affirm");
        t.escalated(EscalationReason::Sensitive);
        t.escalated(EscalationReason::Requested);
        assert_eq!(t.finish(CallEnd::BotHungUp), Outcome::Escalated(EscalationReason::Sensitive));
    }

    #[test]
    fn silence_and_failures_have_their_own_outcomes() {
        assert_eq!(OutcomeTracker::new().finish(CallEnd::NoInput), Outcome::Timeout);
        let mut t = OutcomeTracker::new();
        t.answered();
        t.caller_said("goodbye");
        assert_eq!(t.finish(CallEnd::Failed), Outcome::Error);
    }

    #[test]
    fn outcomes_serialise_as_outcome_and_reason() {
        let json = |o: Outcome| serde_json::to_string(&o).unwrap();
        assert_eq!(json(Outcome::Resolved), r#"{"outcome":"resolved"}"#);
        assert_eq!(
            json(Outcome::Escalated(EscalationReason::Requested)),
            r#"{"outcome":"escalated","reason":"requested"}"#
        );
    }
}
