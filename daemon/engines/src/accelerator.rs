//! Which processor runs the ONNX models (Silero VAD, MiniLM), and the one place
//! their ONNX Runtime sessions are built.
//!
//! With `VOICEBOTD_ONNX_ACCELERATOR` unset or `auto`, a session gets ONNX
//! Runtime's TensorRT and CUDA execution providers, in that order, when the
//! loaded runtime reports them (a GPU build of ONNX Runtime, e.g. JetPack's,
//! set as `[runtime] onnxruntime`); whatever they cannot run, or everything when
//! neither registers, runs on the CPU. `cpu` keeps every session on the CPU.
//! The CPU builds from PyPI and sherpa-onnx report neither, so they always run
//! on the CPU. Registration failures are logged and fall through, never fatal.
//!
//! TensorRT compiles an engine per model when a session starts, which takes
//! long on a Jetson: under systemd (`CacheDirectory=`) the engines are cached
//! in `$CACHE_DIRECTORY/tensorrt` and reused on the next start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::SessionBuilder;

/// The environment variable that allows or forbids the GPU providers.
pub const ACCELERATOR_ENV: &str = "VOICEBOTD_ONNX_ACCELERATOR";

/// The best execution provider a session registered; the CPU runs the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accelerator {
    TensorRt,
    Cuda,
    Cpu,
}

impl fmt::Display for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accelerator::TensorRt => "TensorRT",
            Accelerator::Cuda => "CUDA",
            Accelerator::Cpu => "CPU",
        })
    }
}

/// The best accelerator any session of this process took (0: none built yet).
static IN_USE: AtomicU8 = AtomicU8::new(0);

impl Accelerator {
    fn rank(self) -> u8 {
        match self {
            Accelerator::Cpu => 1,
            Accelerator::Cuda => 2,
            Accelerator::TensorRt => 3,
        }
    }
}

/// The accelerator the ONNX models run on, as the birth message reports it:
/// `TensorRT`, `CUDA` or `CPU`, the best any session took; `None` before the
/// first session.
pub fn in_use() -> Option<&'static str> {
    match IN_USE.load(Ordering::Relaxed) {
        3 => Some("TensorRT"),
        2 => Some("CUDA"),
        1 => Some("CPU"),
        _ => None,
    }
}

/// What the operator allows, from [`ACCELERATOR_ENV`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AcceleratorPolicy {
    /// TensorRT, then CUDA, when the runtime has them; else the CPU.
    Auto,
    /// The CPU only.
    Cpu,
}

impl AcceleratorPolicy {
    /// Reads [`ACCELERATOR_ENV`]; unset or empty means `auto`.
    fn from_env() -> Result<AcceleratorPolicy, SessionError> {
        AcceleratorPolicy::parse(std::env::var(ACCELERATOR_ENV).ok().as_deref())
    }

    fn parse(value: Option<&str>) -> Result<AcceleratorPolicy, SessionError> {
        match value.map(str::trim) {
            None | Some("" | "auto") => Ok(AcceleratorPolicy::Auto),
            Some("cpu") => Ok(AcceleratorPolicy::Cpu),
            Some(other) => Err(SessionError::Policy(other.to_owned())),
        }
    }
}

/// Why a session could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{ACCELERATOR_ENV}={0:?} is not `auto` or `cpu`")]
    Policy(String),
    #[error(transparent)]
    Runtime(#[from] ort::Error),
}

impl From<ort::Error<SessionBuilder>> for SessionError {
    fn from(error: ort::Error<SessionBuilder>) -> SessionError {
        SessionError::Runtime(error.into())
    }
}

/// Loads `model` into a single-threaded session on the best accelerator the
/// policy in [`ACCELERATOR_ENV`] allows, and logs which one that is.
///
/// # Errors
/// `Policy` for a bad [`ACCELERATOR_ENV`]; `Runtime` when ONNX Runtime rejects
/// the options or the model.
pub fn session(environment: &Environment, model: &Path) -> Result<Session, SessionError> {
    let policy = AcceleratorPolicy::from_env()?;
    let mut builder = Session::builder(environment)?.with_intra_threads(1)?.with_inter_threads(1)?;
    let accelerator = match policy {
        AcceleratorPolicy::Auto => register_gpu(&mut builder),
        AcceleratorPolicy::Cpu => Accelerator::Cpu,
    };
    let session = builder.commit_from_file(model)?;
    IN_USE.fetch_max(accelerator.rank(), Ordering::Relaxed);
    tracing::info!(model = %model.display(), %accelerator, ?policy, "ONNX Runtime session ready");
    Ok(session)
}

/// Registers TensorRT then CUDA where available; returns the first that took.
fn register_gpu(builder: &mut SessionBuilder) -> Accelerator {
    let tensorrt = try_register(builder, tensorrt_provider());
    let cuda = try_register(builder, ep::CUDA::default());
    match (tensorrt, cuda) {
        (true, _) => Accelerator::TensorRt,
        (false, true) => Accelerator::Cuda,
        (false, false) => Accelerator::Cpu,
    }
}

fn tensorrt_provider() -> ep::TensorRT {
    match std::env::var_os("CACHE_DIRECTORY") {
        Some(dir) => ep::TensorRT::default()
            .with_engine_cache(true)
            .with_engine_cache_path(PathBuf::from(dir).join("tensorrt").display()),
        None => ep::TensorRT::default(),
    }
}

/// Registers `provider` if the runtime was built with it; a failure (e.g. its
/// CUDA libraries are missing) is logged and leaves the builder as it was.
fn try_register<P: ExecutionProvider>(builder: &mut SessionBuilder, provider: P) -> bool {
    match P::is_available() {
        Ok(true) => {}
        Ok(false) => return false,
        Err(error) => {
            tracing::warn!(provider = P::NAME, %error, "cannot ask ONNX Runtime for this execution provider");
            return false;
        }
    }
    match provider.register(builder) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(provider = P::NAME, %error, "execution provider failed to register; not using it");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_empty_policy_means_auto() {
        assert_eq!(AcceleratorPolicy::parse(None).unwrap(), AcceleratorPolicy::Auto);
        assert_eq!(AcceleratorPolicy::parse(Some(" ")).unwrap(), AcceleratorPolicy::Auto);
        assert_eq!(AcceleratorPolicy::parse(Some("auto")).unwrap(), AcceleratorPolicy::Auto);
    }

    #[test]
    fn cpu_policy_forbids_the_gpu() {
        assert_eq!(AcceleratorPolicy::parse(Some("cpu")).unwrap(), AcceleratorPolicy::Cpu);
    }

    #[test]
    fn unknown_policy_is_an_error_naming_the_variable_and_value() {
        let msg = AcceleratorPolicy::parse(Some("gpu")).unwrap_err().to_string();
        assert!(msg.contains(ACCELERATOR_ENV) && msg.contains("\"gpu\""), "{msg}");
    }
}
