//! The daemon's side of the fleet layer: what the birth message says about
//! this box, and the hooks jobs use to change the running daemon (pack and
//! model swaps, log filter and log ring, `models verify`, a self-test call,
//! restart).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use voicebot_core::config::Config;
use voicebot_engines::loader::{self, Engines, ModelRole};
use voicebot_fleet::jobs::{ModelCandidate, PreparedModel};

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
    let (models, model_files) = voicebot_fleet::jobs::model_update::model_versions(&config.models.dir);
    let info = DeviceInfo {
        versions: Versions {
            firmware: env!("CARGO_PKG_VERSION").to_owned(),
            models,
            model_files,
            pack: format!("{} {}", pack.name, pack.version),
        },
        capabilities: Capabilities {
            channels: ["phone", "kiosk"]
                .into_iter()
                .filter(|c| match *c {
                    "phone" => config.sip.listen_udp.is_some() || config.sip.listen_tcp.is_some(),
                    _ => config.kiosk.enabled,
                })
                .map(str::to_owned)
                .collect(),
            languages: pack.languages.iter().map(|l| l.to_string()).collect(),
            // The engines are loaded before the fleet starts: what the models run on.
            accelerator: Some(format!(
                "onnx={}, whisper={}",
                voicebot_engines::accelerator::in_use().unwrap_or("none"),
                if cfg!(feature = "cuda") { "CUDA" } else { "CPU" }
            )),
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
        let analyzer =
            nlu::analyzer_for(Arc::clone(&pack), &self.brain.config, &self.brain.current_engines())
                .map_err(|e| e.to_string())?;
        self.brain.pack.replace((*pack).clone()).map_err(|e| e.to_string())?;
        *self.brain.analyzer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(analyzer);
        tracing::info!(pack = %pack.name, version = %pack.version, "knowledge pack swapped by a fleet job");
        Ok(())
    }

    fn prepare_model(&self, candidate: &ModelCandidate) -> Result<Box<dyn PreparedModel>, String> {
        let config = &self.brain.config;
        let role = ModelRole::of(config, &candidate.path).ok_or_else(|| {
            format!(
                "{} is not a model file this daemon's config loads ([asr] english_model / multilingual_model, [vad] model, [tts] english_voice, [nlu] embedding_model)",
                candidate.path
            )
        })?;
        let serving = self.brain.current_engines();
        let engines =
            loader::load_replacing(config, &serving, role, &candidate.staged).map_err(|e| e.to_string())?;
        Ok(Box::new(Candidate { brain: Arc::clone(&self.brain), role, engines, serving, analyzer: None }))
    }

    fn set_log_level(&self, filter: &str) -> Result<(), String> {
        let previous = crate::logging::set_filter(filter)?;
        tracing::warn!(%filter, %previous, "log filter changed by a fleet job");
        Ok(())
    }

    fn verify_models(&self) -> Result<Value, String> {
        let store = loader::model_store(&self.brain.config);
        let mut files = vec![];
        let mut bad = vec![];
        for model in store.manifest.for_this_arch() {
            for file in &model.files {
                let status = voicebot_core::manifest::file_status(&store.dir.join(&file.path), file, true);
                let word = match &status {
                    voicebot_core::manifest::FileStatus::Ok => "ok".to_owned(),
                    voicebot_core::manifest::FileStatus::Missing => "missing".to_owned(),
                    voicebot_core::manifest::FileStatus::WrongSize { actual } => format!("size {actual}"),
                    voicebot_core::manifest::FileStatus::WrongHash { actual } => format!("sha256 {actual}"),
                };
                if !status.is_ok() {
                    bad.push(format!(
                        "{}: {word}, expected {} ({} bytes)",
                        file.path, file.sha256, file.size
                    ));
                }
                files.push(json!({"path": file.path, "status": word, "sha256": file.sha256}));
            }
        }
        if bad.is_empty() {
            Ok(json!({"dir": store.dir.display().to_string(), "files": files}))
        } else {
            Err(format!("{} file(s) failed: {}", bad.len(), bad.join("; ")))
        }
    }

    fn recent_logs(&self, lines: usize) -> Result<Vec<String>, String> {
        Ok(crate::logging::recent(lines))
    }

    fn self_test_call(&self) -> Result<Value, String> {
        super::self_test::call(
            &self.brain.config,
            &self.brain.current_engines(),
            self.brain.current_analyzer(),
        )
    }

    fn kiosk_trigger(&self, assist: bool) -> Result<String, String> {
        use voicebot_core::config::{KioskAction, KioskTrigger};
        let Some(triggers) = self.brain.kiosk_triggers.get() else {
            return Err("no kiosk runs here, or it does not take fleet triggers ([kiosk] enabled, \"mqtt\" in triggers)".into());
        };
        let action = if assist { KioskAction::Assist } else { KioskAction::Talk };
        triggers
            .try_send(voicebot_kiosk::triggers::Trigger::Start { by: KioskTrigger::Mqtt, action })
            .map_err(|e| format!("the kiosk cannot take it now: {e}"))?;
        Ok(if assist {
            "the kiosk is calling an agent".into()
        } else {
            "the kiosk starts a conversation".into()
        })
    }

    fn restart(&self) -> Result<String, String> {
        self.brain.restart.request("fleet job");
        Ok(format!(
            "restarting in {} s: calls drain, then the daemon exits with code {} for the service manager to start it again",
            RESTART_DELAY.as_secs(),
            crate::error::RESTART_EXIT_CODE
        ))
    }

    fn config_applied(&self, config: &Config, changed: &[String]) -> Result<Vec<String>, String> {
        // [dialog] (timers, escalation policy, elder lines, VIP callers) is read
        // by each conversation when it starts: swap it, and the next call or
        // kiosk visit uses it (those in progress keep theirs). Everything else
        // is wired into running tasks at start and waits for a restart.
        let live: Vec<String> = changed.iter().filter(|k| applies_live(k)).cloned().collect();
        if !live.is_empty() {
            *self.brain.dialog.write().unwrap_or_else(|p| p.into_inner()) = config.dialog.clone();
            tracing::info!(keys = ?live, "[dialog] settings changed by a fleet job; new conversations use them");
        }
        Ok(live)
    }
}

