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
