//! The kiosk's life: wait for someone, hold a conversation, rest, again.
//!
//! Between visits the microphone feeds a wake-up VAD on its own thread (for
//! the `voice` trigger); typed lines, the GPIO button and fleet commands
//! arrive as [`Trigger`]s. A visit is one [`voicebot_live::run_conversation`]
//! on a [`KioskLine`], in a span with the visit id and ticket id, so every log
//! line of it carries them. Devices that fail to open are retried, so a USB
//! headset plugged in late, or re-plugged, brings the kiosk back by itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};
use voicebot_core::config::{KioskAction, KioskTrigger};
use voicebot_dialog::call::Channel;
use voicebot_live::{Caller, ConversationSummary, LiveDeps};

use crate::agent::AgentDesk;
use crate::devices::DeviceError;
use crate::half_duplex::EchoGate;
use crate::kiosk_line::KioskLine;
use crate::microphone::Microphone;
use crate::speaker::{Speaker, SpeakerEvent};
use crate::triggers::Trigger;
use crate::wake::VoiceWake;

/// How long to wait before trying to open missing devices again.
const REOPEN_AFTER: Duration = Duration::from_secs(5);

/// Microphone frames the wake-up VAD may fall behind before frames are dropped.
const WAKE_QUEUE: usize = 50;

/// The kiosk's on-screen status line (stdout in the daemon).
pub type Screen = Arc<dyn Fn(&str) + Send + Sync>;

/// What the kiosk shares with the rest of the daemon.
pub struct KioskDeps {
    pub live: LiveDeps,
    /// The kiosk's id in tickets and call events.
    pub kiosk_id: String,
    /// Where hand-overs go; `None`: no SIP, hand-overs fail into a call-back ticket.
    pub agents: Option<Arc<dyn AgentDesk>>,
    pub screen: Screen,
    /// Called when a visit starts (metrics).
    pub on_visit_start: Arc<dyn Fn() + Send + Sync>,
    /// Called with each finished visit (metrics, call events, the report).
    pub on_visit_end: Arc<dyn Fn(&VisitSummary) + Send + Sync>,
}

/// How a visit went.
#[derive(Debug, Clone)]
pub struct VisitSummary {
    pub visit_id: String,
    pub started_by: KioskTrigger,
    pub conversation: ConversationSummary,
}

/// Why the kiosk stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    #[error("the kiosk needs the VAD model, which is not loaded")]
    NoVad,
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// The open devices.
struct Devices {
    mic: Microphone,
    frames: mpsc::Receiver<Vec<f32>>,
    speaker: Speaker,
    speaker_events: mpsc::Receiver<SpeakerEvent>,
}

/// Opens the configured microphone and speaker off the reactor.
async fn open_devices(input: String, output: String) -> Result<Devices, DeviceError> {
    tokio::task::spawn_blocking(move || {
        let (mic, frames) = Microphone::open(&input)?;
        let (speaker, speaker_events) = Speaker::open(&output)?;
        Ok(Devices { mic, frames, speaker, speaker_events })
    })
    .await
    .map_err(|e| DeviceError::Backend(format!("opening the audio devices panicked: {e}")))?
}

/// Checks the devices once at start, so a wrong name stops start-up with a
/// clear message instead of a kiosk that silently never answers.
///
/// # Errors
/// The device is missing (the message lists what exists) or cannot be opened.
pub async fn check_devices(input: &str, output: &str) -> Result<String, DeviceError> {
    let devices = open_devices(input.to_owned(), output.to_owned()).await?;
    Ok(format!("microphone {}, speaker {}", devices.mic.describe(), devices.speaker.describe()))
}

/// Runs the kiosk until `cancel`: a visit in progress closes politely.
///
/// # Errors
/// Only what cannot get better by waiting (no VAD model); missing or failing
/// devices are logged and retried.
///
/// # Cancel safety
/// Returns once `cancel` fires and a running visit has closed.
pub async fn serve(
    deps: Arc<KioskDeps>,
    mut triggers: mpsc::Receiver<Trigger>,
    cancel: CancellationToken,
) -> Result<(), KioskError> {
    let config = deps.live.config.kiosk.clone();
    let vad_model = deps.live.engines.vad.clone().ok_or(KioskError::NoVad)?;
    let threshold = deps.live.config.vad.threshold;
    let voice_wakes = config.triggers.contains(&KioskTrigger::Voice);
    let (wake_frames, mut onsets) = spawn_wake(vad_model, threshold)?;
    let gate = EchoGate { threshold_dbfs: config.echo_gate_dbfs };
    let mut triggers_open = true;
    let mut complained = false;
    loop {
        let input = config.input.clone().unwrap_or_default();
        let output = config.output.clone().unwrap_or_default();
        let mut devices = match open_devices(input, output).await {
            Ok(devices) => {
                info!(microphone = %devices.mic.describe(), speaker = %devices.speaker.describe(), "kiosk: ready");
                (deps.screen)("kiosk: ready");
                complained = false;
                devices
            }
            Err(e) => {
                if !complained {
                    error!(error = %e, "kiosk: cannot open the audio devices; retrying every 5 s");
                    complained = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(REOPEN_AFTER) => continue,
                    () = cancel.cancelled() => return Ok(()),
                }
            }
        };
        loop {
            let Some(start) = wait_for_someone(
                &mut devices,
                &mut triggers,
                &mut triggers_open,
                voice_wakes.then_some(&wake_frames),
                &mut onsets,
                &cancel,
            )
            .await
            else {
                break;
            };
            let (by, action) = match start {
                Waited::Start(by, action) => (by, action),
                Waited::DevicesLost => break,
                Waited::Cancelled => return Ok(()),
            };
            let mut line = KioskLine::new(
                &mut devices.frames,
                &devices.speaker,
                &mut devices.speaker_events,
                &mut triggers,
                triggers_open,
                gate,
                deps.agents.clone(),
                Arc::clone(&deps.screen),
            );
            if action == KioskAction::Assist {
                line.pending.push_back(voicebot_live::LineEvent::PersonRequested);
            }
            visit(&deps, &mut line, by, cancel.child_token()).await;
            triggers_open = line.triggers_open();
            devices.speaker.stop();
            if cancel.is_cancelled() {
                return Ok(());
            }
            rest(&mut devices, config.rest, &cancel).await;
            while onsets.try_recv().is_ok() {}
        }
        if cancel.is_cancelled() {
            return Ok(());
        }
        warn!("kiosk: the audio devices stopped; reopening");
    }
}

