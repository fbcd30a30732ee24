use std::time::Duration;

use super::*;

fn ticket<'a>(id: &'a str, body: &'a [u8]) -> NewTicket<'a> {
    NewTicket {
        id,
        caller_id: Some("*******0958"),
        summary: "human_agent — requested",
        ticket_json: body,
        assist_json: b"{}",
    }
}

fn open(dir: &tempfile::TempDir, limits: OutboxLimits) -> Outbox {
    Outbox::open(&dir.path().join("state/outbox.db"), limits).unwrap()
}

fn pending_ids(outbox: &Outbox) -> Vec<(String, EntryKind)> {
    outbox.pending_after(0, 1000).unwrap().into_iter().map(|e| (e.ticket_id, e.kind)).collect()
}

#[test]
fn the_file_is_wal_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir, OutboxLimits::default());
    let mode: String = outbox.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    let sync: i64 = outbox.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!((mode.as_str(), sync), ("wal", 2));
}

#[test]
fn an_enqueued_ticket_and_its_assist_are_pending_in_order_until_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir, OutboxLimits::default());
    assert!(outbox.enqueue(&ticket("A", b"{\"id\":\"A\"}"), 1_000).unwrap().inserted);
    assert!(outbox.enqueue(&ticket("B", b"{\"id\":\"B\"}"), 2_000).unwrap().inserted);
    let pending = outbox.pending_after(0, 10).unwrap();
    let order: Vec<(&str, EntryKind)> = pending.iter().map(|e| (e.ticket_id.as_str(), e.kind)).collect();
    assert_eq!(
        order,
        [
            ("A", EntryKind::Ticket),
            ("A", EntryKind::Assist),
            ("B", EntryKind::Ticket),
            ("B", EntryKind::Assist)
        ]
    );
    assert_eq!(pending[0].payload, b"{\"id\":\"A\"}");
    assert_eq!(outbox.stats().unwrap().backlog, 2);
    // The cursor skips what this session already sent.
    assert_eq!(outbox.pending_after(pending[1].seq, 10).unwrap()[0].ticket_id, "B");
    outbox.mark_delivered(&[pending[0].seq, pending[1].seq], 3_000).unwrap();
    assert_eq!(pending_ids(&outbox), [("B".into(), EntryKind::Ticket), ("B".into(), EntryKind::Assist)]);
    let stats = outbox.stats().unwrap();
    assert_eq!((stats.backlog, stats.oldest_pending_ms, stats.tickets), (1, Some(2_000), 2));
    let listed = outbox.list(10).unwrap();
    assert_eq!(listed[0].id, "B");
    assert_eq!((listed[1].id.as_str(), listed[1].delivered_ms), ("A", Some(3_000)));
}

#[test]
fn the_same_ticket_id_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir, OutboxLimits::default());
    assert!(outbox.enqueue(&ticket("A", b"1"), 1).unwrap().inserted);
    assert!(!outbox.enqueue(&ticket("A", b"2"), 2).unwrap().inserted);
    let pending = outbox.pending_after(0, 10).unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].payload, b"1", "the first copy wins");
}

#[test]
fn undelivered_tickets_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    {
        let mut outbox = Outbox::open(&path, OutboxLimits::default()).unwrap();
        outbox.enqueue(&ticket("A", b"a"), 1).unwrap();
        outbox.enqueue(&ticket("B", b"b"), 2).unwrap();
        let seq = outbox.pending_after(0, 1).unwrap()[0].seq;
        outbox.mark_delivered(&[seq], 3).unwrap();
    }
    let outbox = Outbox::open_existing(&path).unwrap();
    let ids: Vec<String> = outbox.pending_after(0, 10).unwrap().into_iter().map(|e| e.ticket_id).collect();
    assert_eq!(ids, ["A", "B", "B"], "A's assist and all of B are still to send");
    let (record, json) = outbox.get("B").unwrap().unwrap();
    assert_eq!((record.delivered_ms, json.as_slice()), (None, b"b".as_slice()));
    assert!(outbox.get("Z").unwrap().is_none());
}

