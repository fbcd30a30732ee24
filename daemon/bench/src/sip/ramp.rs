//! The concurrency ramp: 1, 2, 3 ... simultaneous scripted conversations
//! until a level does not hold (a call fails, a turn goes unanswered, or an
//! RTP gap from the daemon exceeds 60 ms), with the daemon's RSS sampled
//! throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::Daemon;
use super::call::{self, CallResult};
use crate::latency::percentile;

/// One level of the ramp.
#[derive(Debug, Serialize)]
pub(crate) struct Level {
    pub(crate) calls: usize,
    pub(crate) holds: bool,
    pub(crate) complete_calls: usize,
    pub(crate) max_gap_ms: f64,
    pub(crate) gaps_over_limit: usize,
    pub(crate) latency_p50_ms: f64,
    pub(crate) latency_p95_ms: f64,
    pub(crate) setup_p50_ms: f64,
    pub(crate) peak_rss_kib: u64,
    /// (peak − idle) / calls.
    pub(crate) rss_per_call_kib: u64,
    pub(crate) load_average_after: String,
    pub(crate) results: Vec<CallResult>,
}

/// Runs levels 1..=`max_level`, stopping after the first that does not hold.
pub(crate) fn run(daemon: &Daemon, scripts: &[Vec<Vec<i16>>], max_level: usize, idle_kib: u64) -> Vec<Level> {
    let mut levels = Vec::new();
    for calls in 1..=max_level {
        let level = one_level(daemon, scripts, calls, idle_kib);
        eprintln!(
            "{calls} concurrent: {} of {calls} complete, max RTP gap {:.0} ms ({} over {} ms), \
             latency p50 {:.0} ms, peak RSS {} KiB ({} KiB per call){}",
            level.complete_calls,
            level.max_gap_ms,
            level.gaps_over_limit,
            call::GAP_LIMIT.as_millis(),
            level.latency_p50_ms,
            level.peak_rss_kib,
            level.rss_per_call_kib,
            if level.holds { "" } else { ": does not hold" }
        );
        let holds = level.holds;
        levels.push(level);
        if !holds {
            break;
        }
        // Let the last calls' threads exit before the next level.
        std::thread::sleep(Duration::from_secs(3));
    }
    levels
}

fn one_level(daemon: &Daemon, scripts: &[Vec<Vec<i16>>], calls: usize, idle_kib: u64) -> Level {
    let done = Arc::new(AtomicBool::new(false));
    let pid = daemon.child.id();
    let sampler = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(super::uac::rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let threads: Vec<_> = (0..calls)
        .map(|i| {
            let target = daemon.sip;
            let script = scripts[i % scripts.len()].clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(i as u64));
                call::converse(target, &format!("ramp-{calls}-{i}"), &script)
            })
        })
        .collect();
    let results: Vec<CallResult> = threads
        .into_iter()
        .map(|t| {
            t.join().unwrap_or_else(|_| CallResult {
                error: Some("caller thread panicked".into()),
                ..CallResult::default()
            })
        })
        .collect();
    done.store(true, Ordering::Relaxed);
    let peak_rss_kib = sampler.join().unwrap_or(0);
    let mut latencies: Vec<f64> = results.iter().flat_map(|r| r.latencies_ms.iter().copied()).collect();
    latencies.sort_by(f64::total_cmp);
    let mut setups: Vec<f64> = results.iter().map(|r| r.setup_ms).collect();
    setups.sort_by(f64::total_cmp);
    let complete_calls = results.iter().filter(|r| r.complete()).count();
    let gaps_over_limit = results.iter().map(|r| r.gaps_over_limit).sum();
    Level {
        calls,
        holds: complete_calls == calls && gaps_over_limit == 0,
        complete_calls,
        max_gap_ms: results.iter().map(|r| r.max_gap_ms).fold(0.0, f64::max),
        gaps_over_limit,
        latency_p50_ms: percentile(&latencies, 0.5),
        latency_p95_ms: percentile(&latencies, 0.95),
        setup_p50_ms: percentile(&setups, 0.5),
        peak_rss_kib,
        rss_per_call_kib: peak_rss_kib.saturating_sub(idle_kib) / calls as u64,
        load_average_after: super::load_average(),
        results,
    }
}
