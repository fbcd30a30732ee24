//! English sentence embeddings: all-MiniLM-L6-v2 through ONNX Runtime.
//!
//! `models/` builds the ONNX graph from the published safetensors with mean
//! pooling and L2 normalisation inside it, so the output `sentence_embedding`
//! is ready for cosine similarity. Tokenisation uses the model's own
//! `tokenizer.json` through the `tokenizers` crate. The session is shared
//! behind a mutex; an utterance embeds in a few milliseconds.

use std::path::Path;
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::Tokenizer;
use voicebot_core::engine::SentenceEmbedder;
use voicebot_core::{EngineError, Language};

use crate::accelerator;

const ENGINE: &str = "MiniLM";
/// Longer inputs are cut; caller turns are far shorter.
const MAX_TOKENS: usize = 128;

pub struct MiniLmEmbedder {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    languages: [Language; 1],
}

impl MiniLmEmbedder {
    /// # Errors
    /// `Load` when the model or tokenizer cannot be loaded.
    pub fn load(environment: &Environment, model: &Path, tokenizer: &Path) -> Result<Self, EngineError> {
        let load_err = |path: &Path, reason: String| EngineError::Load {
            engine: ENGINE,
            path: path.to_path_buf(),
            reason,
        };
        let session = accelerator::session(environment, model).map_err(|e| load_err(model, e.to_string()))?;
        let mut tokenizer =
            Tokenizer::from_file(tokenizer).map_err(|e| load_err(tokenizer, e.to_string()))?;
        // The published tokenizer.json pads every input to 128 tokens. Padding
        // is done here per batch, with the mask marking only real tokens:
        // pooling over [PAD] tokens would make every sentence look alike.
        tokenizer.with_padding(None);
        Ok(MiniLmEmbedder { session: Mutex::new(session), tokenizer, languages: [Language::En] })
    }
}

fn inference(reason: impl ToString) -> EngineError {
    EngineError::Inference { engine: ENGINE, reason: reason.to_string() }
}

impl SentenceEmbedder for MiniLmEmbedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // One by one: `encode_batch` goes through rayon, which was seen to
        // deadlock on tokio's blocking threads; the model still runs batched.
        let encodings = texts
            .iter()
            .map(|text| self.tokenizer.encode(*text, true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(inference)?;
        let len = encodings.iter().map(|e| e.get_ids().len().min(MAX_TOKENS)).max().unwrap_or(1).max(1);
        let mut ids = vec![0i64; texts.len() * len];
        let mut mask = vec![0i64; texts.len() * len];
        for (row, encoding) in encodings.iter().enumerate() {
            let real = encoding.get_ids().iter().zip(encoding.get_attention_mask()).take(len);
            for (col, (&id, &attend)) in real.enumerate() {
                ids[row * len + col] = i64::from(id);
                mask[row * len + col] = i64::from(attend);
            }
        }
        let shape = [texts.len(), len];
        let ids = Tensor::from_array((shape, ids)).map_err(inference)?;
        let mask = Tensor::from_array((shape, mask)).map_err(inference)?;
        let mut session = self.session.lock().map_err(|_| inference("session lock poisoned"))?;
        let outputs =
            session.run(ort::inputs!["input_ids" => ids, "attention_mask" => mask]).map_err(inference)?;
        let output =
            outputs.get("sentence_embedding").ok_or_else(|| inference("no sentence_embedding output"))?;
        let (shape, data) = output.try_extract_tensor::<f32>().map_err(inference)?;
        let dim = shape.last().copied().unwrap_or(0) as usize;
        if dim == 0 || data.len() != dim * texts.len() {
            return Err(inference(format!("unexpected output shape {shape:?}")));
        }
        Ok(data.chunks(dim).map(<[f32]>::to_vec).collect())
    }

    fn languages(&self) -> &[Language] {
        &self.languages
    }
}
