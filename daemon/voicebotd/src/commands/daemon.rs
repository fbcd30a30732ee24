//! `voicebotd run`: the daemon.
//!
//! Structured shutdown: one root cancellation token, a child per subsystem,
//! every task spawned on one tracker. SIGTERM (systemd) and SIGINT both start
//! the drain; tasks then get a deadline to finish. Engines load on a blocking
//! thread, never on the reactor. SIGHUP (`systemctl reload`) reloads the
//! knowledge pack: a pack that fails validation is rejected and the one in use
//! stays; a valid one is indexed off the reactor and swapped in atomically
//! (calls in progress keep the pack they started with). The fleet (outbox and
//! MQTT), the phone line (SIP, one conversation per call) and the kiosk (a
//! local microphone and speaker, when enabled) run on the tracker.

use std::path::PathBuf;
use std::time::Duration;

use std::sync::{Arc, RwLock};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tracing::{error, info, warn};
use voicebot_core::config::Config;
use voicebot_engines::loader::{self, EngineNeeds};
use voicebot_understanding::analysis::Analyzer;
use voicebot_understanding::pack::{KnowledgePack, PackStore};

use crate::error::CliError;
use crate::nlu;

mod agent_desk;
mod engines;
mod fleet;
mod kiosk;
mod observe;
mod phone;
mod self_test;
mod systemd;

/// How long tasks get to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How long calls get to say their closing message or finish their transfer
/// after a shutdown signal, before the outbox is flushed (the unit's
/// TimeoutStopSec allows for both).
const CALL_DRAIN_DEADLINE: Duration = Duration::from_secs(20);

pub(crate) fn run(config: Config, config_path: Option<PathBuf>) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(serve(config, config_path));
    // Blocking tasks (model loading, pack indexing) cannot be cancelled; never
    // let one keep the process alive after the drain.
    runtime.shutdown_timeout(DRAIN_DEADLINE);
    result
}

async fn serve(config: Config, config_path: Option<PathBuf>) -> Result<(), CliError> {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    // Hook the signals before anything else, so a SIGTERM during start-up
    // drains instead of killing the process.
    // SIGHUP too: its default action would kill the daemon if a reload were
    // asked for before the reload task is running.
    let (signals, hangups) = Signals::install()?;
    tracker.spawn(signals.wait(shutdown.clone()));
    let notifier = Arc::new(systemd::Notifier::from_env());
    notifier.notify("STATUS=Loading models");

    let load_config = config.clone();
    let loading = tokio::task::spawn_blocking(move || -> Result<_, CliError> {
        let engines = loader::load(&load_config, EngineNeeds::all())?;
        let pack = PackStore::new(nlu::load_pack(&load_config)?, load_config.nlu.pack.clone());
        let analyzer = nlu::analyzer_for(pack.current(), &load_config, &engines)?;
        Ok((engines, pack, analyzer))
    });
    let (engines, pack, analyzer) = tokio::select! {
        loaded = loading => loaded.map_err(|e| CliError::Failed(format!("engine loader panicked: {e}")))??,
        () = shutdown.cancelled() => {
            info!("stopped during start-up");
            return Ok(());
        }
    };
    let brain = Arc::new(Brain {
        config: config.clone(),
        engines: Arc::new(RwLock::new(Arc::new(engines))),
        restart: fleet::RestartRequest::new(shutdown.clone()),
        pack,
        analyzer: RwLock::new(Arc::new(analyzer)),
        kiosk_triggers: std::sync::OnceLock::new(),
        dialog: Arc::new(RwLock::new(config.dialog.clone())),
    });
    // The fleet: the ticket outbox always, the MQTT link when a broker is set.
    // It stops on the daemon's shutdown, flushing the outbox within its deadline.
    // Its own token: it stops after the calls have drained, so their tickets go out.
    let fleet_stop = CancellationToken::new();
    let fleet = fleet::start(&brain, config_path.as_deref(), &tracker, fleet_stop.clone())?;
    let observability = observe::observability(&brain, &fleet)?;
    info!(pack = %brain.pack.current().name, version = %brain.pack.current().version, "knowledge pack in use");
    // The phone line: SIP calls, each with its own conversation, on the tracker.
    let phone = phone::start(&brain, &fleet, &observability, shutdown.child_token()).await?;
    let health = {
        let calls = fleet.clone();
        let active = Box::new(move || calls.metrics().snapshot().active);
        Arc::new(observe::Health::new(&brain, &fleet, phone.as_ref().map(|p| p.serving.clone()), active))
    };
    // The kiosk: its visits drain like calls, before the outbox flushes.
    let kiosk_tasks = TaskTracker::new();
    let agents = phone.as_ref().map(|p| p.agent_desk());
    if let Some(triggers) =
        kiosk::start(&brain, &fleet, &observability, agents, &kiosk_tasks, shutdown.child_token()).await
    {
        let _ = brain.kiosk_triggers.set(triggers);
    }
    let sip_stats = phone.as_ref().map(|p| p.agent.stats_reader());
    let http =
        observe::start(&brain, &fleet, &observability, &health, sip_stats, &tracker, shutdown.child_token())
            .await?;
    tracker.spawn(reload_on_sighup(Arc::clone(&brain), hangups, shutdown.clone()));
    info!(
        model_dir = %config.models.dir.display(),
        asr = brain.current_engines().asr.is_some(),
        vad = brain.current_engines().vad.is_some(),
        tts = brain.current_engines().tts.is_some(),
        broker = fleet.online(),
        sip_udp = ?phone.as_ref().and_then(|p| p.agent.udp_addr()),
        sip_tcp = ?phone.as_ref().and_then(|p| p.agent.tcp_addr()),
        http = ?http,
        outbox = %fleet.outbox_path().display(),
        "voicebotd ready"
    );
    notifier.notify("READY=1\nSTATUS=Answering calls");
    tracker.spawn(systemd::watchdog(Arc::clone(&notifier), Arc::clone(&health), shutdown.clone()));

    shutdown.cancelled().await;
    info!("shutting down");
    notifier.notify("STOPPING=1\nSTATUS=Draining calls");
    health.set_stopping();
    // Drain: no new calls, running calls close politely, then the outbox flushes.
    kiosk_tasks.close();
    let visits = kiosk_tasks.wait();
    if let Some(phone) = phone {
        phone.drain(CALL_DRAIN_DEADLINE).await;
    }
    if tokio::time::timeout(CALL_DRAIN_DEADLINE, visits).await.is_err() {
        warn!(deadline = ?CALL_DRAIN_DEADLINE, "the kiosk's conversation did not close in time");
    }
    fleet_stop.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait()).await.is_err() {
        warn!(deadline = ?DRAIN_DEADLINE, "tasks did not finish in time; exiting anyway");
    }
    drop(fleet);
    let restart = brain.restart.requested_by();
    drop(brain);
    info!("stopped");
    match restart {
        Some(job) => Err(CliError::Restart(job)),
        None => Ok(()),
    }
}

