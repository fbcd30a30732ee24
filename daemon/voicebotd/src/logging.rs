//! Logging: a filter that fleet jobs can change at run time, a bounded ring
//! of recent lines that `diagnostics upload_logs` sends over MQTT, and the
//! count of SIP garbage that ezk drops.
//!
//! Filters are per layer. The user's filter (`$VOICEBOTD_LOG`, fleet's
//! `log_level`; reloadable) decides what stderr and the ring get. The garbage
//! counter has its own fixed filter, `ezk_sip_core=warn`, so it sees ezk's
//! reports of messages it dropped ([`voicebot_sip::garbage`]) whatever the
//! user's filter says, `error` or `off` included; the user does not see them
//! unless their filter asks. ezk logs through the `log` crate: `try_init`
//! installs `tracing-log`'s bridge with `log`'s max level at the most verbose
//! of all filters (at least `warn`, for the counter), and each reload resets it.
//!
//! The ring keeps the last [`RING_LINES`] lines that passed the filter, as
//! plain text; the oldest line is dropped when it is full. Formatting a line
//! for the ring happens on the logging thread, under a short mutex.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use tracing::Level;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// Lines the ring keeps.
pub(crate) const RING_LINES: usize = 5_000;

struct Control {
    filter: reload::Handle<EnvFilter, Registry>,
    current: Mutex<String>,
}

static CONTROL: OnceLock<Control> = OnceLock::new();
static RING: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

/// Installs the global subscriber: `$VOICEBOTD_LOG` or `default` as the filter.
pub(crate) fn init(default: &str) {
    let spec = std::env::var("VOICEBOTD_LOG").ok().filter(|s| EnvFilter::try_new(s).is_ok());
    let spec = spec.unwrap_or_else(|| default.to_owned());
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&spec));
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr);
    let user = fmt.and_then(RingLayer).with_filter(filter);
    let garbage =
        GarbageLayer.with_filter(Targets::new().with_target(voicebot_sip::garbage::TARGET, Level::WARN));
    let installed = tracing_subscriber::registry().with(user).with(garbage).try_init();
    if installed.is_ok() {
        let _ = CONTROL.set(Control { filter: handle, current: Mutex::new(spec) });
    }
}

/// Replaces the log filter (`info`, `debug`, `voicebot_fleet=trace,info`…).
///
/// # Errors
/// A filter that does not parse, or no reloadable logger installed.
pub(crate) fn set_filter(spec: &str) -> Result<String, String> {
    let control = CONTROL.get().ok_or("no reloadable logger is installed")?;
    let filter = EnvFilter::try_new(spec).map_err(|e| format!("bad filter {spec:?}: {e}"))?;
    control.filter.reload(filter).map_err(|e| format!("cannot reload the log filter: {e}"))?;
    let mut current = control.current.lock().unwrap_or_else(|p| p.into_inner());
    Ok(std::mem::replace(&mut *current, spec.to_owned()))
}

/// The last `lines` log lines, oldest first.
pub(crate) fn recent(lines: usize) -> Vec<String> {
    let ring = RING.lock().unwrap_or_else(|p| p.into_inner());
    ring.iter().skip(ring.len().saturating_sub(lines)).cloned().collect()
}

/// Copies each event that passed the filter into the ring.
struct RingLayer;

impl<S: tracing::Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = String::with_capacity(128);
        let _ = write!(line, "{} {:>5} {}:", voicebot_fleet::now_ms(), meta.level(), meta.target());
        event.record(&mut LineVisitor(&mut line));
        let mut ring = RING.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == RING_LINES {
            ring.pop_front();
        }
        ring.push_back(line);
    }
}

/// Feeds ezk's warnings and errors to the SIP garbage counter.
struct GarbageLayer;

impl<S: tracing::Subscriber> Layer<S> for GarbageLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut report = Report::default();
        event.record(&mut report);
        // A `log` record arrives with the bridge's own target; its real one is a field.
        let meta = event.metadata();
        let target = report.log_target.as_deref().unwrap_or(meta.target());
        voicebot_sip::garbage::note(target, *meta.level(), &report.message);
    }
}

/// The message and, for a `log` record, its target.
#[derive(Default)]
struct Report {
    message: String,
    log_target: Option<String>,
}

impl Visit for Report {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "log.target" => self.log_target = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        }
    }
}

struct LineVisitor<'a>(&'a mut String);

impl Visit for LineVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => {
                let _ = write!(self.0, " {value}");
            }
            name => {
                let _ = write!(self.0, " {name}={value:?}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.0, " {value:?}");
            }
            name => {
                let _ = write!(self.0, " {name}={value:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests share the global logger and its filter.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn the_ring_keeps_recent_filtered_lines_and_the_filter_can_change() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        init("info");
        set_filter("info").unwrap();
        tracing::info!(answer = 42, "ring check one");
        tracing::debug!("ring check hidden");
        assert!(set_filter("not a [valid filter").is_err());
        assert_eq!(set_filter("debug").unwrap(), "info");
        tracing::debug!("ring check two");
        let lines = recent(RING_LINES);
        let ours: Vec<&String> = lines.iter().filter(|l| l.contains("ring check")).collect();
        assert_eq!(ours.len(), 2, "{ours:?}");
        assert!(
            ours[0].contains("INFO") && ours[0].contains("ring check one") && ours[0].contains("answer=42")
        );
        assert!(ours[1].contains("DEBUG") && ours[1].contains("ring check two"));
        assert_eq!(set_filter("info").unwrap(), "debug");
        assert_eq!(recent(1).len(), 1);
    }

    #[test]
    fn ezks_drop_reports_are_counted_whatever_the_user_filter_and_stay_out_of_the_log() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        init("info");
        let previous = set_filter("error").unwrap();
        // At least `warn` stays enabled for the counter (and so for the `log` bridge).
        assert!(tracing::level_filters::LevelFilter::current() >= Level::WARN);
        let before = voicebot_sip::garbage::unparseable();
        tracing::warn!(
            target: "ezk_sip_core::endpoint",
            "Failed to get base headers for incoming message, garbage check {}",
            1
        );
        tracing::warn!(target: "ezk_sip_core::endpoint", "the received message is an orphaned response");
        tracing::warn!("Failed to get base headers for incoming message, from another crate");
        assert_eq!(voicebot_sip::garbage::unparseable(), before + 1);
        assert!(!recent(RING_LINES).iter().any(|l| l.contains("garbage check")), "the user filter is error");
        set_filter(&previous).unwrap();
    }
}
