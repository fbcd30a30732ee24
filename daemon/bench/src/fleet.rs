//! Ticket delivery against a real mosquitto, started here on a free loopback
//! port. The real [`Fleet`] (outbox, driver, rumqttc), with the settings the
//! embedded default config gives it, runs on a 2-worker runtime as in the
//! daemon; every figure has a reference measured in the same run:
//!
//! 1. **Publish latency**: `Fleet::hand_over` of a realistic ticket → (a) the
//!    outbox marks it delivered (the broker's PUBACK, then the driver's ack
//!    batching and one fsync), watched by polling the outbox through a second
//!    connection, and `Fleet::wait_delivered` returning (what the transfer
//!    waits on); (b) a subscriber on the tickets topic receiving it.
//!    Reference: a bare rumqttc QoS 1 publish of the same bytes to the same
//!    broker (→ its PUBACK, → the same subscriber). Fleet and reference
//!    alternate sample by sample.
//! 2. **Outbox throughput**: a burst of hand-overs straight into the outbox
//!    (`enqueue_ticket`, WAL + `synchronous = FULL`, one commit per ticket),
//!    into a fresh file and into one that holds the replay's delivered history.
//!    Reference: plain rusqlite inserts of the same bytes, same pragmas, one
//!    transaction per ticket. Rounds rotate the order.
//! 3. **Replay**: a backlog handed over with no broker configured, then a
//!    fleet with the broker starts: time until the subscriber has every id
//!    (duplicates counted) and until the outbox backlog is 0. Reference: the
//!    bare client publishing the same entries (tickets and assists) with the
//!    same in-flight window.
//!
//! The measuring code runs on the main thread, outside the runtime, so it can
//! block on channels and poll SQLite; the subscriber has its own thread and
//! runtime so its timestamps never wait for the fleet's workers.

mod peers;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rumqttc::QoS;
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voicebot_core::config::{BrokerUrl, Config};
use voicebot_dialog::escalation::EscalationReason;
use voicebot_dialog::ticket::{CallContext, CallerTurn, Routing, Ticket, TicketBuilder};
use voicebot_fleet::jobs::{JobContext, NoHooks};
use voicebot_fleet::messages::{Capabilities, DeviceInfo, Versions};
use voicebot_fleet::outbox::{EntryKind, Outbox, OutboxLimits, PendingEntry};
use voicebot_fleet::topics::Topics;
use voicebot_fleet::{Fleet, FleetSettings, enqueue_ticket, now_ms};

use self::peers::{Arrival, Bare, Mosquitto, REF_ASSIST, REF_TICKETS, arrival, find_mosquitto, subscribe};
use crate::latency::percentile;
use crate::stats::{Machine, median};

/// What `voicebot-bench fleet` was asked to do.
pub(crate) struct FleetArgs {
    pub(crate) out: PathBuf,
    pub(crate) scratch: PathBuf,
    pub(crate) samples: usize,
    pub(crate) burst: usize,
    pub(crate) rounds: usize,
    pub(crate) backlog: usize,
    pub(crate) mosquitto: Option<PathBuf>,
}

/// Untimed samples before the latency measurement.
const WARM_UP: usize = 5;
/// How often the main thread reads the outbox while waiting for a delivery mark.
const POLL: Duration = Duration::from_micros(500);

/// A 26-character id, ULID-shaped; `phase` (2 characters) keeps phases apart.
fn id(phase: &str, n: usize) -> String {
    format!("01JB{phase}{n:020}")
}

