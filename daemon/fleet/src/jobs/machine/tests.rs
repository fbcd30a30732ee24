use serde_json::json;

use super::*;
use crate::jobs::envelope::test_keys::{fleet, sign, stranger};

const NOW: u64 = 1_700_000_000_000;

fn policy() -> JobPolicy {
    JobPolicy {
        key: Some(fleet().verifying_key()),
        site: "s".into(),
        device: "d".into(),
        window: Duration::from_secs(300),
    }
}

fn job(id: &str, nonce: &str, command: &str) -> serde_json::Value {
    json!({"job_id": id, "command": command, "site": "s", "device": "d",
           "issued_at_ms": NOW, "nonce": nonce, "params": {}})
}

fn book() -> JobBook {
    JobBook::restore(policy(), vec![], NOW).0
}

fn statuses(actions: &[Action]) -> Vec<(JobStatus, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(r) => Some((r.status, r.duplicate)),
            _ => None,
        })
        .collect()
}

fn rejection(actions: &[Action]) -> String {
    match actions {
        [Action::Publish(r)] if r.status == JobStatus::Rejected => r.message.clone(),
        other => panic!("expected one rejection, got {other:?}"),
    }
}

#[test]
fn a_signed_job_is_queued_started_and_finished_with_each_step_persisted_first() {
    let mut book = book();
    let actions = book.receive("diagnostics", &sign(&fleet(), &job("J1", "nonce-0001", "diagnostics")), NOW);
    let kinds: Vec<&str> = actions
        .iter()
        .map(|a| match a {
            Action::Persist(_) => "persist",
            Action::Publish(_) => "publish",
            Action::Execute(_) => "execute",
        })
        .collect();
    assert_eq!(kinds, ["persist", "publish", "persist", "publish", "execute"]);
    assert_eq!(statuses(&actions), [(JobStatus::Queued, false), (JobStatus::InProgress, false)]);
    assert_eq!(book.running(), Some("J1"));
    let done =
        book.finished("J1", Outcome { ok: true, message: "ok".into(), detail: json!({"x": 1}) }, NOW + 5);
    assert_eq!(statuses(&done), [(JobStatus::Succeeded, false)]);
    assert!(matches!(&done[0], Action::Persist(r) if r.last.status == JobStatus::Succeeded));
    assert_eq!(book.running(), None);
}

#[test]
fn jobs_run_one_at_a_time_in_arrival_order() {
    let mut book = book();
    book.receive("diagnostics", &sign(&fleet(), &job("J1", "nonce-0001", "diagnostics")), NOW);
    let second =
        book.receive("config_update", &sign(&fleet(), &job("J2", "nonce-0002", "config_update")), NOW);
    assert_eq!(statuses(&second), [(JobStatus::Queued, false)], "J2 waits");
    assert_eq!(book.queued(), 1);
    let next =
        book.finished("J1", Outcome { ok: false, message: "boom".into(), detail: json!(null) }, NOW + 1);
    assert_eq!(statuses(&next), [(JobStatus::Failed, false), (JobStatus::InProgress, false)]);
    assert!(matches!(next.last(), Some(Action::Execute(j)) if j.job_id == "J2"));
}

#[test]
fn unsigned_badly_signed_and_malformed_commands_are_rejected_and_change_nothing() {
    let mut book = book();
    let unsigned = json!({"job": job("J1", "nonce-0001", "diagnostics").to_string()}).to_string();
    assert!(rejection(&book.receive("diagnostics", unsigned.as_bytes(), NOW)).contains("unsigned"));
    let forged = sign(&stranger(), &job("J1", "nonce-0001", "diagnostics"));
    assert!(rejection(&book.receive("diagnostics", &forged, NOW)).contains("bad signature"));
    assert!(rejection(&book.receive("diagnostics", b"garbage", NOW)).contains("malformed"));
    assert_eq!((book.running(), book.queued()), (None, 0));
    // The same id and nonce, properly signed, still run: the rejects left no trace.
    let ok = book.receive("diagnostics", &sign(&fleet(), &job("J1", "nonce-0001", "diagnostics")), NOW);
    assert_eq!(statuses(&ok), [(JobStatus::Queued, false), (JobStatus::InProgress, false)]);
}

#[test]
fn stale_and_future_timestamps_outside_the_window_are_rejected() {
    let mut book = book();
    let mut old = job("J1", "nonce-0001", "diagnostics");
    old["issued_at_ms"] = json!(NOW - 301_000);
    assert!(rejection(&book.receive("diagnostics", &sign(&fleet(), &old), NOW)).contains("stale"));
    let mut future = job("J2", "nonce-0002", "diagnostics");
    future["issued_at_ms"] = json!(NOW + 301_000);
    assert!(rejection(&book.receive("diagnostics", &sign(&fleet(), &future), NOW)).contains("stale"));
    let mut edge = job("J3", "nonce-0003", "diagnostics");
    edge["issued_at_ms"] = json!(NOW - 299_000);
    assert_eq!(statuses(&book.receive("diagnostics", &sign(&fleet(), &edge), NOW))[0].0, JobStatus::Queued);
}

