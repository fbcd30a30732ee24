//! The daemon's observability: health (shared by `/healthz` and the systemd
//! watchdog), the metrics and report store every finished call feeds, and the
//! HTTP server with the daily report task.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use voicebot_dialog::outcome::Outcome;
use voicebot_fleet::Fleet;
use voicebot_http::auth::Token;
use voicebot_http::server::{Backend, Bound, Service};
use voicebot_http::{
    CallRecord, DailySettings, Metrics, Observability, ReportStore, RtpRecord, SipCounters, TurnRecord,
};
use voicebot_live::ConversationSummary;
use voicebot_sip::SipStatsReader;

use super::Brain;
use crate::error::CliError;

/// Whether the daemon's loops are healthy.
pub(super) struct Health {
    brain: Arc<Brain>,
    fleet: Fleet,
    /// The phone line's serving task; `None` when SIP is off.
    phone: Option<AbortHandle>,
    active_calls: Box<dyn Fn() -> u64 + Send + Sync>,
    stopping: AtomicBool,
}

impl Health {
    pub(super) fn new(
        brain: &Arc<Brain>,
        fleet: &Fleet,
        phone: Option<AbortHandle>,
        active_calls: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Health {
        Health {
            brain: Arc::clone(brain),
            fleet: fleet.clone(),
            phone,
            active_calls,
            stopping: AtomicBool::new(false),
        }
    }

    /// Why the daemon is unhealthy; empty when it is healthy.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = vec![];
        if self.stopping.load(Ordering::Relaxed) {
            problems.push("stopping".to_owned());
        }
        let engines = self.brain.current_engines();
        for (name, loaded) in
            [("ASR", engines.asr.is_some()), ("VAD", engines.vad.is_some()), ("TTS", engines.tts.is_some())]
        {
            if !loaded {
                problems.push(format!("the {name} engine is not loaded"));
            }
        }
        if self.phone.as_ref().is_some_and(AbortHandle::is_finished) {
            problems.push("the SIP user agent stopped taking calls".to_owned());
        }
        if !self.fleet.driver_alive() {
            problems.push("the fleet (MQTT) task stopped".to_owned());
        }
        problems
    }

    pub(super) fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

struct DaemonBackend {
    health: Arc<Health>,
    fleet: Fleet,
    /// `None` when SIP is off.
    sip: Option<SipStatsReader>,
}

impl Backend for DaemonBackend {
    fn health(&self) -> Vec<String> {
        self.health.problems()
    }

    fn active_calls(&self) -> u64 {
        (self.health.active_calls)()
    }

    fn sip(&self) -> Option<SipCounters> {
        let stats = self.sip.as_ref()?.stats();
        Some(SipCounters {
            requests: stats.requests,
            rejected: stats.rejected,
            dropped: stats.dropped,
            unparseable: stats.unparseable,
            forbidden: stats.forbidden,
            busy: stats.busy,
            challenged: stats.challenged,
            calls_answered: stats.calls_answered,
            calls_failed: stats.calls_failed,
        })
    }

    fn outbox_backlog(&self) -> Option<u64> {
        self.fleet.outbox_stats().ok().map(|s| s.backlog)
    }

