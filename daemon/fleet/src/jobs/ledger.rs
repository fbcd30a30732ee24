//! The job ledger: accepted jobs, their nonces and last status, on disk.
//!
//! It lives in the outbox's SQLite file (its own table), with the same WAL and
//! full-sync settings, so a job id or nonce once accepted is remembered across
//! restarts and a replay is rejected even after a reboot. Records older than
//! two time windows are pruned: their signed timestamps make them stale anyway.
//!
//! Each record also says whether its last status was handed to a connected
//! client (`reported`): a status reached while the broker was unreachable is
//! published after the next connect, from here, even across a restart.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::envelope::Job;
use super::machine::{JobRecord, JobReport};
use crate::outbox::OutboxError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    nonce TEXT NOT NULL UNIQUE,
    issued_at_ms INTEGER NOT NULL,
    job TEXT NOT NULL,
    last TEXT NOT NULL
);
";
/// Added after the first release: older files get the column on open.
const REPORTED_COLUMN: &str = "ALTER TABLE jobs ADD COLUMN reported INTEGER NOT NULL DEFAULT 1";

#[derive(Debug)]
pub struct JobLedger {
    conn: Connection,
    path: PathBuf,
}

impl JobLedger {
    /// Opens the ledger table in the file at `path` (normally the outbox's).
    ///
    /// # Errors
    /// As [`crate::outbox::Outbox::open`].
    pub fn open(path: &Path) -> Result<JobLedger, OutboxError> {
        let fail = |op, e| OutboxError::from_sqlite(path, op, e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OutboxError::Unwritable {
                path: path.to_path_buf(),
                detail: format!("cannot create directory {}: {source}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(|e| fail("open job ledger", e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| fail("set busy timeout", e))?;
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| fail("enable WAL", e))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| fail("set synchronous", e))?;
        conn.execute_batch(SCHEMA).map_err(|e| fail("create job ledger", e))?;
        let has_reported: bool = conn
            .query_row("SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'reported'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n > 0)
            .map_err(|e| fail("inspect job ledger", e))?;
        if !has_reported {
            conn.execute_batch(REPORTED_COLUMN).map_err(|e| fail("upgrade job ledger", e))?;
        }
        Ok(JobLedger { conn, path: path.to_path_buf() })
    }

    /// Writes (or replaces) a job's record.
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn save(&self, record: &JobRecord) -> Result<(), OutboxError> {
        let job = serde_json::to_string(&record.job).unwrap_or_default();
        let last = serde_json::to_string(&record.last).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO jobs (job_id, nonce, issued_at_ms, job, last, reported) VALUES (?1, ?2, ?3, ?4, ?5, 0)
                 ON CONFLICT (job_id) DO UPDATE SET last = ?5, reported = 0",
                params![record.job.job_id, record.job.nonce, record.job.issued_at_ms as i64, job, last],
            )
            .map(|_| ())
            .map_err(|e| OutboxError::from_sqlite(&self.path, "save job", e))
    }

    /// Marks the status of `job_id` recorded at `at_ms` as handed to the broker
    /// (a newer status saved since stays unreported).
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn mark_reported(&self, job_id: &str, at_ms: u64) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "UPDATE jobs SET reported = 1 WHERE job_id = ?1 AND json_extract(last, '$.at_ms') = ?2",
                params![job_id, at_ms as i64],
            )
            .map(|_| ())
            .map_err(|e| OutboxError::from_sqlite(&self.path, "mark job reported", e))
    }

    /// The last status of every job whose latest step was never published, oldest first.
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn unreported(&self) -> Result<Vec<JobReport>, OutboxError> {
        let fail = |op, e| OutboxError::from_sqlite(&self.path, op, e);
        let mut stmt = self
            .conn
            .prepare("SELECT last FROM jobs WHERE reported = 0 ORDER BY json_extract(last, '$.at_ms')")
            .map_err(|e| fail("load unreported jobs", e))?;
        let rows =
            stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| fail("load unreported jobs", e))?;
        let mut reports = vec![];
        for row in rows {
            let last = row.map_err(|e| fail("load unreported jobs", e))?;
            if let Ok(report) = serde_json::from_str::<JobReport>(&last) {
                reports.push(report);
            }
        }
        Ok(reports)
    }

    /// Every record issued at or after `cutoff_ms`; older ones are deleted.
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn load(&self, cutoff_ms: u64) -> Result<Vec<JobRecord>, OutboxError> {
        let fail = |op, e| OutboxError::from_sqlite(&self.path, op, e);
        self.conn
            .execute(
                "DELETE FROM jobs WHERE issued_at_ms < ?1 AND json_extract(last, '$.status') NOT IN ('queued', 'in_progress')",
                [cutoff_ms as i64],
            )
            .map_err(|e| fail("prune jobs", e))?;
        let mut stmt = self
            .conn
            .prepare("SELECT job, last FROM jobs ORDER BY issued_at_ms")
            .map_err(|e| fail("load jobs", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| fail("load jobs", e))?;
        let mut records = vec![];
        for row in rows {
            let (job, last) = row.map_err(|e| fail("load jobs", e))?;
            // A row this code cannot read is skipped (and logged), never fatal.
            match (serde_json::from_str::<Job>(&job), serde_json::from_str::<JobReport>(&last)) {
                (Ok(job), Ok(last)) => records.push(JobRecord { job, last }),
                _ => tracing::warn!(ledger = %self.path.display(), "skipping an unreadable job record"),
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::machine::JobStatus;

    fn record(id: &str, issued: u64, status: JobStatus) -> JobRecord {
        let job = Job {
            job_id: id.into(),
            command: "diagnostics".into(),
            site: "s".into(),
            device: "d".into(),
            issued_at_ms: issued,
            nonce: format!("nonce-{id}"),
            params: serde_json::json!({}),
        };
        let last = JobReport {
            job_id: Some(id.into()),
            command: "diagnostics".into(),
            status,
            at_ms: issued,
            message: "m".into(),
            detail: serde_json::Value::Null,
            duplicate: false,
        };
        JobRecord { job, last }
    }

    #[test]
    fn records_survive_a_reopen_with_their_latest_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        {
            let ledger = JobLedger::open(&path).unwrap();
            ledger.save(&record("J1", 100, JobStatus::Queued)).unwrap();
            ledger.save(&record("J1", 100, JobStatus::Succeeded)).unwrap();
        }
        let loaded = JobLedger::open(&path).unwrap().load(0).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].last.status, JobStatus::Succeeded);
        assert_eq!(loaded[0].job.nonce, "nonce-J1");
    }

    #[test]
    fn a_status_is_unreported_until_marked_and_a_newer_one_is_unreported_again() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = JobLedger::open(&dir.path().join("outbox.db")).unwrap();
        ledger.save(&record("J1", 100, JobStatus::Queued)).unwrap();
        assert_eq!(ledger.unreported().unwrap().len(), 1);
        ledger.mark_reported("J1", 100).unwrap();
        assert!(ledger.unreported().unwrap().is_empty());
        let mut done = record("J1", 100, JobStatus::Succeeded);
        done.last.at_ms = 200;
        ledger.save(&done).unwrap();
        ledger.mark_reported("J1", 100).unwrap();
        let pending = ledger.unreported().unwrap();
        assert_eq!(pending.iter().map(|r| r.status).collect::<Vec<_>>(), [JobStatus::Succeeded]);
    }

    #[test]
    fn old_finished_records_are_pruned_but_unfinished_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = JobLedger::open(&dir.path().join("outbox.db")).unwrap();
        ledger.save(&record("OLD", 100, JobStatus::Succeeded)).unwrap();
        ledger.save(&record("STUCK", 100, JobStatus::InProgress)).unwrap();
        ledger.save(&record("NEW", 900, JobStatus::Failed)).unwrap();
        let ids: Vec<String> = ledger.load(500).unwrap().into_iter().map(|r| r.job.job_id).collect();
        assert_eq!(ids, ["STUCK", "NEW"]);
    }
}
