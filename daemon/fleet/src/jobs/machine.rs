//! The provisioning job lifecycle, sans IO: AWS IoT Jobs style
//! `queued → in_progress → succeeded | failed`, or `rejected` up front.
//!
//! The driver feeds it received commands, finished jobs and the time, and
//! carries out the [`Action`]s it returns, in order: persist a record before
//! publishing it, publish every step on `cmd/<name>/result`, execute one job
//! at a time. Invariants:
//! - nothing is executed unless its signature checked out, it is addressed to
//!   this box, it is within the time window and its nonce is new;
//! - a rejected command changes no state here (and is never persisted);
//! - a job id runs at most once: a repeat gets its recorded status again,
//!   marked `duplicate` (idempotent by job id);
//! - the queue is bounded: a job over [`MAX_QUEUED`] is rejected as busy.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::envelope::{self, Job, Rejection};

/// Jobs waiting behind the running one.
pub const MAX_QUEUED: usize = 16;

/// The commands this build executes.
pub const COMMANDS: [&str; 5] = ["config_update", "pack_update", "diagnostics", "model_update", "kiosk"];

/// A job's lifecycle step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    InProgress,
    Succeeded,
    Failed,
    Rejected,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Rejected)
    }
}

/// One message on `cmd/<name>/result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// `None` when the command was too broken to name its job.
    pub job_id: Option<String>,
    pub command: String,
    pub status: JobStatus,
    pub at_ms: u64,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
    /// A repeat of a job id already seen: this is its recorded status.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// What the ledger keeps per accepted job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub job: Job,
    pub last: JobReport,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write this record to the ledger (before the matching publish).
    Persist(JobRecord),
    /// Publish on `cmd/<command>/result`.
    Publish(JobReport),
    /// Run this job and report with [`JobBook::finished`].
    Execute(Job),
}

/// The outcome of an executed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub message: String,
    pub detail: serde_json::Value,
}

/// Who this box is and whom it trusts.
#[derive(Debug, Clone)]
pub struct JobPolicy {
    pub key: Option<VerifyingKey>,
    pub site: String,
    pub device: String,
    pub window: Duration,
}

/// The job state of one box.
#[derive(Debug)]
pub struct JobBook {
    policy: JobPolicy,
    records: HashMap<String, JobRecord>,
    nonces: HashMap<String, String>,
    queue: VecDeque<Job>,
    running: Option<String>,
}

impl JobBook {
    /// Starts from the ledger's records. A job that was in progress when the
    /// daemon stopped cannot be resumed safely: it is failed and reported, and
    /// queued ones run again (they changed nothing yet).
    pub fn restore(policy: JobPolicy, records: Vec<JobRecord>, now_ms: u64) -> (JobBook, Vec<Action>) {
        let mut book = JobBook {
            policy,
            records: HashMap::new(),
            nonces: HashMap::new(),
            queue: VecDeque::new(),
            running: None,
        };
        let mut actions = vec![];
        let mut queued: Vec<Job> = vec![];
        for mut record in records {
            book.nonces.insert(record.job.nonce.clone(), record.job.job_id.clone());
            match record.last.status {
                JobStatus::InProgress => {
                    record.last = report(
                        &record.job,
                        JobStatus::Failed,
                        now_ms,
                        "interrupted: the daemon stopped while this job ran; check the box's state and re-issue it",
                        serde_json::Value::Null,
                    );
                    actions.push(Action::Persist(record.clone()));
                    actions.push(Action::Publish(record.last.clone()));
                }
                JobStatus::Queued => queued.push(record.job.clone()),
                _ => {}
            }
            book.records.insert(record.job.job_id.clone(), record);
        }
        queued.sort_by_key(|j| j.issued_at_ms);
        book.queue.extend(queued);
        actions.extend(book.start_next(now_ms));
        (book, actions)
    }

