//! Silero VAD v6 through ONNX Runtime.
//!
//! The model takes 512 new samples at 16 kHz plus the last 64 samples of the
//! previous frame as context, and carries a `[2, 1, 128]` recurrent state. The
//! session is loaded once and shared behind a mutex (inference per 32 ms frame
//! is well under a millisecond); each call gets its own state and context.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use voicebot_core::EngineError;
use voicebot_core::engine::{VadStream, VoiceActivityModel};

use crate::accelerator;

const FRAME: usize = 512;
const CONTEXT: usize = 64;
const STATE: usize = 2 * 128;
const ENGINE: &str = "Silero VAD";

/// The loaded Silero model.
pub struct SileroVad {
    session: Arc<Mutex<Session>>,
}

impl SileroVad {
    /// Loads the model into an ONNX Runtime environment.
    ///
    /// # Errors
    /// `Load` when ONNX Runtime rejects the file.
    pub fn load(environment: &Environment, model: &Path) -> Result<SileroVad, EngineError> {
        let load_err =
            |reason: String| EngineError::Load { engine: ENGINE, path: model.to_path_buf(), reason };
        let session = accelerator::session(environment, model).map_err(|e| load_err(e.to_string()))?;
        Ok(SileroVad { session: Arc::new(Mutex::new(session)) })
    }
}

impl VoiceActivityModel for SileroVad {
    fn frame_len(&self) -> usize {
        FRAME
    }

    fn new_stream(&self) -> Result<Box<dyn VadStream>, EngineError> {
        Ok(Box::new(SileroStream {
            session: Arc::clone(&self.session),
            state: vec![0.0; STATE],
            input: vec![0.0; CONTEXT + FRAME],
        }))
    }
}

struct SileroStream {
    session: Arc<Mutex<Session>>,
    state: Vec<f32>,
    /// Context followed by the current frame.
    input: Vec<f32>,
}

fn inference(reason: impl ToString) -> EngineError {
    EngineError::Inference { engine: ENGINE, reason: reason.to_string() }
}

impl VadStream for SileroStream {
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, EngineError> {
        if frame.len() != FRAME {
            return Err(inference(format!("frame of {} samples, expected {FRAME}", frame.len())));
        }
        self.input.copy_within(FRAME.., 0);
        self.input[CONTEXT..].copy_from_slice(frame);
        let input = Tensor::from_array(([1usize, CONTEXT + FRAME], self.input.clone())).map_err(inference)?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone())).map_err(inference)?;
        let rate = Tensor::from_array(((), vec![16_000i64])).map_err(inference)?;
        let mut session = self.session.lock().map_err(|_| inference("session lock poisoned"))?;
        let outputs =
            session.run(ort::inputs!["input" => input, "state" => state, "sr" => rate]).map_err(inference)?;
        let (_, probability) = outputs[0].try_extract_tensor::<f32>().map_err(inference)?;
        let (_, next_state) = outputs[1].try_extract_tensor::<f32>().map_err(inference)?;
        if next_state.len() != STATE || probability.is_empty() {
            return Err(inference("unexpected output shapes"));
        }
        self.state.copy_from_slice(next_state);
        Ok(probability[0])
    }
}
