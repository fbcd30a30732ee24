//! Engines that a `model_update` job can replace while calls run.
//!
//! The daemon keeps its engines in an [`EngineSlot`] (`RwLock<Arc<Engines>>`,
//! like the analyzer). A job loads the candidate beside the engines in use,
//! self-tests it ([`self_test`]) and only then swaps the slot. What a call
//! already holds is untouched: its recogniser and VAD streams own their model
//! (`Arc`), and its analyzer is the one it started with. The phone line gets
//! [`proxies`]: each opens its streams on the engines current when the call
//! starts. Text-to-speech has no per-call state, so a call in progress speaks
//! its next prompt with the new voice — the self-test has checked that voice
//! first, and no call is dropped.

use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use voicebot_core::config::Config;
use voicebot_core::engine::{
    RecognitionOptions, RecognizerStream, SentenceEmbedder, SynthesizedAudio, VadStream,
};
use voicebot_core::manifest::{SAMPLE_CLIP, SAMPLE_CLIP_TEXT};
use voicebot_core::wer::word_error_rate;
use voicebot_core::{
    EngineError, Language, LanguageChoice, SpeechRecognizer, SpeechSynthesizer, VoiceActivityModel,
};
use voicebot_engines::loader::{Engines, ModelRole, model_store};

/// The most word errors a recogniser may make on the known clip.
pub(super) const MAX_CLIP_WER: f64 = 0.2;
/// The most word errors the recogniser may make on the new voice's sentence.
pub(super) const MAX_TTS_WER: f64 = 0.35;
/// How far the new embedder's cosine on the known pair may be from the one in use.
pub(super) const MAX_COSINE_DRIFT: f32 = 0.1;
const TTS_SENTENCE: &str = "Your new card is on its way and will arrive within five working days.";
const SIMILAR: [&str; 2] = ["I lost my credit card", "my card is missing"];
const UNRELATED: &str = "what time do you open tomorrow";

/// The engines in use; a swap affects new calls only.
pub(super) type EngineSlot = RwLock<Arc<Engines>>;

pub(super) fn current(slot: &EngineSlot) -> Arc<Engines> {
    Arc::clone(&slot.read().unwrap_or_else(|p| p.into_inner()))
}

pub(super) fn replace(slot: &EngineSlot, engines: Engines) {
    *slot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(engines);
}

/// Engines for the phone line that open each call's streams on the engines
/// current at that moment.
pub(super) fn proxies(slot: &Arc<EngineSlot>) -> Engines {
    let now = current(slot);
    Engines {
        asr: now.asr.as_ref().map(|_| Arc::new(AsrProxy(Arc::clone(slot))) as Arc<dyn SpeechRecognizer>),
        vad: now.vad.as_ref().map(|v| {
            Arc::new(VadProxy { slot: Arc::clone(slot), frame_len: v.frame_len() })
                as Arc<dyn VoiceActivityModel>
        }),
        tts: now.tts.as_ref().map(|_| Arc::new(TtsProxy(Arc::clone(slot))) as Arc<dyn SpeechSynthesizer>),
        // Calls reach the embedder through their analyzer, which is swapped with it.
        embedder: now.embedder.clone(),
    }
}

fn unloaded(engine: &'static str) -> EngineError {
    EngineError::Inference { engine, reason: "no longer loaded".into() }
}

struct AsrProxy(Arc<EngineSlot>);

impl SpeechRecognizer for AsrProxy {
    fn new_stream(&self) -> Result<Box<dyn RecognizerStream>, EngineError> {
        current(&self.0).asr.as_ref().ok_or_else(|| unloaded("ASR"))?.new_stream()
    }
}

struct VadProxy {
    slot: Arc<EngineSlot>,
    frame_len: usize,
}

impl VoiceActivityModel for VadProxy {
    fn frame_len(&self) -> usize {
        self.frame_len
    }

    fn new_stream(&self) -> Result<Box<dyn VadStream>, EngineError> {
        current(&self.slot).vad.as_ref().ok_or_else(|| unloaded("VAD"))?.new_stream()
    }
}

struct TtsProxy(Arc<EngineSlot>);

impl SpeechSynthesizer for TtsProxy {
    fn synthesize(
        &self,
        text: &str,
        language: &Language,
        rate: f32,
    ) -> Result<SynthesizedAudio, EngineError> {
        current(&self.0).tts.as_ref().ok_or_else(|| unloaded("TTS"))?.synthesize(text, language, rate)
    }
}

/// The known clip at 16 kHz.
fn sample_clip(config: &Config) -> Result<Vec<f32>, String> {
    let path = model_store(config).verified(SAMPLE_CLIP).map_err(|e| format!("the self-test clip: {e}"))?;
    let audio = voicebot_audio::read_wav(&path).map_err(|e| e.to_string())?;
    Ok(audio.at_rate(voicebot_audio::ENGINE_RATE).map_err(|e| e.to_string())?.samples)
}

fn transcribe(asr: &dyn SpeechRecognizer, pcm: &[f32]) -> Result<String, String> {
    let mut stream = asr.new_stream().map_err(|e| e.to_string())?;
    let options = RecognitionOptions { language: LanguageChoice::Fixed(Language::En) };
    Ok(stream.transcribe(pcm, &options).map_err(|e| e.to_string())?.text)
}

