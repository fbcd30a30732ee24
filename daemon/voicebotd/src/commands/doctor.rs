//! `voicebotd doctor [--json]`: checks this box the way the daemon will use it
//! and prints one `PASS|WARN|FAIL <check>: <detail>` line per finding (or one
//! `{"check","status","detail"}` object per line with `--json`), in this order:
//! config, accelerator, libraries, models, audio, broker, sip.
//!
//! Invariants:
//! - the whole run is bounded by [`BUDGET`]: every check runs on its own thread
//!   and first records what it would mean if it did not finish; a check still
//!   running at the deadline is reported by that line and abandoned;
//! - nothing here panics on what it finds: each problem is a line, and the exit
//!   code is 1 exactly when a line is `FAIL`;
//! - the doctor never disturbs a running daemon: it binds listen ports only to
//!   release them at once, and logs in to the broker under its own client id
//!   with no last will.

use std::collections::BTreeMap;
use std::fmt;
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use voicebot_core::config::Config;
use voicebot_core::manifest::{FileStatus, ModelEntry};
use voicebot_engines::loader::model_store;
use voicebot_engines::onnx_runtime;

use crate::error::CliError;

mod sip;

/// The whole doctor ends within this, whatever the network does.
const BUDGET: Duration = Duration::from_secs(9);
/// TCP connect to the broker, then its CONNACK.
const BROKER_TCP_TIMEOUT: Duration = Duration::from_secs(2);
const BROKER_CONNACK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// One finding.
#[derive(Debug, Clone)]
struct Line {
    check: &'static str,
    status: Status,
    detail: String,
}

impl Line {
    fn new(check: &'static str, status: Status, detail: impl Into<String>) -> Line {
        Line { check, status, detail: detail.into() }
    }

    /// `{"check","status","detail"}`, in that order.
    fn json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            check: &'a str,
            status: String,
            detail: &'a str,
        }
        let line = Json { check: self.check, status: self.status.to_string(), detail: &self.detail };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.check, self.detail)
    }
}

/// Report order; a line's key is (section, item within it).
const CONFIG: u8 = 0;
const ACCELERATOR: u8 = 1;
const LIBRARIES: u8 = 2;
const MODELS: u8 = 3;
const AUDIO: u8 = 4;
const BROKER: u8 = 5;
const SIP: u8 = 6;

/// Where checks put their lines; a later line under the same key replaces an
/// earlier one (the provisional "did not finish" line).
#[derive(Clone)]
struct Sink(mpsc::Sender<((u8, usize), Line)>);

impl Sink {
    fn put(&self, section: u8, item: usize, line: Line) {
        // The receiver is gone only after the deadline: the line is too late.
        let _ = self.0.send(((section, item), line));
    }
}

/// A check: puts its lines, the provisional ones first.
type Check = fn(&Config, &Sink);

/// Runs every check and prints the report.
///
/// # Errors
/// `Failed` (exit code 1) when any line is `FAIL`.
pub(crate) fn run(
    config_path: Option<&Path>,
    loaded: Result<Config, CliError>,
    json: bool,
) -> Result<(), CliError> {
    let deadline = Instant::now() + BUDGET;
    let (tx, rx) = mpsc::channel();
    let sink = Sink(tx);
    let config = match loaded {
        Ok(config) => {
            let origin = config_path.map_or_else(
                || {
                    "embedded default (no --config given; the service uses /etc/voicebotd/voicebotd.toml)"
                        .into()
                },
                |p| format!("loaded from {}", p.display()),
            );
            sink.put(CONFIG, 0, Line::new("config", Status::Pass, origin));
            config
        }
        Err(e) => {
            let detail = format!("{e}; the checks below use the embedded default");
            sink.put(CONFIG, 0, Line::new("config", Status::Fail, detail));
            Config::embedded_default()?
        }
    };
    let config = Arc::new(config);
    let checks: [(u8, &str, Check); 4] = [
        (ACCELERATOR, "accelerator", runtime_and_models),
        (AUDIO, "audio", audio),
        (BROKER, "broker", broker),
        (SIP, "sip", sip::check),
    ];
    for (section, name, check) in checks {
        let (config, thread_sink) = (Arc::clone(&config), sink.clone());
        let started = std::thread::Builder::new()
            .name(format!("doctor-{name}"))
            .spawn(move || check(&config, &thread_sink));
        if let Err(e) = started {
            sink.put(section, 0, Line::new(name, Status::Fail, format!("cannot start the check: {e}")));
        }
    }
    drop(sink);
    let mut lines = BTreeMap::new();
    while let Ok((key, line)) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        lines.insert(key, line);
    }
    let mut failed = 0;
    for line in lines.values() {
        failed += usize::from(line.status == Status::Fail);
        if json {
            println!("{}", line.json());
        } else {
            println!("{line}");
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(CliError::Failed(format!("doctor: {n} check(s) failed"))),
    }
}

