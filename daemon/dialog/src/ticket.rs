//! The hand-over ticket: everything the human agent needs so the caller
//! never has to repeat themselves.
//!
//! The core takes no clock and no randomness: the driver supplies the ULID
//! and the times. Text given to a [`TicketBuilder`] must already be masked
//! (`voicebot_understanding::pii`): a ticket leaves the process. The JSON
//! shape is documented by `ticket.schema.json` beside this crate.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::escalation::EscalationReason;

/// Who spoke a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Caller,
    Bot,
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketLine {
    pub turn: u32,
    pub speaker: Speaker,
    pub text: String,
    /// Caller lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emotion: Option<TicketEmotion>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketEmotion {
    pub valence: i8,
    pub label: String,
}

/// What the agent picks up from.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Handover {
    /// What the bot already answered (intents).
    pub tried: Vec<String>,
    /// What the bot told the caller would happen.
    pub promised: Vec<String>,
    /// What is still open.
    pub open: Vec<String>,
}

/// A suggested answer or next step from the knowledge pack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentAssist {
    pub suggested_answer: Option<String>,
    pub next_step: String,
}

/// What happens after the hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    /// The caller is being transferred to an agent.
    #[default]
    Transfer,
    /// No agent could take the call: someone must call the caller back.
    CallBack,
}

/// A hand-over ticket (serialised as the contract JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ticket {
    pub id: String,
    pub channel: String,
    pub line: Option<String>,
    /// Masked caller id, e.g. `*******0958`.
    pub caller_id: Option<String>,
    pub started_at_ms: u64,
    pub handed_over_at_ms: u64,
    pub language: String,
    pub reason: EscalationReason,
    pub skill_group: String,
    pub priority: u8,
    pub summary: String,
    pub transcript: Vec<TicketLine>,
    pub slots: BTreeMap<String, String>,
    pub handover: Handover,
    pub agent_assist: AgentAssist,
    pub follow_up: FollowUp,
    /// For a call-back ticket: the id of the hand-over ticket it follows up
    /// (receivers de-duplicate by id, so a follow-up is a new ticket).
    pub replaces: Option<String>,
}

/// Where a call is: channel, line and caller, as the driver knows them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallContext {
    pub channel: String,
    pub line: Option<String>,
    pub caller_id_masked: Option<String>,
    pub started_at_ms: u64,
}

/// Collects a call's transcript so a ticket can be cut at hand-over.
#[derive(Debug, Clone, Default)]
pub struct TicketBuilder {
    context: CallContext,
    lines: Vec<TicketLine>,
    handover: Handover,
    slots: BTreeMap<String, String>,
    language: String,
}

/// What the caller's turn was understood as (masked).
#[derive(Debug, Clone, PartialEq)]
pub struct CallerTurn<'a> {
    pub text: &'a str,
    pub language: &'a str,
    pub intent: &'a str,
    pub confidence: f32,
    pub valence: i8,
    pub emotion_label: &'a str,
    /// Masked slot values.
    pub slots: &'a BTreeMap<String, String>,
}

/// What the routing needs at hand-over.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing<'a> {
    pub reason: EscalationReason,
    /// The intent that led to the hand-over and its pack settings.
    pub intent: &'a str,
    pub skill_group: &'a str,
    pub priority: u8,
    /// The pack's answer for that intent, for the agent's screen.
    pub suggested_answer: Option<&'a str>,
}

impl TicketBuilder {
    pub fn new(context: CallContext) -> Self {
        TicketBuilder { context, ..Self::default() }
    }

    fn next_turn(&self) -> u32 {
        self.lines.iter().filter(|l| l.speaker == Speaker::Caller).count() as u32
    }

    pub fn caller(&mut self, turn: &CallerTurn<'_>) {
        let number = self.next_turn() + 1;
        self.language = turn.language.to_owned();
        self.slots.extend(turn.slots.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.lines.push(TicketLine {
            turn: number,
            speaker: Speaker::Caller,
            text: turn.text.to_owned(),
            intent: Some(turn.intent.to_owned()),
            confidence: Some((turn.confidence * 1000.0).round() / 1000.0),
            emotion: Some(TicketEmotion { valence: turn.valence, label: turn.emotion_label.to_owned() }),
        });
    }

    /// The bot's reply; `answered` marks a real answer to `intent` (not a question back).
    pub fn bot(&mut self, text: &str, intent: &str, answered: bool) {
        let turn = self.next_turn();
        self.lines.push(TicketLine {
            turn,
            speaker: Speaker::Bot,
            text: text.to_owned(),
            intent: None,
            confidence: None,
            emotion: None,
        });
        if answered && !self.handover.tried.iter().any(|t| t == intent) {
            self.handover.tried.push(intent.to_owned());
        }
    }

    /// Cuts the ticket at hand-over.
    pub fn build(&self, id: String, handed_over_at_ms: u64, routing: &Routing<'_>, promise: &str) -> Ticket {
        let mut handover = self.handover.clone();
        handover.promised.push(promise.to_owned());
        handover.open.push(format!("{} ({})", routing.intent, routing.reason.code()));
        let last_caller = self.lines.iter().rev().find(|l| l.speaker == Speaker::Caller);
        let feeling = last_caller
            .and_then(|l| l.emotion.as_ref())
            .map(|e| format!("; caller {} ({:+})", e.label, e.valence))
            .unwrap_or_default();
        let slots = if self.slots.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self.slots.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!("; {}", list.join(", "))
        };
        let said = last_caller.map(|l| format!(": \"{}\"", l.text)).unwrap_or_default();
        let summary = format!("{} — {}{said}{slots}{feeling}", routing.intent, routing.reason.code());
        Ticket {
            id,
            channel: self.context.channel.clone(),
            line: self.context.line.clone(),
            caller_id: self.context.caller_id_masked.clone(),
            started_at_ms: self.context.started_at_ms,
            handed_over_at_ms,
            language: self.language.clone(),
            reason: routing.reason,
            skill_group: routing.skill_group.to_owned(),
            priority: routing.priority,
            summary,
            transcript: self.lines.clone(),
            slots: self.slots.clone(),
            handover,
            agent_assist: AgentAssist {
                suggested_answer: routing.suggested_answer.map(str::to_owned),
                next_step: next_step(routing.reason).to_owned(),
            },
            follow_up: FollowUp::Transfer,
            replaces: None,
        }
    }
}

