//! The conversation's decisions, with no IO: who hands a caller to a person
//! and why ([`escalation`]), and how a call ends ([`outcome`]).
//!
//! Everything here takes facts about a turn and returns a decision; drivers
//! (the phone line, the kiosk, `simulate`) feed it. The full per-call state
//! machine (turn-taking, barge-in, timers) builds on these.

pub mod escalation;
pub mod outcome;
pub mod ticket;
