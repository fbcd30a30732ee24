//! A conversation's engine threads: voice activity per frame, recognition and
//! understanding, speech synthesis. Each owns its per-call engine state and
//! talks to the call task over bounded channels, so inference never runs on
//! the reactor and one slow engine never stalls the others.
//!
//! Overload policy: caller audio is offered to the VAD with `try_send`; when
//! the VAD falls more than [`VAD_QUEUE`] frames behind, frames are dropped and
//! counted (turn-taking degrades, the call goes on). Recognition and speech
//! jobs are few per turn and wait for room. Threads end when the call drops its
//! senders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::warn;
use voicebot_audio::ENGINE_RATE;
use voicebot_conversation::{FrameVad, Mouth, Understanding};
use voicebot_dialog::call::{Input, Prompt, PromptId, UtteranceId, VoiceFrame};

/// Caller frames (20 ms) the VAD may fall behind before frames are dropped.
pub(crate) const VAD_QUEUE: usize = 50;

/// Bot speech on its way to the line: 16 kHz mono, as [`crate::Line::play`] takes it.
#[derive(Debug)]
pub(crate) enum Spoken {
    Chunk { prompt: PromptId, samples: Vec<f32>, last: bool, level_db: f32 },
    Failed { prompt: PromptId, error: String },
}

pub(crate) enum MouthJob {
    Prepare(Prompt),
    Speak(Prompt),
}

/// The call task's ends of the worker channels.
pub(crate) struct Workers {
    pub(crate) audio: mpsc::Sender<(Vec<f32>, Instant)>,
    pub(crate) voice: mpsc::Receiver<(VoiceFrame, Instant)>,
    pub(crate) ear: mpsc::Sender<(UtteranceId, Vec<f32>)>,
    pub(crate) heard: mpsc::Receiver<Input>,
    pub(crate) mouth: mpsc::Sender<MouthJob>,
    pub(crate) spoken: mpsc::Receiver<Spoken>,
    pub(crate) dropped_frames: Arc<AtomicU64>,
    rtf: Arc<Mutex<RealTime>>,
}

/// Real-time factors measured on the engine threads (processing / audio time).
#[derive(Debug, Default)]
struct RealTime {
    asr: Vec<f32>,
    tts: Vec<f32>,
}

