//! voicebotd's observability and agents' desktop endpoint: a small HTTP
//! server on the box (hyper 1), Prometheus metrics, and the daily service
//! report.
//!
//! - [`record`]: what the daemon tells us about each finished call (plain data);
//! - [`metrics`]: the `voicebot_*` metric families and their exposition;
//! - [`report`]: the daily report's math, its SQLite store, its HTML page;
//! - [`auth`]: bearer tokens, compared in constant time;
//! - [`server`]: the routes;
//! - [`Observability`]: the daemon's handle, fed at each call's end;
//!   [`run_daily`]: the task that prunes the store and publishes the report.
//!
//! The daemon supplies what only it knows through [`server::Backend`] (health,
//! the outbox, the SIP counters), so this crate needs neither the dialog, the
//! fleet nor the SIP crates.

pub mod auth;
pub mod metrics;
pub mod record;
pub mod report;
pub mod server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use metrics::{BoxGauges, Metrics, SipCounters};
pub use record::{CallRecord, RtpRecord, TurnRecord};
pub use report::{DailyReport, ReportStore};

/// Unix time in milliseconds (0 before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What each finished call updates: the metrics, and the report store.
#[derive(Debug, Clone)]
pub struct Observability {
    pub metrics: Arc<Metrics>,
    /// `None`: the report is off.
    pub store: Option<Arc<Mutex<ReportStore>>>,
}

impl Observability {
    /// Counts a finished call now and stores it for the report on a blocking
    /// thread (must be called inside a tokio runtime when a store is set).
    pub fn call_ended(&self, call: CallRecord) {
        self.metrics.call_ended(&call);
        if let Some(store) = self.store.clone() {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.lock().unwrap_or_else(|p| p.into_inner()).insert(&call) {
                    tracing::error!(error = %e, "the call is missing from the service report");
                }
            });
        }
    }
}

/// When and what the daily task keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailySettings {
    /// Hour of day (UTC) the report for the 24 h before is published.
    pub hour_utc: u8,
    pub emotion_retention: Duration,
    pub record_retention: Duration,
}

/// Prunes the store hourly and publishes the report once a day, until `cancel`.
///
/// # Cancel safety
/// Returns at `cancel`; a prune or report in progress finishes on its
/// blocking thread.
pub async fn run_daily(
    store: Arc<Mutex<ReportStore>>,
    settings: DailySettings,
    publish: Arc<dyn Fn(&DailyReport) + Send + Sync>,
    cancel: CancellationToken,
) {
    let mut due = report::next_publication(now_ms(), settings.hour_utc);
    loop {
        let store_prune = Arc::clone(&store);
        let pruned = tokio::task::spawn_blocking(move || {
            store_prune.lock().unwrap_or_else(|p| p.into_inner()).prune(
                now_ms(),
                settings.emotion_retention,
                settings.record_retention,
            )
        })
        .await;
        match pruned {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((calls, emotions))) => tracing::info!(calls, emotions, "report store: retention applied"),
            Ok(Err(e)) => tracing::error!(error = %e, "report store: retention could not be applied"),
            Err(e) => tracing::error!(error = %e, "report store: pruning panicked"),
        }
        let now = now_ms();
        if now >= due {
            let (from, to) = report::window_before(due);
            let store_read = Arc::clone(&store);
            let calls = tokio::task::spawn_blocking(move || {
                store_read.lock().unwrap_or_else(|p| p.into_inner()).calls_between(from, to)
            })
            .await;
            match calls {
                Ok(Ok(calls)) => {
                    let daily = DailyReport::compute(from, to, &calls);
                    tracing::info!(calls = daily.calls, "daily service report");
                    publish(&daily);
                }
                Ok(Err(e)) => tracing::error!(error = %e, "daily report skipped: the store is unreadable"),
                Err(e) => tracing::error!(error = %e, "daily report panicked"),
            }
            due = report::next_publication(now, settings.hour_utc);
        }
        let wait = Duration::from_millis(due.saturating_sub(now_ms()).min(3_600_000));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cancel.cancelled() => return,
        }
    }
}
