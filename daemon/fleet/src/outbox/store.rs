//! The outbox's SQL: schema and its migrations, enqueue with bounds, and queries.
//!
//! One table holds both entry kinds; a ticket and its assist message share a
//! `ticket_id` and are evicted together. `seq` is AUTOINCREMENT, so it only
//! grows: the driver's replay cursor relies on new entries sorting last.
//!
//! An enqueue costs the same whatever the file holds: the size bound reads
//! running totals (`tickets`, `bytes` in `outbox_counters`, kept by triggers in
//! the writing transaction, so no code path can forget them), the age bound
//! and the caller history go through indexes, and the size bound's victims
//! are found at the start of an index or of the table. Every statement is
//! prepared through the cache, so tests can read its step counters.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{
    Enqueued, EntryKind, NewTicket, OutboxError, OutboxLimits, OutboxStats, PendingEntry, TicketRecord,
};

/// The schema of the first release (`user_version` 0), verbatim: a fresh file
/// and a file written by that release take the same migrations from here.
pub(super) const BASE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    caller_id TEXT,
    summary TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    UNIQUE (kind, ticket_id)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (delivered_ms, seq);
CREATE INDEX IF NOT EXISTS outbox_ticket ON outbox (ticket_id);
CREATE TABLE IF NOT EXISTS outbox_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// The `user_version` this code writes.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// Version 1: indexes for the age bound, the caller history and the oldest
/// delivered ticket; running totals, seeded from the rows and then kept by
/// triggers (so even an older binary writing the file keeps them right).
const MIGRATE_TO_1: &str = "
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created_ms);
CREATE INDEX IF NOT EXISTS outbox_caller ON outbox (caller_id, kind, seq);
CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox (seq) WHERE kind = 'ticket' AND delivered_ms IS NOT NULL;
INSERT OR REPLACE INTO outbox_counters (name, value) VALUES
    ('tickets', (SELECT COUNT(*) FROM outbox WHERE kind = 'ticket')),
    ('bytes', (SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox));
CREATE TRIGGER IF NOT EXISTS outbox_totals_insert AFTER INSERT ON outbox BEGIN
    UPDATE outbox_counters SET value = value + (NEW.kind = 'ticket') WHERE name = 'tickets';
    UPDATE outbox_counters SET value = value + LENGTH(NEW.payload) WHERE name = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS outbox_totals_delete AFTER DELETE ON outbox BEGIN
    UPDATE outbox_counters SET value = value - (OLD.kind = 'ticket') WHERE name = 'tickets';
    UPDATE outbox_counters SET value = value - LENGTH(OLD.payload) WHERE name = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS outbox_totals_update AFTER UPDATE OF kind, payload ON outbox BEGIN
    UPDATE outbox_counters SET value = value + (NEW.kind = 'ticket') - (OLD.kind = 'ticket') WHERE name = 'tickets';
    UPDATE outbox_counters SET value = value + LENGTH(NEW.payload) - LENGTH(OLD.payload) WHERE name = 'bytes';
END;
PRAGMA user_version = 1;
";

const INSERT: &str = "INSERT OR IGNORE INTO outbox (kind, ticket_id, caller_id, summary, payload, created_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// Undelivered tickets past the age bound, through `outbox_created` (the `+`
/// keeps the planner off the `kind` and `delivered_ms` indexes).
const EXPIRED: &str =
    "SELECT seq, ticket_id FROM outbox WHERE created_ms < ?1 AND +kind = 'ticket' AND +delivered_ms IS NULL";
const EXPIRE: &str = "DELETE FROM outbox WHERE created_ms < ?1";
const TOTALS: &str = "SELECT
    (SELECT value FROM outbox_counters WHERE name = 'tickets'),
    (SELECT value FROM outbox_counters WHERE name = 'bytes')";
/// The first row of the partial index `outbox_delivered` (named: without
/// statistics the planner would rather sort every ticket).
const OLDEST_DELIVERED: &str = "SELECT ticket_id FROM outbox INDEXED BY outbox_delivered
     WHERE kind = 'ticket' AND delivered_ms IS NOT NULL ORDER BY seq LIMIT 1";
/// Called only when nothing is delivered: the table's first ticket rows.
const OLDEST_OTHER: &str =
    "SELECT ticket_id FROM outbox WHERE kind = 'ticket' AND ticket_id != ?1 ORDER BY seq LIMIT 1";
