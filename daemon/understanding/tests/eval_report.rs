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
    let classifier = IntentClassifier::new(Arc::new(pack), None).unwrap();
    for language in [Language::En, Language::Zh] {
        for (cut, accuracy) in classifier.leave_one_out_accuracy(&language, &CUTS).unwrap() {
            println!("LOO {language} confidence cut {cut:.2}: {:.1}%", 100.0 * accuracy);
        }
    }
}

const CUTS: [f32; 7] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
