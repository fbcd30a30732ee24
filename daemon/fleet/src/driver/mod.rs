//! The tokio driver: the fleet's only IO loop.
//!
//! It feeds the sans-IO parts ([`DeliveryTracker`], [`JobBook`]) from the
//! poller's events and carries out their decisions: publish birth on connect,
//! replay the outbox (at most [`MAX_TICKETS_IN_FLIGHT`] unacknowledged), mark
//! entries delivered on PUBACK, publish telemetry, run jobs on a blocking
//! thread one at a time. SQLite work runs in `spawn_blocking`, never on the
//! reactor.
//!
//! Acknowledgements are committed in the background, one commit at a time
//! (acks that arrive meanwhile form the next batch), while the driver keeps
//! refilling the in-flight window from its own read connection: an entry is
//! marked delivered only after its PUBACK, and a crash before the commit only
//! makes it go out again. After each commit the driver bumps the `delivered`
//! watch, which wakes [`crate::Fleet::wait_delivered`].
//!
//! Every queue is bounded: the client's request queue ([`REQUEST_QUEUE`]) is
//! only ever `try_`-fed — a full queue leaves tickets in the outbox for the
//! next pump, and drops (and counts) telemetry and call events, which are not
//! durable by design.
//!
//! Shutdown: on cancel the driver stops taking new work, keeps delivering
//! until nothing is in flight and the outbox is empty or the flush deadline
//! passes, publishes the retained `offline` status, disconnects and stops the
//! poller. What is left stays in the outbox for the next start.

mod poller;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::delivery::{DeliveryTracker, Tag};
use crate::jobs::apply::{self, JobContext};
use crate::jobs::ledger::JobLedger;
use crate::jobs::machine::{Action, JobBook, JobReport, JobStatus, Outcome};
use crate::messages::{ConfigReported, DeviceInfo, Status};
use crate::outbox::{EntryKind, Outbox, PendingEntry};
use crate::telemetry::{CallMetrics, SystemSnapshot, Telemetry};
use crate::topics::{Inbound, Topics};
use crate::{Backoff, now_ms};

use poller::PollEvent;

/// Outbox entries published but not yet acknowledged, at most.
pub const MAX_TICKETS_IN_FLIGHT: usize = 64;
/// The client's request queue (tickets in flight plus results, telemetry, events).
pub const REQUEST_QUEUE: usize = 256;
/// Acknowledged entries are marked delivered in batches of up to this many…
const ACK_BATCH: usize = 64;
/// …or after this long; at once when nothing else is in flight (no more acks
/// to wait for), or when the batch holds a ticket and no other ticket is in
/// flight (a transfer may be waiting on it, while its assist's PUBACK can
/// trail by a TCP delayed ACK when the broker has Nagle on, as mosquitto does
/// by default).
const ACK_LINGER: Duration = Duration::from_millis(20);
/// A PUBACK refills the window once this many entries fit (fewer reads per ack).
const REFILL_AT: usize = MAX_TICKETS_IN_FLIGHT / 4;

/// What the driver needs; built by [`crate::Fleet::start`].
pub(crate) struct DriverParts {
    pub(crate) topics: Topics,
    pub(crate) site: String,
    pub(crate) device: String,
    pub(crate) info: DeviceInfo,
    pub(crate) options: rumqttc::MqttOptions,
    /// The fleet's outbox connection: the driver writes delivered marks with it.
    pub(crate) outbox: Arc<Mutex<Outbox>>,
    /// A second connection to the same file, for the driver's reads: with WAL
    /// they go on while a hand-over or a delivered mark commits.
    pub(crate) reader: Arc<Mutex<Outbox>>,
    /// Bumped after every commit of delivered marks.
    pub(crate) delivered: Arc<watch::Sender<u64>>,
    pub(crate) ledger: Arc<Mutex<JobLedger>>,
    pub(crate) book: JobBook,
    pub(crate) restored: Vec<Action>,
    pub(crate) context: JobContext,
    pub(crate) wake: Arc<Notify>,
    /// Call events and daily reports: `(topic, body)`.
    pub(crate) calls: mpsc::Receiver<(String, Value)>,
    pub(crate) metrics: Arc<CallMetrics>,
    pub(crate) telemetry_interval: Duration,
    pub(crate) flush_deadline: Duration,
    pub(crate) backoff: Backoff,
}

