//! The clip set, made reproducibly.
//!
//! - `jfk`: the 11 s JFK clip from the model directory.
//! - `tts-*`: short hotline sentences spoken by voicebotd's own Piper voice
//!   (exactly what `voicebotd say TEXT --out FILE` writes), 22.05 kHz.
//! - `call-*`: the bundled 8 kHz espeak-ng calls, with the text from make.sh.
//!
//! Each clip is also written as raw little-endian f32 at 16 kHz (resampled with
//! `voicebot_audio::resample`, as the engines get it) for the Python peer.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use voicebot_audio::ENGINE_RATE;
use voicebot_core::Language;
use voicebot_engines::loader::{self, EngineNeeds};

use crate::stats;

/// Short hotline sentences (2-4 s when spoken), with known text.
pub(crate) const HOTLINE_SENTENCES: [&str; 8] = [
    "Hello, I would like to check the status of my order.",
    "My package has not arrived yet, can you help me?",
    "Can I speak to a real person, please?",
    "I want to cancel my subscription today.",
    "What time does your store close on Sunday?",
    "My credit card was charged twice this month.",
    "Please send me a new password by email.",
    "The delivery address on my order is wrong.",
];

pub(crate) const JFK_TEXT: &str = "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

/// One clip of the set, as listed in `clips.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClipInfo {
    pub(crate) id: String,
    /// "jfk" or "short".
    pub(crate) set: String,
    pub(crate) source: String,
    pub(crate) reference: String,
    pub(crate) wav: PathBuf,
    pub(crate) pcm16k_f32: PathBuf,
    pub(crate) seconds: f64,
}

/// A clip loaded for benchmarking: 16 kHz samples.
pub(crate) struct Clip {
    pub(crate) info: ClipInfo,
    pub(crate) pcm: Vec<f32>,
}

impl Clip {
    pub(crate) fn is_jfk(&self) -> bool {
        self.info.set == "jfk"
    }
}

pub(crate) fn make(out: &Path, calls: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let config = stats::config("")?;
    let mut clips = Vec::new();

    let jfk = config.models.dir.join("samples/jfk.wav");
    let wav = out.join("jfk.wav");
    std::fs::copy(&jfk, &wav).with_context(|| format!("copy {}", jfk.display()))?;
    clips.push(finish(out, "jfk", "jfk", "whisper.cpp samples/jfk.wav", JFK_TEXT, &wav)?);

    let engines = loader::load(&config, EngineNeeds { tts: true, ..Default::default() })?;
    let tts = engines.tts.context("TTS not loaded")?;
    for (i, text) in HOTLINE_SENTENCES.iter().enumerate() {
        let id = format!("tts-{}", i + 1);
        let audio = tts.synthesize(text, &Language::En, config.tts.rate)?;
        let wav = out.join(format!("{id}.wav"));
        voicebot_audio::write_wav(&wav, &audio.samples, audio.sample_rate)?;
        clips.push(finish(out, &id, "short", "Piper en_US-joe-medium", text, &wav)?);
    }

    for (name, text) in call_texts(&calls.join("make.sh"))? {
        let wav = calls.join(format!("{name}.wav"));
        clips.push(finish(
            out,
            &format!("call-{name}"),
            "short",
            "espeak-ng, 8 kHz (tests/fixtures/calls)",
            &text,
            &wav,
        )?);
    }

    let index = out.join("clips.json");
    std::fs::write(&index, serde_json::to_string_pretty(&clips)?)?;
    for clip in &clips {
        println!("{:<16} {:5.2} s  {}", clip.id, clip.seconds, clip.reference);
    }
    println!("wrote {}", index.display());
    Ok(())
}

fn finish(out: &Path, id: &str, set: &str, source: &str, reference: &str, wav: &Path) -> Result<ClipInfo> {
    let audio = voicebot_audio::read_wav(wav)?;
    let pcm = audio.at_rate(ENGINE_RATE)?.samples;
    let raw = out.join(format!("{id}.16k.f32"));
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&raw, bytes)?;
    Ok(ClipInfo {
        id: id.to_owned(),
        set: set.to_owned(),
        source: source.to_owned(),
        reference: reference.to_owned(),
        wav: wav.to_path_buf(),
        pcm16k_f32: raw,
        seconds: audio.duration_seconds(),
    })
}

/// `(name, text)` of every `say NAME VOICE "TEXT"` line of the calls' make.sh.
fn call_texts(make_sh: &Path) -> Result<Vec<(String, String)>> {
    let script = std::fs::read_to_string(make_sh).with_context(|| format!("read {}", make_sh.display()))?;
    let calls: Vec<(String, String)> = script
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("say ")?;
            let mut words = rest.splitn(3, ' ');
            let name = words.next()?;
            let _voice = words.next()?;
            let text = words.next()?.trim().trim_matches('"');
            Some((name.to_owned(), text.to_owned()))
        })
        .collect();
    if calls.is_empty() {
        bail!("no `say` lines in {}", make_sh.display());
    }
    Ok(calls)
}

/// Loads the clip set `clips::make` wrote.
pub(crate) fn load(dir: &Path) -> Result<Vec<Clip>> {
    let index = dir.join("clips.json");
    let text = std::fs::read_to_string(&index)
        .with_context(|| format!("read {} (run `voicebot-bench clips` first)", index.display()))?;
    let infos: Vec<ClipInfo> = serde_json::from_str(&text)?;
    infos
        .into_iter()
        .map(|info| {
            let bytes = std::fs::read(&info.pcm16k_f32)?;
            let pcm = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok(Clip { info, pcm })
        })
        .collect()
}