#[test]
fn when_full_delivered_history_goes_before_any_undelivered_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let limits = OutboxLimits { max_tickets: 3, ..OutboxLimits::default() };
    let mut outbox = open(&dir, limits);
    for (i, id) in ["A", "B", "C"].iter().enumerate() {
        outbox.enqueue(&ticket(id, b"x"), i as u64).unwrap();
    }
    let a = outbox.pending_after(0, 1).unwrap()[0].seq;
    outbox.mark_delivered(&[a], 10).unwrap();
    let done = outbox.enqueue(&ticket("D", b"x"), 11).unwrap();
    assert!(done.evicted.is_empty(), "delivered A made room: {done:?}");
    let ids: Vec<String> = outbox.list(10).unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["D", "C", "B"]);
    // Now everything is undelivered: the oldest undelivered goes, counted.
    let done = outbox.enqueue(&ticket("E", b"x"), 12).unwrap();
    assert_eq!(done.evicted, ["B"]);
    let stats = outbox.stats().unwrap();
    assert_eq!((stats.tickets, stats.backlog, stats.evicted), (3, 3, 1));
    assert!(outbox.pending_after(0, 100).unwrap().iter().all(|e| e.ticket_id != "B"), "B's assist went too");
}

#[test]
fn the_byte_bound_evicts_like_the_count_bound() {
    let dir = tempfile::tempdir().unwrap();
    let limits = OutboxLimits { max_bytes: 2_000, ..OutboxLimits::default() };
    let mut outbox = open(&dir, limits);
    let body = vec![b'x'; 150];
    let mut evicted = vec![];
    for i in 0..20 {
        evicted.extend(outbox.enqueue(&ticket(&format!("T{i:02}"), &body), i).unwrap().evicted);
    }
    let stats = outbox.stats().unwrap();
    assert!(stats.bytes <= 2_000, "{stats:?}");
    assert_eq!(stats.evicted as usize, evicted.len());
    assert_eq!(evicted[0], "T00", "oldest first");
    assert_eq!(outbox.list(1).unwrap()[0].id, "T19", "the newest hand-over is kept");
    let too_big = vec![b'x'; 300];
    assert!(matches!(outbox.enqueue(&ticket("BIG", &too_big), 99), Err(OutboxError::TooLarge { .. })));
}

#[test]
fn tickets_older_than_max_age_expire_and_undelivered_ones_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let limits = OutboxLimits { max_age: Duration::from_secs(60), ..OutboxLimits::default() };
    let mut outbox = open(&dir, limits);
    outbox.enqueue(&ticket("OLD", b"x"), 1_000).unwrap();
    outbox.enqueue(&ticket("DONE", b"x"), 2_000).unwrap();
    let seqs: Vec<i64> = outbox
        .pending_after(0, 10)
        .unwrap()
        .iter()
        .filter(|e| e.ticket_id == "DONE")
        .map(|e| e.seq)
        .collect();
    outbox.mark_delivered(&seqs, 2_500).unwrap();
    let done = outbox.enqueue(&ticket("NEW", b"x"), 70_000).unwrap();
    assert_eq!(done.expired, ["OLD"], "only the undelivered one counts as lost");
    let stats = outbox.stats().unwrap();
    assert_eq!((stats.tickets, stats.expired), (1, 1));
}

#[test]
fn caller_history_lists_earlier_tickets_of_the_same_caller() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir, OutboxLimits::default());
    outbox.enqueue(&ticket("A", b"x"), 1).unwrap();
    let other = NewTicket { caller_id: Some("***1111"), ..ticket("B", b"x") };
    outbox.enqueue(&other, 2).unwrap();
    outbox.enqueue(&ticket("C", b"x"), 3).unwrap();
    let history: Vec<String> =
        outbox.caller_history("*******0958", "C", 5).unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(history, ["A"]);
}

#[test]
fn a_full_disk_is_a_typed_error_and_keeps_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir, OutboxLimits::default());
    outbox.enqueue(&ticket("A", b"x"), 1).unwrap();
    let pages: u32 = outbox.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    outbox.cap_pages(pages);
    let big = vec![b'y'; 64 * 1024];
    let err = outbox.enqueue(&ticket("B", &big), 2).unwrap_err();
    assert!(matches!(err, OutboxError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("disk is full") && err.to_string().contains("outbox.db"), "{err}");
    assert_eq!(outbox.stats().unwrap().backlog, 1);
}