const DELETE_TICKET: &str = "DELETE FROM outbox WHERE ticket_id = ?1";
const BUMP: &str = "INSERT INTO outbox_counters (name, value) VALUES (?1, ?2)
     ON CONFLICT (name) DO UPDATE SET value = value + ?2";
const PENDING_AFTER: &str = "SELECT seq, kind, ticket_id, payload FROM outbox
     WHERE delivered_ms IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2";
const MARK_DELIVERED: &str = "UPDATE outbox SET delivered_ms = ?1 WHERE seq = ?2 AND delivered_ms IS NULL";
const LIST: &str = "SELECT ticket_id, created_ms, delivered_ms, caller_id, summary FROM outbox
     WHERE kind = 'ticket' ORDER BY seq DESC LIMIT ?1";
/// Through `outbox_caller`: newest first, no sort.
const CALLER_HISTORY: &str = "SELECT ticket_id, created_ms, delivered_ms, caller_id, summary FROM outbox
     WHERE kind = 'ticket' AND caller_id = ?1 AND ticket_id != ?2 ORDER BY seq DESC LIMIT ?3";
const DELIVERED: &str =
    "SELECT delivered_ms IS NOT NULL FROM outbox WHERE kind = 'ticket' AND ticket_id = ?1";

/// The statements an enqueue (with its caller-history read) runs.
#[cfg(test)]
pub(super) const ENQUEUE_STATEMENTS: [&str; 9] =
    [CALLER_HISTORY, INSERT, EXPIRED, EXPIRE, TOTALS, OLDEST_DELIVERED, OLDEST_OTHER, DELETE_TICKET, BUMP];

