//! A box with no sound card: the defaults fail with operator-readable
//! errors, never a panic. Needs no audio packages: ALSA is pointed at a
//! configuration whose default PCM is a card that does not exist.
//!
//! One test in this binary: it sets the process environment that ALSA reads.

use voicebot_kiosk::devices::{DeviceError, Direction, inventory};
use voicebot_kiosk::microphone::Microphone;
use voicebot_kiosk::speaker::Speaker;

#[test]
fn without_a_sound_card_opening_the_defaults_says_no_device_and_nothing_panics() {
    let dir = std::env::temp_dir().join(format!("voicebot-kiosk-no-device-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("asoundrc");
    std::fs::write(&conf, "pcm.!default { type hw card 99 device 0 }\nctl.!default { type hw card 99 }\n")
        .unwrap();
    // SAFETY: the only test of this binary, before anything else runs.
    unsafe {
        std::env::set_var("ALSA_CONFIG_PATH", &conf);
        std::env::remove_var("PULSE_SERVER");
    }

    let Err(e) = Microphone::open("") else { panic!("opened a microphone on a card that does not exist") };
    assert!(matches!(e, DeviceError::NoDevice { direction: Direction::Input }), "{e}");
    assert!(e.to_string().starts_with("no audio input device found;"), "{e}");

    let Err(e) = Speaker::open("") else { panic!("opened a speaker on a card that does not exist") };
    assert!(matches!(e, DeviceError::NoDevice { direction: Direction::Output }), "{e}");

    let Err(e) = Microphone::open("usb_mic") else { panic!("opened a device that does not exist") };
    assert!(matches!(e, DeviceError::NotFound { direction: Direction::Input, .. }), "{e}");
    assert!(e.to_string().contains("voicebotd devices"), "{e}");

    // Listing is fine too: whatever the host has, and no panic.
    inventory().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