// ---- accelerator and libraries ----

/// ONNX Runtime loaded, its execution providers, the GPU, and sherpa-onnx.
fn runtime(config: &Config, sink: &Sink) {
    let store = model_store(config);
    let gpu = gpu_facts();
    let ort = onnx_runtime::library_path(config.runtime.onnxruntime.as_deref(), &store)
        .and_then(|path| onnx_runtime::environment(&path).map(|_| path));
    let providers = match &ort {
        Ok(path) => {
            let version =
                ort::util::probe(path).map_or_else(|| "version unknown".into(), |m| format!("1.{m}"));
            sink.put(
                LIBRARIES,
                0,
                Line::new(
                    "libraries",
                    Status::Pass,
                    format!("ONNX Runtime {version} loaded from {}", path.display()),
                ),
            );
            Some(gpu_providers())
        }
        Err(e) => {
            let e = e.to_string();
            let detail = if e.starts_with("ONNX Runtime") { e } else { format!("ONNX Runtime: {e}") };
            sink.put(LIBRARIES, 0, Line::new("libraries", Status::Fail, detail));
            None
        }
    };
    let mut accelerator = accelerator_line(&gpu, providers.as_deref());
    // What the engines read; only this shell's value is visible here, not the service's.
    if let Ok(policy) = std::env::var(voicebot_engines::accelerator::ACCELERATOR_ENV) {
        let env = voicebot_engines::accelerator::ACCELERATOR_ENV;
        match policy.trim() {
            "" | "auto" => {}
            "cpu" => accelerator.detail.push_str(&format!("; {env}=cpu keeps the ONNX models on the CPU")),
            other => {
                accelerator.status = Status::Fail;
                accelerator.detail.push_str(&format!("; {env}={other:?} is not `auto` or `cpu`"));
            }
        }
    }
    sink.put(ACCELERATOR, 0, accelerator);
    sink.put(LIBRARIES, 1, sherpa_line(&store));
}

/// What the machine says about an NVIDIA GPU; empty when there is none.
fn gpu_facts() -> Vec<String> {
    let mut facts = Vec::new();
    let mut nodes: Vec<String> = std::fs::read_dir("/dev")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("nvidia") || n.starts_with("nvhost-gpu"))
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    if !nodes.is_empty() {
        facts.push(format!("/dev/{}", nodes.join(", /dev/")));
    }
    if let Some(line) = first_line("/proc/driver/nvidia/version") {
        facts.push(line);
    }
    if let Some(line) = first_line("/etc/nv_tegra_release") {
        facts.push(format!("Jetson {}", line.trim_start_matches('#').trim()));
    }
    facts
}

fn first_line(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().next()?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!line.is_empty()).then_some(line)
}

/// The GPU execution providers the loaded ONNX Runtime was built with.
fn gpu_providers() -> Vec<&'static str> {
    use ort::ep::{CUDA, ExecutionProvider, TensorRT};
    let mut found = Vec::new();
    if TensorRT::is_available().unwrap_or(false) {
        found.push("TensorRT");
    }
    if CUDA::is_available().unwrap_or(false) {
        found.push("CUDA");
    }
    found
}