    fn ticket(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        self.fleet.ticket_json(id).map_err(|e| e.to_string())
    }
}

/// The metrics and the report store, before any call.
///
/// # Errors
/// The report store cannot be opened.
pub(super) fn observability(brain: &Brain, fleet: &Fleet) -> Result<Observability, CliError> {
    let config = &brain.config;
    let pack = brain.pack.current();
    let models = vec![
        ("firmware".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        ("asr".to_owned(), config.asr.english_model.clone()),
        ("asr_multilingual".to_owned(), config.asr.multilingual_model.clone()),
        ("vad".to_owned(), config.vad.model.clone()),
        ("tts".to_owned(), config.tts.english_voice.clone()),
        ("embedding".to_owned(), config.nlu.embedding_model.clone().unwrap_or_default()),
        ("pack".to_owned(), format!("{} {}", pack.name, pack.version)),
    ];
    let metrics = Arc::new(Metrics::new(models));
    let store = if config.http.listen.is_some() || fleet.online() {
        let path = report_store_path(brain, fleet);
        let store = ReportStore::open(&path).map_err(|e| CliError::Failed(e.to_string()))?;
        Some(Arc::new(Mutex::new(store)))
    } else {
        None
    };
    Ok(Observability { metrics, store })
}

fn report_store_path(brain: &Brain, fleet: &Fleet) -> PathBuf {
    brain.config.report.store.clone().unwrap_or_else(|| {
        let outbox = fleet.outbox_path();
        outbox.parent().map_or_else(|| PathBuf::from("report.db"), |dir| dir.join("report.db"))
    })
}

/// Starts the HTTP server (when `[http] listen` is set) and the daily report
/// task (when there is a store). Returns the bound address. `sip`: the phone
/// line's counters for `/metrics`, `None` when SIP is off.
///
/// # Errors
/// The token file is unreadable or the address cannot be bound.
pub(super) async fn start(
    brain: &Brain,
    fleet: &Fleet,
    observability: &Observability,
    health: &Arc<Health>,
    sip: Option<SipStatsReader>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Option<SocketAddr>, CliError> {
    let config = &brain.config;
    if let Some(store) = observability.store.clone() {
        let report_fleet = fleet.clone();
        let publish = Arc::new(move |report: &voicebot_http::DailyReport| {
            report_fleet.publish_report(serde_json::to_value(report).unwrap_or_default());
        });
        let settings = DailySettings {
            hour_utc: config.report.publish_hour_utc,
            emotion_retention: config.report.emotion_retention,
            record_retention: config.report.record_retention,
        };
        tracker.spawn(voicebot_http::run_daily(store, settings, publish, shutdown.clone()));
    }
    let Some(listen) = config.http.listen else {
        info!("HTTP is off ([http] listen is empty)");
        return Ok(None);
    };
    let token = match &config.http.token_file {
        Some(path) => Some(Token::from_file(path).map_err(|e| CliError::Failed(e.to_string()))?),
        None => {
            warn!("[http] token_file is empty: /tickets/{{id}} refuses everyone");
            None
        }
    };
    let bound = Bound::bind(listen).await.map_err(|e| CliError::Failed(e.to_string()))?;
    let addr = bound.local_addr();
    let service = Arc::new(Service {
        metrics: Arc::clone(&observability.metrics),
        report: observability.store.clone(),
        token,
        backend: Arc::new(DaemonBackend { health: Arc::clone(health), fleet: fleet.clone(), sip }),
        box_name: fleet.topics().status().trim_end_matches("/status").to_owned(),
    });
    bound.serve(service, tracker, shutdown);
    info!(addr = ?addr, "HTTP listening (/healthz, /metrics, /tickets/{{id}}, /report)");
    Ok(addr)
}

/// What a finished conversation (a phone call, with its RTP counters, or a
/// kiosk visit) tells the metrics and the report.
pub(super) fn call_record(
    call_id: &str,
    summary: &ConversationSummary,
    rtp: Option<RtpRecord>,
) -> CallRecord {
    CallRecord {
        call_id: call_id.to_owned(),
        ended_ms: voicebot_http::now_ms(),
        duration: summary.duration,
        outcome: summary.outcome.code().to_owned(),
        reason: match summary.outcome {
            Outcome::Escalated(reason) => Some(reason.code().to_owned()),
            _ => None,
        },
        turns: summary
            .turns
            .iter()
            .map(|turn| TurnRecord {
                intent: turn.intent.clone(),
                valence: (!turn.keypad).then_some(turn.emotion.valence),
                emotion: (!turn.keypad).then(|| turn.emotion.label.as_str().to_owned()),
                question: (turn.intent == voicebot_http::report::OUT_OF_SCOPE)
                    .then(|| turn.transcript.clone()),
            })
            .collect(),
        reply_latencies: summary.reply_latencies.clone(),
        asr_rtf: summary.asr_rtf.clone(),
        tts_rtf: summary.tts_rtf.clone(),
        rtp,
    }
}

/// A phone call's RTP counters for the report.
pub(super) fn rtp_record(media: &voicebot_sip::MediaStats) -> RtpRecord {
    RtpRecord {
        packets_received: media.packets_received,
        frames_played: media.packets_received,
        frames_lost: media.concealed_frames,
        jitter: Duration::from_micros(media.jitter_us),
    }
}
