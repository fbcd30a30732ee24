//! `voicebotd devices [--json]`: the sound devices the kiosk can use, by the
//! names `[kiosk] input` and `[kiosk] output` take, with their default formats.

use serde_json::json;
use voicebot_kiosk::devices::{DeviceInfo, inventory};

use crate::error::CliError;

pub(crate) fn run(json: bool) -> Result<(), CliError> {
    let devices = inventory().map_err(|e| CliError::Failed(e.to_string()))?;
    if devices.is_empty() {
        return Err(CliError::Failed(
            "no audio devices found: no sound card, or ALSA cannot see it (check `aplay -l`, `arecord -l` and \
             that the service user is in the `audio` group); the phone line does not need one"
                .into(),
        ));
    }
    for device in &devices {
        if json {
            println!("{}", line_json(device));
        } else {
            println!("{}", line_text(device));
        }
    }
    Ok(())
}

fn line_json(device: &DeviceInfo) -> serde_json::Value {
    json!({
        "name": device.name,
        "description": device.description,
        "input": device.input,
        "output": device.output,
    })
}

fn line_text(device: &DeviceInfo) -> String {
    let format = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
    format!(
        "{}\tinput: {}\toutput: {}\t{}",
        device.name,
        format(&device.input),
        format(&device.output),
        device.description
    )
}
