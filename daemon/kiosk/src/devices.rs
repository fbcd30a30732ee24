//! The kiosk's sound devices, as the operator names them in `[kiosk] input`
//! and `[kiosk] output`: enumeration for `voicebotd devices`, lookup by name,
//! and the errors an operator can act on.
//!
//! A device's name is its host id: on Linux (cpal's ALSA host) the ALSA PCM
//! name, e.g. `plughw:CARD=USB,DEV=0` or a PCM defined in an asoundrc such as
//! `kiosk_mic`. The empty name means the host's default device. Nothing here
//! panics when there is no sound hardware at all: that is [`DeviceError::NoDevice`].

use std::fmt;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{DeviceId, SupportedStreamConfig};

/// Which way audio flows through a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Capture: a microphone.
    Input,
    /// Playback: a speaker.
    Output,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Input => "input",
            Direction::Output => "output",
        })
    }
}

/// One device of the default host, as `voicebotd devices` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// What `[kiosk] input`/`output` takes: the host's id for the device
    /// (on Linux the ALSA PCM name, e.g. `plughw:CARD=USB,DEV=0` or `kiosk_mic`).
    pub name: String,
    /// The host's human-readable description (one line).
    pub description: String,
    /// The default capture format, e.g. `48000 Hz, 2 ch, i16`; `None`: not usable as an input.
    pub input: Option<String>,
    /// The default playback format; `None`: not usable as an output.
    pub output: Option<String>,
}

/// What went wrong with a sound device. Messages say what failed, on which
/// device, and what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The configured name matches no device; `available` are the devices
    /// that open in that direction (what `voicebotd devices` lists).
    #[error(
        "no audio {direction} device named {wanted:?}; the {direction} devices are: {}. \
         Run `voicebotd devices` to list them with their formats, and set [kiosk] {direction} to one of the names",
        list(.available)
    )]
    NotFound { direction: Direction, wanted: String, available: Vec<String> },
    /// There is no default device of that direction (no sound card, or none that opens).
    #[error(
        "no audio {direction} device found; connect one (a USB {} works), or name one in [kiosk] {direction} \
         (`voicebotd devices` lists what the system has)",
        if *.direction == Direction::Input { "microphone" } else { "speaker" }
    )]
    NoDevice { direction: Direction },
    /// The device offers no sample format the kiosk can convert.
    #[error("audio {direction} device {device:?}: no usable sample format: {reason}")]
    Format { direction: Direction, device: String, reason: String },
    /// Opening or running the stream failed, or the stream has died (device unplugged).
    #[error("audio {direction} device {device:?}: {reason}")]
    Stream { direction: Direction, device: String, reason: String },
    /// The audio system itself is unavailable or failed.
    #[error("audio system: {0}")]
    Backend(String),
    /// A clip given to the speaker cannot be converted (e.g. a zero sample rate).
    #[error("cannot play the clip: {0}")]
    Clip(String),
    /// The speaker's queue already holds as much audio as it accepts.
    #[error(
        "the speaker queue is full ({} s queued, at most {} s); wait for Finished events or stop() first",
        queued.as_secs(), limit.as_secs()
    )]
    QueueFull { queued: Duration, limit: Duration },
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "(none)".to_owned() } else { names.join(", ") }
}

/// Every device of the default host, with its default formats.
///
/// Each listed device is opened briefly to read its formats; devices that open
/// in neither direction (e.g. an ALSA `jack` PCM with no JACK server) are left
/// out. This call blocks for as long as the devices take to open.
///
/// # Errors
/// [`DeviceError::Backend`] when the audio system cannot be used at all.
pub fn inventory() -> Result<Vec<DeviceInfo>, DeviceError> {
    // Probing every PCM makes alsa-lib print its own complaints ("cannot get
    // card index", "unable to connect") on stderr; keep them off this thread's
    // stderr: what matters is in the list and in our errors.
    #[cfg(target_os = "linux")]
    let _quiet = alsa::Output::local_error_handler();
    let host = host()?;
    let devices = host.devices().map_err(|e| DeviceError::Backend(format!("cannot list devices: {e}")))?;
    let mut out = Vec::new();
    for device in devices {
        let Some(name) = device_name(&device) else { continue };
        let input = default_format(&device, Direction::Input);
        let output = default_format(&device, Direction::Output);
        if input.is_none() && output.is_none() {
            continue;
        }
        out.push(DeviceInfo { name, description: description(&device), input, output });
    }
    Ok(out)
}

/// The host that the kiosk uses: cpal's default (ALSA on Linux), chosen without
/// cpal's panicking `default_host()`.
pub(crate) fn host() -> Result<cpal::Host, DeviceError> {
    let mut reasons = Vec::new();
    for id in cpal::available_hosts() {
        match cpal::host_from_id(id) {
            Ok(host) => return Ok(host),
            Err(e) => reasons.push(format!("{}: {e}", id.name())),
        }
    }
    Err(DeviceError::Backend(format!("no audio host is available ({})", list(&reasons))))
}

/// A device, chosen by name as [`DeviceInfo::name`] shows it; `""` is the host default.
pub(crate) struct Chosen {
    pub(crate) device: cpal::Device,
    /// The name to show: the device's id, or `default`.
    pub(crate) name: String,
    pub(crate) config: SupportedStreamConfig,
}