/// A hand-over as a real call cuts one: three caller turns with intents,
/// emotion and a masked slot, the bot's replies, a suggested answer. Fifty
/// callers take turns, so the assist message carries caller history.
fn ticket(id: String, n: usize) -> Ticket {
    let started = 1_763_700_000_000 + n as u64 * 60_000;
    let mut builder = TicketBuilder::new(CallContext {
        channel: "phone".into(),
        line: Some("hotline-1".into()),
        caller_id_masked: Some(format!("*******{:04}", n % 50)),
        started_at_ms: started,
    });
    let none = BTreeMap::new();
    let order = BTreeMap::from([("order_number".to_owned(), "***12".to_owned())]);
    let turn = |text, intent, confidence, valence, emotion_label, slots| CallerTurn {
        text,
        language: "en",
        intent,
        confidence,
        valence,
        emotion_label,
        slots,
    };
    builder.caller(&turn(
        "hi, I ordered a coffee machine two weeks ago and it still hasn't arrived",
        "order_status",
        0.91,
        -1,
        "annoyed",
        &none,
    ));
    builder.bot("I can check that for you. What is your order number?", "order_status", false);
    builder.caller(&turn("it's four five seven one two", "order_status", 0.88, -1, "annoyed", &order));
    builder.bot(
        "Order ***12 left our warehouse on Monday and is with the courier; it should arrive within two working days.",
        "order_status",
        true,
    );
    builder.caller(&turn(
        "that's what you told me last week, I want to talk to a person now",
        "human_agent",
        0.97,
        -2,
        "angry",
        &none,
    ));
    let routing = Routing {
        reason: EscalationReason::NegativeEmotion,
        intent: "order_status",
        skill_group: "orders",
        priority: 3,
        suggested_answer: Some(
            "Orders ship within 2 working days; a delayed parcel can be traced with the courier's reference.",
        ),
    };
    builder.build(id, started + 95_000, &routing, "An agent will pick up your call about order ***12.")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// n, p50, p95, max of millisecond samples.
fn summary(samples: &[f64]) -> Value {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    json!({
        "n": sorted.len(),
        "p50_ms": percentile(&sorted, 0.5),
        "p95_ms": percentile(&sorted, 0.95),
        "max_ms": sorted.last().copied().unwrap_or(f64::NAN),
    })
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Removes an SQLite file with its WAL and shared-memory files.
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// A started fleet and what stops it.
struct Running {
    fleet: Fleet,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Running {
    fn start(runtime: &Runtime, settings: FleetSettings, scratch: &Path) -> Result<Running> {
        let context = JobContext {
            config_path: None,
            pack_path: None,
            model_dir: scratch.join("no-models"),
            models_in_use: vec![],
            hooks: Arc::new(NoHooks),
        };
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let _entered = runtime.enter();
        let fleet = Fleet::start(settings, context, &tasks, shutdown.clone()).context("start the fleet")?;
        Ok(Running { fleet, tasks, shutdown })
    }

    fn stop(self, runtime: &Runtime) {
        self.shutdown.cancel();
        self.tasks.close();
        let stopped = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(15), self.tasks.wait()).await });
        if stopped.is_err() {
            eprintln!("fleet bench: the fleet did not stop within 15 s");
        }
    }
}

/// This bench's device id (the site is the default config's).
const DEVICE: &str = "bench-box";

/// The daemon's fleet settings from the embedded default config (outbox
/// bounds, keepalive, backoff), for `outbox`, with the broker at `port` or none.
fn settings(port: Option<u16>, outbox: &Path) -> Result<FleetSettings> {
    let mut config = Config::embedded_default()?;
    config.fleet.device_id = Some(DEVICE.into());
    config.fleet.outbox = Some(outbox.to_path_buf());
    config.mqtt.url = match port {
        Some(port) => Some(BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}"))?),
        None => None,
    };
    let info = DeviceInfo {
        versions: Versions {
            firmware: env!("CARGO_PKG_VERSION").into(),
            models: "bench".into(),
            model_files: BTreeMap::new(),
            pack: "bench".into(),
        },
        capabilities: Capabilities {
            channels: vec!["phone".into()],
            languages: vec!["en".into()],
            accelerator: None,
            commands: vec![],
        },
        config_hash: "bench".into(),
    };
    Ok(FleetSettings::from_config(&config, info)?)
}

fn tickets_topic() -> Result<String> {
    let config = Config::embedded_default()?;
    Ok(Topics::new(&config.fleet.site, DEVICE).event_ticket())
}

/// Millisecond samples of the publish-latency phase.
#[derive(Default)]
struct LatencySamples {
    stored: Vec<f64>,
    delivered: Vec<f64>,
    wait_delivered: Vec<f64>,
    fleet_arrival: Vec<f64>,
    bare_puback: Vec<f64>,
    bare_arrival: Vec<f64>,
}

