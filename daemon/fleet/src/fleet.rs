//! [`Fleet`]: what the daemon holds. It opens the outbox and the job ledger,
//! starts the MQTT driver when a broker is configured, and takes hand-over
//! tickets — durably on disk before [`Fleet::hand_over`] returns, whether or
//! not a broker is configured or reachable.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voicebot_core::config::Config;
use voicebot_dialog::ticket::Ticket;

use crate::backoff::Backoff;
use crate::connection::{self, ConnectionError};
use crate::driver::{self, DriverParts};
use crate::jobs::envelope::{self, KeyError};
use crate::jobs::ledger::JobLedger;
use crate::jobs::{DeviceHooks, JobBook, JobContext, JobPolicy};
use crate::messages::{Assist, DeviceInfo};
use crate::outbox::{Enqueued, NewTicket, Outbox, OutboxError, OutboxLimits};
use crate::telemetry::CallMetrics;
use crate::topics::Topics;

/// Call events waiting for the driver (not durable: dropped and counted when full).
const CALL_EVENT_QUEUE: usize = 64;
/// Earlier tickets of the same caller shown to the agent.
const CALLER_HISTORY: usize = 5;

/// Why the fleet layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("cannot tell this box's device id: the hostname is unreadable ({0}); set [fleet] device_id")]
    Hostname(String),
    #[error("the hostname {0:?} is not a valid device id ({1}); set [fleet] device_id")]
    BadHostname(String, String),
}

/// Everything the fleet layer needs to start, resolved from the config.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    pub site: String,
    pub device: String,
    pub mqtt: voicebot_core::config::MqttConfig,
    pub outbox_path: PathBuf,
    pub limits: OutboxLimits,
    pub telemetry_interval: Duration,
    pub policy: JobPolicy,
    pub info: DeviceInfo,
    /// How long shutdown keeps delivering the outbox.
    pub flush_deadline: Duration,
    /// First and largest reconnect delay.
    pub backoff: (Duration, Duration),
}

impl FleetSettings {
    /// Resolves the config's defaults (hostname, outbox path) and loads the fleet key.
    ///
    /// # Errors
    /// An unreadable key or hostname.
    pub fn from_config(config: &Config, info: DeviceInfo) -> Result<FleetSettings, FleetError> {
        let device = match &config.fleet.device_id {
            Some(id) => id.clone(),
            None => {
                let name = hostname::get().map_err(|e| FleetError::Hostname(e.to_string()))?;
                let name = name.to_string_lossy().into_owned();
                voicebot_core::config::fleet::check_topic_level(&name)
                    .map_err(|why| FleetError::BadHostname(name.clone(), why))?;
                name
            }
        };
        let key = match &config.fleet.public_key {
            Some(path) => Some(envelope::load_public_key(path)?),
            None => None,
        };
        Ok(FleetSettings {
            site: config.fleet.site.clone(),
            policy: JobPolicy {
                key,
                site: config.fleet.site.clone(),
                device: device.clone(),
                window: config.fleet.job_window,
            },
            device,
            mqtt: config.mqtt.clone(),
            outbox_path: config.fleet.outbox.clone().unwrap_or_else(crate::outbox::default_path),
            limits: OutboxLimits {
                max_tickets: config.fleet.outbox_max_tickets,
                max_bytes: config.fleet.outbox_max_bytes,
                max_age: config.fleet.outbox_max_age,
            },
            telemetry_interval: config.fleet.telemetry_interval,
            info,
            flush_deadline: Duration::from_secs(5),
            backoff: (Duration::from_millis(500), Duration::from_secs(60)),
        })
    }
}

/// The daemon's handle on the fleet layer. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    outbox: Arc<Mutex<Outbox>>,
    wake: Arc<Notify>,
    /// Bumped by the driver after each commit of delivered marks.
    delivered: watch::Receiver<u64>,
    /// Call events and reports for the driver: `(topic, body)`.
    calls: mpsc::Sender<(String, Value)>,
    metrics: Arc<CallMetrics>,
    topics: Topics,
    online: bool,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("topics", &self.topics).field("online", &self.online).finish()
    }
}

