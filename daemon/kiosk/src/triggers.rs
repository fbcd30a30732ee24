//! What starts a kiosk conversation: a line on stdin, a GPIO button, a fleet
//! command (the daemon sends those), and (in [`crate::visit`]) voice.
//!
//! Each source is a small thread or task feeding one bounded channel; a
//! source that cannot work (stdin closed, the GPIO file unreadable) logs once
//! and stops without taking the others down.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voicebot_core::config::{KioskAction, KioskTrigger};

/// How often the GPIO line file is read.
const GPIO_POLL: Duration = Duration::from_millis(50);

/// Triggers waiting to be taken.
pub const TRIGGER_QUEUE: usize = 16;

/// Something that happened at the kiosk besides audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Start a conversation (ignored while one is running, except `Assist`,
    /// which asks for a person in the running one).
    Start { by: KioskTrigger, action: KioskAction },
    /// A line typed on stdin: between conversations it starts one (`0`: with a
    /// person); during one, `0` alone asks for a person and other lines are
    /// keys (digits, `*`, `#`; the end of a line of digits acts as `#`).
    Typed(String),
}

/// Reads stdin lines into `out` until stdin closes (under systemd it is
/// /dev/null: the source ends at once, quietly).
pub fn spawn_stdin(out: mpsc::Sender<Trigger>) {
    let started = std::thread::Builder::new().name("kiosk-stdin".into()).spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::stdin().read_line(&mut line) {
                Ok(0) => {
                    info!("kiosk: stdin closed; the key trigger is off");
                    return;
                }
                Ok(_) => {
                    if out.blocking_send(Trigger::Typed(line.trim().to_owned())).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    warn!(error = %e, "kiosk: cannot read stdin; the key trigger is off");
                    return;
                }
            }
        }
    });
    if let Err(e) = started {
        warn!(error = %e, "kiosk: cannot start the stdin reader; the key trigger is off");
    }
}

/// Whether a GPIO value file's content is "pressed" (`1`, as sysfs writes it).
pub(crate) fn gpio_pressed(content: &str) -> bool {
    content.trim() == "1"
}

/// Polls a GPIO value file on its own thread (a sysfs read never waits on
/// the reactor); each change to 1 sends `action`, until `cancel`.
pub fn spawn_gpio(path: PathBuf, action: KioskAction, out: mpsc::Sender<Trigger>, cancel: CancellationToken) {
    let started = std::thread::Builder::new().name("kiosk-gpio".into()).spawn(move || {
        let mut was_pressed = None;
        let mut complained = false;
        while !cancel.is_cancelled() && !out.is_closed() {
            std::thread::sleep(GPIO_POLL);
            let pressed = match std::fs::read_to_string(&path) {
                Ok(content) => {
                    complained = false;
                    gpio_pressed(&content)
                }
                Err(e) => {
                    if !complained {
                        warn!(file = %path.display(), error = %e, "kiosk: cannot read the GPIO line; retrying");
                        complained = true;
                    }
                    continue;
                }
            };
            // The first reading is the resting state, not a press.
            if pressed && was_pressed == Some(false) {
                let _ = out.try_send(Trigger::Start { by: KioskTrigger::Gpio, action });
            }
            was_pressed = Some(pressed);
        }
    });
    if let Err(e) = started {
        warn!(error = %e, "kiosk: cannot start the GPIO poller; the GPIO trigger is off");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_values_read_as_pressed_or_not() {
        assert!(gpio_pressed("1\n"));
        assert!(!gpio_pressed("0\n"));
        assert!(!gpio_pressed(""));
    }

    #[test]
    fn a_gpio_press_is_a_rising_edge_not_the_resting_level() {
        let dir = std::env::temp_dir().join(format!("kiosk-gpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("value");
        std::fs::write(&file, "1\n").unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        spawn_gpio(file.clone(), KioskAction::Assist, tx, cancel.clone());
        std::thread::sleep(GPIO_POLL * 4);
        assert!(rx.try_recv().is_err(), "a line already at 1 at start is not a press");
        std::fs::write(&file, "0\n").unwrap();
        std::thread::sleep(GPIO_POLL * 3);
        std::fs::write(&file, "1\n").unwrap();
        std::thread::sleep(GPIO_POLL * 3);
        assert_eq!(
            rx.try_recv().unwrap(),
            Trigger::Start { by: KioskTrigger::Gpio, action: KioskAction::Assist }
        );
        assert!(rx.try_recv().is_err(), "one press, one trigger");
        cancel.cancel();
        let _ = std::fs::remove_dir_all(dir);
    }
}
