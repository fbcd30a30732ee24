//! The durable ticket outbox: every hand-over ticket is on disk before anyone
//! is told it exists, and leaves only when the broker has acknowledged it.
//!
//! SQLite in WAL mode with `synchronous = FULL`: a committed enqueue survives
//! power loss and `kill -9`, because the WAL is fsynced on every commit. (NORMAL
//! would only risk the last commits on power loss; for a hand-over, a few ms of
//! fsync per ticket is cheap and the ticket is the product.)
//!
//! Invariants:
//! - A ticket is enqueued once per id (its ULID is the de-duplication key), in
//!   one transaction with its `agent/assist` companion.
//! - Delivery is at least once: [`Outbox::pending_after`] returns what the
//!   broker has not acknowledged, in enqueue order; only
//!   [`Outbox::mark_delivered`] (called on PUBACK) takes an entry out of it.
//! - The outbox is bounded ([`OutboxLimits`]). When a bound is passed,
//!   delivered tickets are pruned first (they are only history); only then is
//!   the oldest undelivered ticket evicted, and every eviction or expiry is
//!   counted in the file (`evicted`, `expired`), logged as an error and
//!   returned to the caller. Nothing undelivered leaves silently.
//! - An enqueue's cost does not grow with the delivered history the file
//!   keeps: the bounds read running totals and the caller history an index
//!   (see `store`). Files written before those existed are migrated on open,
//!   in one transaction (`PRAGMA user_version` says which schema a file has).
//!
//! The clock is the caller's: every time is `now_ms` (Unix milliseconds).

mod error;
mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use error::OutboxError;

/// What the outbox may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Tickets (delivered history included).
    pub max_tickets: u32,
    /// Bytes of payload (delivered history included).
    pub max_bytes: u64,
    /// Anything older is removed: delivered silently, undelivered counted as expired.
    pub max_age: Duration,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_tickets: 100_000,
            max_bytes: 512 * 1024 * 1024,
            max_age: Duration::from_secs(30 * 86_400),
        }
    }
}

/// What an outbox entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// The ticket JSON, for `event/ticket`.
    Ticket,
    /// The agent-assist JSON, for `agent/assist/<ticket>`.
    Assist,
}

impl EntryKind {
    fn as_str(self) -> &'static str {
        match self {
            EntryKind::Ticket => "ticket",
            EntryKind::Assist => "assist",
        }
    }

    fn parse(s: &str) -> Option<EntryKind> {
        match s {
            "ticket" => Some(EntryKind::Ticket),
            "assist" => Some(EntryKind::Assist),
            _ => None,
        }
    }
}

/// A ticket to enqueue: its id, the JSON to publish, and what listings show.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTicket<'a> {
    pub id: &'a str,
    pub caller_id: Option<&'a str>,
    pub summary: &'a str,
    pub ticket_json: &'a [u8],
    pub assist_json: &'a [u8],
}

/// An undelivered entry, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    /// Enqueue order; the delivery tracker's key.
    pub seq: i64,
    pub kind: EntryKind,
    pub ticket_id: String,
    pub payload: Vec<u8>,
}

/// One ticket as `tickets list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketRecord {
    pub id: String,
    pub created_ms: u64,
    /// `None`: not yet acknowledged by a broker.
    pub delivered_ms: Option<u64>,
    pub caller_id: Option<String>,
    pub summary: String,
}

/// What happened to the outbox's bounds on an enqueue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enqueued {
    /// `false`: the id was already there (a duplicate enqueue changes nothing).
    pub inserted: bool,
    /// Undelivered tickets removed to make room (oldest first).
    pub evicted: Vec<String>,
    /// Undelivered tickets removed for passing `max_age`.
    pub expired: Vec<String>,
}

/// Counters for telemetry and `tickets list`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxStats {
    /// Tickets not yet acknowledged by the broker.
    pub backlog: u64,
    /// Enqueue time of the oldest of them.
    pub oldest_pending_ms: Option<u64>,
    /// Tickets in the file, delivered history included.
    pub tickets: u64,
    pub bytes: u64,
    /// Undelivered tickets ever evicted to respect the size bounds.
    pub evicted: u64,
    /// Undelivered tickets ever removed for age.
    pub expired: u64,
}

/// The outbox file.
#[derive(Debug)]
pub struct Outbox {
    conn: rusqlite::Connection,
    path: PathBuf,
    limits: OutboxLimits,
}

/// Where the outbox lives when the config leaves `[fleet] outbox` empty:
/// `$VOICEBOTD_STATE_DIR/outbox.db`, else `$XDG_STATE_HOME/voicebotd/outbox.db`,
/// else `~/.local/state/voicebotd/outbox.db`.
pub fn default_path() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("VOICEBOTD_STATE_DIR") {
        return dir.join("outbox.db");
    }
    let state = var("XDG_STATE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    state.join("voicebotd/outbox.db")
}

