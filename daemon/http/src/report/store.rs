//! The per-call records behind the daily report, in a small SQLite file.
//!
//! Retention, applied by [`ReportStore::prune`]: emotion readings (valence and
//! label) are cleared from turns older than the emotion retention (72 h by
//! default: emotion is the most sensitive thing kept), and whole calls older
//! than the record retention are deleted. Transcripts are kept only for
//! unanswered questions and are the dialog's masked text.
//!
//! Blocking: call from a blocking thread, never on the reactor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, params};

use super::StoredCall;
use super::StoredTurn;
use crate::record::CallRecord;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "report store {path}: cannot {action}: {source} (check [report] store and the directory's permissions)"
)]
pub struct StoreError {
    path: PathBuf,
    action: &'static str,
    #[source]
    source: rusqlite::Error,
}

/// The store's file.
#[derive(Debug)]
pub struct ReportStore {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    ended_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_ended ON calls (ended_ms);
CREATE TABLE IF NOT EXISTS turns (
    call INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    intent TEXT NOT NULL,
    valence INTEGER,
    emotion TEXT,
    question TEXT
);
CREATE INDEX IF NOT EXISTS turns_call ON turns (call);
";

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl ReportStore {
    /// Opens (creating) the store at `path` and its directory.
    ///
    /// # Errors
    /// The directory or file cannot be created, or the file is not a store.
    pub fn open(path: &Path) -> Result<ReportStore, StoreError> {
        let err = |action, source| StoreError { path: path.to_path_buf(), action, source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // A failure here shows up, with the path, in the open below.
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(|e| err("open", e))?;
        conn.execute_batch(SCHEMA).map_err(|e| err("create its tables", e))?;
        Ok(ReportStore { conn, path: path.to_path_buf() })
    }

    fn err(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError { path: self.path.clone(), action, source }
    }

    /// Stores one finished call.
    ///
    /// # Errors
    /// A database error (disk full, say); the call is then missing from the report.
    pub fn insert(&mut self, call: &CallRecord) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = move |action, source| StoreError { path: path.clone(), action, source };
        let tx = self.conn.transaction().map_err(|e| err("begin", e))?;
        tx.execute(
            "INSERT INTO calls (call_id, ended_ms, outcome, reason, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![call.call_id, as_i64(call.ended_ms), call.outcome, call.reason, ms(call.duration)],
        )
        .map_err(|e| err("insert a call", e))?;
        let id = tx.last_insert_rowid();
        for (seq, turn) in call.turns.iter().enumerate() {
            tx.execute(
                "INSERT INTO turns (call, seq, intent, valence, emotion, question) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, seq as i64, turn.intent, turn.valence, turn.emotion, turn.question],
            )
            .map_err(|e| err("insert a turn", e))?;
        }
        tx.commit().map_err(|e| err("commit", e))
    }

    /// Applies the retention as of `now_ms`. Returns (calls deleted, turns whose
    /// emotion reading was cleared).
    ///
    /// # Errors
    /// A database error.
    pub fn prune(
        &mut self,
        now_ms: u64,
        emotion_retention: Duration,
        record_retention: Duration,
    ) -> Result<(usize, usize), StoreError> {
        let now = as_i64(now_ms);
        let emotion_cutoff = now.saturating_sub(ms(emotion_retention));
        let record_cutoff = now.saturating_sub(ms(record_retention));
        let deleted = self
            .conn
            .execute("DELETE FROM calls WHERE ended_ms < ?1", params![record_cutoff])
            .map_err(self.err("delete old calls"))?;
        let cleared = self
            .conn
            .execute(
                "UPDATE turns SET valence = NULL, emotion = NULL
                 WHERE (valence IS NOT NULL OR emotion IS NOT NULL)
                   AND call IN (SELECT id FROM calls WHERE ended_ms < ?1)",
                params![emotion_cutoff],
            )
            .map_err(self.err("clear old emotion readings"))?;
        Ok((deleted, cleared))
    }

    /// The calls that ended in `[from_ms, to_ms)`, with their turns in order.
    ///
    /// # Errors
    /// A database error.
    pub fn calls_between(&self, from_ms: u64, to_ms: u64) -> Result<Vec<StoredCall>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT c.id, c.ended_ms, c.outcome, c.reason, t.intent, t.valence, t.emotion, t.question
                 FROM calls c LEFT JOIN turns t ON t.call = c.id
                 WHERE c.ended_ms >= ?1 AND c.ended_ms < ?2
                 ORDER BY c.id, t.seq",
            )
            .map_err(self.err("read calls"))?;
        let mut rows =
            statement.query(params![as_i64(from_ms), as_i64(to_ms)]).map_err(self.err("read calls"))?;
        let mut calls: Vec<StoredCall> = vec![];
        let mut last_id = None;
        while let Some(row) = rows.next().map_err(self.err("read calls"))? {
            let read = |row: &rusqlite::Row<'_>| -> rusqlite::Result<_> {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, Option<i8>>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, Option<String>>(7)?,
                ))
            };
            let (id, ended, outcome, reason, intent, valence, emotion, question) =
                read(row).map_err(self.err("read calls"))?;
            if last_id != Some(id) {
                last_id = Some(id);
                calls.push(StoredCall {
                    ended_ms: u64::try_from(ended).unwrap_or(0),
                    outcome,
                    reason,
                    turns: vec![],
                });
            }
            if let (Some(intent), Some(call)) = (intent, calls.last_mut()) {
                call.turns.push(StoredTurn { intent, valence, emotion, question });
            }
        }
        Ok(calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TurnRecord;

    const HOUR: u64 = 3_600_000;

    fn record(id: &str, ended_ms: u64) -> CallRecord {
        CallRecord {
            call_id: id.into(),
            ended_ms,
            duration: Duration::from_secs(40),
            outcome: "escalated".into(),
            reason: Some("requested".into()),
            turns: vec![
                TurnRecord {
                    intent: "out_of_scope".into(),
                    valence: Some(-1),
                    emotion: Some("negative".into()),
                    question: Some("do you sell gift cards".into()),
                },
                TurnRecord {
                    intent: "agent".into(),
                    valence: Some(-2),
                    emotion: Some("angry".into()),
                    question: None,
                },
            ],
            reply_latencies: vec![],
            asr_rtf: vec![],
            tts_rtf: vec![],
            rtp: None,
        }
    }

    #[test]
    fn stored_calls_come_back_with_their_turns_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ReportStore::open(&dir.path().join("sub/report.db")).unwrap();
        store.insert(&record("a", 100 * HOUR)).unwrap();
        store
            .insert(&CallRecord {
                turns: vec![],
                outcome: "error".into(),
                reason: None,
                ..record("b", 101 * HOUR)
            })
            .unwrap();
        let calls = store.calls_between(0, 200 * HOUR).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].reason.as_deref(), Some("requested"));
        let intents: Vec<&str> = calls[0].turns.iter().map(|t| t.intent.as_str()).collect();
        assert_eq!(intents, ["out_of_scope", "agent"]);
        assert_eq!(calls[0].turns[0].question.as_deref(), Some("do you sell gift cards"));
        assert!(calls[1].turns.is_empty());
        assert_eq!(store.calls_between(101 * HOUR, 200 * HOUR).unwrap().len(), 1, "from is inclusive");
    }

    #[test]
    fn emotion_older_than_its_retention_is_cleared_and_old_calls_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ReportStore::open(&dir.path().join("report.db")).unwrap();
        let now = 1000 * HOUR;
        store.insert(&record("old", now - 800 * HOUR)).unwrap();
        store.insert(&record("three-days", now - 73 * HOUR)).unwrap();
        store.insert(&record("fresh", now - 71 * HOUR)).unwrap();
        let (deleted, cleared) =
            store.prune(now, Duration::from_secs(72 * 3600), Duration::from_secs(30 * 86_400)).unwrap();
        assert_eq!((deleted, cleared), (1, 2));
        let calls = store.calls_between(0, now).unwrap();
        assert_eq!(calls.len(), 2);
        assert!(calls[0].turns.iter().all(|t| t.valence.is_none() && t.emotion.is_none()));
        assert_eq!(calls[0].turns[0].question.as_deref(), Some("do you sell gift cards"), "questions stay");
        assert!(calls[1].turns.iter().all(|t| t.valence.is_some() && t.emotion.is_some()));
        assert_eq!(
            store.prune(now, Duration::from_secs(72 * 3600), Duration::from_secs(30 * 86_400)).unwrap(),
            (0, 0)
        );
    }

    #[test]
    fn an_unopenable_store_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let err = ReportStore::open(&dir.path().join("file/report.db")).unwrap_err();
        assert!(err.to_string().contains("file/report.db"), "{err}");
    }
}