pub(super) fn prepare(conn: &mut Connection, path: &Path) -> Result<(), OutboxError> {
    let fail = |op, e| OutboxError::from_sqlite(path, op, e);
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| fail("set busy timeout", e))?;
    let mode: String =
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| fail("enable WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OutboxError::Unwritable {
            path: path.to_path_buf(),
            detail: format!("the filesystem does not support SQLite WAL (journal mode stayed {mode})"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(|e| fail("set synchronous", e))?;
    conn.set_prepared_statement_cache_capacity(32);
    if schema_version(conn).map_err(|e| fail("read schema version", e))? >= SCHEMA_VERSION {
        return Ok(());
    }
    migrate(conn, path).map_err(|e| fail("migrate schema", e))
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Creates or upgrades the schema in one write transaction: another process
/// opening the file meanwhile waits, then finds it done.
fn migrate(conn: &mut Connection, path: &Path) -> rusqlite::Result<()> {
    let tx = Transaction::new(conn, TransactionBehavior::Immediate)?;
    let from = schema_version(&tx)?;
    if from >= SCHEMA_VERSION {
        return Ok(());
    }
    tx.execute_batch(BASE_SCHEMA)?;
    let rows: i64 = tx.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
    tx.execute_batch(MIGRATE_TO_1)?;
    tx.commit()?;
    if rows > 0 {
        tracing::info!(outbox = %path.display(), from, to = SCHEMA_VERSION, rows, "outbox: schema migrated");
    }
    Ok(())
}

fn bump(tx: &Transaction<'_>, name: &str, by: usize) -> rusqlite::Result<()> {
    if by > 0 {
        tx.prepare_cached(BUMP)?.execute(params![name, by as i64])?;
    }
    Ok(())
}

pub(super) fn enqueue(
    conn: &mut Connection,
    ticket: &NewTicket<'_>,
    now_ms: u64,
    limits: &OutboxLimits,
) -> rusqlite::Result<Enqueued> {
    let tx = conn.transaction()?;
    let mut out = Enqueued::default();
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for (kind, payload) in
            [(EntryKind::Ticket, ticket.ticket_json), (EntryKind::Assist, ticket.assist_json)]
        {
            let n = insert.execute(params![
                kind.as_str(),
                ticket.id,
                ticket.caller_id,
                ticket.summary,
                payload,
                now_ms as i64
            ])?;
            out.inserted |= n > 0 && kind == EntryKind::Ticket;
        }
    }
    // Age: delivered history goes quietly, undelivered tickets are counted.
    let cutoff = now_ms.saturating_sub(u64::try_from(limits.max_age.as_millis()).unwrap_or(u64::MAX)) as i64;
    let mut expired: Vec<(i64, String)> = {
        let mut stmt = tx.prepare_cached(EXPIRED)?;
        let rows = stmt.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    expired.sort_unstable();
    out.expired = expired.into_iter().map(|(_, id)| id).collect();
    tx.prepare_cached(EXPIRE)?.execute([cutoff])?;
    bump(&tx, "expired", out.expired.len())?;
    // Size: oldest delivered first, then oldest undelivered.
    loop {
        let (tickets, bytes): (Option<i64>, Option<i64>) =
            tx.prepare_cached(TOTALS)?.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (tickets, bytes) = (tickets.unwrap_or(0), bytes.unwrap_or(0));
        if tickets <= i64::from(limits.max_tickets) && bytes as u64 <= limits.max_bytes {
            break;
        }
        let oldest_delivered: Option<String> =
            tx.prepare_cached(OLDEST_DELIVERED)?.query_row([], |r| r.get(0)).optional()?;
        let victim = match oldest_delivered {
            Some(id) => id,
            None => {
                let oldest: Option<String> =
                    tx.prepare_cached(OLDEST_OTHER)?.query_row([ticket.id], |r| r.get(0)).optional()?;
                // Only the new ticket is left: it stays, whatever its size.
                let Some(id) = oldest else { break };
                out.evicted.push(id.clone());
                id
            }
        };
        tx.prepare_cached(DELETE_TICKET)?.execute([&victim])?;
    }
    bump(&tx, "evicted", out.evicted.len())?;
    tx.commit()?;
    Ok(out)
}

pub(super) fn pending_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<PendingEntry>> {
    let mut stmt = conn.prepare_cached(PENDING_AFTER)?;
    let rows = stmt.query_map(params![after, limit as i64], |r| {
        let kind: String = r.get(1)?;
        Ok(PendingEntry {
            seq: r.get(0)?,
            // Unknown kinds cannot be written by this code; read them as tickets.
            kind: EntryKind::parse(&kind).unwrap_or(EntryKind::Ticket),
            ticket_id: r.get(2)?,
            payload: r.get(3)?,
        })
    })?;
    rows.collect()
}

pub(super) fn mark_delivered(conn: &mut Connection, seqs: &[i64], now_ms: u64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(MARK_DELIVERED)?;
        for seq in seqs {
            stmt.execute(params![now_ms as i64, seq])?;
        }
    }
    tx.commit()
}

pub(super) fn stats(conn: &Connection) -> rusqlite::Result<OutboxStats> {
    let counter = |name: &str| -> rusqlite::Result<u64> {
        let v: Option<i64> = conn
            .prepare_cached("SELECT value FROM outbox_counters WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        Ok(v.unwrap_or(0).max(0) as u64)
    };
    // The backlog is read through `outbox_pending`: it costs what is pending, not the history.
    let (backlog, oldest): (i64, Option<i64>) = conn.query_row(
        "SELECT COUNT(*), MIN(created_ms) FROM outbox WHERE delivered_ms IS NULL AND kind = 'ticket'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(OutboxStats {
        backlog: backlog as u64,
        oldest_pending_ms: oldest.map(|v| v as u64),
        tickets: counter("tickets")?,
        bytes: counter("bytes")?,
        evicted: counter("evicted")?,
        expired: counter("expired")?,
    })
}

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<TicketRecord> {
    Ok(TicketRecord {
        id: r.get(0)?,
        created_ms: r.get::<_, i64>(1)? as u64,
        delivered_ms: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
        caller_id: r.get(3)?,
        summary: r.get(4)?,
    })
}

pub(super) fn list(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<TicketRecord>> {
    let mut stmt = conn.prepare_cached(LIST)?;
    let rows = stmt.query_map([limit as i64], record)?;
    rows.collect()
}

pub(super) fn caller_history(
    conn: &Connection,
    caller: &str,
    except: &str,
    limit: usize,
) -> rusqlite::Result<Vec<TicketRecord>> {
    let mut stmt = conn.prepare_cached(CALLER_HISTORY)?;
    let rows = stmt.query_map(params![caller, except, limit as i64], record)?;
    rows.collect()
}

pub(super) fn delivered(conn: &Connection, id: &str) -> rusqlite::Result<Option<bool>> {
    conn.prepare_cached(DELIVERED)?.query_row([id], |r| r.get(0)).optional()
}

pub(super) fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<(TicketRecord, Vec<u8>)>> {
    conn.query_row(
        "SELECT ticket_id, created_ms, delivered_ms, caller_id, summary, payload FROM outbox
         WHERE kind = 'ticket' AND ticket_id = ?1",
        [id],
        |r| Ok((record(r)?, r.get(5)?)),
    )
    .optional()
}