/// `providers`: `None` when ONNX Runtime did not load.
fn accelerator_line(gpu: &[String], providers: Option<&[&str]>) -> Line {
    let offers = |p: &[&str]| format!("ONNX Runtime offers {}", p.join(" and "));
    match (gpu.is_empty(), providers) {
        (true, Some(p)) if !p.is_empty() => {
            Line::new("accelerator", Status::Pass, format!("CPU only (no GPU found; {})", offers(p)))
        }
        (true, _) => Line::new("accelerator", Status::Pass, "CPU only (no GPU found)"),
        (false, Some(p)) if !p.is_empty() => {
            Line::new("accelerator", Status::Pass, format!("NVIDIA GPU ({}); {}", gpu.join("; "), offers(p)))
        }
        (false, Some(_)) => Line::new(
            "accelerator",
            Status::Warn,
            format!(
                "NVIDIA GPU ({}), but the loaded ONNX Runtime has no CUDA or TensorRT execution \
                 provider, so VAD and NLU run on the CPU; point [runtime] onnxruntime at a GPU build",
                gpu.join("; ")
            ),
        ),
        (false, None) => Line::new(
            "accelerator",
            Status::Warn,
            format!(
                "NVIDIA GPU ({}); ONNX Runtime did not load, so its GPU support is unknown",
                gpu.join("; ")
            ),
        ),
    }
}

/// The sherpa-onnx C API this process runs with (linked at start), checked
/// against the manifest's build.
fn sherpa_line(store: &voicebot_core::manifest::ModelStore) -> Line {
    const LIBRARY: &str = "libsherpa-onnx-c-api.so";
    let expected = store
        .manifest
        .model(onnx_runtime::RUNTIME_MODEL)
        .and_then(|m| m.files.iter().find(|f| f.path.ends_with(LIBRARY)).map(|f| (m, f)));
    let Some(path) = mapped_library(LIBRARY) else {
        return Line::new(
            "libraries",
            Status::Warn,
            format!("{LIBRARY} is not loaded by this binary; Piper TTS will not work"),
        );
    };
    let Some((model, file)) = expected else {
        return Line::new("libraries", Status::Pass, format!("sherpa-onnx loaded from {}", path.display()));
    };
    match voicebot_core::manifest::sha256_file(&path) {
        Ok(sha) if sha.eq_ignore_ascii_case(&file.sha256) => Line::new(
            "libraries",
            Status::Pass,
            format!(
                "sherpa-onnx {} loaded from {} (sha256 matches the manifest)",
                model.version,
                path.display()
            ),
        ),
        Ok(_) => Line::new(
            "libraries",
            Status::Warn,
            format!(
                "sherpa-onnx loaded from {} is not the manifest's {} build; reinstall the package or run \
                 `voicebotd models fetch` and rebuild",
                path.display(),
                model.version
            ),
        ),
        Err(e) => Line::new("libraries", Status::Fail, format!("cannot read {}: {e}", path.display())),
    }
}

/// The file a shared library named `name` is mapped from in this process.
fn mapped_library(name: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| Path::new(p).file_name().is_some_and(|f| f == name))
        .map(PathBuf::from)
}

// ---- models ----

/// The libraries and the accelerator come between the models' size check and
/// their sha256: hashing hundreds of MB is the slowest thing the doctor does
/// (seconds in a debug build) and must not hold up loading ONNX Runtime.
fn runtime_and_models(config: &Config, sink: &Sink) {
    let unfinished = "did not finish loading ONNX Runtime in time";
    sink.put(ACCELERATOR, 0, Line::new("accelerator", Status::Warn, unfinished));
    sink.put(LIBRARIES, 0, Line::new("libraries", Status::Fail, unfinished));
    let sherpa = "did not finish checking sherpa-onnx in time";
    sink.put(LIBRARIES, 1, Line::new("libraries", Status::Warn, sherpa));
    sink.put(MODELS, 0, Line::new("models", Status::Warn, "did not finish checking the model files in time"));
    let to_hash = models_present(config, sink);
    runtime(config, sink);
    models_verified(config, sink, to_hash);
}

fn model_name(model: &ModelEntry) -> String {
    format!("{} ({})", model.name, model.version)
}

