//! Logging: a filter that fleet jobs can change at run time, and a bounded
//! ring of recent lines that `diagnostics upload_logs` sends over MQTT.
//!
//! The ring keeps the last [`RING_LINES`] lines that passed the filter, as
//! plain text; the oldest line is dropped when it is full. Formatting a line
//! for the ring happens on the logging thread, under a short mutex.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
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
    let installed = tracing_subscriber::registry().with(filter).with(fmt).with(RingLayer).try_init();
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

    #[test]
    fn the_ring_keeps_recent_filtered_lines_and_the_filter_can_change() {
        init("info");
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
}
