//! The device layer through the real cpal/ALSA path, on the virtual sound
//! card of `voicebotd/tests/common/sound.rs` (a private PulseAudio server
//! behind two ALSA PCMs): enumeration, capture of a played WAV, playback that
//! a recording hears, barge-in stop, and unknown names.
//!
//! One server serves the whole binary (ALSA reads its configuration once per
//! process); the tests that use the speaker sink take turns.

#[path = "../../voicebotd/tests/common/sound.rs"]
mod sound;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sound::VirtualSound;
use tokio::time::timeout;
use voicebot_audio::{ENGINE_RATE, read_wav, resample, rms};
use voicebot_kiosk::devices::{DeviceError, Direction, inventory};
use voicebot_kiosk::microphone::Microphone;
use voicebot_kiosk::speaker::{Speaker, SpeakerEvent};

/// A 1.4 s spoken "front centre", 48 kHz mono (alsa-utils).
const SPEECH: &str = "/usr/share/sounds/alsa/Front_Center.wav";

fn card() -> Option<&'static VirtualSound> {
    static CARD: OnceLock<Option<VirtualSound>> = OnceLock::new();
    CARD.get_or_init(|| {
        let card = VirtualSound::start("kiosk-devices")?;
        // SAFETY: every test calls card() before touching audio, and the
        // initialiser runs once while the others wait on the OnceLock.
        unsafe { card.export_env() };
        Some(card)
    })
    .as_ref()
}

/// Serialises the tests that play to (and record) the speaker sink.
async fn speaker_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

fn speech() -> voicebot_audio::Audio {
    assert!(Path::new(SPEECH).exists(), "{SPEECH} is missing (apt-get install alsa-utils)");
    read_wav(Path::new(SPEECH)).unwrap()
}

/// RMS per 20 ms.
fn envelope(samples: &[f32], rate: u32) -> Vec<f32> {
    samples.chunks(rate as usize / 50).map(rms).collect()
}

/// Frames (of an envelope) louder than a quiet room.
fn loud(envelope: &[f32]) -> usize {
    envelope.iter().filter(|&&e| e > 0.01).count()
}

/// The best normalised correlation of `b` shifted against `a`, and the shift.
fn best_match(a: &[f32], b: &[f32]) -> (f32, usize) {
    let norm = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-9);
    let nb = norm(b);
    (0..a.len().saturating_sub(b.len()) + 1)
        .map(|lag| {
            let window = &a[lag..(lag + b.len()).min(a.len())];
            let dot: f32 = window.iter().zip(b).map(|(x, y)| x * y).sum();
            (dot / (norm(window) * nb), lag)
        })
        .fold((0.0, 0), |best, c| if c.0 > best.0 { c } else { best })
}

#[test]
fn inventory_lists_the_virtual_microphone_and_speaker_with_their_directions() {
    let Some(_card) = card() else { return };
    let devices = inventory().unwrap();
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    let mic = devices.iter().find(|d| d.name == sound::MIC).unwrap_or_else(|| panic!("{names:?}"));
    let speaker = devices.iter().find(|d| d.name == sound::SPEAKER).unwrap_or_else(|| panic!("{names:?}"));
    assert!(mic.input.as_deref().is_some_and(|f| f.contains(" Hz, ")), "{mic:?}");
    assert_eq!(mic.output, None, "{mic:?}");
    assert!(mic.description.contains("Kiosk test microphone"), "{mic:?}");
    assert!(speaker.output.as_deref().is_some_and(|f| f.contains(" Hz, ")), "{speaker:?}");
    assert_eq!(speaker.input, None, "{speaker:?}");
}

