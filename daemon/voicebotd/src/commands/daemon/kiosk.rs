//! The kiosk in the daemon: the channel runs beside the phone line when
//! `[kiosk] enabled`, with its triggers (stdin, the GPIO button, signed
//! `kiosk` fleet jobs), hand-overs as SIP calls to the agent queue, tickets
//! through the fleet's outbox, and visits in the same metrics, call events and
//! daily report as calls. The on-screen status lines go to stdout.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};
use voicebot_core::config::KioskTrigger;
use voicebot_fleet::Fleet;
use voicebot_kiosk::agent::AgentDesk;
use voicebot_kiosk::triggers::{self, TRIGGER_QUEUE, Trigger};
use voicebot_kiosk::visit::{self, KioskDeps, VisitSummary};

use super::Brain;

/// Starts the kiosk when it is enabled; returns where fleet commands send triggers.
pub(super) async fn start(
    brain: &Arc<Brain>,
    fleet: &Fleet,
    observability: &voicebot_http::Observability,
    agents: Option<Arc<dyn AgentDesk>>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Option<mpsc::Sender<Trigger>> {
    let config = &brain.config.kiosk;
    if !config.enabled {
        return None;
    }
    let input = config.input.clone().unwrap_or_default();
    let output = config.output.clone().unwrap_or_default();
    match visit::check_devices(&input, &output).await {
        Ok(opened) => info!(devices = %opened, "kiosk: audio devices open"),
        // The phone line goes on; the kiosk keeps trying (a late or re-plugged USB device).
        Err(e) => error!(error = %e, "kiosk: audio devices unavailable; retrying in the background"),
    }
    let (trigger_tx, trigger_rx) = mpsc::channel(TRIGGER_QUEUE);
    if config.triggers.contains(&KioskTrigger::Key) {
        triggers::spawn_stdin(trigger_tx.clone());
    }
    if let Some(file) = &config.gpio_file {
        triggers::spawn_gpio(file.clone(), config.gpio_action, trigger_tx.clone(), shutdown.clone());
    }
    // By default the kiosk is known by the box's device id (`…/<device>/status`).
    let kiosk_id = config
        .id
        .clone()
        .unwrap_or_else(|| fleet.topics().status().rsplit('/').nth(1).unwrap_or("kiosk").to_owned());
    let started = fleet.clone();
    let ended = fleet.clone();
    let observed = observability.clone();
    let deps = Arc::new(KioskDeps {
        live: super::phone::live_deps(brain, fleet),
        kiosk_id,
        agents,
        screen: Arc::new(|line: &str| println!("{line}")),
        on_visit_start: Arc::new(move || started.metrics().call_started()),
        on_visit_end: Arc::new(move |visit: &VisitSummary| {
            super::phone::record(&ended, "kiosk", &visit.visit_id, &visit.conversation);
            observed.call_ended(super::observe::call_record(&visit.visit_id, &visit.conversation, None));
        }),
    });
    tracker.spawn(async move {
        if let Err(e) = visit::serve(deps, trigger_rx, shutdown).await {
            error!(error = %e, "kiosk stopped");
        }
    });
    config.triggers.contains(&KioskTrigger::Mqtt).then_some(trigger_tx)
}