/// The agent's first move for each reason.
fn next_step(reason: EscalationReason) -> &'static str {
    match reason {
        EscalationReason::Sensitive => "Verify the caller's identity, then secure the account or card.",
        EscalationReason::NegativeEmotion => {
            "Acknowledge the frustration first; the transcript shows what was tried."
        }
        EscalationReason::RepeatedFailure => "The bot did not understand; read the transcript before asking.",
        EscalationReason::Requested => "The caller asked for a person; pick up from the last request.",
        EscalationReason::ElderLine | EscalationReason::Vip => {
            "Priority caller: greet by line policy and take over."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> TicketBuilder {
        TicketBuilder::new(CallContext {
            channel: "phone".into(),
            line: Some("hotline-1".into()),
            caller_id_masked: Some("*******0958".into()),
            started_at_ms: 1_000,
        })
    }

    fn routing() -> Routing<'static> {
        Routing {
            reason: EscalationReason::Sensitive,
            intent: "account_security",
            skill_group: "security",
            priority: 9,
            suggested_answer: Some("Block the card."),
        }
    }

    #[test]
    fn a_ticket_carries_the_whole_call_for_the_agent() {
        let mut b = builder();
        let no_slots = BTreeMap::new();
        let mut slots = BTreeMap::new();
        slots.insert("order_number".to_owned(), "45712".to_owned());
        b.caller(&CallerTurn {
            text: "where is my order",
            language: "en",
            intent: "order_status",
            confidence: 0.9,
            valence: 0,
            emotion_label: "neutral",
            slots: &slots,
        });
        b.bot("Order 45712 ships today.", "order_status", true);
        b.caller(&CallerTurn {
            text: "my card was stolen",
            language: "en",
            intent: "account_security",
            confidence: 0.95,
            valence: -1,
            emotion_label: "anxious",
            slots: &no_slots,
        });
        let ticket = b.build(
            "01J0000000000000000000000A".into(),
            5_000,
            &routing(),
            "A colleague will take over now.",
        );
        assert_eq!(ticket.transcript.len(), 3);
        assert_eq!(ticket.transcript[2].turn, 2);
        assert_eq!(ticket.slots["order_number"], "45712");
        assert_eq!(ticket.handover.tried, ["order_status"]);
        assert_eq!(ticket.handover.open, ["account_security (sensitive)"]);
        assert_eq!(ticket.handover.promised, ["A colleague will take over now."]);
        assert!(
            ticket.summary.contains("account_security") && ticket.summary.contains("anxious"),
            "{}",
            ticket.summary
        );
        assert_eq!(ticket.agent_assist.suggested_answer.as_deref(), Some("Block the card."));
        assert_eq!(ticket.caller_id.as_deref(), Some("*******0958"));
        assert_eq!((ticket.started_at_ms, ticket.handed_over_at_ms), (1_000, 5_000));
    }

    /// The serialised ticket has every field the shipped schema requires, with its type.
    #[test]
    fn a_ticket_matches_the_shipped_json_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../ticket.schema.json")).expect("schema is JSON");
        let mut b = builder();
        b.caller(&CallerTurn {
            text: "agent please",
            language: "en",
            intent: "human_agent",
            confidence: 1.0,
            valence: 0,
            emotion_label: "neutral",
            slots: &BTreeMap::new(),
        });
        let ticket = b.build("01J0000000000000000000000A".into(), 2_000, &routing(), "Connecting you.");
        let value = serde_json::to_value(&ticket).expect("serialise");
        check(&schema, &value, "ticket");
    }

    /// A small structural check: `type`, `required`, `properties`, `items` and `enum`.
    fn check(schema: &serde_json::Value, value: &serde_json::Value, path: &str) {
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                serde_json::Value::String(t) => vec![t.as_str()],
                serde_json::Value::Array(ts) => ts.iter().filter_map(|t| t.as_str()).collect(),
                _ => vec![],
            };
            let actual = match value {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "boolean",
                serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Array(_) => "array",
                serde_json::Value::Object(_) => "object",
            };
            let ok = allowed.contains(&actual) || (actual == "integer" && allowed.contains(&"number"));
            assert!(ok, "{path}: {actual} is not {allowed:?}");
        }
        if let Some(options) = schema.get("enum").and_then(|e| e.as_array()) {
            assert!(options.contains(value), "{path}: {value} not in {options:?}");
        }
        if let Some(required) = schema.get("required").and_then(|r| r.as_array()) {
            for key in required.iter().filter_map(|k| k.as_str()) {
                assert!(value.get(key).is_some(), "{path}.{key} is required");
            }
        }
        if let (Some(properties), Some(object)) =
            (schema.get("properties").and_then(|p| p.as_object()), value.as_object())
        {
            for (key, sub) in object {
                let sub_schema =
                    properties.get(key).unwrap_or_else(|| panic!("{path}.{key} is not in the schema"));
                check(sub_schema, sub, &format!("{path}.{key}"));
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                check(items, item, &format!("{path}[{i}]"));
            }
        }
    }
}