/// One line per model for this architecture, from sizes alone: `FAIL` for a
/// missing or wrong-sized file, else a `WARN` that [`models_verified`]
/// replaces. Returns the models left to hash.
fn models_present(config: &Config, sink: &Sink) -> Vec<ModelEntry> {
    let mut store = model_store(config);
    if !store.dir.is_dir() {
        let detail =
            format!("model directory {} does not exist; run `voicebotd models fetch`", store.dir.display());
        sink.put(MODELS, 0, Line::new("models", Status::Fail, detail));
        return Vec::new();
    }
    store.verify_hashes = false;
    let mut to_hash = Vec::new();
    for (i, model) in store.manifest.for_this_arch().enumerate() {
        let line = match bad_files(&store, model) {
            None => {
                to_hash.push(model.clone());
                let detail = format!(
                    "{}: {} file(s) present with the right sizes; sha256 not checked in time, run \
                     `voicebotd models verify`",
                    model_name(model),
                    model.files.len()
                );
                Line::new("models", Status::Warn, detail)
            }
            Some(problem) => {
                let detail = format!("{}: {problem}; run `voicebotd models fetch`", model_name(model));
                Line::new("models", Status::Fail, detail)
            }
        };
        sink.put(MODELS, i, line);
    }
    to_hash
}

/// The sha256 of the models [`models_present`] passed, smallest first, so a
/// slow build or disk still reports most of them before the deadline.
fn models_verified(config: &Config, sink: &Sink, mut to_hash: Vec<ModelEntry>) {
    let mut store = model_store(config);
    store.verify_hashes = true;
    let order: Vec<String> = store.manifest.for_this_arch().map(|m| m.name.clone()).collect();
    to_hash.sort_by_key(|m| m.files.iter().map(|f| f.size).sum::<u64>());
    for model in &to_hash {
        let Some(i) = order.iter().position(|name| *name == model.name) else { continue };
        let line = match bad_files(&store, model) {
            None => Line::new(
                "models",
                Status::Pass,
                format!("{}: {} file(s), sha256 ok", model_name(model), model.files.len()),
            ),
            Some(problem) => Line::new(
                "models",
                Status::Fail,
                format!("{}: {problem}; run `voicebotd models fetch`", model_name(model)),
            ),
        };
        sink.put(MODELS, i, line);
    }
}

/// What is wrong with a model's files, or `None`.
fn bad_files(store: &voicebot_core::manifest::ModelStore, model: &ModelEntry) -> Option<String> {
    let statuses: Vec<(PathBuf, FileStatus, &voicebot_core::manifest::ModelFile)> =
        model.files.iter().map(|f| (store.dir.join(&f.path), store.status(f), f)).collect();
    if let [(first, FileStatus::Missing, _), ..] = statuses.as_slice()
        && statuses.iter().all(|(_, status, _)| *status == FileStatus::Missing)
    {
        return Some(format!("not fetched ({} file(s) missing, e.g. {})", statuses.len(), first.display()));
    }
    let problems: Vec<String> = statuses
        .iter()
        .filter_map(|(path, status, file)| match status {
            FileStatus::Ok => None,
            FileStatus::Missing => Some(format!("{} missing", path.display())),
            FileStatus::WrongSize { actual } => {
                Some(format!("{} is {actual} bytes, expected {}", path.display(), file.size))
            }
            FileStatus::WrongHash { actual } => {
                Some(format!("{} sha256 {actual}, expected {}", path.display(), file.sha256))
            }
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join(", "))
}

// ---- audio ----

/// The input and output devices the kiosk could use, against `[kiosk]`.
fn audio(config: &Config, sink: &Sink) {
    use voicebot_kiosk::devices::inventory;
    let kiosk = &config.kiosk;
    let status = if kiosk.enabled { Status::Fail } else { Status::Warn };
    sink.put(AUDIO, 0, Line::new("audio", status, "the device listing did not finish in time"));
    let devices = match inventory() {
        Ok(devices) => devices,
        Err(e) => {
            let note =
                if kiosk.enabled { "" } else { " (the kiosk is off; the phone line needs no sound device)" };
            sink.put(AUDIO, 0, Line::new("audio", status, format!("{e}{note}")));
            return;
        }
    };
    let found = |input: bool| -> Vec<(String, String)> {
        devices
            .iter()
            .filter_map(|d| {
                let format = if input { d.input.as_ref() } else { d.output.as_ref() };
                format.map(|f| (d.name.clone(), f.clone()))
            })
            .collect()
    };
    for (item, direction, configured) in [(0, "input", &kiosk.input), (1, "output", &kiosk.output)] {
        let mut line =
            audio_line(direction, &found(direction == "input"), configured.as_deref(), kiosk.enabled);
        // A device the running daemon holds open does not list (ALSA hw devices are exclusive).
        if line.status == Status::Fail
            && configured.is_some()
            && let Some(pid) = running_voicebotd()
        {
            line.status = Status::Warn;
            line.detail = format!("{} (a voicebotd is running, pid {pid}, and may hold it)", line.detail);
        }
        sink.put(AUDIO, item, line);
    }
}

/// Another voicebotd process on this machine, if `/proc` shows one.
fn running_voicebotd() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|entry| {
        let pid = entry.file_name().to_str()?.parse::<u32>().ok().filter(|&p| p != me)?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        (comm.trim() == "voicebotd").then_some(pid)
    })
}

