//! `voicebotd run`: the daemon.
//!
//! Structured shutdown: one root cancellation token, a child per subsystem,
//! every task spawned on one tracker. SIGTERM (systemd) and SIGINT both start
//! the drain; tasks then get a deadline to finish. Engines load on a blocking
//! thread, never on the reactor. The phone and kiosk channels, MQTT and
//! metrics attach here as later issues land; today the daemon loads and
//! verifies its engines, reports ready, and waits for a signal.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use voicebot_core::config::Config;
use voicebot_engines::loader::{self, EngineNeeds};

use crate::error::CliError;

/// How long tasks get to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

pub(crate) fn run(config: Config) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), CliError> {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    // Hook the signals before anything else, so a SIGTERM during start-up
    // drains instead of killing the process.
    let signals = Signals::install()?;
    tracker.spawn(signals.wait(shutdown.clone()));

    let load_config = config.clone();
    let loading = tokio::task::spawn_blocking(move || loader::load(&load_config, EngineNeeds::all()));
    let engines = tokio::select! {
        loaded = loading => loaded.map_err(|e| CliError::Failed(format!("engine loader panicked: {e}")))??,
        () = shutdown.cancelled() => {
            info!("stopped during start-up");
            return Ok(());
        }
    };
    info!(
        model_dir = %config.models.dir.display(),
        asr = engines.asr.is_some(),
        vad = engines.vad.is_some(),
        tts = engines.tts.is_some(),
        "voicebotd ready"
    );

    shutdown.cancelled().await;
    info!("shutting down");
    tracker.close();
    if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait()).await.is_err() {
        warn!(deadline = ?DRAIN_DEADLINE, "tasks did not finish in time; exiting anyway");
    }
    drop(engines);
    info!("stopped");
    Ok(())
}

/// SIGTERM (systemd's stop) and SIGINT (Ctrl-C), hooked at start.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Signals, CliError> {
        let hook = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| CliError::Failed(format!("cannot watch {name}: {e}")))
        };
        Ok(Signals {
            term: hook(SignalKind::terminate(), "SIGTERM")?,
            int: hook(SignalKind::interrupt(), "SIGINT")?,
        })
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
