//! The kiosk microphone: a capture device opened in its own format, rate and
//! channel count, delivered as 20 ms frames of 16 kHz mono `f32`
//! ([`voicebot_audio::ENGINE_RATE`]).
//!
//! Threads and queues:
//! - cpal's audio callback only mixes to mono and hands the chunk to a
//!   bounded queue (`try_send`); it never blocks, logs or resamples.
//! - A dedicated thread owns the cpal `Stream` (which need not be `Send`),
//!   resamples with a streaming resampler (no clicks at chunk edges), cuts
//!   20 ms frames and `try_send`s them to the consumer.
//!
//! Overload policy: when the consumer lags by more than [`FRAME_QUEUE`]
//! frames (2 s), new frames are dropped and counted
//! ([`Microphone::dropped_frames`]); the same happens, counted in 20 ms units,
//! if the owner thread itself falls behind the callback.
//!
//! Failure: a stream error that ends capture (device unplugged, stream
//! invalidated) or a device that delivers nothing for [`STALL`] is logged and
//! closes the receiver. Dropping the [`Microphone`] stops capture (waiting
//! at most 2 s for the stream to end).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use tokio::sync::mpsc;
use voicebot_audio::ENGINE_RATE;

use crate::convert::{Framer, StreamResampler, interleaved_to_mono};
use crate::devices::{self, DeviceError, Direction};
use crate::stream_thread::{Ready, StreamThread};

/// Samples in one delivered frame: 20 ms at [`ENGINE_RATE`].
pub const FRAME_SAMPLES: usize = ENGINE_RATE as usize / 50;
/// Frames the consumer may lag behind before frames are dropped (2 s).
pub const FRAME_QUEUE: usize = 100;
/// The capture period asked of the device (it may choose another).
const PERIOD: Duration = Duration::from_millis(20);
/// Device callbacks buffered between the audio callback and the owner thread.
const CHUNK_QUEUE: usize = 64;
/// A capture device silent for this long (no callbacks at all) is treated as gone.
pub const STALL: Duration = Duration::from_secs(5);
/// How often the owner thread checks for shutdown, errors and stalls.
const TICK: Duration = Duration::from_millis(50);

/// An open capture device. Dropping it stops capture and closes the frame receiver.
pub struct Microphone {
    describe: String,
    dropped: Arc<AtomicU64>,
    _thread: StreamThread,
}

