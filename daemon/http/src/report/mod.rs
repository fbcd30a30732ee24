//! The daily service report: how the bot served callers over a day.
//!
//! - [`DailyReport::compute`]: the math, pure, over stored calls;
//! - [`store::ReportStore`]: the small SQLite store of per-call records, with
//!   retention (emotion readings go first, 72 h by default);
//! - [`html::page`]: the report as one HTML page with inline SVG charts;
//! - [`next_publication`]: when the next daily report is due.
//!
//! Definitions (all over the calls that ended inside the window):
//! - per-intent volume: caller turns recognised as each intent;
//! - containment rate: calls `resolved` (no hand-over) / all calls;
//! - transfer rate by reason: calls `escalated` for that reason / all calls;
//! - abandonment rate: calls the caller left (`abandoned`) or went silent on
//!   (`timeout`) before a resolution / all calls;
//! - average emotion: mean valence (-2 ..= +2) of turns with an emotion reading;
//! - top unanswered questions: masked transcripts of `out_of_scope` turns,
//!   grouped by their normalised text, most frequent first.

pub mod html;
pub mod store;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

pub use store::{ReportStore, StoreError};

/// The intent the knowledge pack gives a question it cannot answer.
pub const OUT_OF_SCOPE: &str = "out_of_scope";
/// How many unanswered questions a report lists.
pub const TOP_QUESTIONS: usize = 10;

/// One call as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCall {
    pub ended_ms: u64,
    pub outcome: String,
    pub reason: Option<String>,
    pub turns: Vec<StoredTurn>,
}

/// One turn as the store keeps it (emotion cleared after its retention).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTurn {
    pub intent: String,
    pub valence: Option<i8>,
    pub emotion: Option<String>,
    pub question: Option<String>,
}

/// A question callers asked that the bot could not answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Question {
    /// The most recent masked wording of it.
    pub text: String,
    pub count: u64,
}

/// The report, as published over MQTT (JSON) and shown at `/report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyReport {
    /// The window, Unix milliseconds, `from_ms` inclusive, `to_ms` exclusive.
    pub from_ms: u64,
    pub to_ms: u64,
    pub calls: u64,
    /// Calls by outcome code.
    pub outcomes: BTreeMap<String, u64>,
    /// Caller turns by intent.
    pub intents: BTreeMap<String, u64>,
    /// `None` without calls.
    pub containment_rate: Option<f64>,
    /// Hand-overs by escalation reason.
    pub transfers_by_reason: BTreeMap<String, u64>,
    /// Hand-overs by reason / all calls.
    pub transfer_rate_by_reason: BTreeMap<String, f64>,
    pub abandonment_rate: Option<f64>,
    /// Mean valence of turns with an emotion reading; `None` without any.
    pub average_valence: Option<f64>,
    /// Turns by emotion label.
    pub emotions: BTreeMap<String, u64>,
    pub top_unanswered: Vec<Question>,
}