fn lock_rtf(rtf: &Mutex<RealTime>) -> std::sync::MutexGuard<'_, RealTime> {
    rtf.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Workers {
    /// Starts the three threads for one call.
    pub(crate) fn start(
        call_id: &str,
        mut vad: FrameVad,
        mut understanding: Understanding,
        mut mouth: Mouth,
    ) -> Workers {
        let (audio_tx, mut audio_rx) = mpsc::channel::<(Vec<f32>, Instant)>(VAD_QUEUE);
        let (voice_tx, voice_rx) = mpsc::channel(VAD_QUEUE * 2);
        let name = |what: &str| format!("{what}-{}", call_id.chars().take(8).collect::<String>());
        let vad_call = call_id.to_owned();
        spawn(name("vad"), move || {
            while let Some((pcm, at)) = audio_rx.blocking_recv() {
                match vad.push(&pcm, None) {
                    Ok(frames) => {
                        for frame in frames {
                            if voice_tx.blocking_send((frame, at)).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => warn!(call_id = %vad_call, error = %e, "VAD failed on a frame"),
                }
            }
        });

        let (ear_tx, mut ear_rx) = mpsc::channel::<(UtteranceId, Vec<f32>)>(4);
        let (heard_tx, heard_rx) = mpsc::channel(4);
        let ear_call = call_id.to_owned();
        let rtf = Arc::new(Mutex::new(RealTime::default()));
        let ear_rtf = Arc::clone(&rtf);
        spawn(name("ear"), move || {
            while let Some((utterance, pcm)) = ear_rx.blocking_recv() {
                let started = Instant::now();
                let heard = understanding.hear(&pcm);
                if !pcm.is_empty() {
                    let audio_s = pcm.len() as f32 / ENGINE_RATE as f32;
                    lock_rtf(&ear_rtf).asr.push(started.elapsed().as_secs_f32() / audio_s);
                }
                let input = match heard {
                    Ok((analysis, asr_confidence)) => {
                        Input::Heard { utterance, analysis: Box::new(analysis), asr_confidence }
                    }
                    Err(e) => {
                        warn!(call_id = %ear_call, error = %e, "recognition failed; the caller is asked again");
                        Input::NotHeard { utterance }
                    }
                };
                if heard_tx.blocking_send(input).is_err() {
                    return;
                }
            }
        });

        let (mouth_tx, mut mouth_rx) = mpsc::channel::<MouthJob>(4);
        let (spoken_tx, spoken) = mpsc::channel(8);
        let tts_rtf = Arc::clone(&rtf);
        spawn(name("tts"), move || {
            while let Some(job) = mouth_rx.blocking_recv() {
                let sent = match job {
                    MouthJob::Prepare(prompt) => {
                        if let Err(e) = mouth.prepare(&prompt) {
                            warn!(error = %e, "could not prepare a prompt; it is synthesised when spoken");
                        }
                        Ok(())
                    }
                    MouthJob::Speak(prompt) => speak(&mut mouth, &prompt, &spoken_tx, &tts_rtf),
                };
                if sent.is_err() {
                    return;
                }
            }
        });

        Workers {
            audio: audio_tx,
            voice: voice_rx,
            ear: ear_tx,
            heard: heard_rx,
            mouth: mouth_tx,
            spoken,
            dropped_frames: Arc::new(AtomicU64::new(0)),
            rtf,
        }
    }

    /// The recognition and synthesis real-time factors measured so far.
    pub(crate) fn real_time_factors(&self) -> (Vec<f32>, Vec<f32>) {
        let rtf = lock_rtf(&self.rtf);
        (rtf.asr.clone(), rtf.tts.clone())
    }

    /// Offers a caller frame to the VAD; drops and counts it when the VAD is behind.
    pub(crate) fn hear_frame(&self, pcm: Vec<f32>, at: Instant) {
        if self.audio.try_send((pcm, at)).is_err() {
            self.dropped_frames.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn spawn(name: String, work: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.clone()).spawn(work) {
        warn!(thread = %name, error = %e, "cannot start an engine thread");
    }
}

/// Synthesises a prompt first sentence first and sends each part at 16 kHz,
/// recording each part's real-time factor (prepared prompts count, near 0).
fn speak(
    mouth: &mut Mouth,
    prompt: &Prompt,
    out: &mpsc::Sender<Spoken>,
    rtf: &Mutex<RealTime>,
) -> Result<(), ()> {
    let record = |started: Instant, samples: &[f32]| {
        if !samples.is_empty() {
            let audio_s = samples.len() as f32 / ENGINE_RATE as f32;
            lock_rtf(rtf).tts.push(started.elapsed().as_secs_f32() / audio_s);
        }
    };
    let started = Instant::now();
    let to_line = |audio: &voicebot_core::engine::SynthesizedAudio| -> Result<(Vec<f32>, f32), String> {
        let wide = voicebot_audio::resample(&audio.samples, audio.sample_rate, ENGINE_RATE)
            .map_err(|e| e.to_string())?;
        let level = voicebot_conversation::level_db(&wide);
        Ok((wide, level))
    };
    let send = |message: Spoken| out.blocking_send(message).map_err(|_| ());
    let first = mouth.start(prompt).map_err(|e| e.to_string()).and_then(|u| {
        let rate = u.audio.sample_rate;
        to_line(&u.audio).map(|line| (line, rate))
    });
    let ((samples, level_db), rate) = match first {
        Ok(first) => first,
        Err(error) => return send(Spoken::Failed { prompt: prompt.id, error }),
    };
    record(started, &samples);
    let has_rest = !voicebot_conversation::first_sentence_split(&prompt.text).1.is_empty();
    // The first sentence goes to the line before the rest is synthesised.
    send(Spoken::Chunk { prompt: prompt.id, samples, last: !has_rest, level_db })?;
    if !has_rest {
        return Ok(());
    }
    let started = Instant::now();
    match mouth.rest(prompt, rate).map_err(|e| e.to_string()).and_then(|a| to_line(&a)) {
        Ok((samples, level_db)) => {
            record(started, &samples);
            send(Spoken::Chunk { prompt: prompt.id, samples, last: true, level_db })
        }
        Err(error) => send(Spoken::Failed { prompt: prompt.id, error }),
    }
}