#[test]
fn an_unwritable_place_is_a_typed_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let err = Outbox::open(&file.join("outbox.db"), OutboxLimits::default()).unwrap_err();
    assert!(matches!(err, OutboxError::Unwritable { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    let err = Outbox::open_existing(&dir.path().join("none.db")).unwrap_err();
    assert!(matches!(err, OutboxError::Missing { .. }), "{err:?}");
}

#[test]
fn a_corrupt_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = Outbox::open(&path, OutboxLimits::default()).unwrap_err();
    assert!(err.to_string().contains("outbox.db"), "{err}");
}

/// What the first release wrote, frozen here: the migration test opens a file
/// made with it, as deployed boxes have.
const FIRST_RELEASE_SCHEMA: &str = "
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

/// Writes `n` tickets of `caller` (and their assists) in one transaction, as
/// raw rows: `delivered` ones carry a delivered time.
fn fill(conn: &mut rusqlite::Connection, from: usize, n: usize, caller: &str, delivered: bool) {
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO outbox (kind, ticket_id, caller_id, summary, payload, created_ms, delivered_ms)
                 VALUES (?1, ?2, ?3, 'old', ?4, ?5, ?6)",
            )
            .unwrap();
        for i in from..from + n {
            let id = format!("H{i:06}");
            let at = 1_000 + i as i64;
            let done = delivered.then_some(at + 5);
            insert.execute(rusqlite::params!["ticket", id, caller, vec![b't'; 100], at, done]).unwrap();
            insert.execute(rusqlite::params!["assist", id, caller, vec![b'a'; 50], at, done]).unwrap();
        }
    }
    tx.commit().unwrap();
}

#[test]
fn a_first_release_file_is_migrated_on_open_and_keeps_its_tickets_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    {
        let mut old = rusqlite::Connection::open(&path).unwrap();
        let _: String = old.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).unwrap();
        old.execute_batch(FIRST_RELEASE_SCHEMA).unwrap();
        fill(&mut old, 0, 30, "*******0958", true);
        fill(&mut old, 30, 3, "*******0958", false);
        old.execute_batch("INSERT INTO outbox_counters VALUES ('evicted', 2), ('expired', 1)").unwrap();
    }
    let mut outbox =
        Outbox::open(&path, OutboxLimits { max_tickets: 33, ..OutboxLimits::default() }).unwrap();
    let version: i64 = outbox.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, store::SCHEMA_VERSION);
    let stats = outbox.stats().unwrap();
    assert_eq!(
        (stats.tickets, stats.bytes, stats.backlog, stats.evicted, stats.expired),
        (33, 33 * 150, 3, 2, 1),
        "totals seeded from the rows, old counters kept"
    );
    let pending: Vec<String> =
        outbox.pending_after(0, 100).unwrap().into_iter().map(|e| e.ticket_id).collect();
    assert_eq!(pending, ["H000030", "H000030", "H000031", "H000031", "H000032", "H000032"]);
    let history = outbox.caller_history("*******0958", "NEW", 5).unwrap();
    assert_eq!(history[0].id, "H000032");
    // The bounds work on the migrated file: a delivered ticket makes room.
    let done = outbox.enqueue(&ticket("NEW", b"x"), 9_000).unwrap();
    assert!(done.inserted && done.evicted.is_empty(), "{done:?}");
    assert!(outbox.get("H000000").unwrap().is_none(), "the oldest delivered went");
    let stats = outbox.stats().unwrap();
    assert_eq!((stats.tickets, stats.bytes), (33, 32 * 150 + 3));
    drop(outbox);
    // Opening again changes nothing.
    let outbox = Outbox::open_existing(&path).unwrap();
    assert_eq!(outbox.stats().unwrap(), stats);
}