/// One direction's devices (name, default format) against the configured name
/// (`None`: the system default).
fn audio_line(direction: &str, found: &[(String, String)], configured: Option<&str>, enabled: bool) -> Line {
    const SHOWN: usize = 6;
    let mut list: Vec<String> =
        found.iter().take(SHOWN).map(|(name, format)| format!("{name} ({format})")).collect();
    if found.len() > SHOWN {
        list.push(format!("and {} more (`voicebotd devices` lists them)", found.len() - SHOWN));
    }
    let list = list.join(", ");
    let kiosk = if enabled { "the kiosk" } else { "the kiosk (off)" };
    match configured {
        Some(name) => match found.iter().find(|(n, _)| n == name) {
            Some((_, format)) => Line::new(
                "audio",
                Status::Pass,
                format!("{direction} {name} ({format}) for {kiosk}; found: {list}"),
            ),
            None => Line::new(
                "audio",
                if enabled { Status::Fail } else { Status::Warn },
                format!(
                    "[kiosk] {direction} {name:?} not found; the {direction} devices are: {}",
                    if list.is_empty() { "(none)" } else { &list }
                ),
            ),
        },
        None if found.is_empty() && enabled => Line::new(
            "audio",
            Status::Fail,
            format!("no {direction} device, and the kiosk is on: connect one or set [kiosk] {direction}"),
        ),
        None if found.is_empty() => Line::new(
            "audio",
            Status::Warn,
            format!("no {direction} devices (the kiosk is off; the phone line needs none)"),
        ),
        None => Line::new(
            "audio",
            Status::Pass,
            format!("{direction} devices: {list}; {kiosk} uses the system default"),
        ),
    }
}

// ---- broker ----

fn broker(config: &Config, sink: &Sink) {
    let Some(url) = &config.mqtt.url else {
        let detail = "not configured (tickets stay in the local outbox)";
        sink.put(BROKER, 0, Line::new("broker", Status::Pass, detail));
        return;
    };
    let timeout = BROKER_TCP_TIMEOUT + BROKER_CONNACK_TIMEOUT;
    let unfinished = format!("no answer from {url} within {} s", timeout.as_secs());
    sink.put(BROKER, 0, Line::new("broker", Status::Fail, unfinished));
    let line = match mqtt_login(config) {
        Ok(()) => Line::new("broker", Status::Pass, format!("connected to {url}")),
        Err(problem) => Line::new("broker", Status::Fail, format!("{url}: {problem}")),
    };
    sink.put(BROKER, 0, line);
}

