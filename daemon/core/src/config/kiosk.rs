//! The validated `[kiosk]` section: the in-branch kiosk's devices, what starts
//! a conversation there, and its half-duplex echo gate.
//!
//! Invariants: triggers are known and not repeated; a `gpio` trigger needs a
//! `gpio_file` (and a file without the trigger is refused, so a wired button is
//! never silently ignored); the echo gate is a level in dBFS between -90 and 0.

use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::raw::RawKiosk;

/// What starts a kiosk conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KioskTrigger {
    /// Someone speaks to the kiosk.
    Voice,
    /// A line on stdin (a key on an attached keyboard or a kiosk shell).
    Key,
    /// A GPIO line file goes to 1 (a push-to-talk or "call assistance" button).
    Gpio,
    /// A signed `kiosk` job from the fleet.
    Mqtt,
}

impl KioskTrigger {
    pub fn name(self) -> &'static str {
        match self {
            KioskTrigger::Voice => "voice",
            KioskTrigger::Key => "key",
            KioskTrigger::Gpio => "gpio",
            KioskTrigger::Mqtt => "mqtt",
        }
    }
}

/// What a trigger asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KioskAction {
    /// Start a conversation with the bot.
    Talk,
    /// "Call assistance": start a conversation that goes straight to a person.
    Assist,
}

impl KioskAction {
    /// `talk` or `assist`.
    pub fn parse(text: &str) -> Option<KioskAction> {
        match text {
            "talk" => Some(KioskAction::Talk),
            "assist" => Some(KioskAction::Assist),
            _ => None,
        }
    }
}

/// `[kiosk]`.
#[derive(Debug, Clone, PartialEq)]
pub struct KioskConfig {
    pub enabled: bool,
    /// The kiosk's id in tickets; `None`: the fleet's device id.
    pub id: Option<String>,
    /// Capture device name; `None`: the system default.
    pub input: Option<String>,
    /// Playback device name; `None`: the system default.
    pub output: Option<String>,
    pub triggers: Vec<KioskTrigger>,
    pub gpio_file: Option<PathBuf>,
    pub gpio_action: KioskAction,
    pub echo_gate_dbfs: f32,
    /// Quiet time after a conversation.
    pub rest: Duration,
}

fn bad(origin: &str, key: &'static str, value: String, problem: &str) -> ConfigError {
    ConfigError::Value { origin: origin.to_owned(), key, value, problem: problem.to_owned() }
}

fn required<T: Clone>(value: &Option<T>, key: &'static str, origin: &str) -> Result<T, ConfigError> {
    value.clone().ok_or_else(|| bad(origin, key, "(missing)".into(), "no value and no default"))
}