/// One hand-over through the fleet: stored, arrived, marked delivered, `wait_delivered`.
fn fleet_sample(
    runtime: &Runtime,
    fleet: &Fleet,
    reader: &Outbox,
    arrivals: &mpsc::Receiver<Arrival>,
    ticket: &Ticket,
    into: &mut LatencySamples,
) -> Result<usize> {
    let t0 = Instant::now();
    runtime.block_on(fleet.hand_over(ticket)).context("hand over")?;
    let stored = t0.elapsed();
    let (waited_tx, waited_rx) = mpsc::channel();
    let (waiter, id) = (fleet.clone(), ticket.id.clone());
    runtime.spawn(async move {
        let acked = waiter.wait_delivered(&id, Duration::from_secs(15)).await;
        let _ = waited_tx.send((acked, Instant::now()));
    });
    let (arrived, skipped) = arrival(arrivals, false, &ticket.id)?;
    let until = Instant::now() + Duration::from_secs(15);
    let delivered = loop {
        let record = reader.get(&ticket.id)?.map(|(record, _)| record);
        if record.is_some_and(|r| r.delivered_ms.is_some()) {
            break Instant::now();
        }
        if Instant::now() > until {
            bail!("ticket {} was never marked delivered", ticket.id);
        }
        std::thread::sleep(POLL);
    };
    let (acked, waited) = waited_rx.recv_timeout(Duration::from_secs(20))?;
    if !acked {
        bail!("wait_delivered gave up on ticket {}", ticket.id);
    }
    into.stored.push(ms(stored));
    into.fleet_arrival.push(ms(arrived - t0));
    into.delivered.push(ms(delivered - t0));
    into.wait_delivered.push(ms(waited - t0));
    Ok(skipped)
}

/// The same ticket bytes through the bare client: PUBACK, arrived.
fn bare_sample(
    bare: &Bare,
    arrivals: &mpsc::Receiver<Arrival>,
    ticket: &Ticket,
    into: &mut LatencySamples,
) -> Result<usize> {
    let payload = serde_json::to_vec(ticket)?;
    while bare.acks.try_recv().is_ok() {}
    let t0 = Instant::now();
    bare.client.try_publish(REF_TICKETS, QoS::AtLeastOnce, false, payload)?;
    let puback = bare.acks.recv_timeout(Duration::from_secs(15)).context("no PUBACK for the reference")?;
    let (arrived, skipped) = arrival(arrivals, true, &ticket.id)?;
    into.bare_puback.push(ms(puback - t0));
    into.bare_arrival.push(ms(arrived - t0));
    Ok(skipped)
}

fn publish_latency(
    runtime: &Runtime,
    port: u16,
    scratch: &Path,
    samples: usize,
    arrivals: &mpsc::Receiver<Arrival>,
    bare: &Bare,
) -> Result<Value> {
    let outbox = scratch.join("latency/outbox.db");
    remove_db(&outbox);
    let running = Running::start(runtime, settings(Some(port), &outbox)?, scratch)?;
    let reader = Outbox::open_existing(&outbox)?;
    let mut warm = LatencySamples::default();
    for n in 0..WARM_UP {
        let t = ticket(id("LW", n), n);
        fleet_sample(runtime, &running.fleet, &reader, arrivals, &t, &mut warm)?;
        bare_sample(bare, arrivals, &t, &mut warm)?;
    }
    let mut s = LatencySamples::default();
    let mut skipped = 0;
    for n in 0..samples {
        let t = ticket(id("LT", n), n);
        if n % 2 == 0 {
            skipped += fleet_sample(runtime, &running.fleet, &reader, arrivals, &t, &mut s)?;
            skipped += bare_sample(bare, arrivals, &t, &mut s)?;
        } else {
            skipped += bare_sample(bare, arrivals, &t, &mut s)?;
            skipped += fleet_sample(runtime, &running.fleet, &reader, arrivals, &t, &mut s)?;
        }
    }
    running.stop(runtime);
    let ratio = |a: &[f64], b: &[f64]| median(&a.iter().zip(b).map(|(a, b)| a / b).collect::<Vec<_>>());
    let payload = serde_json::to_vec(&ticket(id("LT", 0), 0))?.len();
    Ok(json!({
        "samples": samples,
        "ticket_bytes": payload,
        "stray_arrivals": skipped,
        "fleet": {
            "hand_over_stored": summary(&s.stored),
            "subscriber_received": summary(&s.fleet_arrival),
            "marked_delivered": summary(&s.delivered),
            "wait_delivered_returned": summary(&s.wait_delivered),
        },
        "reference": {
            "puback": summary(&s.bare_puback),
            "subscriber_received": summary(&s.bare_arrival),
        },
        // Medians of per-sample ratios (fleet / the adjacent reference sample).
        "ratio_received": ratio(&s.fleet_arrival, &s.bare_arrival),
        "ratio_delivered_to_puback": ratio(&s.delivered, &s.bare_puback),
        "ratio_wait_delivered_to_puback": ratio(&s.wait_delivered, &s.bare_puback),
        "load_average_after": load_average(),
    }))
}

