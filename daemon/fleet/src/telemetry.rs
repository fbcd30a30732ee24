//! Periodic telemetry: call counters the daemon updates, the outbox backlog,
//! and what the machine lets us read about itself.
//!
//! Counters are lock-free atomics, so the call path never waits on the fleet
//! layer. System readings come from `/proc` and `/sys`; anything unreadable
//! (containers, other kernels) is `null`, never a guess.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::outbox::OutboxStats;

/// Call counters, shared between the call path and the fleet driver.
#[derive(Debug, Default)]
pub struct CallMetrics {
    active: AtomicU64,
    total: AtomicU64,
    handed_over: AtomicU64,
    resolved: AtomicU64,
    abandoned: AtomicU64,
    /// Sum of real-time factors × 1000, and how many, for a mean.
    rtf_milli_sum: AtomicU64,
    rtf_count: AtomicU64,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    Resolved,
    HandedOver,
    Abandoned,
}

impl CallMetrics {
    pub fn call_started(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn call_ended(&self, end: CallEnd) {
        let _ = self.active.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
        let counter = match end {
            CallEnd::Resolved => &self.resolved,
            CallEnd::HandedOver => &self.handed_over,
            CallEnd::Abandoned => &self.abandoned,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// One ASR real-time factor (processing time / audio time).
    pub fn asr_rtf(&self, rtf: f64) {
        if rtf.is_finite() && rtf >= 0.0 {
            self.rtf_milli_sum.fetch_add((rtf * 1000.0).round() as u64, Ordering::Relaxed);
            self.rtf_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> CallSnapshot {
        let count = self.rtf_count.load(Ordering::Relaxed);
        CallSnapshot {
            active: self.active.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            handed_over: self.handed_over.load(Ordering::Relaxed),
            resolved: self.resolved.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
            asr_rtf_mean: (count > 0)
                .then(|| self.rtf_milli_sum.load(Ordering::Relaxed) as f64 / count as f64 / 1000.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallSnapshot {
    pub active: u64,
    pub total: u64,
    pub handed_over: u64,
    pub resolved: u64,
    pub abandoned: u64,
    pub asr_rtf_mean: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemSnapshot {
    pub load_1m: Option<f64>,
    pub mem_total_kb: Option<u64>,
    pub mem_available_kb: Option<u64>,
    pub temperature_c: Option<f64>,
}

impl SystemSnapshot {
    pub fn read() -> SystemSnapshot {
        let load = std::fs::read_to_string("/proc/loadavg").ok();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem = |key: &str| {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        };
        let temperature = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp")
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .map(|milli| milli / 1000.0);
        SystemSnapshot {
            load_1m: load.and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok())),
            mem_total_kb: mem("MemTotal:"),
            mem_available_kb: mem("MemAvailable:"),
            temperature_c: temperature,
        }
    }
}

/// One `telemetry` message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Telemetry {
    pub at_ms: u64,
    pub uptime_s: u64,
    pub calls: CallSnapshot,
    pub outbox: OutboxStats,
    pub system: SystemSnapshot,
    /// Non-durable messages (telemetry, call events, results) dropped because
    /// the client queue was full or the broker unreachable. Tickets are never
    /// counted here: they wait in the outbox.
    pub dropped_messages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_counters_track_active_calls_and_outcomes() {
        let m = CallMetrics::default();
        m.call_started();
        m.call_started();
        m.call_ended(CallEnd::HandedOver);
        m.asr_rtf(0.2);
        m.asr_rtf(0.4);
        let s = m.snapshot();
        assert_eq!((s.active, s.total, s.handed_over, s.resolved), (1, 2, 1, 0));
        assert!((s.asr_rtf_mean.unwrap() - 0.3).abs() < 1e-9);
        m.call_ended(CallEnd::Abandoned);
        m.call_ended(CallEnd::Abandoned);
        assert_eq!(m.snapshot().active, 0, "never below zero");
    }

    #[test]
    fn system_readings_are_present_on_linux_or_null() {
        let s = SystemSnapshot::read();
        if std::path::Path::new("/proc/meminfo").exists() {
            assert!(s.mem_total_kb.unwrap() >= s.mem_available_kb.unwrap());
        }
    }
}