impl Microphone {
    /// Opens the named capture device (`""` = the host default) in its own
    /// format/rate/channels and starts capturing; 20 ms frames of 16 kHz mono
    /// `f32` arrive on the bounded receiver. When the consumer falls behind,
    /// frames are dropped and counted; the audio callback never blocks.
    ///
    /// Blocks while the device opens (usually well under a second, at most
    /// 10 s): call it from `spawn_blocking` in async code.
    ///
    /// # Errors
    /// [`DeviceError::NotFound`] for an unknown name (listing the inputs),
    /// [`DeviceError::NoDevice`] when there is no default input,
    /// [`DeviceError::Format`] for a device with no convertible format,
    /// [`DeviceError::Stream`] when the device does not open or start.
    pub fn open(name: &str) -> Result<(Microphone, mpsc::Receiver<Vec<f32>>), DeviceError> {
        let (frames_tx, frames_rx) = mpsc::channel(FRAME_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let wanted = name.to_owned();
        let (thread, describe) =
            StreamThread::spawn("kiosk-mic", Direction::Input, name, move |ready, shutdown| {
                Owner { frames: frames_tx, dropped: counter, shutdown }.run(&wanted, ready)
            })?;
        tracing::info!(microphone = %describe, "microphone open");
        Ok((Microphone { describe, dropped, _thread: thread }, frames_rx))
    }

    /// Frames dropped so far because the consumer (or the resampling thread) fell behind.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The device name and the format actually opened, e.g.
    /// `kiosk_mic (48000 Hz, 2 ch, f32, 640-frame periods -> 16000 Hz mono)`.
    pub fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// What the owner thread needs; moved onto it.
struct Owner {
    frames: mpsc::Sender<Vec<f32>>,
    dropped: Arc<AtomicU64>,
    shutdown: Arc<AtomicBool>,
}

/// What the audio callback hands the owner thread.
type Chunk = Vec<f32>;

impl Owner {
    fn run(self, wanted: &str, ready: Ready<String>) {
        let (chunks_tx, chunks_rx) = std_mpsc::sync_channel::<Chunk>(CHUNK_QUEUE);
        let (errors_tx, errors_rx) = std_mpsc::sync_channel::<cpal::Error>(16);
        let opened = self.open(wanted, chunks_tx, errors_tx);
        let (stream, describe, rate) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let mut resampler = match StreamResampler::new(rate, ENGINE_RATE) {
            Ok(r) => r,
            Err(reason) => {
                let _ = ready.send(Err(DeviceError::Format {
                    direction: Direction::Input,
                    device: describe,
                    reason,
                }));
                return;
            }
        };
        if let Err(e) = stream.play() {
            let _ = ready.send(Err(DeviceError::Stream {
                direction: Direction::Input,
                device: describe,
                reason: format!("cannot start capture: {e}"),
            }));
            return;
        }
        if ready.send(Ok(describe.clone())).is_err() {
            return;
        }
        let why = self.pump(&chunks_rx, &errors_rx, &mut resampler);
        match why {
            End::Shutdown => tracing::debug!(microphone = %describe, "microphone closed"),
            End::ConsumerGone => {
                tracing::debug!(microphone = %describe, "frame receiver dropped; capture stopped")
            }
            End::Failed(reason) => {
                tracing::error!(microphone = %describe, %reason, "microphone stream failed; capture stopped")
            }
        }
        // Close the receiver before dropping the stream, which can hang when
        // the device died under it (see `stream_thread`).
        drop(self);
        drop(stream);
    }

    /// Opens and builds (but does not start) the stream: periods of
    /// [`PERIOD`] where the device allows, else the device's own.
    fn open(
        &self,
        wanted: &str,
        chunks: std_mpsc::SyncSender<Chunk>,
        errors: std_mpsc::SyncSender<cpal::Error>,
    ) -> Result<(cpal::Stream, String, u32), DeviceError> {
        let chosen = devices::choose(Direction::Input, wanted)?;
        let format = chosen.config.sample_format();
        let rate = chosen.config.sample_rate();
        let device_frame = (rate as usize / 50).max(1);
        let mut failure = None;
        for config in devices::stream_configs(&chosen.config, PERIOD) {
            let capture = Capture { chunks: chunks.clone(), dropped: self.dropped.clone(), device_frame };
            let errors = errors.clone();
            let on_error = move |e: cpal::Error| {
                let _ = errors.try_send(e);
            };
            let device = &chosen.device;
            let built = match format {
                SampleFormat::I8 => capture.build::<i8>(device, config, on_error),
                SampleFormat::I16 => capture.build::<i16>(device, config, on_error),
                SampleFormat::I24 => capture.build::<cpal::I24>(device, config, on_error),
                SampleFormat::I32 => capture.build::<i32>(device, config, on_error),
                SampleFormat::I64 => capture.build::<i64>(device, config, on_error),
                SampleFormat::U8 => capture.build::<u8>(device, config, on_error),
                SampleFormat::U16 => capture.build::<u16>(device, config, on_error),
                SampleFormat::U24 => capture.build::<cpal::U24>(device, config, on_error),
                SampleFormat::U32 => capture.build::<u32>(device, config, on_error),
                SampleFormat::U64 => capture.build::<u64>(device, config, on_error),
                SampleFormat::F32 => capture.build::<f32>(device, config, on_error),
                SampleFormat::F64 => capture.build::<f64>(device, config, on_error),
                other => {
                    return Err(DeviceError::Format {
                        direction: Direction::Input,
                        device: chosen.name,
                        reason: format!("{other} is not PCM; pick another device or a plughw: name"),
                    });
                }
            };
            match built {
                Ok(stream) => {
                    let period =
                        stream.buffer_size().map(|f| format!(", {f}-frame periods")).unwrap_or_default();
                    let label = devices::format_label(&chosen.config);
                    let describe = format!("{} ({label}{period} -> {ENGINE_RATE} Hz mono)", chosen.name);
                    return Ok((stream, describe, rate));
                }
                Err(e) => failure = Some(e),
            }
        }
        Err(DeviceError::Stream {
            direction: Direction::Input,
            device: chosen.name,
            reason: failure.map_or_else(|| "cannot open".to_owned(), |e| devices::open_failure(&e)),
        })
    }

    /// Moves audio from the callback to the consumer until shutdown or failure.
    fn pump(
        &self,
        chunks: &std_mpsc::Receiver<Chunk>,
        errors: &std_mpsc::Receiver<cpal::Error>,
        resampler: &mut StreamResampler,
    ) -> End {
        let mut framer = Framer::new(FRAME_SAMPLES);
        let mut resampled = Vec::new();
        let mut last_audio = Instant::now();
        let mut xruns = 0u64;
        loop {
            if self.shutdown.load(Ordering::Relaxed) {
                return End::Shutdown;
            }
            match chunks.recv_timeout(TICK) {
                Ok(chunk) => {
                    last_audio = Instant::now();
                    resampled.clear();
                    if let Err(reason) = resampler.process(&chunk, &mut resampled) {
                        return End::Failed(reason);
                    }
                    for frame in framer.push(&resampled) {
                        match self.frames.try_send(frame) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                self.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => return End::ConsumerGone,
                        }
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    return End::Failed("the capture stream ended".into());
                }
            }
            while let Ok(e) = errors.try_recv() {
                if let Some(reason) = devices::fatal(&e) {
                    return End::Failed(reason);
                }
                if e.kind() == cpal::ErrorKind::Xrun {
                    xruns += 1;
                    if xruns.is_power_of_two() {
                        tracing::warn!(xruns, "microphone overrun: audio was lost (the system is too busy)");
                    }
                } else {
                    tracing::warn!(error = %e, "microphone stream error");
                }
            }
            if last_audio.elapsed() > STALL {
                return End::Failed(format!("the device delivered no audio for {} s", STALL.as_secs()));
            }
        }
    }
}

/// Why the owner thread stopped.
enum End {
    Shutdown,
    ConsumerGone,
    Failed(String),
}

/// The audio-callback side of capture.
struct Capture {
    chunks: std_mpsc::SyncSender<Chunk>,
    dropped: Arc<AtomicU64>,
    /// Device frames in 20 ms, to count a lost chunk in frames.
    device_frame: usize,
}

impl Capture {
    fn build<T>(
        self,
        device: &cpal::Device,
        config: StreamConfig,
        on_error: impl FnMut(cpal::Error) + Send + 'static,
    ) -> Result<cpal::Stream, cpal::Error>
    where
        T: SizedSample + Send + 'static,
        f32: FromSample<T>,
    {
        let channels = usize::from(config.channels);
        let callback = move |data: &[T], _: &cpal::InputCallbackInfo| {
            let mut mono = Vec::with_capacity(data.len() / channels.max(1));
            interleaved_to_mono(data, channels, &mut mono);
            let frames = mono.len();
            if let Err(std_mpsc::TrySendError::Full(_)) = self.chunks.try_send(mono) {
                self.dropped.fetch_add(frames.div_ceil(self.device_frame) as u64, Ordering::Relaxed);
            }
        };
        device.build_input_stream::<T, _, _>(config, callback, on_error, Some(Duration::from_secs(1)))
    }
}

// The driver moves the microphone between tasks.
const _: fn() = || {
    fn is<T: Send + Sync>() {}
    is::<Microphone>();
};