/// Hands `backlog` tickets to a fleet with no broker, then starts one with the
/// broker: every id must reach the subscriber. Then the bare client publishes
/// the same entries. Returns the results and the outbox (now all delivered).
fn replay(
    runtime: &Runtime,
    port: u16,
    scratch: &Path,
    backlog: usize,
    arrivals: &mpsc::Receiver<Arrival>,
    bare: &Bare,
) -> Result<(Value, PathBuf)> {
    let outbox = scratch.join("replay/outbox.db");
    remove_db(&outbox);
    let offline = Running::start(runtime, settings(None, &outbox)?, scratch)?;
    let mut fill = Vec::with_capacity(backlog);
    let filling = Instant::now();
    for n in 0..backlog {
        let t = ticket(id("RP", n), n);
        let t0 = Instant::now();
        runtime.block_on(offline.fleet.hand_over(&t))?;
        fill.push(t0.elapsed().as_secs_f64());
    }
    let fill_seconds = filling.elapsed().as_secs_f64();
    offline.stop(runtime);
    let reader = Outbox::open_existing(&outbox)?;
    let queued = reader.stats()?.backlog;
    if queued != backlog as u64 {
        bail!("{queued} tickets queued, {backlog} handed over");
    }
    let entries: Vec<PendingEntry> = reader.pending_after(0, 2 * backlog + 1)?;
    let tenth = (backlog / 10).max(1);
    let rate = |part: &[f64]| part.len() as f64 / part.iter().sum::<f64>();
    eprintln!("fleet: {backlog} tickets queued in {fill_seconds:.1} s; replaying");

    while arrivals.try_recv().is_ok() {}
    let t0 = Instant::now();
    let online = Running::start(runtime, settings(Some(port), &outbox)?, scratch)?;
    let (fleet_all, fleet_first, messages, ids) = collect(arrivals, false, backlog)?;
    let until = Instant::now() + Duration::from_secs(120);
    let drained = loop {
        if reader.stats()?.backlog == 0 {
            break Instant::now();
        }
        if Instant::now() > until {
            bail!("the outbox backlog stayed at {}", reader.stats()?.backlog);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    online.stop(runtime);
    let expected: HashSet<String> = (0..backlog).map(|n| id("RP", n)).collect();
    let missing = expected.difference(&ids).count();
    let late: usize = std::iter::from_fn(|| arrivals.try_recv().ok()).filter(|a| !a.reference).count();
    let duplicates = messages + late - ids.len();
    let fleet_seconds = (fleet_all - t0).as_secs_f64();

    while bare.acks.try_recv().is_ok() {}
    let t1 = Instant::now();
    let client = bare.client.clone();
    let publishing = entries.clone();
    runtime.spawn(async move {
        for e in publishing {
            let topic = match e.kind {
                EntryKind::Ticket => REF_TICKETS.to_owned(),
                EntryKind::Assist => format!("{REF_ASSIST}/{}", e.ticket_id),
            };
            if let Err(e) = client.publish(topic, QoS::AtLeastOnce, false, e.payload).await {
                return eprintln!("fleet bench: reference publish: {e}");
            }
        }
    });
    let (bare_all, bare_first, bare_messages, bare_ids) = collect(arrivals, true, backlog)?;
    let mut acked = 0;
    let bare_acked = loop {
        let at = bare.acks.recv_timeout(Duration::from_secs(60)).context("reference PUBACKs stopped")?;
        acked += 1;
        if acked == entries.len() {
            break at;
        }
    };
    let bare_seconds = (bare_all - t1).as_secs_f64();
    Ok((
        json!({
            "backlog": backlog,
            "entries": entries.len(),
            "fill": {
                "seconds": fill_seconds,
                "tickets_per_s": backlog as f64 / fill_seconds,
                "first_tenth_tickets_per_s": rate(&fill[..tenth]),
                "last_tenth_tickets_per_s": rate(&fill[backlog - tenth..]),
            },
            "fleet": {
                "first_received_s": (fleet_first - t0).as_secs_f64(),
                "all_received_s": fleet_seconds,
                "backlog_zero_s": (drained - t0).as_secs_f64(),
                "tickets_per_s": backlog as f64 / fleet_seconds,
                "messages": messages + late,
                "distinct": ids.len(),
                "missing": missing,
                "duplicates": duplicates,
            },
            "reference": {
                "first_received_s": (bare_first - t1).as_secs_f64(),
                "all_received_s": bare_seconds,
                "all_acked_s": (bare_acked - t1).as_secs_f64(),
                "tickets_per_s": backlog as f64 / bare_seconds,
                "messages": bare_messages,
                "distinct": bare_ids.len(),
            },
            "ratio_all_received": fleet_seconds / bare_seconds,
            "load_average_after": load_average(),
        }),
        outbox,
    ))
}

/// Collects arrivals until `count` distinct ids came: (last new id, first
/// arrival, messages, ids).
fn collect(
    arrivals: &mpsc::Receiver<Arrival>,
    reference: bool,
    count: usize,
) -> Result<(Instant, Instant, usize, HashSet<String>)> {
    let mut ids = HashSet::with_capacity(count);
    let (mut first, mut last, mut messages) = (None, None, 0);
    while ids.len() < count {
        let a = arrivals
            .recv_timeout(Duration::from_secs(60))
            .with_context(|| format!("replay stalled at {} of {count} tickets", ids.len()))?;
        if a.reference != reference {
            continue;
        }
        messages += 1;
        first.get_or_insert(a.at);
        if ids.insert(a.id) {
            last = Some(a.at);
        }
    }
    let last = last.unwrap_or_else(Instant::now);
    Ok((last, first.unwrap_or(last), messages, ids))
}

/// One burst's timing: total seconds and per-ticket milliseconds.
struct Burst {
    seconds: f64,
    per_ticket_ms: Vec<f64>,
}

fn outbox_burst(path: &Path, tickets: &[Ticket]) -> Result<Burst> {
    let mut outbox = Outbox::open(path, OutboxLimits::default())?;
    let mut per_ticket_ms = Vec::with_capacity(tickets.len());
    let t0 = Instant::now();
    for t in tickets {
        let t1 = Instant::now();
        enqueue_ticket(&mut outbox, t, now_ms())?;
        per_ticket_ms.push(ms(t1.elapsed()));
    }
    Ok(Burst { seconds: t0.elapsed().as_secs_f64(), per_ticket_ms })
}

/// The reference: one table, no indexes or bounds, the outbox's pragmas, one
/// transaction per ticket with its two payloads.
fn sqlite_burst(path: &Path, entries: &[(String, Vec<u8>, Vec<u8>)]) -> Result<Burst> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("{}: no WAL ({mode})", path.display());
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS plain (seq INTEGER PRIMARY KEY, ticket_id TEXT NOT NULL, payload BLOB NOT NULL)",
    )?;
    let mut per_ticket_ms = Vec::with_capacity(entries.len());
    let t0 = Instant::now();
    for (id, ticket, assist) in entries {
        let t1 = Instant::now();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO plain (ticket_id, payload) VALUES (?1, ?2)")?;
            insert.execute(rusqlite::params![id, ticket])?;
            insert.execute(rusqlite::params![id, assist])?;
        }
        tx.commit()?;
        per_ticket_ms.push(ms(t1.elapsed()));
    }
    Ok(Burst { seconds: t0.elapsed().as_secs_f64(), per_ticket_ms })
}

