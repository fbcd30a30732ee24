//! One utterance understood: intent, slots, emotion — the facade the
//! `understand` command and the conversation use.
//!
//! [`Analysis::masked`] is the only form that may leave the process: its
//! text and slot values have PII masked. The raw form stays in call state.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use voicebot_core::engine::SentenceEmbedder;
use voicebot_core::{EngineError, Language};

use crate::emotion::{AcousticFeatures, Emotion, EmotionEstimator};
use crate::intent::{IntentClassifier, IntentResult};
use crate::pack::KnowledgePack;
use crate::pii;
use crate::slots::{self, Slot, SlotKind};

/// Everything understood about one utterance (raw: may hold PII).
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub text: String,
    pub language: Language,
    pub intent: IntentResult,
    pub slots: Vec<Slot>,
    pub emotion: Emotion,
}

/// The printable, publishable form of an [`Analysis`] (the `understand` contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskedAnalysis {
    pub text: String,
    pub language: String,
    pub intent: String,
    pub confidence: f32,
    pub slots: BTreeMap<String, String>,
    pub emotion: Emotion,
    pub sensitive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faq: Option<String>,
}

impl Analysis {
    /// The form with PII masked, safe to log, print or publish.
    pub fn masked(&self) -> MaskedAnalysis {
        let slots = self
            .slots
            .iter()
            .map(|s| {
                let value = match s.kind {
                    SlotKind::Phone => pii::mask_phone(&s.value),
                    _ => pii::mask(&s.value, &self.language),
                };
                (s.kind.name().to_owned(), value)
            })
            .collect();
        MaskedAnalysis {
            text: pii::mask(&self.text, &self.language),
            language: self.language.code().to_owned(),
            intent: self.intent.intent.clone(),
            confidence: (self.intent.confidence * 1000.0).round() / 1000.0,
            slots,
            emotion: self.emotion,
            sensitive: self.intent.sensitive,
            faq: self.intent.faq.clone(),
        }
    }
}

/// The loaded understanding models for one pack.
pub struct Analyzer {
    classifier: IntentClassifier,
    emotion: EmotionEstimator,
}

impl Analyzer {
    /// # Errors
    /// Fails when the embedder fails while indexing the pack.
    pub fn new(
        pack: Arc<KnowledgePack>,
        embedder: Option<Arc<dyn SentenceEmbedder>>,
        emotion: EmotionEstimator,
    ) -> Result<Analyzer, EngineError> {
        Ok(Analyzer { classifier: IntentClassifier::new(pack, embedder)?, emotion })
    }

    pub fn pack(&self) -> &Arc<KnowledgePack> {
        self.classifier.pack()
    }

    /// Understands `text`; `audio` (with the call's baseline) adds acoustic emotion cues.
    ///
    /// # Errors
    /// Fails only when the embedder fails.
    pub fn analyze(
        &self,
        text: &str,
        language: &Language,
        audio: Option<&AcousticFeatures>,
        baseline: Option<&AcousticFeatures>,
    ) -> Result<Analysis, EngineError> {
        let intent = self.classifier.classify(text, language)?;
        let slots = slots::extract(text, language, self.pack());
        let emotion = crate::emotion::fusion::with_intent(
            self.emotion.estimate(text, language, audio, baseline),
            &intent.intent,
        );
        Ok(Analysis { text: text.to_owned(), language: language.clone(), intent, slots, emotion })
    }
}
