//! The conversation's decisions, with no IO: who hands a caller to a person
//! and why ([`escalation`]), and how a call ends ([`outcome`]).
//!
//! Everything here takes facts about a turn and returns a decision; drivers
//! (the phone line, the kiosk, `simulate`) feed it. [`call`] is the per-call
//! state machine (greeting, turn-taking, barge-in, timers, keypad) built on them.

pub mod call;
pub mod escalation;
pub mod outcome;
pub mod ticket;