/// Copies an SQLite file (and its WAL) and syncs the copy, so the timed burst
/// does not pay for writing it back.
fn copy_db(from: &Path, to: &Path) -> Result<()> {
    remove_db(to);
    for suffix in ["", "-wal"] {
        let (mut a, mut b) = (from.as_os_str().to_owned(), to.as_os_str().to_owned());
        a.push(suffix);
        b.push(suffix);
        if Path::new(&a).exists() {
            std::fs::copy(&a, &b).with_context(|| format!("copy {}", Path::new(&a).display()))?;
            std::fs::File::open(&b)?.sync_all()?;
        }
    }
    Ok(())
}

fn throughput(scratch: &Path, burst: usize, rounds: usize, history: Option<&Path>) -> Result<Value> {
    let dir = scratch.join("throughput");
    std::fs::create_dir_all(&dir)?;
    let tickets: Vec<Ticket> = (0..burst).map(|n| ticket(id("TP", n), n)).collect();
    // An untimed burst, read back: the reference stores exactly these bytes.
    let bytes_db = dir.join("bytes.db");
    remove_db(&bytes_db);
    outbox_burst(&bytes_db, &tickets)?;
    let stored = Outbox::open_existing(&bytes_db)?.pending_after(0, 2 * burst + 1)?;
    let entries: Vec<(String, Vec<u8>, Vec<u8>)> = stored
        .chunks(2)
        .map(|pair| (pair[0].ticket_id.clone(), pair[0].payload.clone(), pair[1].payload.clone()))
        .collect();
    let history_tickets = match history {
        Some(h) => Outbox::open_existing(h)?.stats()?.tickets,
        None => 0,
    };
    let mut contestants = vec!["outbox", "sqlite"];
    if history.is_some() {
        contestants.insert(1, "outbox_history");
    }
    let mut results: BTreeMap<&str, Vec<Burst>> = BTreeMap::new();
    for round in 0..rounds {
        for k in 0..contestants.len() {
            let name = contestants[(round + k) % contestants.len()];
            let path = dir.join(format!("{name}.db"));
            remove_db(&path);
            let b = match (name, history) {
                ("outbox", _) => outbox_burst(&path, &tickets)?,
                ("outbox_history", Some(h)) => {
                    copy_db(h, &path)?;
                    outbox_burst(&path, &tickets)?
                }
                _ => sqlite_burst(&path, &entries)?,
            };
            eprintln!("fleet: throughput round {round} {name}: {:.0} tickets/s", burst as f64 / b.seconds);
            results.entry(name).or_default().push(b);
        }
    }
    let rates = |name: &str| -> Vec<f64> {
        results.get(name).map(|v| v.iter().map(|b| burst as f64 / b.seconds).collect()).unwrap_or_default()
    };
    let per_round_ratio =
        |a: &str, b: &str| median(&rates(a).iter().zip(rates(b)).map(|(a, b)| a / b).collect::<Vec<_>>());
    let mut out = serde_json::Map::new();
    for (name, bursts) in &results {
        let per: Vec<f64> = bursts.iter().flat_map(|b| b.per_ticket_ms.iter().copied()).collect();
        out.insert(
            (*name).to_owned(),
            json!({ "tickets_per_s": rates(name), "median_tickets_per_s": median(&rates(name)), "per_ticket": summary(&per) }),
        );
    }
    Ok(json!({
        "burst": burst,
        "rounds": rounds,
        "bytes_per_ticket": entries.iter().map(|(_, t, a)| t.len() + a.len()).sum::<usize>() / entries.len().max(1),
        "history_tickets": history_tickets,
        "contestants": out,
        "ratio_outbox_to_sqlite": per_round_ratio("outbox", "sqlite"),
        "ratio_history_to_fresh": per_round_ratio("outbox_history", "outbox"),
        "load_average_after": load_average(),
    }))
}