fn text(value: String) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Checks `[kiosk]`.
///
/// # Errors
/// An unknown or repeated trigger, a `gpio` trigger without a file (or a file
/// without the trigger), an unknown GPIO action, an echo gate outside -90..=0.
pub fn validate_kiosk(raw: &RawKiosk, origin: &str) -> Result<KioskConfig, ConfigError> {
    let mut triggers = Vec::new();
    for name in required(&raw.triggers, "kiosk.triggers", origin)? {
        let trigger = match name.as_str() {
            "voice" => KioskTrigger::Voice,
            "key" => KioskTrigger::Key,
            "gpio" => KioskTrigger::Gpio,
            "mqtt" => KioskTrigger::Mqtt,
            _ => {
                return Err(bad(
                    origin,
                    "kiosk.triggers",
                    format!("{name:?}"),
                    "expected \"voice\", \"key\", \"gpio\" or \"mqtt\"",
                ));
            }
        };
        if triggers.contains(&trigger) {
            return Err(bad(origin, "kiosk.triggers", format!("{name:?}"), "listed twice"));
        }
        triggers.push(trigger);
    }
    let gpio_file = text(required(&raw.gpio_file, "kiosk.gpio_file", origin)?).map(PathBuf::from);
    let enabled = required(&raw.enabled, "kiosk.enabled", origin)?;
    if enabled && gpio_file.is_some() && !triggers.contains(&KioskTrigger::Gpio) {
        return Err(bad(
            origin,
            "kiosk.gpio_file",
            format!("{:?}", gpio_file.as_deref().unwrap_or_else(|| std::path::Path::new("")).display()),
            "set, but \"gpio\" is not in kiosk.triggers: the button would be ignored",
        ));
    }
    let gpio_action_text = required(&raw.gpio_action, "kiosk.gpio_action", origin)?;
    let gpio_action = KioskAction::parse(&gpio_action_text).ok_or_else(|| {
        bad(origin, "kiosk.gpio_action", format!("{gpio_action_text:?}"), "expected \"talk\" or \"assist\"")
    })?;
    let echo_gate_dbfs = required(&raw.echo_gate_dbfs, "kiosk.echo_gate_dbfs", origin)?;
    if !(-90.0..=0.0).contains(&echo_gate_dbfs) {
        return Err(bad(
            origin,
            "kiosk.echo_gate_dbfs",
            echo_gate_dbfs.to_string(),
            "must be a level in dBFS from -90 to 0",
        ));
    }
    Ok(KioskConfig {
        enabled,
        id: text(required(&raw.id, "kiosk.id", origin)?),
        input: text(required(&raw.input, "kiosk.input", origin)?),
        output: text(required(&raw.output, "kiosk.output", origin)?),
        gpio_file: if triggers.contains(&KioskTrigger::Gpio) { gpio_file } else { None },
        triggers,
        gpio_action,
        echo_gate_dbfs,
        rest: Duration::from_secs(u64::from(required(&raw.rest_s, "kiosk.rest_s", origin)?)),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, KioskAction, KioskTrigger};

    fn with(kiosk: &str) -> Result<Config, ConfigError> {
        Config::from_toml(&format!("[kiosk]\n{kiosk}\n"), "test")
    }

    #[test]
    fn the_default_kiosk_is_off_with_every_trigger_and_a_minus_30_dbfs_gate() {
        let kiosk = Config::embedded_default().unwrap().kiosk;
        assert!(!kiosk.enabled);
        assert_eq!(
            kiosk.triggers,
            [KioskTrigger::Voice, KioskTrigger::Key, KioskTrigger::Gpio, KioskTrigger::Mqtt]
        );
        assert_eq!((kiosk.input, kiosk.output, kiosk.gpio_file), (None, None, None));
        assert_eq!(kiosk.gpio_action, KioskAction::Assist);
        assert!((kiosk.echo_gate_dbfs + 30.0).abs() < f32::EPSILON);
    }

    #[test]
    fn devices_and_a_gpio_button_are_read() {
        let kiosk = with(
            "enabled = true\ninput = \"kiosk_mic\"\noutput = \"kiosk_speaker\"\ngpio_file = \"/tmp/gpio17\"\ngpio_action = \"talk\"\nid = \"branch-7-kiosk-2\"",
        )
        .unwrap()
        .kiosk;
        assert_eq!(kiosk.input.as_deref(), Some("kiosk_mic"));
        assert_eq!(kiosk.output.as_deref(), Some("kiosk_speaker"));
        assert_eq!(kiosk.gpio_file.as_deref(), Some(std::path::Path::new("/tmp/gpio17")));
        assert_eq!(kiosk.gpio_action, KioskAction::Talk);
        assert_eq!(kiosk.id.as_deref(), Some("branch-7-kiosk-2"));
    }

    #[test]
    fn bad_kiosk_settings_name_the_key() {
        for (toml, key) in [
            ("triggers = [\"voice\", \"clap\"]", "kiosk.triggers"),
            ("triggers = [\"voice\", \"voice\"]", "kiosk.triggers"),
            ("gpio_action = \"shout\"", "kiosk.gpio_action"),
            ("echo_gate_dbfs = 6.0", "kiosk.echo_gate_dbfs"),
            ("enabled = true\ntriggers = [\"voice\"]\ngpio_file = \"/tmp/g\"", "kiosk.gpio_file"),
        ] {
            let error = with(toml).unwrap_err().to_string();
            assert!(error.contains(key), "{toml}: {error}");
        }
    }
}
