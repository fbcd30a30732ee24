//! The dedicated thread that owns a cpal stream (cpal streams need not be
//! `Send`), with a bounded open handshake and a bounded stop.
//!
//! Why bounded: when a sound server dies under it, ALSA's PulseAudio plugin
//! can deadlock inside libpulse, and then dropping the cpal stream never
//! returns. The thread may hang there; the [`crate::microphone::Microphone`]
//! or [`crate::speaker::Speaker`] that owns it must not. After
//! [`STOP_TIMEOUT`] the thread is left behind and an error is logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self as std_mpsc, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::devices::{DeviceError, Direction};

/// How long opening a device may take.
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopping a stream may take before its thread is abandoned.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Reports the outcome of opening, once, from the owner thread.
pub(crate) type Ready<T> = std_mpsc::SyncSender<Result<T, DeviceError>>;

/// A running owner thread; dropping it asks the thread to stop and waits at
/// most [`STOP_TIMEOUT`].
pub(crate) struct StreamThread {
    name: &'static str,
    shutdown: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl StreamThread {
    /// Runs `body` on a new thread named `name` and waits for it to report
    /// through its [`Ready`] whether the device opened. `body` gets the
    /// shutdown flag to poll; it should return soon after the flag is set,
    /// and return at once if sending on [`Ready`] fails (the opener gave up).
    ///
    /// # Errors
    /// What `body` reports, or [`DeviceError::Stream`] when it reports
    /// nothing within [`OPEN_TIMEOUT`], or [`DeviceError::Backend`] when the
    /// thread cannot start.
    pub(crate) fn spawn<T, F>(
        name: &'static str,
        direction: Direction,
        device: &str,
        body: F,
    ) -> Result<(StreamThread, T), DeviceError>
    where
        T: Send + 'static,
        F: FnOnce(Ready<T>, Arc<AtomicBool>) + Send + 'static,
    {
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let shutdown = Arc::new(AtomicBool::new(false));
        let flag = shutdown.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(ready_tx, flag))
            .map_err(|e| DeviceError::Backend(format!("cannot start the {name} thread: {e}")))?;
        let thread = StreamThread { name, shutdown, handle: Some(handle) };
        match ready_rx.recv_timeout(OPEN_TIMEOUT) {
            Ok(Ok(opened)) => Ok((thread, opened)),
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => Err(DeviceError::Stream {
                direction,
                device: device.to_owned(),
                reason: format!("the device did not open within {} s", OPEN_TIMEOUT.as_secs()),
            }),
            Err(RecvTimeoutError::Disconnected) => {
                Err(DeviceError::Backend(format!("the {name} thread ended while opening the device")))
            }
        }
    }
}

impl Drop for StreamThread {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        let Some(handle) = self.handle.take() else { return };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if handle.is_finished() {
            let _ = handle.join();
        } else {
            tracing::error!(
                thread = self.name,
                "the audio stream did not stop within {} s; leaving its thread behind",
                STOP_TIMEOUT.as_secs()
            );
        }
    }
}