pub(crate) fn run(args: &FleetArgs) -> Result<()> {
    let Some(bin) = args.mosquitto.clone().or_else(find_mosquitto) else {
        bail!("mosquitto is not installed (apt-get install mosquitto); this benchmark needs a real broker");
    };
    if args.samples == 0 || args.burst == 0 || args.rounds == 0 || args.backlog == 0 {
        bail!("--samples, --burst, --rounds and --backlog must be at least 1");
    }
    let scratch = std::path::absolute(&args.scratch)?;
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let started = Instant::now();
    let load_before = load_average();
    let broker = Mosquitto::start(&bin, &scratch)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let stop_clients = CancellationToken::new();
    let arrivals = subscribe(broker.port, &tickets_topic()?, stop_clients.clone())?;
    let bare = Bare::connect(&runtime, broker.port, stop_clients.clone())?;

    eprintln!(
        "fleet: publish latency, {} tickets (+{WARM_UP} warm-up), fleet and reference alternating",
        args.samples
    );
    let latency = publish_latency(&runtime, broker.port, &scratch, args.samples, &arrivals, &bare)?;
    eprintln!("fleet: replay of {} backlogged tickets", args.backlog);
    let (replay, history) = replay(&runtime, broker.port, &scratch, args.backlog, &arrivals, &bare)?;
    stop_clients.cancel();
    drop(broker);
    eprintln!("fleet: outbox throughput, {} rounds of {} tickets", args.rounds, args.burst);
    let throughput = throughput(&scratch, args.burst, args.rounds, Some(&history))?;

    let value = json!({
        "machine": Machine::this(),
        "mosquitto": bin,
        "scratch": scratch,
        "load_average_before": load_before,
        "seconds": started.elapsed().as_secs_f64(),
        "latency": latency,
        "throughput": throughput,
        "replay": replay,
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&value)?)?;
    print_table(&value);
    eprintln!("wrote {}", args.out.display());
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

fn print_table(v: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let l = &v["latency"];
    println!("\nticket publish latency ({} tickets, ms)   p50      p95", l["samples"]);
    for (name, s) in [
        ("hand_over returns (on disk)", &l["fleet"]["hand_over_stored"]),
        ("fleet → subscriber received", &l["fleet"]["subscriber_received"]),
        ("fleet → marked delivered (PUBACK)", &l["fleet"]["marked_delivered"]),
        ("fleet → wait_delivered returns", &l["fleet"]["wait_delivered_returned"]),
        ("reference publish → PUBACK", &l["reference"]["puback"]),
        ("reference publish → received", &l["reference"]["subscriber_received"]),
    ] {
        println!("  {name:<36} {:>7.2}  {:>7.2}", f(&s["p50_ms"]), f(&s["p95_ms"]));
    }
    println!(
        "  ratio fleet/reference (median per pair): received {:.2}, delivered/PUBACK {:.2}",
        f(&l["ratio_received"]),
        f(&l["ratio_delivered_to_puback"])
    );
    let t = &v["throughput"];
    println!("\noutbox throughput ({} × {} tickets)      tickets/s  p50 ms  p95 ms", t["rounds"], t["burst"]);
    for name in ["outbox", "outbox_history", "sqlite"] {
        let c = &t["contestants"][name];
        if c.is_null() {
            continue;
        }
        println!(
            "  {name:<36} {:>8.0}  {:>6.2}  {:>6.2}",
            f(&c["median_tickets_per_s"]),
            f(&c["per_ticket"]["p50_ms"]),
            f(&c["per_ticket"]["p95_ms"])
        );
    }
    println!(
        "  ratio outbox/sqlite {:.2}; with {} tickets of history / fresh {:.2}",
        f(&t["ratio_outbox_to_sqlite"]),
        t["history_tickets"],
        f(&t["ratio_history_to_fresh"])
    );
    let r = &v["replay"];
    println!("\nreplay of {} backlogged tickets          all received  tickets/s", r["backlog"]);
    println!(
        "  fleet (backlog 0 at {:.2} s)             {:>8.2} s  {:>8.0}",
        f(&r["fleet"]["backlog_zero_s"]),
        f(&r["fleet"]["all_received_s"]),
        f(&r["fleet"]["tickets_per_s"])
    );
    println!(
        "  reference (bare client, same entries)  {:>8.2} s  {:>8.0}",
        f(&r["reference"]["all_received_s"]),
        f(&r["reference"]["tickets_per_s"])
    );
    println!(
        "  ratio {:.2}; missing {}, duplicates {}; queueing took {:.1} s ({:.0}/s first tenth, {:.0}/s last)",
        f(&r["ratio_all_received"]),
        r["fleet"]["missing"],
        r["fleet"]["duplicates"],
        f(&r["fill"]["seconds"]),
        f(&r["fill"]["first_tenth_tickets_per_s"]),
        f(&r["fill"]["last_tenth_tickets_per_s"])
    );
}