#[test]
fn a_reused_nonce_is_a_replay_and_a_repeated_job_id_is_idempotent() {
    let mut book = book();
    let signed = sign(&fleet(), &job("J1", "nonce-0001", "diagnostics"));
    book.receive("diagnostics", &signed, NOW);
    book.finished("J1", Outcome { ok: true, message: "done".into(), detail: json!(null) }, NOW + 1);
    // The exact message again (broker redelivery or a replay within the window).
    let again = book.receive("diagnostics", &signed, NOW + 2);
    assert_eq!(statuses(&again), [(JobStatus::Succeeded, true)]);
    assert!(!again.iter().any(|a| matches!(a, Action::Execute(_) | Action::Persist(_))));
    // A new job id reusing the nonce.
    let replay =
        book.receive("diagnostics", &sign(&fleet(), &job("J9", "nonce-0001", "diagnostics")), NOW + 3);
    assert!(rejection(&replay).contains("replayed"), "{replay:?}");
}

#[test]
fn commands_for_another_box_or_another_command_are_rejected() {
    let mut book = book();
    let mut other = job("J1", "nonce-0001", "diagnostics");
    other["device"] = json!("other");
    assert!(
        rejection(&book.receive("diagnostics", &sign(&fleet(), &other), NOW)).contains("not to this box")
    );
    let wrong_topic = sign(&fleet(), &job("J2", "nonce-0002", "diagnostics"));
    assert!(rejection(&book.receive("config_update", &wrong_topic, NOW)).contains("not to this box"));
    let unknown = sign(&fleet(), &job("J3", "nonce-0003", "format_disk"));
    assert!(rejection(&book.receive("format_disk", &unknown, NOW)).contains("unknown command"));
}

#[test]
fn without_a_configured_key_everything_is_rejected() {
    let mut book = JobBook::restore(JobPolicy { key: None, ..policy() }, vec![], NOW).0;
    let signed = sign(&fleet(), &job("J1", "nonce-0001", "diagnostics"));
    assert!(rejection(&book.receive("diagnostics", &signed, NOW)).contains("no fleet public key"));
}

#[test]
fn the_queue_is_bounded() {
    let mut book = book();
    for i in 0..=MAX_QUEUED {
        let j = job(&format!("J{i}"), &format!("nonce-{i:04}"), "diagnostics");
        book.receive("diagnostics", &sign(&fleet(), &j), NOW);
    }
    assert_eq!(book.queued(), MAX_QUEUED);
    let over = job("JX", "nonce-xxxx", "diagnostics");
    assert!(rejection(&book.receive("diagnostics", &sign(&fleet(), &over), NOW)).contains("queue full"));
}

#[test]
fn a_restart_fails_the_interrupted_job_resumes_queued_ones_and_remembers_ids() {
    let mut first = book();
    first.receive("diagnostics", &sign(&fleet(), &job("J1", "nonce-0001", "diagnostics")), NOW);
    first.receive("diagnostics", &sign(&fleet(), &job("J2", "nonce-0002", "diagnostics")), NOW);
    // What the ledger would hold at the crash: J1 in progress, J2 queued.
    let mut records: Vec<JobRecord> = first.records.values().cloned().collect();
    records.sort_by(|a, b| a.job.job_id.cmp(&b.job.job_id));
    let (mut book, actions) = JobBook::restore(policy(), records, NOW + 10);
    assert_eq!(statuses(&actions), [(JobStatus::Failed, false), (JobStatus::InProgress, false)]);
    assert!(matches!(actions.last(), Some(Action::Execute(j)) if j.job_id == "J2"));
    let replay =
        book.receive("diagnostics", &sign(&fleet(), &job("J3", "nonce-0001", "diagnostics")), NOW + 11);
    assert!(rejection(&replay).contains("replayed"));
    let again =
        book.receive("diagnostics", &sign(&fleet(), &job("J1", "nonce-0001", "diagnostics")), NOW + 12);
    assert_eq!(statuses(&again), [(JobStatus::Failed, true)]);
}

#[test]
fn old_finished_jobs_are_forgotten_but_never_the_running_one() {
    let mut book = book();
    book.receive("diagnostics", &sign(&fleet(), &job("J1", "nonce-0001", "diagnostics")), NOW);
    book.forget_before(NOW + 1);
    assert_eq!(book.records.len(), 1, "J1 is running");
    book.finished("J1", Outcome { ok: true, message: String::new(), detail: json!(null) }, NOW + 2);
    book.forget_before(NOW + 1);
    assert!(book.records.is_empty() && book.nonces.is_empty());
}
