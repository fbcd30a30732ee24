//! Calibration of the n-gram-only mode (no embedder): leave-one-out over the
//! default pack's own examples, printing accuracy per confidence cut. This is
//! where `CUT_NGRAM_ONLY` in `intent/mod.rs` comes from; the product with
//! embeddings is calibrated and evaluated in voicebotd's `nlu_eval` tests.
//! Run: `cargo test -p voicebot-understanding --test eval_report -- --ignored --nocapture`.

use std::sync::Arc;

use voicebot_core::Language;
use voicebot_understanding::intent::IntentClassifier;
use voicebot_understanding::pack::KnowledgePack;

#[test]
#[ignore = "calibration report"]
fn leave_one_out_threshold_grid_without_embeddings() {
    let mut pack = KnowledgePack::embedded();
    pack.out_of_scope_threshold = 0.0;
    let classifier = IntentClassifier::new(Arc::new(pack.clone()), None).unwrap();
    for language in [Language::En, Language::Zh] {
        let mut results = Vec::new();
        for intent in &pack.intents {
            for text in intent.examples.get(&language).into_iter().flatten() {
                results.push((intent.name.clone(), classifier.classify_held_out(text, &language).unwrap()));
            }
        }
        for t in [0.0f32, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6] {
            let right = results
                .iter()
                .filter(|(e, g)| {
                    let p = if g.intent != "out_of_scope" && g.confidence < t {
                        "out_of_scope"
                    } else {
                        &g.intent
                    };
                    e == p
                })
                .count();
            println!(
                "LOO {language} confidence cut {t:.2}: {:.1}%",
                100.0 * right as f64 / results.len() as f64
            );
        }
    }
}