impl DailyReport {
    /// The report over `calls` that ended in `[from_ms, to_ms)`; others are ignored.
    pub fn compute(from_ms: u64, to_ms: u64, calls: &[StoredCall]) -> DailyReport {
        let mut report = DailyReport {
            from_ms,
            to_ms,
            calls: 0,
            outcomes: BTreeMap::new(),
            intents: BTreeMap::new(),
            containment_rate: None,
            transfers_by_reason: BTreeMap::new(),
            transfer_rate_by_reason: BTreeMap::new(),
            abandonment_rate: None,
            average_valence: None,
            emotions: BTreeMap::new(),
            top_unanswered: vec![],
        };
        let (mut resolved, mut abandoned) = (0u64, 0u64);
        let (mut valence_sum, mut valence_n) = (0i64, 0u64);
        // Normalised text → (count, latest wording, latest time).
        let mut questions: HashMap<String, (u64, String, u64)> = HashMap::new();
        for call in calls.iter().filter(|c| (from_ms..to_ms).contains(&c.ended_ms)) {
            report.calls += 1;
            *report.outcomes.entry(call.outcome.clone()).or_default() += 1;
            match call.outcome.as_str() {
                "resolved" => resolved += 1,
                "abandoned" | "timeout" => abandoned += 1,
                "escalated" => {
                    let reason = call.reason.clone().unwrap_or_else(|| "unknown".into());
                    *report.transfers_by_reason.entry(reason).or_default() += 1;
                }
                _ => {}
            }
            for turn in &call.turns {
                *report.intents.entry(turn.intent.clone()).or_default() += 1;
                if let Some(v) = turn.valence {
                    valence_sum += i64::from(v);
                    valence_n += 1;
                }
                if let Some(label) = &turn.emotion {
                    *report.emotions.entry(label.clone()).or_default() += 1;
                }
                if turn.intent == OUT_OF_SCOPE
                    && let Some(text) = turn.question.as_deref()
                {
                    let key = normalise(text);
                    if key.is_empty() {
                        continue;
                    }
                    let entry = questions.entry(key).or_insert((0, String::new(), 0));
                    entry.0 += 1;
                    if call.ended_ms >= entry.2 {
                        entry.1 = text.trim().to_owned();
                        entry.2 = call.ended_ms;
                    }
                }
            }
        }
        if report.calls > 0 {
            let all = report.calls as f64;
            report.containment_rate = Some(resolved as f64 / all);
            report.abandonment_rate = Some(abandoned as f64 / all);
            report.transfer_rate_by_reason =
                report.transfers_by_reason.iter().map(|(r, n)| (r.clone(), *n as f64 / all)).collect();
        }
        if valence_n > 0 {
            report.average_valence = Some(valence_sum as f64 / valence_n as f64);
        }
        let mut top: Vec<(String, (u64, String, u64))> = questions.into_iter().collect();
        // Most asked first; ties by text, so the order is stable.
        top.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
        report.top_unanswered = top
            .into_iter()
            .take(TOP_QUESTIONS)
            .map(|(_, (count, text, _))| Question { text, count })
            .collect();
        report
    }
}

/// Lowercase words without punctuation, single-spaced: "Do you sell gift cards?"
/// and "do you sell gift cards" are one question.
pub fn normalise(text: &str) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_alphanumeric() || c == '*' || c == '#' { c } else { ' ' }).collect();
    cleaned.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

const DAY_MS: u64 = 86_400_000;

/// When the daily report is next due after `now_ms`: the next `hour_utc:00`
/// UTC strictly after now. The report then covers the 24 h before that time.
pub fn next_publication(now_ms: u64, hour_utc: u8) -> u64 {
    let day_start = now_ms - now_ms % DAY_MS;
    let at = day_start + u64::from(hour_utc % 24) * 3_600_000;
    if at > now_ms { at } else { at + DAY_MS }
}

