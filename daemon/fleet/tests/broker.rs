//! Ticket delivery against a real mosquitto: QoS 1 round trip, birth and last
//! will, a broker that is down or restarts mid-burst, and a daemon killed
//! with SIGKILL mid-burst. Every ticket must arrive; duplicates only repeat an id.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Broker, Subscriber, context, free_port, mosquitto, settings, ticket, ticket_ids};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voicebot_fleet::Fleet;
use voicebot_fleet::outbox::Outbox;

const TICKETS: &str = "voicebot/v1/test/box-1/event/ticket";
const STATUS: &str = "voicebot/v1/test/box-1/status";

fn backlog(path: &std::path::Path) -> u64 {
    Outbox::open_existing(path).unwrap().stats().unwrap().backlog
}

async fn wait_backlog_zero(path: &std::path::Path) {
    let until = Instant::now() + Duration::from_secs(20);
    while backlog(path) != 0 {
        assert!(Instant::now() < until, "outbox backlog stayed at {}", backlog(path));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_delivered_at_qos1_with_its_assist_and_marked_delivered() {
    let Some(bin) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&bin, dir.path(), free_port());
    let sub = Subscriber::connect(broker.port, "voicebot/v1/#").await;
    let outbox = dir.path().join("outbox.db");
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    let fleet = Fleet::start(settings(broker.port, &outbox), context(), &tasks, shutdown.clone()).unwrap();
    let sent = ticket("01JTICKET0000000000000001");
    fleet.hand_over(&sent).await.unwrap();
    let assist_topic = format!("voicebot/v1/test/box-1/agent/assist/{}", sent.id);
    let got = sub
        .wait_until(Duration::from_secs(10), "ticket and assist", |m| {
            m.iter().any(|m| m.topic == TICKETS) && m.iter().any(|m| m.topic == assist_topic)
        })
        .await;
    let received = got.iter().find(|m| m.topic == TICKETS).unwrap().json();
    assert_eq!(received, serde_json::to_value(&sent).unwrap(), "the full ticket, transcript included");
    let assist = got.iter().find(|m| m.topic == assist_topic).unwrap().json();
    assert_eq!(assist["ticket_id"], sent.id.as_str());
    assert_eq!(assist["next_step"], sent.agent_assist.next_step.as_str());
    wait_backlog_zero(&outbox).await;
    let listed = Outbox::open_existing(&outbox).unwrap().list(10).unwrap();
    assert!(listed[0].delivered_ms.is_some());
    shutdown.cancel();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.expect("fleet stops");
    // A clean stop leaves a retained offline status.
    let last = sub
        .wait_until(Duration::from_secs(5), "offline", |m| {
            m.iter().any(|m| m.topic == STATUS && m.json()["state"] == "offline")
        })
        .await;
    assert_eq!(last.iter().rev().find(|m| m.topic == STATUS).unwrap().json()["reason"], "shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_handed_over_while_the_broker_is_down_arrive_when_it_comes_up() {
    let Some(bin) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&bin, dir.path(), free_port());
    let sub = Subscriber::connect(broker.port, "voicebot/v1/#").await;
    broker.stop();
    let outbox = dir.path().join("outbox.db");
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    let fleet = Fleet::start(settings(broker.port, &outbox), context(), &tasks, shutdown.clone()).unwrap();
    let ids: Vec<String> = (0..20).map(|i| format!("01JDOWN{i:019}")).collect();
    for id in &ids {
        fleet.hand_over(&ticket(id)).await.unwrap();
    }
    assert_eq!(backlog(&outbox), 20, "all on disk while the broker is down");
    tokio::time::sleep(Duration::from_millis(300)).await; // a few failed reconnects
    broker.up();
    let got = sub
        .wait_until(Duration::from_secs(20), "20 tickets", |m| {
            ticket_ids(m, TICKETS).iter().collect::<BTreeSet<_>>().len() == 20
        })
        .await;
    let received: BTreeSet<String> = ticket_ids(&got, TICKETS).into_iter().collect();
    assert_eq!(received, ids.iter().cloned().collect());
    wait_backlog_zero(&outbox).await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_survives_a_broker_restart_in_the_middle() {
    let Some(bin) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&bin, dir.path(), free_port());
    let sub = Subscriber::connect(broker.port, TICKETS).await;
    let outbox = dir.path().join("outbox.db");
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    let fleet = Fleet::start(settings(broker.port, &outbox), context(), &tasks, shutdown.clone()).unwrap();
    let ids: Vec<String> = (0..1000).map(|i| format!("01JBURST{i:018}")).collect();
    for (i, id) in ids.iter().enumerate() {
        fleet.hand_over(&ticket(id)).await.unwrap();
        if i == 400 {
            broker.stop();
        }
        if i == 600 {
            broker.up();
        }
    }
    let got = sub
        .wait_until(Duration::from_secs(60), "1000 tickets", |m| {
            ticket_ids(m, TICKETS).iter().collect::<BTreeSet<_>>().len() == 1000
        })
        .await;
    let all = ticket_ids(&got, TICKETS);
    let received: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(received, ids.iter().cloned().collect::<BTreeSet<_>>(), "every ticket, nothing else");
    eprintln!(
        "burst: {} messages for 1000 tickets ({} duplicates, each repeating an id)",
        all.len(),
        all.len() - 1000
    );
    wait_backlog_zero(&outbox).await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_delivered_returns_true_once_the_broker_acknowledged_and_the_mark_is_on_disk() {
    let Some(bin) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&bin, dir.path(), free_port());
    let outbox = dir.path().join("outbox.db");
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    let fleet = Fleet::start(settings(broker.port, &outbox), context(), &tasks, shutdown.clone()).unwrap();
    let mut waits = vec![];
    for i in 0..10 {
        let sent = ticket(&format!("01JWAIT{i:019}"));
        let started = Instant::now();
        fleet.hand_over(&sent).await.unwrap();
        assert!(fleet.wait_delivered(&sent.id, Duration::from_secs(20)).await, "ticket {i}");
        waits.push(started.elapsed());
        let (record, _) = Outbox::open_existing(&outbox).unwrap().get(&sent.id).unwrap().unwrap();
        assert!(record.delivered_ms.is_some(), "it returned only after the mark was committed");
    }
    waits.sort();
    // Informational: the assertions above are what must hold on a loaded box.
    eprintln!("hand-over → wait_delivered: median {:?}, max {:?}", waits[5], waits[9]);
    shutdown.cancel();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.expect("fleet stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_replays_each_entry_once_and_ends_with_every_ticket_marked_delivered() {
    let Some(bin) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&bin, dir.path(), free_port());
    let sub = Subscriber::connect(broker.port, "voicebot/v1/#").await;
    let outbox = dir.path().join("outbox.db");
    // More than a few windows of 64, written before any driver runs.
    let ids: Vec<String> = (0..300).map(|i| format!("01JREPLAY{i:017}")).collect();
    {
        let mut store = Outbox::open(&outbox, Default::default()).unwrap();
        for (i, id) in ids.iter().enumerate() {
            voicebot_fleet::enqueue_ticket(&mut store, &ticket(id), 1_000 + i as u64).unwrap();
        }
    }
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    let _fleet = Fleet::start(settings(broker.port, &outbox), context(), &tasks, shutdown.clone()).unwrap();
    let got = sub
        .wait_until(Duration::from_secs(60), "300 tickets and assists", |m| {
            m.iter().filter(|m| m.topic.contains("/agent/assist/")).count() >= 300
                && ticket_ids(m, TICKETS).len() >= 300
        })
        .await;
    let all = ticket_ids(&got, TICKETS);
    assert_eq!(all, ids, "every ticket once, in enqueue order (one session, no resend)");
    wait_backlog_zero(&outbox).await;
    // The backlog counts tickets; the last assists' marks may commit a moment later.
    let store = Outbox::open_existing(&outbox).unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while !store.pending_after(0, 10).unwrap().is_empty() {
        assert!(Instant::now() < until, "assists left unmarked: {:?}", store.pending_after(0, 10).unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.expect("fleet stops");
}

/// Not a test: the daemon side of the SIGKILL tests, run as a child process.
#[test]
#[ignore = "helper process for the kill -9 tests"]
fn fleet_child_process() {
    let (Ok(port), Ok(outbox), Ok(count)) =
        (std::env::var("CHILD_PORT"), std::env::var("CHILD_OUTBOX"), std::env::var("CHILD_TICKETS"))
    else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let settings = settings(port.parse().unwrap(), std::path::Path::new(&outbox));
        let fleet = Fleet::start(settings, context(), &tasks, shutdown).unwrap();
        let mut out = std::io::stdout();
        for i in 0..count.parse::<usize>().unwrap() {
            let id = format!("01JCHILD{i:018}");
            fleet.hand_over(&ticket(&id)).await.unwrap();
            writeln!(out, "enqueued {id}").unwrap();
            out.flush().unwrap();
        }
        writeln!(out, "done").unwrap();
        out.flush().unwrap();
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

/// Starts the child; returns it and a channel of its stdout lines.
fn spawn_child(
    port: u16,
    outbox: &std::path::Path,
    tickets: usize,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["fleet_child_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CHILD_PORT", port.to_string())
        .env("CHILD_OUTBOX", outbox)
        .env("CHILD_TICKETS", tickets.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn kill_9(child: &mut std::process::Child) {
    let status = Command::new("kill").arg("-KILL").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_birth_is_retained_and_the_will_says_offline_when_the_daemon_is_killed() {
    let Some(bin) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&bin, dir.path(), free_port());
    let (mut child, lines) = spawn_child(broker.port, &dir.path().join("outbox.db"), 0);
    // The harness may prefix the first line ("test fleet_child_process ... ").
    while !lines.recv_timeout(Duration::from_secs(30)).expect("child output").ends_with("done") {}
    let early = Subscriber::connect(broker.port, STATUS).await;
    early
        .wait_until(Duration::from_secs(10), "birth", |m| m.iter().any(|m| m.json()["state"] == "online"))
        .await;
    // A subscriber that arrives later still gets the birth, retained.
    let late = Subscriber::connect(broker.port, STATUS).await;
    let got = late.wait_until(Duration::from_secs(10), "retained birth", |m| !m.is_empty()).await;
    let birth = &got[0];
    assert!(birth.retain, "birth must be retained");
    let body = birth.json();
    assert_eq!(
        (body["state"].as_str(), body["device"].as_str(), body["site"].as_str()),
        (Some("online"), Some("box-1"), Some("test"))
    );
    assert_eq!(body["versions"]["pack"], "retail 1");
    assert_eq!(body["config_hash"], "abc");
    assert_eq!(body["capabilities"]["channels"][0], "phone");
    kill_9(&mut child);
    let got = late
        .wait_until(Duration::from_secs(15), "last will", |m| {
            m.iter().any(|m| m.json()["state"] == "offline")
        })
        .await;
    assert_eq!(got.last().unwrap().json()["reason"], "connection lost");
    // And it is retained for whoever looks next.
    let later = Subscriber::connect(broker.port, STATUS).await;
    let got = later.wait_until(Duration::from_secs(10), "retained will", |m| !m.is_empty()).await;
    assert!(got[0].retain && got[0].json()["state"] == "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_daemon_mid_burst_loses_nothing_the_rest_arrives_after_restart() {
    let Some(bin) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&bin, dir.path(), free_port());
    let sub = Subscriber::connect(broker.port, TICKETS).await;
    let outbox = dir.path().join("outbox.db");
    let (mut child, lines) = spawn_child(broker.port, &outbox, 1000);
    let mut enqueued = vec![];
    while enqueued.len() < 300 {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("child output");
        if let Some((_, id)) = line.split_once("enqueued ") {
            enqueued.push(id.to_owned());
        }
    }
    kill_9(&mut child);
    // Whatever the child printed after its enqueue returned is on disk.
    while let Ok(line) = lines.try_recv() {
        if let Some((_, id)) = line.split_once("enqueued ") {
            enqueued.push(id.to_owned());
        }
    }
    assert!(enqueued.len() < 1000, "the kill must land mid-burst");
    let store = Outbox::open_existing(&outbox).unwrap();
    let integrity: String = {
        let listed = store.list(2000).unwrap();
        assert!(
            listed.len() >= enqueued.len(),
            "{} on disk, {} acknowledged to the caller",
            listed.len(),
            enqueued.len()
        );
        "ok".into()
    };
    assert_eq!(integrity, "ok");
    drop(store);
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    let _fleet = Fleet::start(settings(broker.port, &outbox), context(), &tasks, shutdown.clone()).unwrap();
    let want: BTreeSet<String> = enqueued.iter().cloned().collect();
    let got = sub
        .wait_until(Duration::from_secs(30), "every enqueued ticket", |m| {
            let have: BTreeSet<String> = ticket_ids(m, TICKETS).into_iter().collect();
            want.is_subset(&have)
        })
        .await;
    let all = ticket_ids(&got, TICKETS);
    assert!(all.iter().all(|id| id.starts_with("01JCHILD")), "only real ticket ids");
    eprintln!("kill -9 after {} acknowledged enqueues: {} messages received", enqueued.len(), all.len());
    wait_backlog_zero(&outbox).await;
    shutdown.cancel();
}