/// One conversation at the kiosk.
async fn visit(deps: &KioskDeps, line: &mut KioskLine<'_>, by: KioskTrigger, cancel: CancellationToken) {
    let visit_id = format!("kiosk-{}", ulid::Ulid::new());
    let ticket_id = ulid::Ulid::new().to_string();
    let span = info_span!("visit", call_id = %visit_id, ticket_id = %ticket_id);
    async {
        info!(trigger = by.name(), "kiosk: conversation started");
        (deps.screen)("kiosk: conversation started");
        (deps.on_visit_start)();
        let caller = Caller { channel: Channel::Kiosk, line: Some(deps.kiosk_id.clone()), number: None };
        let setup = deps.live.setup(caller, ticket_id);
        let conversation = voicebot_live::run_conversation(line, setup, &deps.live, cancel, &visit_id).await;
        let outcome = conversation.outcome.code();
        info!(
            outcome,
            reason = conversation.outcome.reason().map(|r| r.code()),
            turns = conversation.intents.len(),
            "kiosk: conversation ended"
        );
        (deps.screen)(&format!("kiosk: conversation ended ({outcome})"));
        (deps.on_visit_end)(&VisitSummary { visit_id: visit_id.clone(), started_by: by, conversation });
    }
    .instrument(span)
    .await;
}

enum Waited {
    Start(KioskTrigger, KioskAction),
    DevicesLost,
    Cancelled,
}

/// Idle: listens for a voice (if enabled) and for triggers.
async fn wait_for_someone(
    devices: &mut Devices,
    triggers: &mut mpsc::Receiver<Trigger>,
    triggers_open: &mut bool,
    wake_frames: Option<&mpsc::Sender<Vec<f32>>>,
    onsets: &mut mpsc::Receiver<()>,
    cancel: &CancellationToken,
) -> Option<Waited> {
    loop {
        tokio::select! {
            frame = devices.frames.recv() => match frame {
                Some(pcm) => {
                    if let Some(wake) = wake_frames {
                        // The wake-up VAD behind: drop the frame (it only decides when to greet).
                        let _ = wake.try_send(pcm);
                    }
                }
                None => return Some(Waited::DevicesLost),
            },
            Some(()) = onsets.recv() => return Some(Waited::Start(KioskTrigger::Voice, KioskAction::Talk)),
            trigger = triggers.recv(), if *triggers_open => match trigger {
                Some(Trigger::Start { by, action }) => return Some(Waited::Start(by, action)),
                Some(Trigger::Typed(text)) => {
                    let action = if text.trim() == "0" { KioskAction::Assist } else { KioskAction::Talk };
                    return Some(Waited::Start(KioskTrigger::Key, action));
                }
                None => *triggers_open = false,
            },
            event = devices.speaker_events.recv() => {
                if let Some(SpeakerEvent::Failed(_)) | None = event {
                    return Some(Waited::DevicesLost);
                }
            }
            () = cancel.cancelled() => return Some(Waited::Cancelled),
        }
    }
}

/// Quiet time after a visit: microphone frames are read and dropped.
async fn rest(devices: &mut Devices, quiet: Duration, cancel: &CancellationToken) {
    let until = tokio::time::sleep(quiet);
    tokio::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return,
            frame = devices.frames.recv() => if frame.is_none() { return },
            _ = devices.speaker_events.recv() => {}
            () = cancel.cancelled() => return,
        }
    }
}

/// The wake-up VAD's thread: frames in, a `()` per onset of speech out.
fn spawn_wake(
    model: Arc<dyn voicebot_core::engine::VoiceActivityModel>,
    threshold: f32,
) -> Result<(mpsc::Sender<Vec<f32>>, mpsc::Receiver<()>), KioskError> {
    let (frames_tx, mut frames) = mpsc::channel::<Vec<f32>>(WAKE_QUEUE);
    let (onset_tx, onsets) = mpsc::channel(1);
    let mut vad = voicebot_conversation::FrameVad::new(model.as_ref(), threshold).map_err(|e| {
        error!(error = %e, "kiosk: the wake-up VAD cannot start");
        KioskError::NoVad
    })?;
    let started = std::thread::Builder::new().name("kiosk-wake".into()).spawn(move || {
        let mut wake = VoiceWake::default();
        while let Some(pcm) = frames.blocking_recv() {
            match vad.push(&pcm, None) {
                Ok(voice) => {
                    if voice.iter().any(|frame| wake.push(frame)) {
                        let _ = onset_tx.try_send(());
                    }
                }
                Err(e) => warn!(error = %e, "kiosk: the wake-up VAD failed on a frame"),
            }
        }
    });
    if let Err(e) = started {
        warn!(error = %e, "kiosk: cannot start the wake-up VAD thread; the voice trigger is off");
    }
    Ok((frames_tx, onsets))
}