impl Fleet {
    /// Opens the outbox and ledger and, with a broker configured, spawns the
    /// MQTT driver on `tasks`; it stops (after flushing) when `shutdown` is cancelled.
    ///
    /// # Errors
    /// The outbox or ledger cannot be opened, or the TLS files cannot be read.
    pub fn start(
        settings: FleetSettings,
        context: JobContext,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Fleet, FleetError> {
        let topics = Topics::new(&settings.site, &settings.device);
        let outbox = Arc::new(Mutex::new(Outbox::open(&settings.outbox_path, settings.limits)?));
        let wake = Arc::new(Notify::new());
        let (delivered_tx, delivered) = watch::channel(0);
        let metrics = Arc::new(CallMetrics::default());
        let (calls_tx, calls_rx) = mpsc::channel(CALL_EVENT_QUEUE);
        let online = settings.mqtt.url.is_some();
        if online {
            let options = connection::options(&settings.mqtt, &topics, &settings.site, &settings.device)?;
            let reader = Outbox::open(&settings.outbox_path, settings.limits)?;
            let ledger = JobLedger::open(&settings.outbox_path)?;
            let now = crate::now_ms();
            let keep_from =
                now.saturating_sub(2 * u64::try_from(settings.policy.window.as_millis()).unwrap_or(0));
            let records = ledger.load(keep_from)?;
            let (book, restored) = JobBook::restore(settings.policy.clone(), records, now);
            let parts = DriverParts {
                topics: topics.clone(),
                site: settings.site.clone(),
                device: settings.device.clone(),
                info: settings.info.clone(),
                options,
                outbox: Arc::clone(&outbox),
                reader: Arc::new(Mutex::new(reader)),
                delivered: Arc::new(delivered_tx),
                ledger: Arc::new(Mutex::new(ledger)),
                book,
                restored,
                context,
                wake: Arc::clone(&wake),
                calls: calls_rx,
                metrics: Arc::clone(&metrics),
                telemetry_interval: settings.telemetry_interval,
                flush_deadline: settings.flush_deadline,
                backoff: Backoff::new(settings.backoff.0, settings.backoff.1),
            };
            driver::spawn(parts, tasks, shutdown);
        } else {
            tracing::info!(outbox = %settings.outbox_path.display(), "fleet: no broker configured; tickets stay in the local outbox");
        }
        Ok(Fleet { outbox, wake, delivered, calls: calls_tx, metrics, topics, online })
    }

    /// Writes a hand-over ticket (and its agent-assist message) durably to the
    /// outbox, then wakes the driver to publish it. Returns once it is on disk.
    ///
    /// # Errors
    /// The outbox could not take it (full disk, unwritable, oversized): the
    /// caller must log it loudly, the hand-over itself still goes ahead.
    ///
    /// # Cancel safety
    /// The write runs on a blocking thread and completes even if this future
    /// is dropped; the ticket is then enqueued but the driver not woken until
    /// the next ticket or reconnect.
    pub async fn hand_over(&self, ticket: &Ticket) -> Result<Enqueued, OutboxError> {
        let outbox = Arc::clone(&self.outbox);
        let ticket = ticket.clone();
        let done = tokio::task::spawn_blocking(move || {
            enqueue_ticket(&mut outbox.lock().unwrap_or_else(|p| p.into_inner()), &ticket, crate::now_ms())
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        self.wake.notify_one();
        Ok(done)
    }

    /// Publishes a call event on `event/call` if connected (best effort; not durable).
    pub fn call_event(&self, event: Value) {
        if self.online && self.calls.try_send((self.topics.event_call(), event)).is_err() {
            tracing::debug!("fleet: call event queue full; event dropped");
        }
    }

    /// Publishes the daily service report on `report/daily` if connected (best
    /// effort, QoS 1, not durable: the box serves it at `/report` too).
    pub fn publish_report(&self, report: Value) {
        if self.online && self.calls.try_send((self.topics.report_daily(), report)).is_err() {
            tracing::warn!("fleet: queue full; the daily report was not published");
        }
    }

    /// Whether the MQTT driver task is running (always true without a broker).
    pub fn driver_alive(&self) -> bool {
        !self.online || !self.calls.is_closed()
    }

    /// Outbox counters. Blocking (SQLite): call from a blocking thread.
    ///
    /// # Errors
    /// The outbox could not be read.
    pub fn outbox_stats(&self) -> Result<crate::outbox::OutboxStats, OutboxError> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner()).stats()
    }

    /// A stored ticket's JSON by id (for agents' desktops). Blocking (SQLite).
    ///
    /// # Errors
    /// The outbox could not be read.
    pub fn ticket_json(&self, id: &str) -> Result<Option<Vec<u8>>, OutboxError> {
        Ok(self.outbox.lock().unwrap_or_else(|p| p.into_inner()).get(id)?.map(|(_, json)| json))
    }

    /// Waits up to `within` for the broker to acknowledge ticket `id`; `true` once it has.
    /// `false` at once with no broker configured. Returns right after the
    /// driver commits the ticket's delivered mark (it wakes this), so the wait
    /// is the PUBACK plus the driver's ack batching (at most 20 ms; none once
    /// no other ticket is in flight) plus one commit.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only reads.
    pub async fn wait_delivered(&self, id: &str, within: std::time::Duration) -> bool {
        if !self.online {
            return false;
        }
        let deadline = tokio::time::Instant::now() + within;
        // Subscribed before the first look, so a mark committed in between still wakes us.
        let mut marks = self.delivered.clone();
        marks.borrow_and_update();
        loop {
            if self.is_delivered(id).await {
                return true;
            }
            match tokio::time::timeout_at(deadline, marks.changed()).await {
                Ok(Ok(())) => {
                    marks.borrow_and_update();
                }
                // The deadline passed, or the driver stopped: one last look.
                Ok(Err(_)) | Err(_) => return self.is_delivered(id).await,
            }
        }
    }

    /// Whether the outbox has ticket `id` marked delivered, read off the reactor.
    async fn is_delivered(&self, id: &str) -> bool {
        let outbox = Arc::clone(&self.outbox);
        let ticket = id.to_owned();
        tokio::task::spawn_blocking(move || {
            let outbox = outbox.lock().unwrap_or_else(|p| p.into_inner());
            outbox.is_delivered(&ticket).ok().flatten().unwrap_or(false)
        })
        .await
        .unwrap_or(false)
    }

    pub fn metrics(&self) -> &Arc<CallMetrics> {
        &self.metrics
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Whether a broker is configured.
    pub fn online(&self) -> bool {
        self.online
    }

    /// The outbox file.
    pub fn outbox_path(&self) -> PathBuf {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner()).path().to_path_buf()
    }
}

/// Enqueues `ticket` with its assist message (caller history from the outbox).
///
/// # Errors
/// As [`Outbox::enqueue`].
pub fn enqueue_ticket(outbox: &mut Outbox, ticket: &Ticket, now_ms: u64) -> Result<Enqueued, OutboxError> {
    let history = match &ticket.caller_id {
        Some(caller) => outbox.caller_history(caller, &ticket.id, CALLER_HISTORY)?,
        None => vec![],
    };
    let ticket_json = serde_json::to_vec(ticket).unwrap_or_default();
    let assist_json = serde_json::to_vec(&Assist::for_ticket(ticket, &history)).unwrap_or_default();
    outbox.enqueue(
        &NewTicket {
            id: &ticket.id,
            caller_id: ticket.caller_id.as_deref(),
            summary: &ticket.summary,
            ticket_json: &ticket_json,
            assist_json: &assist_json,
        },
        now_ms,
    )
}

/// The job context for a daemon started with `config_path`.
pub fn job_context(config_path: Option<&Path>, config: &Config, hooks: Arc<dyn DeviceHooks>) -> JobContext {
    let mut models_in_use = vec![
        config.asr.english_model.clone(),
        config.asr.multilingual_model.clone(),
        config.vad.model.clone(),
        config.tts.english_voice.clone(),
    ];
    models_in_use.extend(config.nlu.embedding_model.clone());
    JobContext {
        config_path: config_path.map(Path::to_path_buf),
        pack_path: config.nlu.pack.clone(),
        model_dir: config.models.dir.clone(),
        models_in_use,
        hooks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::NewTicket;

    /// An online fleet whose driver is the test: it holds the `delivered` watch.
    fn fleet(dir: &tempfile::TempDir) -> (Fleet, watch::Sender<u64>) {
        let mut outbox = Outbox::open(&dir.path().join("outbox.db"), OutboxLimits::default()).unwrap();
        let ticket =
            NewTicket { id: "T1", caller_id: None, summary: "s", ticket_json: b"{}", assist_json: b"{}" };
        outbox.enqueue(&ticket, 1).unwrap();
        let (delivered_tx, delivered) = watch::channel(0);
        let fleet = Fleet {
            outbox: Arc::new(Mutex::new(outbox)),
            wake: Arc::new(Notify::new()),
            delivered,
            calls: mpsc::channel(1).0,
            metrics: Arc::default(),
            topics: Topics::new("s", "d"),
            online: true,
        };
        (fleet, delivered_tx)
    }

    fn mark(fleet: &Fleet) {
        let mut outbox = fleet.outbox.lock().unwrap();
        let seqs: Vec<i64> = outbox.pending_after(0, 10).unwrap().iter().map(|e| e.seq).collect();
        outbox.mark_delivered(&seqs, 2).unwrap();
    }

    #[tokio::test]
    async fn wait_delivered_wakes_on_the_drivers_commit_not_on_a_poll() {
        let dir = tempfile::tempdir().unwrap();
        let (fleet, delivered) = fleet(&dir);
        let waiter = tokio::spawn({
            let fleet = fleet.clone();
            async move { fleet.wait_delivered("T1", Duration::from_secs(3600)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Marked in the file, but the driver has not said so: no poll finds it.
        mark(&fleet);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished(), "woke without the driver's signal: it polls");
        delivered.send_modify(|n| *n += 1);
        let woke = tokio::time::timeout(Duration::from_secs(10), waiter).await;
        assert!(woke.expect("the driver's signal wakes it").unwrap());
    }

    #[tokio::test]
    async fn wait_delivered_sees_a_mark_committed_before_it_started_and_times_out_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let (fleet, _delivered) = fleet(&dir);
        assert!(
            !fleet.wait_delivered("T1", Duration::from_millis(30)).await,
            "not delivered: the bound holds"
        );
        mark(&fleet);
        assert!(fleet.wait_delivered("T1", Duration::ZERO).await);
        assert!(!fleet.wait_delivered("NONE", Duration::ZERO).await);
    }

    #[tokio::test]
    async fn wait_delivered_gives_up_at_once_when_the_driver_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (fleet, delivered) = fleet(&dir);
        drop(delivered);
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            fleet.wait_delivered("T1", Duration::from_secs(3600)),
        );
        assert!(!waited.await.expect("returns without waiting out its bound"));
    }
}
