//! The outbox's SQL: schema, enqueue with bounds, and queries.
//!
//! One table holds both entry kinds; a ticket and its assist message share a
//! `ticket_id` and are evicted together. `seq` is AUTOINCREMENT, so it only
//! grows: the driver's replay cursor relies on new entries sorting last.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
    Enqueued, EntryKind, NewTicket, OutboxError, OutboxLimits, OutboxStats, PendingEntry, TicketRecord,
};

const SCHEMA: &str = "
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

pub(super) fn prepare(conn: &Connection, path: &Path) -> Result<(), OutboxError> {
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
    conn.execute_batch(SCHEMA).map_err(|e| fail("create schema", e))
}

fn bump(tx: &Transaction<'_>, name: &str, by: usize) -> rusqlite::Result<()> {
    if by > 0 {
        tx.execute(
            "INSERT INTO outbox_counters (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = value + ?2",
            params![name, by as i64],
        )?;
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
    for (kind, payload) in [(EntryKind::Ticket, ticket.ticket_json), (EntryKind::Assist, ticket.assist_json)]
    {
        let n = tx.execute(
            "INSERT OR IGNORE INTO outbox (kind, ticket_id, caller_id, summary, payload, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![kind.as_str(), ticket.id, ticket.caller_id, ticket.summary, payload, now_ms as i64],
        )?;
        out.inserted |= n > 0 && kind == EntryKind::Ticket;
    }
    // Age: delivered history goes quietly, undelivered tickets are counted.
    let cutoff = now_ms.saturating_sub(u64::try_from(limits.max_age.as_millis()).unwrap_or(u64::MAX)) as i64;
    out.expired = ids(
        &tx,
        "SELECT ticket_id FROM outbox WHERE kind = 'ticket' AND delivered_ms IS NULL AND created_ms < ?1 ORDER BY seq",
        cutoff,
    )?;
    tx.execute("DELETE FROM outbox WHERE created_ms < ?1", [cutoff])?;
    bump(&tx, "expired", out.expired.len())?;
    // Size: oldest delivered first, then oldest undelivered.
    loop {
        let (tickets, bytes): (i64, i64) = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE kind = 'ticket'), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if tickets <= i64::from(limits.max_tickets) && bytes as u64 <= limits.max_bytes {
            break;
        }
        let oldest_delivered: Option<String> = tx
            .query_row(
                "SELECT ticket_id FROM outbox WHERE kind = 'ticket' AND delivered_ms IS NOT NULL ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let victim = match oldest_delivered {
            Some(id) => id,
            None => {
                let oldest: Option<String> = tx
                    .query_row(
                        "SELECT ticket_id FROM outbox WHERE kind = 'ticket' AND ticket_id != ?1 ORDER BY seq LIMIT 1",
                        [ticket.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                // Only the new ticket is left: it stays, whatever its size.
                let Some(id) = oldest else { break };
                out.evicted.push(id.clone());
                id
            }
        };
        tx.execute("DELETE FROM outbox WHERE ticket_id = ?1", [&victim])?;
    }
    bump(&tx, "evicted", out.evicted.len())?;
    tx.commit()?;
    Ok(out)
}

fn ids(tx: &Transaction<'_>, sql: &str, arg: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt.query_map([arg], |r| r.get(0))?;
    rows.collect()
}

pub(super) fn pending_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<PendingEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, kind, ticket_id, payload FROM outbox
         WHERE delivered_ms IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
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
        let mut stmt =
            tx.prepare_cached("UPDATE outbox SET delivered_ms = ?1 WHERE seq = ?2 AND delivered_ms IS NULL")?;
        for seq in seqs {
            stmt.execute(params![now_ms as i64, seq])?;
        }
    }
    tx.commit()
}

pub(super) fn stats(conn: &Connection) -> rusqlite::Result<OutboxStats> {
    let counter = |name: &str| -> rusqlite::Result<u64> {
        let v: Option<i64> = conn
            .query_row("SELECT value FROM outbox_counters WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        Ok(v.unwrap_or(0) as u64)
    };
    let (backlog, oldest, tickets, bytes): (i64, Option<i64>, i64, i64) = conn.query_row(
        "SELECT
            (SELECT COUNT(*) FROM outbox WHERE kind = 'ticket' AND delivered_ms IS NULL),
            (SELECT MIN(created_ms) FROM outbox WHERE kind = 'ticket' AND delivered_ms IS NULL),
            (SELECT COUNT(*) FROM outbox WHERE kind = 'ticket'),
            (SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(OutboxStats {
        backlog: backlog as u64,
        oldest_pending_ms: oldest.map(|v| v as u64),
        tickets: tickets as u64,
        bytes: bytes as u64,
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

pub(super) fn list(
    conn: &Connection,
    caller: Option<&str>,
    except: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<TicketRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ticket_id, created_ms, delivered_ms, caller_id, summary FROM outbox
         WHERE kind = 'ticket' AND (?1 IS NULL OR caller_id = ?1) AND (?2 IS NULL OR ticket_id != ?2)
         ORDER BY seq DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![caller, except, limit as i64], record)?;
    rows.collect()
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