/// TCP connect, then an MQTT CONNECT answered by a successful CONNACK.
fn mqtt_login(config: &Config) -> Result<(), String> {
    use rumqttc::{ConnectReturnCode, ConnectionError, Event, Packet};
    let url = config.mqtt.url.as_ref().ok_or("no broker")?;
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", url.host))?;
    TcpStream::connect_timeout(&addr, BROKER_TCP_TIMEOUT).map_err(|e| match e.kind() {
        ErrorKind::ConnectionRefused => format!("TCP connection to {addr} refused (is the broker running?)"),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            format!("TCP connect to {addr} timed out after {} s", BROKER_TCP_TIMEOUT.as_secs())
        }
        _ => format!("TCP connect to {addr}: {e}"),
    })?;
    let site = config.fleet.site.as_str();
    let device = config.fleet.device_id.as_deref().unwrap_or("doctor");
    let topics = voicebot_fleet::topics::Topics::new(site, device);
    // The fleet's TLS and credentials, under a client id of our own and with no
    // last will: the running daemon's session and status stay untouched.
    let fleet = voicebot_fleet::connection::options(&config.mqtt, &topics, site, device)
        .map_err(|e| e.to_string())?;
    let (host, port) = fleet.broker_address();
    let mut options =
        rumqttc::MqttOptions::new(format!("voicebot-doctor-{}", std::process::id()), host, port);
    options.set_transport(fleet.transport());
    options.set_keep_alive(Duration::from_secs(5));
    if let Some(login) = fleet.credentials() {
        options.set_credentials(login.username, login.password);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    runtime.block_on(async {
        let (client, mut events) = rumqttc::AsyncClient::new(options, 4);
        let connack = tokio::time::timeout(BROKER_CONNACK_TIMEOUT, async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack.code),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        let result = match connack {
            Err(_) => Err(format!(
                "TCP connected, but no MQTT CONNACK within {} s (is it an MQTT broker? TLS on a plain \
                 port, or the reverse?)",
                BROKER_CONNACK_TIMEOUT.as_secs()
            )),
            Ok(Ok(ConnectReturnCode::Success)) => Ok(()),
            Ok(Ok(code)) => {
                Err(voicebot_fleet::connection::explain(&ConnectionError::ConnectionRefused(code)))
            }
            // The fleet link's own wording: what failed, and which [mqtt] key to fix.
            Ok(Err(e)) => Err(voicebot_fleet::connection::explain(&e)),
        };
        if result.is_ok() {
            // A clean DISCONNECT; the broker would otherwise log a lost client.
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_millis(300), events.poll()).await;
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_only_is_a_pass_and_an_unused_gpu_a_warning() {
        assert_eq!(accelerator_line(&[], Some(&[])).status, Status::Pass);
        assert_eq!(accelerator_line(&[], None).detail, "CPU only (no GPU found)");
        let gpu = vec!["/dev/nvidia0".to_owned()];
        assert_eq!(accelerator_line(&gpu, Some(&[])).status, Status::Warn);
        assert_eq!(accelerator_line(&gpu, Some(&["CUDA"])).status, Status::Pass);
    }

    #[test]
    fn a_missing_kiosk_device_fails_only_when_the_kiosk_is_on() {
        let found = vec![("default".to_owned(), "48000 Hz, 2 ch, i16".to_owned())];
        assert_eq!(audio_line("input", &found, Some("default"), true).status, Status::Pass);
        let missing = audio_line("input", &found, Some("usb-mic"), true);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.detail.contains("\"usb-mic\"") && missing.detail.contains("default (48000 Hz"));
        assert_eq!(audio_line("input", &found, Some("usb-mic"), false).status, Status::Warn);
        assert_eq!(audio_line("output", &[], None, false).status, Status::Warn);
        assert_eq!(audio_line("output", &[], None, true).status, Status::Fail);
        assert_eq!(audio_line("output", &found, None, true).status, Status::Pass);
    }

    #[test]
    fn lines_print_as_text_and_as_json_with_three_fields() {
        let line = Line::new("broker", Status::Fail, "refused");
        assert_eq!(line.to_string(), "FAIL broker: refused");
        assert_eq!(line.json(), r#"{"check":"broker","status":"FAIL","detail":"refused"}"#);
        let v: serde_json::Value = serde_json::from_str(&line.json()).unwrap();
        assert_eq!(v, serde_json::json!({"check": "broker", "status": "FAIL", "detail": "refused"}));
    }
}
