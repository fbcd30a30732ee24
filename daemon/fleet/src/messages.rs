//! The JSON the box publishes (besides tickets and job results): status
//! (birth and last will), agent assist and `config/reported`.
//!
//! Field names are a contract with the fleet back end (see the README);
//! add fields, never rename them.

use serde::Serialize;
use voicebot_dialog::ticket::Ticket;

use crate::outbox::TicketRecord;

/// What the box is and can do, as the birth message reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceInfo {
    pub versions: Versions,
    pub capabilities: Capabilities,
    /// sha256 of the config file in effect (of the embedded default without one).
    pub config_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Versions {
    pub firmware: String,
    /// Model set identity: `manifest-<sha256 prefix>`, with `+local-<hash>`
    /// once `model_update` jobs replaced files.
    pub models: String,
    /// Files replaced by `model_update` jobs: path → sha256 of the bytes in use.
    pub model_files: std::collections::BTreeMap<String, String>,
    /// Knowledge pack `name version`.
    pub pack: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capabilities {
    pub channels: Vec<String>,
    pub languages: Vec<String>,
    /// `None`: CPU only.
    pub accelerator: Option<String>,
    /// Job commands this build executes.
    pub commands: Vec<String>,
}

/// The retained `status` message: `online` (birth) or `offline` (will, or a clean stop).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status<'a> {
    pub state: &'static str,
    pub device: &'a str,
    pub site: &'a str,
    pub protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub info: Option<&'a DeviceInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl<'a> Status<'a> {
    pub fn birth(device: &'a str, site: &'a str, info: &'a DeviceInfo, at_ms: u64) -> Status<'a> {
        Status {
            state: "online",
            device,
            site,
            protocol: crate::topics::PREFIX,
            at_ms: Some(at_ms),
            info: Some(info),
            reason: None,
        }
    }

    /// The last will: the broker publishes it when the box vanishes.
    pub fn will(device: &'a str, site: &'a str) -> Status<'a> {
        Status {
            state: "offline",
            device,
            site,
            protocol: crate::topics::PREFIX,
            at_ms: None,
            info: None,
            reason: Some("connection lost"),
        }
    }

    /// Published by the box itself on a clean stop.
    pub fn stopped(device: &'a str, site: &'a str, at_ms: u64) -> Status<'a> {
        Status {
            state: "offline",
            device,
            site,
            protocol: crate::topics::PREFIX,
            at_ms: Some(at_ms),
            info: None,
            reason: Some("shutdown"),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `agent/assist/<ticket>`: what the agent's screen shows beside the ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assist<'a> {
    pub ticket_id: &'a str,
    pub summary: &'a str,
    pub suggested_answer: Option<&'a str>,
    pub next_step: &'a str,
    pub handover: &'a voicebot_dialog::ticket::Handover,
    pub slots: &'a std::collections::BTreeMap<String, String>,
    /// Earlier hand-overs of the same (masked) caller on this box, newest first.
    pub caller_history: &'a [TicketRecord],
}

impl<'a> Assist<'a> {
    pub fn for_ticket(ticket: &'a Ticket, caller_history: &'a [TicketRecord]) -> Assist<'a> {
        Assist {
            ticket_id: &ticket.id,
            summary: &ticket.summary,
            suggested_answer: ticket.agent_assist.suggested_answer.as_deref(),
            next_step: &ticket.agent_assist.next_step,
            handover: &ticket.handover,
            slots: &ticket.slots,
            caller_history,
        }
    }
}

/// Retained `config/reported`: the config the box runs (shadow-style).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigReported<'a> {
    pub config_hash: &'a str,
    pub at_ms: u64,
    /// The job that last changed it, if any since start.
    pub job_id: Option<&'a str>,
    pub restart_required: bool,
}