/// Checks the candidate engine for `role` in `engines`; `serving` are the
/// engines in use (the recogniser that judges a new voice, the embedder a new
/// one is compared with).
///
/// # Errors
/// What the candidate got wrong, with the numbers.
pub(super) fn self_test(
    config: &Config,
    role: ModelRole,
    engines: &Engines,
    serving: &Engines,
) -> Result<Value, String> {
    match role {
        ModelRole::AsrEnglish | ModelRole::AsrMultilingual => {
            let asr = engines.asr.as_deref().ok_or("the candidate recogniser is not loaded")?;
            let text = transcribe(asr, &sample_clip(config)?)?;
            let wer = word_error_rate(SAMPLE_CLIP_TEXT, &text);
            if wer > MAX_CLIP_WER {
                return Err(format!(
                    "{SAMPLE_CLIP} was heard as {text:?}: WER {wer:.2} > {MAX_CLIP_WER} against its known text"
                ));
            }
            Ok(
                json!({"test": "asr", "clip": SAMPLE_CLIP, "transcript": text, "wer": wer, "max_wer": MAX_CLIP_WER}),
            )
        }
        ModelRole::Vad => {
            let vad = engines.vad.as_deref().ok_or("the candidate VAD is not loaded")?;
            let clip = sample_clip(config)?;
            let speech = speech_frames(vad, &clip, config.vad.threshold)?;
            let silence = speech_frames(vad, &vec![0.0; clip.len()], config.vad.threshold)?;
            let frames = clip.len() / vad.frame_len().max(1);
            // The clip is mostly speech: at least a quarter of its frames must say so.
            if speech * 4 < frames || silence > 0 {
                return Err(format!(
                    "speech in {speech} of {frames} frames of {SAMPLE_CLIP} (need {}), and in {silence} frames of silence (need 0)",
                    frames.div_ceil(4)
                ));
            }
            Ok(json!({"test": "vad", "speech_frames": speech, "frames": frames, "silence_frames": silence}))
        }
        ModelRole::Tts => {
            let tts = engines.tts.as_deref().ok_or("the candidate voice is not loaded")?;
            let audio = tts.synthesize(TTS_SENTENCE, &Language::En, 1.0).map_err(|e| e.to_string())?;
            let rms = voicebot_audio::rms(&audio.samples);
            if audio.samples.is_empty() || rms < 0.005 {
                return Err(format!(
                    "the voice produced {} samples at RMS {rms:.4}: silence",
                    audio.samples.len()
                ));
            }
            let pcm =
                voicebot_audio::resample(&audio.samples, audio.sample_rate, voicebot_audio::ENGINE_RATE)
                    .map_err(|e| e.to_string())?;
            let asr = serving.asr.as_deref().ok_or("no recogniser to check the voice with")?;
            let text = transcribe(asr, &pcm)?;
            let wer = word_error_rate(TTS_SENTENCE, &text);
            if wer > MAX_TTS_WER {
                return Err(format!(
                    "the new voice saying {TTS_SENTENCE:?} was heard as {text:?}: WER {wer:.2} > {MAX_TTS_WER}"
                ));
            }
            Ok(
                json!({"test": "tts", "rms": rms, "seconds": audio.duration_seconds(), "heard": text, "wer": wer}),
            )
        }
        ModelRole::Embedder => {
            let candidate = engines.embedder.as_deref().ok_or("the candidate embedder is not loaded")?;
            let (similar, unrelated) = pair_cosines(candidate)?;
            let known = match serving.embedder.as_deref() {
                Some(e) => Some(pair_cosines(e)?.0),
                None => None,
            };
            let drift = known.map(|k| (k - similar).abs());
            if similar - unrelated < 0.2 || drift.is_some_and(|d| d > MAX_COSINE_DRIFT) {
                return Err(format!(
                    "cosine {similar:.3} for {SIMILAR:?} (in use: {known:?}, allowed drift {MAX_COSINE_DRIFT}), {unrelated:.3} against {UNRELATED:?}"
                ));
            }
            Ok(json!({"test": "embedder", "cosine": similar, "known": known, "unrelated": unrelated}))
        }
    }
}

fn speech_frames(vad: &dyn VoiceActivityModel, pcm: &[f32], threshold: f32) -> Result<usize, String> {
    let mut stream = vad.new_stream().map_err(|e| e.to_string())?;
    let mut speech = 0;
    for frame in pcm.chunks_exact(vad.frame_len().max(1)) {
        if stream.speech_probability(frame).map_err(|e| e.to_string())? >= threshold {
            speech += 1;
        }
    }
    Ok(speech)
}

fn pair_cosines(embedder: &dyn SentenceEmbedder) -> Result<(f32, f32), String> {
    let v = embedder.embed(&[SIMILAR[0], SIMILAR[1], UNRELATED]).map_err(|e| e.to_string())?;
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    match v.as_slice() {
        [a, b, c] => Ok((dot(a, b), dot(a, c))),
        _ => Err("the embedder returned the wrong number of vectors".into()),
    }
}
