//! The fleet's topic names: a contract shared with the fleet back end, the
//! agents' desktop and technicians' scripts. Change them only by adding.
//!
//! Every topic is `voicebot/v1/<site>/<device>/<leaf>`. Site and device are
//! single topic levels (checked by `voicebot_core::config::fleet`), so no
//! topic built here contains a wildcard from its inputs.

/// The protocol prefix; `v1` changes only with an incompatible message format.
pub const PREFIX: &str = "voicebot/v1";

/// The topics of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

/// A command addressed to this device, recognised from its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// `cmd/<name>`.
    Command(String),
    /// `config/desired`.
    ConfigDesired,
}

impl Topics {
    pub fn new(site: &str, device: &str) -> Topics {
        Topics { base: format!("{PREFIX}/{site}/{device}") }
    }

    /// `…/status`, retained: the birth message, or `offline` (the last will).
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// `…/telemetry`: periodic counters.
    pub fn telemetry(&self) -> String {
        format!("{}/telemetry", self.base)
    }

    /// `…/event/ticket`: hand-over tickets at QoS 1 from the outbox.
    pub fn event_ticket(&self) -> String {
        format!("{}/event/ticket", self.base)
    }

    /// `…/event/call`: call start and end.
    pub fn event_call(&self) -> String {
        format!("{}/event/call", self.base)
    }

    /// `…/report/daily`: the daily service report (JSON).
    pub fn report_daily(&self) -> String {
        format!("{}/report/daily", self.base)
    }

    /// `…/cmd/<name>`: a signed command.
    pub fn cmd(&self, name: &str) -> String {
        format!("{}/cmd/{name}", self.base)
    }

    /// `…/cmd/<name>/result`: each lifecycle step of a command.
    pub fn cmd_result(&self, name: &str) -> String {
        format!("{}/cmd/{name}/result", self.base)
    }

    /// `…/cmd/+`: what the device subscribes to (results are one level deeper,
    /// so the device never hears its own results).
    pub fn cmd_filter(&self) -> String {
        format!("{}/cmd/+", self.base)
    }

    /// `…/config/desired`: a signed config update, shadow-style.
    pub fn config_desired(&self) -> String {
        format!("{}/config/desired", self.base)
    }

    /// `…/config/reported`, retained: the config in effect.
    pub fn config_reported(&self) -> String {
        format!("{}/config/reported", self.base)
    }

    /// `…/agent/assist/<ticket>`: suggestions and caller history for the agent.
    pub fn agent_assist(&self, ticket_id: &str) -> String {
        format!("{}/agent/assist/{ticket_id}", self.base)
    }

    /// Recognises a topic this device subscribed to.
    pub fn inbound(&self, topic: &str) -> Option<Inbound> {
        let leaf = topic.strip_prefix(&self.base)?.strip_prefix('/')?;
        if leaf == "config/desired" {
            return Some(Inbound::ConfigDesired);
        }
        let name = leaf.strip_prefix("cmd/")?;
        (!name.is_empty() && !name.contains('/')).then(|| Inbound::Command(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_contract_layout() {
        let t = Topics::new("branch-7", "box-1");
        assert_eq!(t.status(), "voicebot/v1/branch-7/box-1/status");
        assert_eq!(t.telemetry(), "voicebot/v1/branch-7/box-1/telemetry");
        assert_eq!(t.event_ticket(), "voicebot/v1/branch-7/box-1/event/ticket");
        assert_eq!(t.event_call(), "voicebot/v1/branch-7/box-1/event/call");
        assert_eq!(t.report_daily(), "voicebot/v1/branch-7/box-1/report/daily");
        assert_eq!(t.cmd("config_update"), "voicebot/v1/branch-7/box-1/cmd/config_update");
        assert_eq!(t.cmd_result("config_update"), "voicebot/v1/branch-7/box-1/cmd/config_update/result");
        assert_eq!(t.config_desired(), "voicebot/v1/branch-7/box-1/config/desired");
        assert_eq!(t.config_reported(), "voicebot/v1/branch-7/box-1/config/reported");
        assert_eq!(t.agent_assist("01J0"), "voicebot/v1/branch-7/box-1/agent/assist/01J0");
    }

    #[test]
    fn only_own_commands_and_desired_config_are_inbound() {
        let t = Topics::new("s", "d");
        assert_eq!(
            t.inbound("voicebot/v1/s/d/cmd/diagnostics"),
            Some(Inbound::Command("diagnostics".into()))
        );
        assert_eq!(t.inbound("voicebot/v1/s/d/config/desired"), Some(Inbound::ConfigDesired));
        assert_eq!(t.inbound("voicebot/v1/s/d/cmd/diagnostics/result"), None);
        assert_eq!(t.inbound("voicebot/v1/s/other/cmd/diagnostics"), None);
        assert_eq!(t.inbound("voicebot/v1/s/d/cmd/"), None);
        assert_eq!(t.inbound("voicebot/v1/s/dd/cmd/x"), None);
    }
}
