//! The kiosk speaker: a playback device opened in its own format, rate and
//! channel count, playing queued mono clips one after another.
//!
//! Threads and queues:
//! - `play` converts the clip to the device rate on the caller's thread and
//!   appends it to a shared `ClipQueue` (held under a mutex only for the
//!   append, so the callback never waits long).
//! - cpal's audio callback fills each buffer from the queue, copies mono to
//!   every channel in the device's sample format, and reports finished clips
//!   with `try_send`; it never blocks or logs.
//! - A dedicated thread owns the cpal `Stream` (which need not be `Send`),
//!   logs stream errors, and ends the stream when it fails or the
//!   [`Speaker`] is dropped (which waits for that at most 2 s).
//!
//! Bounds and overload policy: at most [`QUEUE_LIMIT`] of audio may be
//! queued (`play` returns [`DeviceError::QueueFull`] beyond that); the event
//! queue holds [`EVENT_QUEUE`] events, and an event that does not fit is
//! dropped and logged rather than blocking the callback.
//!
//! Failure: a stream error that ends playback (device unplugged), or a device
//! that stops asking for audio for [`STALL`], is logged, reported as
//! [`SpeakerEvent::Failed`], and makes later `play` calls fail.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};
use tokio::sync::mpsc;

use crate::clip_queue::ClipQueue;
use crate::convert::mono_to_interleaved;
use crate::devices::{self, DeviceError, Direction};
use crate::stream_thread::{Ready, StreamThread};

/// Identifies a clip given to [`Speaker::play`]; never reused by a speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClipId(pub u64);

/// What happened to queued clips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeakerEvent {
    /// The clip's last sample has been handed to the device (it is heard
    /// up to [`Speaker::latency`] later).
    Finished(ClipId),
    /// [`Speaker::stop`] dropped these clips, the playing one first.
    Stopped(Vec<ClipId>),
    /// The stream died (e.g. the device was unplugged); nothing more will play.
    Failed(String),
}

/// At most this much audio waits in the queue.
pub const QUEUE_LIMIT: Duration = Duration::from_secs(60);
/// Events buffered for the consumer.
pub const EVENT_QUEUE: usize = 64;
/// A playback device that asks for no audio for this long is treated as gone.
pub const STALL: Duration = Duration::from_secs(5);
/// The playback period asked of the device (it may choose another); two
/// periods are buffered, so this is about half the output latency.
const PERIOD: Duration = Duration::from_millis(40);
/// How often the owner thread checks for shutdown, errors and stalls.
const TICK: Duration = Duration::from_millis(50);

/// An open playback device. Cheap to share: every method takes `&self`, and
/// it is `Send + Sync` (wrap it in an `Arc`). Dropping it stops playback.
pub struct Speaker {
    shared: Arc<Shared>,
    describe: String,
    rate: u32,
    latency: Duration,
    _thread: StreamThread,
}