/// Whether a changed config key takes effect without a restart.
fn applies_live(key: &str) -> bool {
    key == "dialog" || key.starts_with("dialog.")
}

/// How long a restart waits, so the job's result reaches the broker first.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// A restart asked for by a fleet job: cancels the daemon's root token after
/// [`RESTART_DELAY`]; the daemon drains and exits with code 75.
pub(super) struct RestartRequest {
    shutdown: tokio_util::sync::CancellationToken,
    by: Mutex<Option<String>>,
}

impl RestartRequest {
    pub(super) fn new(shutdown: tokio_util::sync::CancellationToken) -> RestartRequest {
        RestartRequest { shutdown, by: Mutex::new(None) }
    }

    fn request(&self, by: &str) {
        *self.by.lock().unwrap_or_else(|p| p.into_inner()) = Some(by.to_owned());
        let shutdown = self.shutdown.clone();
        std::thread::spawn(move || {
            std::thread::sleep(RESTART_DELAY);
            tracing::warn!("restart requested by a fleet job: draining");
            shutdown.cancel();
        });
    }

    /// Who asked for a restart, if anyone did.
    pub(super) fn requested_by(&self) -> Option<String> {
        self.by.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A candidate model loaded beside the engines in use.
struct Candidate {
    brain: Arc<Brain>,
    role: ModelRole,
    engines: Engines,
    serving: Arc<Engines>,
    /// For a new embedder: the analyzer built on it.
    analyzer: Option<voicebot_understanding::analysis::Analyzer>,
}

impl PreparedModel for Candidate {
    fn self_test(&mut self) -> Result<Value, String> {
        let detail = super::engines::self_test(&self.brain.config, self.role, &self.engines, &self.serving)?;
        if self.role == ModelRole::Embedder {
            let analyzer = nlu::analyzer_for(self.brain.pack.current(), &self.brain.config, &self.engines)
                .map_err(|e| format!("the knowledge pack cannot be indexed with it: {e}"))?;
            self.analyzer = Some(analyzer);
        }
        Ok(detail)
    }

    fn activate(self: Box<Self>) {
        let Candidate { brain, role, engines, analyzer, .. } = *self;
        super::engines::replace(&brain.engines, engines);
        if let Some(analyzer) = analyzer {
            *brain.analyzer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(analyzer);
        }
        tracing::info!(?role, "model swapped by a fleet job; new calls use it");
    }
}