#[tokio::test]
async fn the_microphone_delivers_a_played_wav_as_16_khz_frames_in_real_time() {
    let Some(card) = card() else { return };
    let original = speech();
    let (mic, mut frames) = Microphone::open(sound::MIC).unwrap();
    assert!(mic.describe().starts_with("kiosk_mic ("), "{}", mic.describe());

    let started = Instant::now();
    let mut player = None;
    let mut captured = Vec::new();
    while started.elapsed() < Duration::from_millis(3000) {
        if player.is_none() && started.elapsed() > Duration::from_millis(500) {
            player = Some(card.play_to_mic(Path::new(SPEECH)));
        }
        let frame = timeout(Duration::from_secs(2), frames.recv()).await.unwrap().expect("microphone closed");
        assert_eq!(frame.len(), 320);
        captured.extend(frame);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(player.unwrap().wait().unwrap().success());
    assert_eq!(mic.dropped_frames(), 0);

    // Paced like a sound card: as much audio as time went by (less what the
    // device buffers, plus the first callback's burst).
    let seconds = captured.len() as f64 / f64::from(ENGINE_RATE);
    assert!((seconds - elapsed).abs() < 0.3, "{seconds:.2} s of audio in {elapsed:.2} s");

    // Silent before the caller speaks, then the speech, as long as the WAV's.
    let heard = envelope(&captured, ENGINE_RATE);
    assert!(heard[..15].iter().all(|&e| e < 0.001), "{:?}", &heard[..15]);
    let reference =
        envelope(&resample(&original.samples, original.sample_rate, ENGINE_RATE).unwrap(), ENGINE_RATE);
    let (heard_loud, reference_loud) = (loud(&heard), loud(&reference));
    assert!(
        heard_loud.abs_diff(reference_loud) <= 5,
        "loud frames: heard {heard_loud}, in the WAV {reference_loud}"
    );
    let (correlation, lag) = best_match(&heard, &reference);
    eprintln!(
        "{}: {seconds:.2} s in {elapsed:.2} s; loud frames {heard_loud} (WAV {reference_loud}); \
         correlation {correlation:.3} at {lag}",
        mic.describe()
    );
    assert!(correlation > 0.9, "envelope correlation {correlation:.3} at {lag} frames");
    assert!((20..60).contains(&lag), "speech started {lag} frames in, expected about 25 (0.5 s)");
}

#[tokio::test]
async fn the_speaker_plays_a_clip_that_a_recording_hears_and_reports_finished_on_time() {
    let Some(card) = card() else { return };
    let _turn = speaker_turn().await;
    let clip = resample(&speech().samples, 48_000, 16_000).unwrap();
    let clip_seconds = clip.len() as f64 / 16_000.0;
    let (speaker, mut events) = Speaker::open(sound::SPEAKER).unwrap();
    assert!(speaker.describe().starts_with("kiosk_speaker ("), "{}", speaker.describe());
    assert!(!speaker.is_playing());

    let recording = card.record_speaker(&card.dir().join("finished.wav"));
    let started = Instant::now();
    let id = speaker.play(&clip, 16_000).unwrap();
    assert!(speaker.is_playing());
    let event = timeout(Duration::from_secs(5), events.recv()).await.unwrap();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(event, Some(SpeakerEvent::Finished(id)));
    assert!(!speaker.is_playing());
    assert!(
        took > clip_seconds - 0.25 && took < clip_seconds + 0.5,
        "Finished after {took:.2} s for a {clip_seconds:.2} s clip"
    );
    tokio::time::sleep(speaker.latency() + Duration::from_millis(500)).await;
    let wav = recording.finish();

    let recorded = read_wav(&wav).unwrap();
    assert_eq!(recorded.sample_rate, 16_000);
    let heard = envelope(&recorded.samples, 16_000);
    let reference = envelope(&clip, 16_000);
    let (heard_loud, reference_loud) = (loud(&heard), loud(&reference));
    assert!(
        heard_loud.abs_diff(reference_loud) <= 5,
        "loud frames: heard {heard_loud}, in the clip {reference_loud}"
    );
    let (correlation, lag) = best_match(&heard, &reference);
    eprintln!(
        "{}: Finished after {took:.2} s ({clip_seconds:.2} s clip); loud frames {heard_loud} (clip \
         {reference_loud}); correlation {correlation:.3} at {lag}",
        speaker.describe()
    );
    assert!(correlation > 0.9, "envelope correlation {correlation:.3} at {lag} frames");
}

#[tokio::test]
async fn stop_cuts_a_long_clip_at_once_and_reports_it_stopped() {
    let Some(card) = card() else { return };
    let _turn = speaker_turn().await;
    let speech = resample(&speech().samples, 48_000, 16_000).unwrap();
    let long: Vec<f32> = speech.iter().copied().cycle().take(speech.len() * 8).collect();
    let (speaker, mut events) = Speaker::open(sound::SPEAKER).unwrap();
    let recording = card.record_speaker(&card.dir().join("stopped.wav"));

    let first = speaker.play(&long, 16_000).unwrap();
    let second = speaker.play(&speech, 16_000).unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(speaker.is_playing());
    let stopping = Instant::now();
    speaker.stop();
    let event = timeout(Duration::from_millis(200), events.recv()).await.expect("no Stopped within 200 ms");
    assert!(stopping.elapsed() < Duration::from_millis(100), "{:?}", stopping.elapsed());
    assert_eq!(event, Some(SpeakerEvent::Stopped(vec![first, second])));
    assert!(!speaker.is_playing());
    assert_eq!(speaker.queued(), Duration::ZERO);
    // Nothing else comes: the clips are gone, not finished.
    assert!(timeout(Duration::from_millis(300), events.recv()).await.is_err());

    tokio::time::sleep(Duration::from_millis(300)).await;
    let recorded = read_wav(&recording.finish()).unwrap();
    // About one second was heard, not the clip's eleven.
    let heard = envelope(&recorded.samples, 16_000);
    let first_loud = heard.iter().position(|&e| e > 0.01).expect("nothing was heard");
    let last_loud = heard.iter().rposition(|&e| e > 0.01).unwrap_or(first_loud);
    let span = (last_loud - first_loud + 1) as f64 * 0.02;
    eprintln!("heard {span:.2} s of a clip stopped after 1 s; latency {:?}", speaker.latency());
    assert!(span > 0.6 && span < 1.0 + speaker.latency().as_secs_f64() + 0.2, "heard {span:.2} s");
    // The speaker still works after a stop.
    let again = speaker.play(&speech[..1600], 16_000).unwrap();
    let event = timeout(Duration::from_secs(2), events.recv()).await.unwrap();
    assert_eq!(event, Some(SpeakerEvent::Finished(again)));
}

#[test]
fn an_unknown_name_is_not_found_and_the_error_lists_the_devices() {
    let Some(_card) = card() else { return };
    let Err(e) = Microphone::open("no_such_mic") else { panic!("opened a device that does not exist") };
    let DeviceError::NotFound { direction, wanted, available } = &e else { panic!("{e}") };
    assert_eq!((*direction, wanted.as_str()), (Direction::Input, "no_such_mic"));
    assert!(available.iter().any(|n| n == sound::MIC), "{available:?}");
    assert!(e.to_string().contains("voicebotd devices"), "{e}");

    let Err(e) = Speaker::open("no_such_speaker") else { panic!("opened a device that does not exist") };
    let DeviceError::NotFound { direction, available, .. } = &e else { panic!("{e}") };
    assert_eq!(*direction, Direction::Output);
    assert!(available.iter().any(|n| n == sound::SPEAKER), "{available:?}");
}

#[test]
fn a_device_used_in_the_wrong_direction_is_a_clear_error_not_a_panic() {
    let Some(_card) = card() else { return };
    let Err(e) = Speaker::open(sound::MIC) else { panic!("played to a capture-only device") };
    assert!(matches!(e, DeviceError::Stream { direction: Direction::Output, .. }), "{e}");
    assert!(e.to_string().contains("kiosk_mic"), "{e}");
}
