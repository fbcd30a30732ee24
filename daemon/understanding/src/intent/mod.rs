//! Intent classification against a knowledge pack.
//!
//! Evidence, strongest first:
//! 1. An explicit request for a person ("agent", "real person", "转人工", …,
//!    and the pack's `human_agent` keywords) always wins.
//! 2. A keyword of a sensitive intent (e.g. "stolen", "盗刷") wins next, so a
//!    caller reporting fraud is never answered by the bot.
//! 3. An utterance equal to an example (after dropping fillers) takes that
//!    example's intent: this is what short answers ("yes", "对") need.
//! 4. Otherwise the score of each intent fuses its best n-gram TF-IDF
//!    similarity, its best sentence-embedding similarity (English, when an
//!    embedder is loaded) and whether one of its keywords occurs.
//!
//! Below the pack's threshold the result is `out_of_scope`, not a guess.

mod ngrams;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use regex::Regex;

use serde::Serialize;
use voicebot_core::engine::SentenceEmbedder;
use voicebot_core::{EngineError, Language};

use crate::pack::KnowledgePack;
use crate::slots::contains_phrase;
use ngrams::{SparseVector, TfIdf, cosine, words};

/// Phrases that always mean "give me a person" (a contract; packs add more).
pub const HANDOVER_PHRASES: [&str; 12] = [
    "agent",
    "representative",
    "real person",
    "operator",
    "human being",
    "a human",
    "转人工",
    "人工客服",
    "真人",
    "人工服务",
    "客服人员",
    "找人工",
];

/// Requests for a person phrased as a construction rather than a keyword:
/// a verb of talking or connecting followed by a person ("talk to someone",
/// "put me through to a colleague", "帮我叫个客服", "找个人").
static HANDOVER_CONSTRUCTIONS: LazyLock<[Regex; 3]> = LazyLock::new(|| {
    [
        r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:someone|somebody|anyone|anybody|a\s+(?:person|human|colleague|staff\s+member|live\s+person|real\s+person)|staff|customer\s+service|your\s+(?:staff|team|colleague))\b",
        r"\b(?:get|put|connect|transfer|pass)\s+me\s+(?:to|through\s+to|with|over\s+to)\s+(?:someone|somebody|anyone|a\s+(?:person|human|colleague)|staff|customer\s+service)\b",
        r"(?:叫|找|转|接|换|让)(?:个|一个|一下|位)?(?:客服|人工|真人|经理|工作人员|店员|活人|人来|人跟我)",
    ]
    .map(|p| Regex::new(p).expect("hand-over pattern"))
});

/// The result for one utterance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentResult {
    pub intent: String,
    /// In [0, 1]. For `out_of_scope`, how far the best intent fell short.
    pub confidence: f32,
    /// The FAQ entry the utterance matched, if any.
    pub faq: Option<String>,
    pub sensitive: bool,
}

struct Example {
    intent: usize,
    faq: Option<usize>,
    key: String,
    vector: SparseVector,
    embedding: Option<Vec<f32>>,
}

struct LanguageIndex {
    tfidf: TfIdf,
    examples: Vec<Example>,
}

/// A classifier built for one pack; rebuild it when the pack changes.
pub struct IntentClassifier {
    pack: Arc<KnowledgePack>,
    indexes: BTreeMap<Language, LanguageIndex>,
    embedder: Option<Arc<dyn SentenceEmbedder>>,
}

/// Weights of the fused score (they sum to 1 within each case).
const WEIGHT_EMBEDDING: f32 = 0.55;
const WEIGHT_NGRAM_WITH_EMBEDDING: f32 = 0.30;
const WEIGHT_NGRAM: f32 = 0.6;
const WEIGHT_KEYWORD_WITH_EMBEDDING: f32 = 0.15;
const WEIGHT_KEYWORD: f32 = 0.4;
/// The raw fused score that separates in-scope from out-of-scope best, per
/// mode, found by leave-one-out over the default pack's own examples (see
/// `leave_one_out_threshold_grid` in voicebotd's `nlu_eval` tests). Raw scores
/// are mapped so that this cut becomes confidence 0.5.
const CUT_WITH_EMBEDDING: f32 = 0.25;
const CUT_NGRAM_ONLY: f32 = 0.12;

/// Maps a raw fused score to a confidence: `cut` → 0.5, linear on each side.
fn calibrate(raw: f32, cut: f32) -> f32 {
    let raw = raw.clamp(0.0, 1.0);
    if raw < cut { 0.5 * raw / cut } else { 0.5 + 0.5 * (raw - cut) / (1.0 - cut) }
}

/// An intent's n-gram score mixes its nearest and second-nearest examples.
const NEAREST_WEIGHT: f32 = 0.8;
/// An FAQ answers when its phrasing is at least this similar.
const FAQ_MIN_SIMILARITY: f32 = 0.6;

fn key(text: &str) -> String {
    words(text).join(" ")
}