enum JobEvent {
    Progress { job_id: String, message: String, detail: Value },
    Finished { job_id: String, outcome: Outcome },
}

struct Driver {
    parts: DriverParts,
    client: AsyncClient,
    tracker: DeliveryTracker,
    cursor: i64,
    /// The last read found nothing after `cursor`: acks need not read again
    /// until a hand-over wakes the driver.
    exhausted: bool,
    connected: bool,
    acked: Vec<i64>,
    /// Some of `acked` are tickets (not only assists): someone may wait on them.
    acked_ticket: bool,
    /// Ticket entries (not assists) published and not yet acknowledged.
    tickets_in_flight: HashSet<i64>,
    /// The background commit of delivered marks, if one runs.
    committing: Option<JoinHandle<()>>,
    pending_actions: Vec<Action>,
    jobs_tx: mpsc::Sender<JobEvent>,
    started: Instant,
    dropped: u64,
    last_config_job: Option<String>,
    /// Job statuses handed to the client, to mark in the ledger: `(job id, at_ms)`.
    reported: Vec<(String, u64)>,
    /// Why the last connect failed, since the last connection: a new reason
    /// is logged at WARN once, repeats only at DEBUG.
    last_failure: Option<String>,
}

/// Starts the poller and the driver on `tasks`.
pub(crate) fn spawn(parts: DriverParts, tasks: &TaskTracker, shutdown: CancellationToken) {
    let (client, mut eventloop) = AsyncClient::new(parts.options.clone(), REQUEST_QUEUE);
    // A ticket and its assist go out back to back: with Nagle the second
    // waits for the broker's TCP ACK of the first (a delayed ACK, ~40 ms).
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let (events_tx, events_rx) = mpsc::channel(REQUEST_QUEUE);
    let (jobs_tx, jobs_rx) = mpsc::channel(64);
    let stop_poller = CancellationToken::new();
    tasks.spawn(poller::run(eventloop, events_tx, parts.backoff.clone(), stop_poller.clone()));
    let driver = Driver {
        pending_actions: parts.restored.clone(),
        parts,
        client,
        tracker: DeliveryTracker::new(),
        cursor: 0,
        exhausted: false,
        connected: false,
        acked: vec![],
        acked_ticket: false,
        tickets_in_flight: HashSet::new(),
        committing: None,
        jobs_tx,
        started: Instant::now(),
        dropped: 0,
        last_config_job: None,
        reported: vec![],
        last_failure: None,
    };
    tasks.spawn(driver.run(events_rx, jobs_rx, shutdown, stop_poller));
}