/// What calls share: engines and the current understanding of the pack.
struct Brain {
    config: Config,
    /// Swapped by `model_update` jobs; calls keep the streams they opened.
    engines: Arc<engines::EngineSlot>,
    pack: PackStore,
    /// Calls take the `Arc` when they start and keep it for the whole call.
    analyzer: RwLock<Arc<Analyzer>>,
    /// Set by a `diagnostics` restart job.
    restart: fleet::RestartRequest,
    /// The `[dialog]` settings new conversations take; a `config_update` job swaps them.
    dialog: Arc<RwLock<voicebot_core::config::DialogConfig>>,
    /// Where `kiosk` fleet jobs send their trigger, once the kiosk runs.
    kiosk_triggers: std::sync::OnceLock<tokio::sync::mpsc::Sender<voicebot_kiosk::triggers::Trigger>>,
}

impl Brain {
    /// The analyzer for the pack in use (a call keeps the one it starts with).
    fn current_analyzer(&self) -> Arc<Analyzer> {
        Arc::clone(&self.analyzer.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The engines in use (a call keeps the streams it opened on them).
    fn current_engines(&self) -> Arc<voicebot_engines::loader::Engines> {
        engines::current(&self.engines)
    }
}

/// Reloads the knowledge pack on each SIGHUP until shutdown.
///
/// # Cancel safety
/// Returns at shutdown; a reload in progress finishes on its blocking thread
/// and its result is dropped.
/// SIGHUPs that arrive during start-up wait in `hangups` and reload once ready.
async fn reload_on_sighup(brain: Arc<Brain>, mut hangups: Signal, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = hangups.recv() => {}
            () = shutdown.cancelled() => return,
        }
        let brain = Arc::clone(&brain);
        let reloaded = tokio::task::spawn_blocking(move || reload_pack(&brain)).await;
        if let Err(e) = reloaded {
            error!(error = %e, "knowledge-pack reload panicked");
        }
    }
}

fn reload_pack(brain: &Brain) {
    let in_use = brain.pack.current();
    let candidate = match &brain.config.nlu.pack {
        Some(path) => KnowledgePack::load(path),
        None => {
            info!("SIGHUP: the embedded pack is in use; nothing to reload");
            return;
        }
    };
    let pack = match candidate {
        Ok(pack) => Arc::new(pack),
        Err(e) => {
            error!(error = %e, keeping = %in_use.version, "knowledge pack rejected");
            return;
        }
    };
    match nlu::analyzer_for(Arc::clone(&pack), &brain.config, &brain.current_engines()) {
        Ok(analyzer) => {
            let _ = brain.pack.replace((*pack).clone());
            *brain.analyzer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(analyzer);
            info!(pack = %pack.name, version = %pack.version, previous = %in_use.version, "knowledge pack reloaded");
        }
        Err(e) => error!(error = %e, keeping = %in_use.version, "knowledge pack rejected"),
    }
}

/// SIGTERM (systemd's stop) and SIGINT (Ctrl-C), hooked at start.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Hooks SIGTERM, SIGINT and SIGHUP (returned apart: it reloads the pack).
    fn install() -> Result<(Signals, Signal), CliError> {
        let hook = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| CliError::Failed(format!("cannot watch {name}: {e}")))
        };
        let signals = Signals {
            term: hook(SignalKind::terminate(), "SIGTERM")?,
            int: hook(SignalKind::interrupt(), "SIGINT")?,
        };
        Ok((signals, hook(SignalKind::hangup(), "SIGHUP")?))
    }

    /// Cancels `shutdown` on the first signal.
    ///
    /// # Cancel safety
    /// Returns early, without side effects, when `shutdown` is cancelled elsewhere.
    async fn wait(mut self, shutdown: CancellationToken) {
        tokio::select! {
            _ = self.term.recv() => info!("SIGTERM received"),
            _ = self.int.recv() => info!("SIGINT received"),
            () = shutdown.cancelled() => return,
        }
        shutdown.cancel();
    }
}