/// State shared by the speaker's handle, its callback and its owner thread.
struct Shared {
    queue: Mutex<ClipQueue>,
    events: mpsc::Sender<SpeakerEvent>,
    /// Why the stream died; set once.
    failure: Mutex<Option<String>>,
    /// Callbacks so far (the owner thread's stall check).
    callbacks: AtomicU64,
    /// Events dropped because the consumer did not drain the queue.
    lost_events: AtomicU64,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, ClipQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn send(&self, event: SpeakerEvent) {
        if self.events.try_send(event).is_err() {
            self.lost_events.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the owner thread reports once the stream is running.
struct Opened {
    describe: String,
    rate: u32,
    latency: Duration,
}

impl Speaker {
    /// Opens the named playback device (`""` = the host default) in its own
    /// format/rate/channels and starts it (playing silence); events arrive on
    /// the bounded receiver.
    ///
    /// Blocks while the device opens: call it from `spawn_blocking` in async code.
    ///
    /// # Errors
    /// [`DeviceError::NotFound`] for an unknown name (listing the outputs),
    /// [`DeviceError::NoDevice`] when there is no default output,
    /// [`DeviceError::Format`] for a device with no convertible format,
    /// [`DeviceError::Stream`] when the device does not open or start.
    pub fn open(name: &str) -> Result<(Speaker, mpsc::Receiver<SpeakerEvent>), DeviceError> {
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        let shared = Arc::new(Shared {
            // Replaced with the real limit once the device rate is known.
            queue: Mutex::new(ClipQueue::new(0)),
            events,
            failure: Mutex::new(None),
            callbacks: AtomicU64::new(0),
            lost_events: AtomicU64::new(0),
        });
        let owner_shared = shared.clone();
        let wanted = name.to_owned();
        let (thread, opened) =
            StreamThread::spawn("kiosk-speaker", Direction::Output, name, move |ready, shutdown| {
                Owner { shared: owner_shared, shutdown }.run(&wanted, ready)
            })?;
        tracing::info!(speaker = %opened.describe, latency_ms = opened.latency.as_millis(), "speaker open");
        let speaker = Speaker {
            shared,
            describe: opened.describe,
            rate: opened.rate,
            latency: opened.latency,
            _thread: thread,
        };
        Ok((speaker, events_rx))
    }

    /// Queues mono speech at `rate` Hz, converted to the device's rate and
    /// channels; it plays after the clips queued before it.
    /// [`SpeakerEvent::Finished`] follows when its last sample has been handed
    /// to the device.
    ///
    /// Resamples on the calling thread (a few milliseconds per second of speech).
    ///
    /// # Errors
    /// [`DeviceError::Stream`] when the stream has died,
    /// [`DeviceError::QueueFull`] when more than [`QUEUE_LIMIT`] would be queued,
    /// [`DeviceError::Clip`] for a zero rate.
    pub fn play(&self, samples: &[f32], rate: u32) -> Result<ClipId, DeviceError> {
        self.check_alive()?;
        let samples = if samples.is_empty() {
            Vec::new()
        } else {
            voicebot_audio::resample(samples, rate, self.rate)
                .map_err(|e| DeviceError::Clip(e.to_string()))?
        };
        let id = self.shared.queue().push(samples).map_err(|full| DeviceError::QueueFull {
            queued: self.duration(full.queued),
            limit: self.duration(full.limit),
        })?;
        Ok(id)
    }

    /// Stops at once (barge-in): the playing and queued clips are dropped and
    /// reported in one [`SpeakerEvent::Stopped`] (none when nothing was queued).
    /// What the device has already buffered, at most [`Speaker::latency`], still plays.
    pub fn stop(&self) {
        let stopped = self.shared.queue().stop();
        if !stopped.is_empty() {
            self.shared.send(SpeakerEvent::Stopped(stopped));
        }
    }

    /// True while a clip is queued or being handed to the device (for
    /// half-duplex gating; the last samples are heard up to
    /// [`Speaker::latency`] after this turns false).
    pub fn is_playing(&self) -> bool {
        self.shared.queue().is_playing()
    }

    /// Audio queued but not yet handed to the device.
    pub fn queued(&self) -> Duration {
        self.duration(self.shared.queue().queued())
    }

    /// How long the device buffers audio after it is handed over: the delay
    /// between [`SpeakerEvent::Finished`] and the clip's end being heard.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The device name and the format actually opened, e.g.
    /// `kiosk_speaker (48000 Hz, 2 ch, f32)`.
    pub fn describe(&self) -> String {
        self.describe.clone()
    }

    fn check_alive(&self) -> Result<(), DeviceError> {
        match self.shared.failure() {
            Some(reason) => Err(DeviceError::Stream {
                direction: Direction::Output,
                device: self.describe.clone(),
                reason: format!("playback has stopped: {reason}"),
            }),
            None => Ok(()),
        }
    }

    fn duration(&self, samples: usize) -> Duration {
        Duration::from_secs_f64(samples as f64 / f64::from(self.rate.max(1)))
    }
}

// The driver shares one speaker between tasks.
const _: fn() = || {
    fn is<T: Send + Sync>() {}
    is::<Speaker>();
};

/// What the owner thread needs; moved onto it.
struct Owner {
    shared: Arc<Shared>,
    shutdown: Arc<AtomicBool>,
}

impl Owner {
    fn run(self, wanted: &str, ready: Ready<Opened>) {
        let (errors_tx, errors_rx) = std_mpsc::sync_channel::<cpal::Error>(16);
        let (stream, opened) = match self.open(wanted, errors_tx) {
            Ok(opened) => opened,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        if let Err(e) = stream.play() {
            let _ = ready.send(Err(DeviceError::Stream {
                direction: Direction::Output,
                device: opened.describe,
                reason: format!("cannot start playback: {e}"),
            }));
            return;
        }
        let describe = opened.describe.clone();
        if ready.send(Ok(opened)).is_err() {
            return;
        }
        let Some(reason) = self.watch(&errors_rx) else {
            tracing::debug!(speaker = %describe, "speaker closed");
            return;
        };
        tracing::error!(speaker = %describe, %reason, "speaker stream failed; playback stopped");
        *self.shared.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.clone());
        let dropped = self.shared.queue().stop();
        if !dropped.is_empty() {
            tracing::warn!(clips = dropped.len(), "queued clips were not played");
        }
        // Report before dropping the stream, which can hang when the device
        // died under it (see `stream_thread`).
        self.shared.send(SpeakerEvent::Failed(reason));
        drop(stream);
    }

    /// Opens and builds (but does not start) the stream: periods of
    /// [`PERIOD`] where the device allows, else the device's own.
    fn open(
        &self,
        wanted: &str,
        errors: std_mpsc::SyncSender<cpal::Error>,
    ) -> Result<(cpal::Stream, Opened), DeviceError> {
        let chosen = devices::choose(Direction::Output, wanted)?;
        let rate = chosen.config.sample_rate();
        *self.shared.queue() = ClipQueue::new(QUEUE_LIMIT.as_secs() as usize * rate as usize);
        let mut failure = None;
        for config in devices::stream_configs(&chosen.config, PERIOD) {
            let errors = errors.clone();
            let on_error = move |e: cpal::Error| {
                let _ = errors.try_send(e);
            };
            let shared = self.shared.clone();
            let device = &chosen.device;
            let built = match chosen.config.sample_format() {
                SampleFormat::I8 => build::<i8>(device, config, shared, on_error),
                SampleFormat::I16 => build::<i16>(device, config, shared, on_error),
                SampleFormat::I24 => build::<cpal::I24>(device, config, shared, on_error),
                SampleFormat::I32 => build::<i32>(device, config, shared, on_error),
                SampleFormat::I64 => build::<i64>(device, config, shared, on_error),
                SampleFormat::U8 => build::<u8>(device, config, shared, on_error),
                SampleFormat::U16 => build::<u16>(device, config, shared, on_error),
                SampleFormat::U24 => build::<cpal::U24>(device, config, shared, on_error),
                SampleFormat::U32 => build::<u32>(device, config, shared, on_error),
                SampleFormat::U64 => build::<u64>(device, config, shared, on_error),
                SampleFormat::F32 => build::<f32>(device, config, shared, on_error),
                SampleFormat::F64 => build::<f64>(device, config, shared, on_error),
                other => {
                    return Err(DeviceError::Format {
                        direction: Direction::Output,
                        device: chosen.name,
                        reason: format!("{other} is not PCM; pick another device or a plughw: name"),
                    });
                }
            };
            match built {
                Ok(stream) => {
                    // cpal's ALSA host keeps two periods ahead of what is heard.
                    let period = stream.buffer_size().unwrap_or(0);
                    let latency = Duration::from_secs_f64(2.0 * f64::from(period) / f64::from(rate.max(1)));
                    let label = devices::format_label(&chosen.config);
                    let describe = format!("{} ({label}, {period}-frame periods)", chosen.name);
                    return Ok((stream, Opened { describe, rate, latency }));
                }
                Err(e) => failure = Some(e),
            }
        }
        Err(DeviceError::Stream {
            direction: Direction::Output,
            device: chosen.name,
            reason: failure.map_or_else(|| "cannot open".to_owned(), |e| devices::open_failure(&e)),
        })
    }

    /// Watches the running stream; returns why it failed, or `None` on shutdown.
    fn watch(&self, errors: &std_mpsc::Receiver<cpal::Error>) -> Option<String> {
        let mut last_count = self.shared.callbacks.load(Ordering::Relaxed);
        let mut last_progress = Instant::now();
        let mut lost_reported = 0;
        let mut xruns = 0u64;
        loop {
            if self.shutdown.load(Ordering::Relaxed) {
                return None;
            }
            match errors.recv_timeout(TICK) {
                Ok(e) => {
                    if let Some(reason) = devices::fatal(&e) {
                        return Some(reason);
                    }
                    if e.kind() == cpal::ErrorKind::Xrun {
                        xruns += 1;
                        if xruns.is_power_of_two() {
                            tracing::warn!(
                                xruns,
                                "speaker underrun: a gap was heard (the system is too busy)"
                            );
                        }
                    } else {
                        tracing::warn!(error = %e, "speaker stream error");
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    return Some("the playback stream ended".into());
                }
            }
            let lost = self.shared.lost_events.load(Ordering::Relaxed);
            if lost > lost_reported {
                tracing::warn!(lost, "speaker events dropped: the consumer is not reading them");
                lost_reported = lost;
            }
            let count = self.shared.callbacks.load(Ordering::Relaxed);
            if count != last_count {
                last_count = count;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > STALL {
                return Some(format!("the device asked for no audio for {} s", STALL.as_secs()));
            }
        }
    }
}

/// Builds the playback stream for sample type `T`; the callback is the only
/// code that runs on the audio thread.
fn build<T>(
    device: &cpal::Device,
    config: StreamConfig,
    shared: Arc<Shared>,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32> + Send + 'static,
{
    let channels = usize::from(config.channels).max(1);
    let mut mono: Vec<f32> = Vec::new();
    let mut finished = Vec::with_capacity(8);
    let callback = move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
        mono.resize(data.len() / channels, 0.0);
        shared.queue().fill(&mut mono, &mut finished);
        mono_to_interleaved(&mono, channels, data);
        shared.callbacks.fetch_add(1, Ordering::Relaxed);
        for id in finished.drain(..) {
            shared.send(SpeakerEvent::Finished(id));
        }
    };
    device.build_output_stream::<T, _, _>(config, callback, on_error, Some(Duration::from_secs(1)))
}
