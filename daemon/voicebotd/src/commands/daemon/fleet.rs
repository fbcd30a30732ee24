//! The daemon's side of the fleet layer: what the birth message says about
//! this box, and the hooks jobs use to change the running daemon.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voicebot_fleet::jobs::{DeviceHooks, machine::COMMANDS};
use voicebot_fleet::messages::{Capabilities, DeviceInfo, Versions};
use voicebot_fleet::{Fleet, FleetSettings};
use voicebot_understanding::pack::KnowledgePack;

use super::Brain;
use crate::error::CliError;
use crate::nlu;

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the fleet layer for `brain` on `tasks`.
pub(super) fn start(
    brain: &Arc<Brain>,
    config_path: Option<&Path>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Fleet, CliError> {
    let config = &brain.config;
    let config_text = match config_path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::Failed(format!("cannot re-read config {}: {e}", path.display())))?,
        None => voicebot_core::config::DEFAULT_CONFIG.to_owned(),
    };
    let pack = brain.pack.current();
    let manifest = sha256_hex(voicebot_core::manifest::EMBEDDED_MANIFEST.as_bytes());
    let info = DeviceInfo {
        versions: Versions {
            firmware: env!("CARGO_PKG_VERSION").to_owned(),
            models: format!("manifest-{}", &manifest[..12]),
            pack: format!("{} {}", pack.name, pack.version),
        },
        capabilities: Capabilities {
            channels: vec![],
            languages: pack.languages.iter().map(|l| l.to_string()).collect(),
            accelerator: None,
            commands: COMMANDS.iter().map(|c| (*c).to_owned()).collect(),
        },
        config_hash: sha256_hex(config_text.as_bytes()),
    };
    let settings = FleetSettings::from_config(config, info)?;
    let hooks: Arc<dyn DeviceHooks> = Arc::new(DaemonHooks { brain: Arc::clone(brain) });
    let context = voicebot_fleet::job_context(config_path, config, hooks);
    Ok(Fleet::start(settings, context, tasks, shutdown)?)
}

/// What jobs may change in the running daemon.
struct DaemonHooks {
    brain: Arc<Brain>,
}

impl DeviceHooks for DaemonHooks {
    fn swap_pack(&self, pack: KnowledgePack) -> Result<(), String> {
        let pack = Arc::new(pack);
        let analyzer = nlu::analyzer_for(Arc::clone(&pack), &self.brain.config, &self.brain.engines)
            .map_err(|e| e.to_string())?;
        self.brain.pack.replace((*pack).clone()).map_err(|e| e.to_string())?;
        *self.brain.analyzer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(analyzer);
        tracing::info!(pack = %pack.name, version = %pack.version, "knowledge pack swapped by a fleet job");
        Ok(())
    }
}