impl Outbox {
    /// Opens (creating if needed) the outbox at `path`, and its directory.
    ///
    /// # Errors
    /// [`OutboxError::Unwritable`] when the directory or file cannot be
    /// created or written, [`OutboxError::DiskFull`], or a database error
    /// naming the file (a corrupt file, say).
    pub fn open(path: &Path, limits: OutboxLimits) -> Result<Outbox, OutboxError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OutboxError::Unwritable {
                path: path.to_path_buf(),
                detail: format!("cannot create directory {}: {source}", dir.display()),
            })?;
        }
        let mut conn =
            rusqlite::Connection::open(path).map_err(|e| OutboxError::from_sqlite(path, "open", e))?;
        store::prepare(&mut conn, path)?;
        Ok(Outbox { conn, path: path.to_path_buf(), limits })
    }

    /// Opens an existing outbox to read it (for `voicebotd tickets`), beside a
    /// running daemon.
    ///
    /// # Errors
    /// [`OutboxError::Missing`] if there is no file at `path`; else as [`Outbox::open`].
    pub fn open_existing(path: &Path) -> Result<Outbox, OutboxError> {
        if !path.exists() {
            return Err(OutboxError::Missing { path: path.to_path_buf() });
        }
        Outbox::open(path, OutboxLimits::default())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Durably enqueues a ticket and its assist message, then applies the bounds.
    /// Returns once both are committed to disk.
    ///
    /// # Errors
    /// [`OutboxError::TooLarge`] for a ticket over a tenth of `max_bytes`;
    /// [`OutboxError::DiskFull`]; a database error naming the file.
    pub fn enqueue(&mut self, ticket: &NewTicket<'_>, now_ms: u64) -> Result<Enqueued, OutboxError> {
        let size = (ticket.ticket_json.len() + ticket.assist_json.len()) as u64;
        if size > self.limits.max_bytes / 10 {
            return Err(OutboxError::TooLarge {
                id: ticket.id.to_owned(),
                bytes: size,
                limit: self.limits.max_bytes / 10,
            });
        }
        let result = store::enqueue(&mut self.conn, ticket, now_ms, &self.limits);
        let enqueued = result.map_err(|e| OutboxError::from_sqlite(&self.path, "enqueue", e))?;
        for id in &enqueued.evicted {
            tracing::error!(ticket = %id, outbox = %self.path.display(), "outbox full: evicted an UNDELIVERED ticket");
        }
        for id in &enqueued.expired {
            tracing::error!(ticket = %id, outbox = %self.path.display(), "outbox: an UNDELIVERED ticket passed max_age and was removed");
        }
        Ok(enqueued)
    }

    /// Up to `limit` undelivered entries with `seq > after`, oldest first.
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn pending_after(&self, after: i64, limit: usize) -> Result<Vec<PendingEntry>, OutboxError> {
        store::pending_after(&self.conn, after, limit)
            .map_err(|e| OutboxError::from_sqlite(&self.path, "read pending", e))
    }

    /// Marks entries delivered (the broker acknowledged them), in one transaction.
    ///
    /// # Errors
    /// [`OutboxError::DiskFull`] or a database error; the entries then stay
    /// pending and go out again (a duplicate, never a loss).
    pub fn mark_delivered(&mut self, seqs: &[i64], now_ms: u64) -> Result<(), OutboxError> {
        if seqs.is_empty() {
            return Ok(());
        }
        store::mark_delivered(&mut self.conn, seqs, now_ms)
            .map_err(|e| OutboxError::from_sqlite(&self.path, "mark delivered", e))
    }

    /// Counters for telemetry.
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn stats(&self) -> Result<OutboxStats, OutboxError> {
        store::stats(&self.conn).map_err(|e| OutboxError::from_sqlite(&self.path, "read stats", e))
    }

    /// The newest `limit` tickets, newest first.
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn list(&self, limit: usize) -> Result<Vec<TicketRecord>, OutboxError> {
        store::list(&self.conn, limit).map_err(|e| OutboxError::from_sqlite(&self.path, "list", e))
    }

    /// Earlier tickets from the same (masked) caller, newest first.
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn caller_history(
        &self,
        caller_id: &str,
        except: &str,
        limit: usize,
    ) -> Result<Vec<TicketRecord>, OutboxError> {
        store::caller_history(&self.conn, caller_id, except, limit)
            .map_err(|e| OutboxError::from_sqlite(&self.path, "read caller history", e))
    }

    /// Whether ticket `id` was acknowledged by a broker; `None` if it is not in the outbox.
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn is_delivered(&self, id: &str) -> Result<Option<bool>, OutboxError> {
        store::delivered(&self.conn, id).map_err(|e| OutboxError::from_sqlite(&self.path, "read ticket", e))
    }

    /// One ticket with its JSON.
    ///
    /// # Errors
    /// A database error naming the file.
    pub fn get(&self, id: &str) -> Result<Option<(TicketRecord, Vec<u8>)>, OutboxError> {
        store::get(&self.conn, id).map_err(|e| OutboxError::from_sqlite(&self.path, "read ticket", e))
    }

    /// Caps the file at `pages` pages, to exercise the disk-full path in tests.
    #[cfg(test)]
    fn cap_pages(&self, pages: u32) {
        self.conn.pragma_update(None, "max_page_count", pages).expect("max_page_count");
    }
}

#[cfg(test)]
mod tests;