/// Finds `wanted` for `direction` and reads its default stream format.
///
/// # Errors
/// [`DeviceError::NotFound`] for an unknown name, [`DeviceError::NoDevice`]
/// when `wanted` is empty and the default device does not open,
/// [`DeviceError::Stream`] when a named device exists but does not open.
pub(crate) fn choose(direction: Direction, wanted: &str) -> Result<Chosen, DeviceError> {
    let host = host()?;
    let wanted = wanted.trim();
    let device = if wanted.is_empty() {
        let default = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        default.ok_or(DeviceError::NoDevice { direction })?
    } else {
        find(&host, direction, wanted)?
    };
    let config = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    };
    let name = device_name(&device).unwrap_or_else(|| wanted.to_owned());
    let config = config.map_err(|e| {
        if wanted.is_empty() {
            tracing::warn!(%direction, device = %name, error = %e, "the default audio device does not open");
            DeviceError::NoDevice { direction }
        } else {
            DeviceError::Stream { direction, device: name.clone(), reason: open_failure(&e) }
        }
    })?;
    Ok(Chosen { name, device, config })
}

fn find(host: &cpal::Host, direction: Direction, wanted: &str) -> Result<cpal::Device, DeviceError> {
    let devices = host.devices().map_err(|e| DeviceError::Backend(format!("cannot list devices: {e}")))?;
    let mut candidates = Vec::new();
    for device in devices {
        if device_name(&device).as_deref() == Some(wanted) {
            return Ok(device);
        }
        candidates.push(device);
    }
    // Other spellings of a listed device, e.g. `hw:0,0` for `hw:CARD=0,DEV=0`.
    if let Some(device) = host.device_by_id(&DeviceId::new(host.id(), wanted)) {
        return Ok(device);
    }
    // The same list as `voicebotd devices`: those that open in this direction.
    let available = candidates
        .iter()
        .filter(|d| default_format(d, direction).is_some())
        .filter_map(device_name)
        .collect();
    Err(DeviceError::NotFound { direction, wanted: wanted.to_owned(), available })
}

/// The device's default format for `direction`, if it opens that way.
fn default_format(device: &cpal::Device, direction: Direction) -> Option<String> {
    let config = match direction {
        Direction::Input if device.supports_input() => device.default_input_config(),
        Direction::Output if device.supports_output() => device.default_output_config(),
        _ => return None,
    };
    config.ok().map(|c| format_label(&c))
}

fn device_name(device: &cpal::Device) -> Option<String> {
    device.id().ok().map(|id| id.id().to_owned())
}

fn description(device: &cpal::Device) -> String {
    match device.description() {
        Ok(d) => {
            let lines: Vec<&str> = d.extended().collect();
            if lines.is_empty() { d.name().to_owned() } else { lines.join(" - ") }
        }
        Err(_) => String::new(),
    }
}

/// The stream configs to try for a device's default format, best first:
/// periods of about `period` when the device's range allows it, then the
/// device's own choice.
pub(crate) fn stream_configs(config: &SupportedStreamConfig, period: Duration) -> Vec<cpal::StreamConfig> {
    let default = config.config();
    let frames = (f64::from(default.sample_rate) * period.as_secs_f64()).round() as u32;
    let mut configs = Vec::with_capacity(2);
    if let cpal::SupportedBufferSize::Range { min, max } = *config.buffer_size()
        && (min..=max).contains(&frames)
    {
        configs.push(cpal::StreamConfig { buffer_size: cpal::BufferSize::Fixed(frames), ..default });
    }
    configs.push(default);
    configs
}

/// `48000 Hz, 2 ch, i16`.
pub(crate) fn format_label(config: &SupportedStreamConfig) -> String {
    format!("{} Hz, {} ch, {}", config.sample_rate(), config.channels(), config.sample_format())
}

/// A cpal error from opening a device, in words that suggest a fix.
pub(crate) fn open_failure(e: &cpal::Error) -> String {
    use cpal::ErrorKind as K;
    let hint = match e.kind() {
        K::DeviceBusy => " (another program is using it)",
        K::PermissionDenied => " (the service user needs the `audio` group or the sound device access)",
        K::DeviceNotAvailable => " (is it plugged in?)",
        K::UnsupportedOperation => " (it cannot be used in this direction)",
        _ => "",
    };
    format!("cannot open: {e}{hint}")
}

/// Stream errors after which the stream delivers nothing more.
pub(crate) fn fatal(e: &cpal::Error) -> Option<String> {
    use cpal::ErrorKind as K;
    match e.kind() {
        K::DeviceNotAvailable => Some(format!("the device is gone (unplugged?): {e}")),
        K::StreamInvalidated | K::DeviceChanged => Some(format!("the stream must be reopened: {e}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_lists_the_devices_and_points_at_the_devices_command() {
        let e = DeviceError::NotFound {
            direction: Direction::Input,
            wanted: "usb-mic".into(),
            available: vec!["default".into(), "kiosk_mic".into()],
        };
        let text = e.to_string();
        assert!(text.contains("\"usb-mic\""), "{text}");
        assert!(text.contains("default, kiosk_mic"), "{text}");
        assert!(text.contains("voicebotd devices"), "{text}");
        assert!(text.contains("[kiosk] input"), "{text}");
    }

    #[test]
    fn no_device_says_what_is_missing() {
        let text = DeviceError::NoDevice { direction: Direction::Input }.to_string();
        assert!(text.starts_with("no audio input device found;"), "{text}");
        assert!(text.contains("microphone"), "{text}");
        let text = DeviceError::NoDevice { direction: Direction::Output }.to_string();
        assert!(text.contains("speaker"), "{text}");
    }

    #[test]
    fn an_empty_list_reads_as_none() {
        let e = DeviceError::NotFound { direction: Direction::Output, wanted: "x".into(), available: vec![] };
        assert!(e.to_string().contains("are: (none)."), "{e}");
    }
}