impl Driver {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<PollEvent>,
        mut jobs: mpsc::Receiver<JobEvent>,
        shutdown: CancellationToken,
        stop_poller: CancellationToken,
    ) {
        let mut telemetry = tokio::time::interval(self.parts.telemetry_interval);
        telemetry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let wake = Arc::clone(&self.parts.wake);
        let mut linger: Option<tokio::time::Instant> = None;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let linger_at = linger.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            let deadline_at =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                () = shutdown.cancelled(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + self.parts.flush_deadline);
                    info!(deadline = ?self.parts.flush_deadline, "fleet: flushing the outbox before stopping");
                }
                () = tokio::time::sleep_until(deadline_at), if deadline.is_some() => {
                    warn!(in_flight = self.tracker.in_flight(), "fleet: flush deadline passed; the rest stays in the outbox");
                    break;
                }
                event = events.recv() => match event {
                    Some(PollEvent::Event(event)) => self.on_event(event).await,
                    Some(PollEvent::Down { error, retry_in, resume }) => {
                        self.on_down(&error, retry_in).await;
                        let _ = resume.send(());
                        if deadline.is_some() {
                            break;
                        }
                    }
                    None => break,
                },
                () = wake.notified(), if self.connected => {
                    self.exhausted = false;
                    self.pump().await;
                }
                () = commit_done(&mut self.committing), if self.committing.is_some() => self.committing = None,
                _ = telemetry.tick(), if self.connected && deadline.is_none() => self.publish_telemetry().await,
                Some((topic, body)) = self.parts.calls.recv(), if deadline.is_none() => self.publish_call(topic, body),
                Some(job) = jobs.recv() => self.on_job_event(job),
                () = tokio::time::sleep_until(linger_at), if linger.is_some() && self.committing.is_none() => {}
            }
            if self.acked.is_empty() {
                // Committed elsewhere (a connection loss flushes): no timer left to run.
                linger = None;
            } else if self.committing.is_none() {
                let now = tokio::time::Instant::now();
                let due = self.acked.len() >= ACK_BATCH
                    || self.tracker.in_flight() == 0
                    || (self.acked_ticket && self.tickets_in_flight.is_empty())
                    || deadline.is_some()
                    || linger.is_some_and(|at| at <= now);
                if due {
                    linger = None;
                    self.start_commit();
                } else if linger.is_none() {
                    linger = Some(now + ACK_LINGER);
                }
            }
            self.run_actions().await;
            if deadline.is_some() && self.drained().await {
                break;
            }
        }
        self.flush_acks().await;
        if self.connected {
            self.stop_cleanly(&mut events).await;
        }
        stop_poller.cancel();
        info!("fleet stopped");
    }

    /// Stopping, and nothing left to deliver (or no broker to deliver to).
    async fn drained(&mut self) -> bool {
        if !self.connected {
            return true;
        }
        if self.tracker.in_flight() > 0 || !self.acked.is_empty() || self.committing.is_some() {
            return false;
        }
        self.pump().await;
        self.tracker.in_flight() == 0
    }

    async fn stop_cleanly(&mut self, events: &mut mpsc::Receiver<PollEvent>) {
        let (site, device) = (self.parts.site.clone(), self.parts.device.clone());
        let offline = Status::stopped(&device, &site, now_ms()).to_json();
        self.publish(self.parts.topics.status(), QoS::AtLeastOnce, true, offline, Tag::Other);
        let _ = self.client.try_disconnect();
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(event)) = tokio::time::timeout_at(until, events.recv()).await {
            if matches!(
                event,
                PollEvent::Event(Event::Outgoing(Outgoing::Disconnect)) | PollEvent::Down { .. }
            ) {
                break;
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => self.on_connected().await,
            Event::Outgoing(Outgoing::Publish(pkid)) => self.tracker.written(pkid),
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(seq) = self.tracker.acked(ack.pkid) {
                    self.acked.push(seq);
                    self.acked_ticket |= self.tickets_in_flight.remove(&seq);
                    // Refill now: the window need not wait for the commit.
                    let room = MAX_TICKETS_IN_FLIGHT.saturating_sub(self.tracker.in_flight());
                    if !self.exhausted && room >= REFILL_AT {
                        self.pump().await;
                    }
                }
            }
            Event::Incoming(Packet::Publish(publish)) => self.on_command(&publish.topic, &publish.payload),
            Event::Incoming(Packet::SubAck(ack))
                if ack.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) =>
            {
                error!("fleet: the broker refused the command subscription; jobs cannot reach this box");
            }
            _ => {}
        }
    }

    async fn on_connected(&mut self) {
        info!(broker = ?self.parts.options.broker_address(), "fleet: connected");
        self.connected = true;
        self.last_failure = None;
        self.tracker.reset();
        self.tickets_in_flight.clear();
        self.cursor = 0;
        self.exhausted = false;
        self.publish_birth();
        self.republish_unreported().await;
        let topics = &self.parts.topics;
        let filters = [topics.cmd_filter(), topics.config_desired()];
        for filter in filters {
            if let Err(e) = self.client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                error!(%filter, error = %e, "fleet: cannot subscribe");
            }
        }
        self.pump().await;
    }

    /// Publishes the job statuses reached while no broker was connected.
    async fn republish_unreported(&mut self) {
        let ledger = Arc::clone(&self.parts.ledger);
        let reports = match tokio::task::spawn_blocking(move || lock(&ledger).unreported()).await {
            Ok(Ok(reports)) => reports,
            _ => {
                return error!(
                    "fleet: cannot read the job ledger; job results reached offline stay unpublished"
                );
            }
        };
        if !reports.is_empty() {
            info!(count = reports.len(), "fleet: publishing job results reached while disconnected");
        }
        for report in reports {
            self.publish_result(&report);
        }
        self.flush_reported().await;
    }

    async fn flush_reported(&mut self) {
        if self.reported.is_empty() {
            return;
        }
        let done = std::mem::take(&mut self.reported);
        let ledger = Arc::clone(&self.parts.ledger);
        let marked = tokio::task::spawn_blocking(move || {
            let ledger = lock(&ledger);
            done.iter().try_for_each(|(id, at)| ledger.mark_reported(id, *at))
        })
        .await;
        if !matches!(marked, Ok(Ok(()))) {
            // Left unreported: published once more after the next connect.
            warn!("fleet: cannot mark job results published");
        }
    }

    async fn on_down(&mut self, error: &str, retry_in: Duration) {
        if self.connected {
            warn!(%error, in_flight = self.tracker.in_flight(), "fleet: connection lost; unacknowledged tickets will be resent");
        } else if self.last_failure.as_deref() != Some(error) {
            let broker = self.parts.options.broker_address();
            warn!(%error, ?broker, "fleet: cannot connect to the broker; tickets wait in the outbox, retrying with backoff");
        } else {
            debug!(%error, ?retry_in, "fleet: connect failed");
        }
        self.last_failure = Some(error.to_owned());
        self.connected = false;
        self.tracker.reset();
        self.tickets_in_flight.clear();
        self.flush_acks().await;
        info!(retry_in_ms = retry_in.as_millis() as u64, "fleet: reconnecting after backoff");
    }

    fn publish_birth(&mut self) {
        let (site, device) = (self.parts.site.clone(), self.parts.device.clone());
        let birth = Status::birth(&device, &site, &self.parts.info, now_ms()).to_json();
        self.publish(self.parts.topics.status(), QoS::AtLeastOnce, true, birth, Tag::Other);
    }

    /// Hands the client a publish and records its tag; `false` if the queue is full.
    fn publish(&mut self, topic: String, qos: QoS, retain: bool, payload: Vec<u8>, tag: Tag) -> bool {
        match self.client.try_publish(topic.clone(), qos, retain, payload) {
            Ok(()) => {
                self.tracker.requested(tag);
                true
            }
            Err(e) => {
                if tag == Tag::Other {
                    self.dropped += 1;
                    warn!(%topic, error = %e, "fleet: client queue full; message dropped");
                }
                false
            }
        }
    }

    /// Publishes outbox entries after the cursor, up to the in-flight window.
    async fn pump(&mut self) {
        if !self.connected {
            return;
        }
        let room = MAX_TICKETS_IN_FLIGHT.saturating_sub(self.tracker.in_flight());
        if room == 0 {
            return;
        }
        let after = self.cursor;
        let reader = Arc::clone(&self.parts.reader);
        let read = tokio::task::spawn_blocking(move || lock(&reader).pending_after(after, room)).await;
        let entries: Vec<PendingEntry> = match read {
            Ok(Ok(entries)) => entries,
            Ok(Err(e)) => return error!(error = %e, "fleet: cannot read the outbox"),
            Err(e) => return error!(error = %e, "fleet: outbox read panicked"),
        };
        self.exhausted = entries.len() < room;
        for entry in entries {
            let topic = match entry.kind {
                EntryKind::Ticket => self.parts.topics.event_ticket(),
                EntryKind::Assist => self.parts.topics.agent_assist(&entry.ticket_id),
            };
            if !self.publish(topic, QoS::AtLeastOnce, false, entry.payload, Tag::Outbox(entry.seq)) {
                // The client's queue is full: the next ack reads them again.
                self.exhausted = false;
                break;
            }
            if entry.kind == EntryKind::Ticket {
                self.tickets_in_flight.insert(entry.seq);
            }
            self.cursor = entry.seq;
        }
    }

    /// Starts committing the acknowledged entries in the background.
    fn start_commit(&mut self) {
        debug_assert!(self.committing.is_none(), "one commit at a time");
        let seqs = std::mem::take(&mut self.acked);
        self.acked_ticket = false;
        let outbox = Arc::clone(&self.parts.outbox);
        let delivered = Arc::clone(&self.parts.delivered);
        self.committing = Some(tokio::task::spawn_blocking(move || {
            match lock(&outbox).mark_delivered(&seqs, now_ms()) {
                Ok(()) => delivered.send_modify(|marks| *marks = marks.wrapping_add(1)),
                // Left pending: delivered again next session (a duplicate, never a loss).
                Err(e) => error!(error = %e, "fleet: cannot mark tickets delivered"),
            }
        }));
    }

    /// Waits for the running commit, then commits what is left.
    async fn flush_acks(&mut self) {
        commit_done(&mut self.committing).await;
        self.committing = None;
        if !self.acked.is_empty() {
            self.start_commit();
            commit_done(&mut self.committing).await;
            self.committing = None;
        }
    }

    async fn publish_telemetry(&mut self) {
        let reader = Arc::clone(&self.parts.reader);
        let stats = tokio::task::spawn_blocking(move || lock(&reader).stats()).await;
        let stats = match stats {
            Ok(Ok(s)) => s,
            _ => return warn!("fleet: outbox stats unreadable; telemetry skipped"),
        };
        let telemetry = Telemetry {
            at_ms: now_ms(),
            uptime_s: self.started.elapsed().as_secs(),
            calls: self.parts.metrics.snapshot(),
            outbox: stats,
            system: SystemSnapshot::read(),
            dropped_messages: self.dropped,
        };
        let body = serde_json::to_vec(&telemetry).unwrap_or_default();
        self.publish(self.parts.topics.telemetry(), QoS::AtMostOnce, false, body, Tag::Other);
    }

    fn publish_call(&mut self, topic: String, call: Value) {
        if self.connected {
            let body = serde_json::to_vec(&call).unwrap_or_default();
            self.publish(topic, QoS::AtLeastOnce, false, body, Tag::Other);
        } else {
            self.dropped += 1;
        }
    }

    fn on_command(&mut self, topic: &str, payload: &[u8]) {
        let command = match self.parts.topics.inbound(topic) {
            Some(Inbound::Command(name)) => name,
            Some(Inbound::ConfigDesired) => "config_update".to_owned(),
            None => return debug!(%topic, "fleet: ignoring a message on an unexpected topic"),
        };
        let actions = self.parts.book.receive(&command, payload, now_ms());
        self.pending_actions.extend(actions);
    }

    fn on_job_event(&mut self, event: JobEvent) {
        let now = now_ms();
        let actions = match event {
            JobEvent::Progress { job_id, message, detail } => {
                self.parts.book.progress(&job_id, &message, detail, now)
            }
            JobEvent::Finished { job_id, outcome } => self.parts.book.finished(&job_id, outcome, now),
        };
        self.pending_actions.extend(actions);
    }

    /// Carries out the job book's decisions, in order.
    async fn run_actions(&mut self) {
        while !self.pending_actions.is_empty() {
            let actions = std::mem::take(&mut self.pending_actions);
            for action in actions {
                match action {
                    Action::Persist(record) => {
                        let ledger = Arc::clone(&self.parts.ledger);
                        let saved = tokio::task::spawn_blocking(move || lock(&ledger).save(&record)).await;
                        if !matches!(saved, Ok(Ok(()))) {
                            error!(
                                "fleet: cannot write the job ledger; a replay of this job may not be recognised"
                            );
                        }
                    }
                    Action::Publish(report) => self.publish_report(&report),
                    Action::Execute(job) => self.execute(job),
                }
            }
        }
        self.flush_reported().await;
    }

    fn publish_report(&mut self, report: &JobReport) {
        info!(job = ?report.job_id, command = %report.command, status = ?report.status, message = %report.message, "fleet job");
        let succeeded = report.status == JobStatus::Succeeded && !report.duplicate;
        if report.command == "config_update"
            && succeeded
            && let Some(hash) = report.detail.get("config_hash").and_then(Value::as_str)
        {
            self.parts.info.config_hash = hash.to_owned();
            self.last_config_job = report.job_id.clone();
            let reported = ConfigReported {
                config_hash: hash,
                at_ms: report.at_ms,
                job_id: self.last_config_job.as_deref(),
                restart_required: report
                    .detail
                    .get("restart_required")
                    .and_then(Value::as_array)
                    .is_none_or(|keys| !keys.is_empty()),
            };
            let body = serde_json::to_vec(&reported).unwrap_or_default();
            self.publish(self.parts.topics.config_reported(), QoS::AtLeastOnce, true, body, Tag::Other);
        }
        if report.command == "model_update"
            && succeeded
            && let Some(versions) = report.detail.get("versions")
        {
            if let Some(models) = versions.get("models").and_then(Value::as_str) {
                self.parts.info.versions.models = models.to_owned();
            }
            if let Some(files) = versions.get("model_files").and_then(Value::as_object) {
                self.parts.info.versions.model_files =
                    files.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect();
            }
            if self.connected {
                self.publish_birth();
            }
        }
        if report.command == "pack_update" && succeeded {
            let name = report.detail.get("name").and_then(Value::as_str).unwrap_or_default();
            let version = report.detail.get("version").and_then(Value::as_str).unwrap_or_default();
            self.parts.info.versions.pack = format!("{name} {version}");
            if self.connected {
                self.publish_birth();
            }
        }
        if self.connected {
            self.publish_result(report);
        }
    }

    /// Publishes a job result; a recorded status (not a rejection or duplicate
    /// answer) handed to the client is marked reported in the ledger.
    fn publish_result(&mut self, report: &JobReport) {
        let body = serde_json::to_vec(report).unwrap_or_default();
        let topic = self.parts.topics.cmd_result(&report.command);
        let handed = self.publish(topic, QoS::AtLeastOnce, false, body, Tag::Other);
        if let (true, false, Some(id)) = (handed, report.duplicate, &report.job_id)
            && report.status != JobStatus::Rejected
        {
            self.reported.push((id.clone(), report.at_ms));
        }
    }

    fn execute(&mut self, job: crate::jobs::Job) {
        let context = self.parts.context.clone();
        let events = self.jobs_tx.clone();
        tokio::task::spawn_blocking(move || {
            let job_id = job.job_id.clone();
            let mut progress = |message: &str, detail: Value| {
                let step = JobEvent::Progress { job_id: job_id.clone(), message: message.to_owned(), detail };
                let _ = events.blocking_send(step);
            };
            let outcome = apply::execute(&job, &context, &mut progress);
            let _ = events.blocking_send(JobEvent::Finished { job_id, outcome });
        });
    }
}

/// Until the background commit (if any) ends.
///
/// # Cancel safety
/// Cancel-safe: the commit goes on without the handle; poll again to wait for it.
async fn commit_done(committing: &mut Option<JoinHandle<()>>) {
    if let Some(handle) = committing
        && let Err(e) = handle.await
    {
        error!(error = %e, "fleet: marking delivered panicked");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