#[test]
fn the_running_totals_match_the_rows_after_enqueues_evictions_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let limits = OutboxLimits { max_tickets: 5, max_bytes: 2_000, max_age: Duration::from_secs(60) };
    let mut outbox = open(&dir, limits);
    for i in 0..40u64 {
        let body = vec![b'x'; 20 + (i as usize * 7) % 90];
        outbox.enqueue(&ticket(&format!("T{i:02}"), &body), i * 5_000).unwrap();
        if i % 3 == 0 {
            let seqs: Vec<i64> = outbox.pending_after(0, 2).unwrap().iter().map(|e| e.seq).collect();
            outbox.mark_delivered(&seqs, i * 5_000).unwrap();
        }
        let (tickets, bytes): (i64, i64) = outbox
            .conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE kind = 'ticket'), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let stats = outbox.stats().unwrap();
        assert_eq!((stats.tickets, stats.bytes), (tickets as u64, bytes as u64), "after T{i:02}");
    }
}

/// VM steps, full-scan steps and sorts of every statement a hand-over runs,
/// since the last call.
fn enqueue_cost(outbox: &Outbox) -> (i32, i32, i32) {
    use rusqlite::StatementStatus::{FullscanStep, Sort, VmStep};
    let mut cost = (0, 0, 0);
    for sql in store::ENQUEUE_STATEMENTS {
        let stmt = outbox.conn.prepare_cached(sql).unwrap();
        cost.0 += stmt.reset_status(VmStep);
        cost.1 += stmt.reset_status(FullscanStep);
        cost.2 += stmt.reset_status(Sort);
    }
    cost
}

/// What `Fleet::hand_over` runs: the caller history, then the enqueue.
fn hand_over(outbox: &mut Outbox, id: &str, now_ms: u64) -> (i32, i32, i32) {
    enqueue_cost(outbox);
    let history = outbox.caller_history("*******0958", id, 5).unwrap();
    assert_eq!(history.len(), 5);
    outbox.enqueue(&ticket(id, &[b'n'; 100]), now_ms).unwrap();
    enqueue_cost(outbox)
}

fn cost_with_history(dir: &tempfile::TempDir, history: usize, full: bool) -> (i32, i32, i32) {
    // At the bound, every enqueue evicts the oldest delivered ticket.
    let max_tickets = if full { history as u32 + 3 } else { 100_000 };
    let mut outbox = Outbox::open(
        &dir.path().join(format!("{history}-{full}.db")),
        OutboxLimits { max_tickets, ..OutboxLimits::default() },
    )
    .unwrap();
    fill(&mut outbox.conn, 0, history, "*******0958", true);
    fill(&mut outbox.conn, history, 2, "***1111", false);
    // The first hand-over warms the statement cache.
    hand_over(&mut outbox, "WARM", 50_000);
    let cost = hand_over(&mut outbox, "NEW", 60_000);
    if full {
        assert!(outbox.get("H000000").unwrap().is_none(), "the bound evicted the oldest history");
        assert_eq!(outbox.stats().unwrap().evicted, 0, "and nothing undelivered");
    }
    cost
}

#[test]
fn a_hand_over_costs_the_same_with_10_or_10000_delivered_tickets_stored() {
    let dir = tempfile::tempdir().unwrap();
    for full in [false, true] {
        let small = cost_with_history(&dir, 10, full);
        let large = cost_with_history(&dir, 10_000, full);
        let what = if full { "at the count bound" } else { "under the bounds" };
        assert_eq!((large.1, large.2), (0, 0), "{what}: no table scan, no sort: {large:?}");
        // A deeper B-tree may cost a few steps more; a scan would cost thousands.
        assert!(
            large.0 <= small.0 + small.0 / 4,
            "{what}: {} VM steps with 10,000 tickets stored, {} with 10",
            large.0,
            small.0
        );
    }
}

fn plan(outbox: &Outbox, sql: &str) -> String {
    let mut stmt = outbox.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
    let rows = stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3)).unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
}

#[test]
fn the_bounds_and_the_caller_history_read_through_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir, OutboxLimits::default());
    fill(&mut outbox.conn, 0, 50, "*******0958", true);
    for (sql, index) in [
        (store::ENQUEUE_STATEMENTS[0], "outbox_caller"),
        (store::ENQUEUE_STATEMENTS[2], "outbox_created"),
        (store::ENQUEUE_STATEMENTS[3], "outbox_created"),
        (store::ENQUEUE_STATEMENTS[5], "outbox_delivered"),
    ] {
        let plan = plan(&outbox, sql);
        assert!(plan.contains(index) && !plan.contains("TEMP B-TREE"), "{sql}\n→ {plan}");
    }
}