/// The window a report published at `at_ms` covers.
pub fn window_before(at_ms: u64) -> (u64, u64) {
    (at_ms.saturating_sub(DAY_MS), at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(intent: &str, valence: Option<i8>, question: Option<&str>) -> StoredTurn {
        StoredTurn {
            intent: intent.into(),
            valence,
            emotion: valence.map(|v| if v < 0 { "negative".into() } else { "neutral".into() }),
            question: question.map(Into::into),
        }
    }

    fn call(ended_ms: u64, outcome: &str, reason: Option<&str>, turns: Vec<StoredTurn>) -> StoredCall {
        StoredCall { ended_ms, outcome: outcome.into(), reason: reason.map(Into::into), turns }
    }

    fn sample() -> Vec<StoredCall> {
        vec![
            call(10, "resolved", None, vec![turn("opening_hours", Some(1), None)]),
            call(
                20,
                "resolved",
                None,
                vec![turn("opening_hours", Some(0), None), turn("card_lost", Some(0), None)],
            ),
            call(30, "escalated", Some("requested"), vec![turn("agent", Some(-1), None)]),
            call(40, "escalated", Some("negative_emotion"), vec![turn("card_lost", Some(-2), None)]),
            call(
                50,
                "abandoned",
                None,
                vec![
                    turn(OUT_OF_SCOPE, None, Some("Do you sell gift cards?")),
                    turn(OUT_OF_SCOPE, None, Some("what about parking")),
                ],
            ),
            call(
                60,
                "timeout",
                None,
                vec![
                    turn(OUT_OF_SCOPE, Some(0), Some("do you sell  gift cards")),
                    turn(OUT_OF_SCOPE, None, Some("?")),
                ],
            ),
            call(70, "escalated", Some("requested"), vec![]),
            call(80, "error", None, vec![]),
            // Outside the window.
            call(100, "resolved", None, vec![turn("opening_hours", Some(2), None)]),
        ]
    }

    #[test]
    fn rates_are_shares_of_all_calls_in_the_window() {
        let r = DailyReport::compute(0, 100, &sample());
        assert_eq!(r.calls, 8);
        assert_eq!(r.containment_rate, Some(2.0 / 8.0));
        assert_eq!(r.abandonment_rate, Some(2.0 / 8.0), "abandoned and timeout both count");
        assert_eq!(r.transfers_by_reason.get("requested"), Some(&2));
        assert_eq!(r.transfer_rate_by_reason.get("requested"), Some(&(2.0 / 8.0)));
        assert_eq!(r.transfer_rate_by_reason.get("negative_emotion"), Some(&(1.0 / 8.0)));
        assert_eq!(r.outcomes.get("error"), Some(&1));
        assert_eq!(r.outcomes.values().sum::<u64>(), 8);
    }

    #[test]
    fn intent_volume_counts_turns() {
        let r = DailyReport::compute(0, 100, &sample());
        assert_eq!(r.intents.get("opening_hours"), Some(&2));
        assert_eq!(r.intents.get("card_lost"), Some(&2));
        assert_eq!(r.intents.get(OUT_OF_SCOPE), Some(&4));
    }

    #[test]
    fn average_emotion_is_over_turns_with_a_reading_only() {
        let r = DailyReport::compute(0, 100, &sample());
        // 1 + 0 + 0 - 1 - 2 + 0 over 6 readings.
        assert_eq!(r.average_valence, Some(-2.0 / 6.0));
        assert_eq!(r.emotions.get("negative"), Some(&2));
    }

    #[test]
    fn unanswered_questions_are_grouped_by_normalised_text_most_asked_first() {
        let r = DailyReport::compute(0, 100, &sample());
        assert_eq!(
            r.top_unanswered,
            vec![
                Question { text: "do you sell  gift cards".into(), count: 2 },
                Question { text: "what about parking".into(), count: 1 },
            ],
            "the latest wording is shown; punctuation-only text is dropped"
        );
    }

    #[test]
    fn an_empty_day_has_no_rates() {
        let r = DailyReport::compute(0, 100, &[]);
        assert_eq!(
            (r.calls, r.containment_rate, r.abandonment_rate, r.average_valence),
            (0, None, None, None)
        );
        assert!(r.top_unanswered.is_empty());
    }

    #[test]
    fn only_the_top_ten_questions_are_listed() {
        let calls: Vec<StoredCall> = (0..15u64)
            .map(|i| {
                let turns =
                    (0..=i).map(|_| turn(OUT_OF_SCOPE, None, Some(&format!("question {i}")))).collect();
                call(i, "abandoned", None, turns)
            })
            .collect();
        let r = DailyReport::compute(0, 100, &calls);
        assert_eq!(r.top_unanswered.len(), TOP_QUESTIONS);
        assert_eq!(r.top_unanswered[0], Question { text: "question 14".into(), count: 15 });
    }

    #[test]
    fn the_report_is_due_at_the_next_configured_hour_utc() {
        let day = DAY_MS;
        assert_eq!(next_publication(3 * day + 1, 0), 4 * day);
        assert_eq!(next_publication(3 * day, 0), 4 * day, "strictly after now");
        assert_eq!(next_publication(3 * day + 3_600_000, 6), 3 * day + 6 * 3_600_000);
        assert_eq!(next_publication(3 * day + 7 * 3_600_000, 6), 4 * day + 6 * 3_600_000);
        assert_eq!(window_before(4 * day), (3 * day, 4 * day));
    }
}