    /// Handles a command received on `cmd/<topic_command>` (or, for
    /// `config/desired`, with `topic_command = "config_update"`).
    pub fn receive(&mut self, topic_command: &str, payload: &[u8], now_ms: u64) -> Vec<Action> {
        let reject = |job_id: Option<String>, why: Rejection| {
            vec![Action::Publish(JobReport {
                job_id,
                command: topic_command.to_owned(),
                status: JobStatus::Rejected,
                at_ms: now_ms,
                message: why.to_string(),
                detail: serde_json::Value::Null,
                duplicate: false,
            })]
        };
        let job = match envelope::open(payload, self.policy.key.as_ref()) {
            Ok(job) => job,
            Err(why) => return reject(None, why),
        };
        let id = Some(job.job_id.clone());
        if job.site != self.policy.site || job.device != self.policy.device || job.command != topic_command {
            let expected = format!("{}/{}/{topic_command}", self.policy.site, self.policy.device);
            let why = Rejection::Misaddressed {
                site: job.site,
                device: job.device,
                command: job.command,
                expected,
            };
            return reject(id, why);
        }
        let skew_ms = i128::from(now_ms) - i128::from(job.issued_at_ms);
        if skew_ms.unsigned_abs() > self.policy.window.as_millis() {
            let why = Rejection::Stale {
                issued_at_ms: job.issued_at_ms,
                skew_s: (skew_ms / 1000) as i64,
                window_s: self.policy.window.as_secs(),
            };
            return reject(id, why);
        }
        if let Some(record) = self.records.get(&job.job_id) {
            let mut again = record.last.clone();
            again.duplicate = true;
            return vec![Action::Publish(again)];
        }
        if let Some(by) = self.nonces.get(&job.nonce) {
            return reject(id, Rejection::ReplayedNonce { nonce: job.nonce.clone(), by: by.clone() });
        }
        if !COMMANDS.contains(&job.command.as_str()) {
            return reject(id, Rejection::UnknownCommand(job.command));
        }
        if self.queue.len() >= MAX_QUEUED {
            return reject(id, Rejection::Busy(self.queue.len()));
        }
        let record = JobRecord {
            last: report(&job, JobStatus::Queued, now_ms, "accepted", serde_json::Value::Null),
            job: job.clone(),
        };
        self.nonces.insert(job.nonce.clone(), job.job_id.clone());
        self.records.insert(job.job_id.clone(), record.clone());
        self.queue.push_back(job);
        let mut actions = vec![Action::Persist(record.clone()), Action::Publish(record.last)];
        actions.extend(self.start_next(now_ms));
        actions
    }

    /// A progress step of the running job (log chunks, download progress).
    pub fn progress(
        &self,
        job_id: &str,
        message: &str,
        detail: serde_json::Value,
        now_ms: u64,
    ) -> Vec<Action> {
        match self.records.get(job_id) {
            Some(record) if self.running.as_deref() == Some(job_id) => {
                vec![Action::Publish(report(&record.job, JobStatus::InProgress, now_ms, message, detail))]
            }
            _ => vec![],
        }
    }

    /// The running job finished.
    pub fn finished(&mut self, job_id: &str, outcome: Outcome, now_ms: u64) -> Vec<Action> {
        if self.running.as_deref() != Some(job_id) {
            return vec![];
        }
        self.running = None;
        let mut actions = vec![];
        if let Some(record) = self.records.get_mut(job_id) {
            let status = if outcome.ok { JobStatus::Succeeded } else { JobStatus::Failed };
            record.last = report(&record.job, status, now_ms, &outcome.message, outcome.detail);
            actions.push(Action::Persist(record.clone()));
            actions.push(Action::Publish(record.last.clone()));
        }
        actions.extend(self.start_next(now_ms));
        actions
    }

    /// Forgets jobs issued more than two windows ago: their timestamps are
    /// rejected as stale anyway, so their ids and nonces need not be kept.
    pub fn forget_before(&mut self, cutoff_ms: u64) {
        let running = self.running.clone();
        self.records.retain(|id, r| {
            r.job.issued_at_ms >= cutoff_ms || !r.last.status.is_terminal() || running.as_deref() == Some(id)
        });
        let records = &self.records;
        self.nonces.retain(|_, id| records.contains_key(id));
    }

    pub fn running(&self) -> Option<&str> {
        self.running.as_deref()
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn start_next(&mut self, now_ms: u64) -> Vec<Action> {
        if self.running.is_some() {
            return vec![];
        }
        let Some(job) = self.queue.pop_front() else { return vec![] };
        let Some(record) = self.records.get_mut(&job.job_id) else { return vec![] };
        record.last = report(&job, JobStatus::InProgress, now_ms, "started", serde_json::Value::Null);
        self.running = Some(job.job_id.clone());
        vec![Action::Persist(record.clone()), Action::Publish(record.last.clone()), Action::Execute(job)]
    }
}

fn report(job: &Job, status: JobStatus, at_ms: u64, message: &str, detail: serde_json::Value) -> JobReport {
    JobReport {
        job_id: Some(job.job_id.clone()),
        command: job.command.clone(),
        status,
        at_ms,
        message: message.to_owned(),
        detail,
        duplicate: false,
    }
}

#[cfg(test)]
mod tests;