impl IntentClassifier {
    /// Indexes every example and FAQ phrasing of `pack`; embeds the ones in the
    /// embedder's languages.
    ///
    /// # Errors
    /// Fails when the embedder fails.
    pub fn new(
        pack: Arc<KnowledgePack>,
        embedder: Option<Arc<dyn SentenceEmbedder>>,
    ) -> Result<Self, EngineError> {
        let mut indexes = BTreeMap::new();
        for language in &pack.languages {
            let mut texts: Vec<(usize, Option<usize>, &str)> = Vec::new();
            for (i, intent) in pack.intents.iter().enumerate() {
                for text in intent.examples.get(language).into_iter().flatten() {
                    texts.push((i, None, text));
                }
            }
            for (f, faq) in pack.faqs.iter().enumerate() {
                let Some(i) = pack.intents.iter().position(|x| x.name == faq.intent) else { continue };
                for text in faq.phrasings.get(language).into_iter().flatten() {
                    texts.push((i, Some(f), text));
                }
            }
            let tfidf = TfIdf::fit(texts.iter().map(|t| t.2));
            let embeddings = match &embedder {
                Some(e) if e.languages().contains(language) => {
                    let batch: Vec<&str> = texts.iter().map(|t| t.2).collect();
                    embed_in_batches(e.as_ref(), &batch)?.into_iter().map(Some).collect()
                }
                _ => vec![None; texts.len()],
            };
            let examples = texts
                .iter()
                .zip(embeddings)
                .map(|(&(intent, faq, text), embedding)| Example {
                    intent,
                    faq,
                    key: key(text),
                    vector: tfidf.vector(text),
                    embedding,
                })
                .collect();
            indexes.insert(language.clone(), LanguageIndex { tfidf, examples });
        }
        Ok(IntentClassifier { pack, indexes, embedder })
    }

    pub fn pack(&self) -> &Arc<KnowledgePack> {
        &self.pack
    }

    fn result(&self, intent: &str, confidence: f32, faq: Option<String>) -> IntentResult {
        let sensitive = self.pack.intent(intent).is_some_and(|i| i.sensitive);
        IntentResult { intent: intent.to_owned(), confidence: confidence.clamp(0.0, 1.0), faq, sensitive }
    }

    /// Classifies one utterance.
    ///
    /// # Errors
    /// Fails only when the embedder fails.
    pub fn classify(&self, text: &str, language: &Language) -> Result<IntentResult, EngineError> {
        self.classify_inner(text, language, false)
    }

    /// Classifies a pack example as if it were not in the pack (leave-one-out),
    /// for calibrating weights and thresholds on the pack itself rather than on
    /// held-out evaluation data.
    ///
    /// # Errors
    /// Fails only when the embedder fails.
    pub fn classify_held_out(&self, text: &str, language: &Language) -> Result<IntentResult, EngineError> {
        self.classify_inner(text, language, true)
    }

    /// Accuracy of leave-one-out over the pack's own examples in `language`,
    /// for each confidence cut in `cuts`: the data weights and cuts are
    /// calibrated on (never the held-out evaluation set). Set the pack's
    /// threshold to 0 to see every cut.
    ///
    /// # Errors
    /// Fails only when the embedder fails.
    pub fn leave_one_out_accuracy(
        &self,
        language: &Language,
        cuts: &[f32],
    ) -> Result<Vec<(f32, f64)>, EngineError> {
        let mut results = Vec::new();
        for intent in &self.pack.intents {
            for text in intent.examples.get(language).into_iter().flatten() {
                results.push((intent.name.as_str(), self.classify_held_out(text, language)?));
            }
        }
        let accuracy = |cut: f32| {
            let right = results
                .iter()
                .filter(|(expected, got)| {
                    let below = got.intent != "out_of_scope" && got.confidence < cut;
                    *expected == if below { "out_of_scope" } else { got.intent.as_str() }
                })
                .count();
            right as f64 / results.len().max(1) as f64
        };
        Ok(cuts.iter().map(|&cut| (cut, accuracy(cut))).collect())
    }

