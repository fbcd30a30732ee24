//! A sound device that disappears mid-stream (here: the virtual card's
//! server dies) ends capture and playback cleanly: the microphone's frame
//! receiver closes, the speaker reports `Failed` and refuses new clips, and
//! nothing panics or hangs.
//!
//! One test in this binary: it sets the process environment that ALSA reads.

#[path = "../../voicebotd/tests/common/sound.rs"]
mod sound;

use std::time::{Duration, Instant};

use tokio::time::timeout;
use voicebot_kiosk::devices::DeviceError;
use voicebot_kiosk::microphone::{self, Microphone};
use voicebot_kiosk::speaker::{Speaker, SpeakerEvent};

#[tokio::test]
async fn when_the_device_goes_away_the_microphone_closes_and_the_speaker_fails() {
    let Some(card) = sound::VirtualSound::start("kiosk-unplug") else { return };
    // SAFETY: the only test of this binary, before any audio thread exists.
    unsafe { card.export_env() };
    let (mic, mut frames) = Microphone::open(sound::MIC).unwrap();
    let (speaker, mut events) = Speaker::open(sound::SPEAKER).unwrap();
    timeout(Duration::from_secs(2), frames.recv()).await.unwrap().expect("no audio before the unplug");
    speaker.play(&vec![0.1; 16_000 * 10], 16_000).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let unplugged = Instant::now();
    drop(card);

    let deadline = microphone::STALL + Duration::from_secs(3);
    loop {
        match timeout(deadline.saturating_sub(unplugged.elapsed()), frames.recv()).await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => panic!("the microphone did not close within {:?} of the unplug", unplugged.elapsed()),
        }
    }
    eprintln!("microphone closed {:?} after the unplug", unplugged.elapsed());

    let event = timeout(deadline.saturating_sub(unplugged.elapsed()), events.recv()).await;
    let Ok(Some(SpeakerEvent::Failed(reason))) = event else { panic!("expected Failed, got {event:?}") };
    eprintln!("speaker failed {:?} after the unplug: {reason}", unplugged.elapsed());
    let refused = speaker.play(&[0.0; 160], 16_000);
    assert!(matches!(refused, Err(DeviceError::Stream { .. })), "{refused:?}");
    assert!(!speaker.is_playing());

    // Closing them after the failure does not hang, even where the dead
    // stream's own teardown does (ALSA's pulse plugin can deadlock in
    // libpulse once the server is gone): each waits at most 2 s for it.
    let closing = Instant::now();
    drop((mic, speaker));
    assert!(closing.elapsed() < Duration::from_secs(5), "{:?}", closing.elapsed());
}