    fn classify_inner(
        &self,
        text: &str,
        language: &Language,
        hold_out: bool,
    ) -> Result<IntentResult, EngineError> {
        let lower = text.to_lowercase();
        if self.asks_for_person(&lower) {
            return Ok(self.result("human_agent", 1.0, None));
        }
        if let Some(intent) = self.sensitive_keyword(&lower) {
            return Ok(self.result(&intent, 0.95, None));
        }
        let language = if self.indexes.contains_key(language) { language } else { &self.pack.languages[0] };
        let Some(index) = self.indexes.get(language) else {
            return Ok(self.result("out_of_scope", 1.0, None));
        };
        let query_key = key(text);
        if query_key.is_empty() {
            return Ok(self.result("out_of_scope", 1.0, None));
        }
        if let Some(example) = index.examples.iter().find(|e| e.key == query_key && !hold_out) {
            let faq = example.faq.map(|f| self.pack.faqs[f].id.clone());
            return Ok(self.result(&self.pack.intents[example.intent].name, 0.99, faq));
        }

        let query = index.tfidf.vector(text);
        let query_embedding = match &self.embedder {
            Some(e) if e.languages().contains(language) => e.embed(&[text])?.pop(),
            _ => None,
        };
        let n = self.pack.intents.len();
        let mut ngram = vec![0.0f32; n];
        let mut ngram_second = vec![0.0f32; n];
        let mut embedded = vec![0.0f32; n];
        let mut best_faq: Vec<Option<(f32, usize)>> = vec![None; n];
        // The best similarity of each intent's own (non-FAQ) examples: an FAQ
        // answers only when one of its phrasings is nearer than all of them.
        let mut best_plain = vec![0.0f32; n];
        for example in index.examples.iter().filter(|e| !(hold_out && e.key == query_key)) {
            let sim = cosine(&query, &example.vector);
            let i = example.intent;
            if sim > ngram[i] {
                ngram_second[i] = ngram[i];
                ngram[i] = sim;
            } else {
                ngram_second[i] = ngram_second[i].max(sim);
            }
            let mut faq_sim = sim;
            if let (Some(q), Some(e)) = (&query_embedding, &example.embedding) {
                let sim = dot(q, e);
                embedded[i] = embedded[i].max(sim);
                faq_sim = faq_sim.max(sim);
            }
            match example.faq {
                Some(f) if best_faq[i].is_none_or(|(s, _)| faq_sim > s) => best_faq[i] = Some((faq_sim, f)),
                Some(_) => {}
                None => best_plain[i] = best_plain[i].max(faq_sim),
            }
        }
        for i in 0..n {
            ngram[i] = NEAREST_WEIGHT * ngram[i] + (1.0 - NEAREST_WEIGHT) * ngram_second[i];
        }
        let scores: Vec<f32> = (0..n)
            .map(|i| {
                let keyword = f32::from(u8::from(self.has_keyword(i, language, &lower)));
                if query_embedding.is_some() {
                    WEIGHT_EMBEDDING * embedded[i]
                        + WEIGHT_NGRAM_WITH_EMBEDDING * ngram[i]
                        + WEIGHT_KEYWORD_WITH_EMBEDDING * keyword
                } else {
                    WEIGHT_NGRAM * ngram[i] + WEIGHT_KEYWORD * keyword
                }
            })
            .collect();
        let cut = if query_embedding.is_some() { CUT_WITH_EMBEDDING } else { CUT_NGRAM_ONLY };
        let (best, raw) =
            scores.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((0, 0.0));
        let score = calibrate(raw, cut);
        let name = &self.pack.intents[best].name;
        if score < self.pack.out_of_scope_threshold || name == "out_of_scope" {
            let shortfall = if name == "out_of_scope" { score } else { 1.0 - score };
            return Ok(self.result("out_of_scope", shortfall, None));
        }
        let faq = best_faq[best]
            .filter(|(sim, _)| *sim >= FAQ_MIN_SIMILARITY && *sim > best_plain[best])
            .map(|(_, f)| self.pack.faqs[f].id.clone());
        Ok(self.result(name, score, faq))
    }

    fn asks_for_person(&self, lower: &str) -> bool {
        let pack_phrases =
            self.pack.intent("human_agent").into_iter().flat_map(|i| i.keywords.values().flatten());
        HANDOVER_PHRASES
            .iter()
            .copied()
            .chain(pack_phrases.map(String::as_str))
            .any(|p| contains_phrase(lower, &p.to_lowercase()))
            || HANDOVER_CONSTRUCTIONS.iter().any(|re| re.is_match(lower))
    }

    fn sensitive_keyword(&self, lower: &str) -> Option<String> {
        self.pack
            .intents
            .iter()
            .filter(|i| i.sensitive)
            .find(|i| i.keywords.values().flatten().any(|k| contains_phrase(lower, &k.to_lowercase())))
            .map(|i| i.name.clone())
    }

    fn has_keyword(&self, intent: usize, language: &Language, lower: &str) -> bool {
        self.pack.intents[intent]
            .keywords
            .get(language)
            .is_some_and(|ks| ks.iter().any(|k| contains_phrase(lower, &k.to_lowercase())))
    }
}

fn embed_in_batches(embedder: &dyn SentenceEmbedder, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(32) {
        out.extend(embedder.embed(chunk)?);
    }
    Ok(out)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_maps_the_cut_to_one_half_and_keeps_order() {
        assert_eq!(calibrate(0.25, 0.25), 0.5);
        assert_eq!(calibrate(0.0, 0.25), 0.0);
        assert_eq!(calibrate(1.0, 0.25), 1.0);
        assert!(calibrate(0.3, 0.25) > calibrate(0.2, 0.25));
    }
}
