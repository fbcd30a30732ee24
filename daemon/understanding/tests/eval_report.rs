//! Accuracy of the intent classifier without embeddings on the held-out set
//! (the full product, with embeddings, is evaluated in voicebotd's tests).

use std::sync::Arc;

use voicebot_core::Language;
use voicebot_understanding::intent::IntentClassifier;
use voicebot_understanding::pack::KnowledgePack;

fn rows(file: &str) -> Vec<(String, String)> {
    let path = format!("{}/../../tests/eval/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (intent, utterance) = l.split_once('\t').unwrap_or_else(|| panic!("bad row {l:?}"));
            (intent.to_owned(), utterance.to_owned())
        })
        .collect()
}

#[test]
#[ignore = "report only"]
fn eval_report_without_embeddings() {
    let classifier = IntentClassifier::new(Arc::new(KnowledgePack::embedded()), None).unwrap();
    for (file, language) in [("intents_en.tsv", Language::En), ("intents_zh.tsv", Language::Zh)] {
        let rows = rows(file);
        let mut right = 0;
        for (expected, text) in &rows {
            let got = classifier.classify(text, &language).unwrap();
            if &got.intent == expected {
                right += 1;
            } else {
                println!(
                    "{language}: {text:?}: expected {expected}, got {} ({:.2})",
                    got.intent, got.confidence
                );
            }
        }
        println!("{file}: {right}/{} = {:.1}%", rows.len(), 100.0 * right as f64 / rows.len() as f64);
    }
}

/// Leave-one-out over the pack's own examples: the data weights and
/// thresholds are calibrated on (never the held-out evaluation set).
#[test]
#[ignore = "report only"]
fn leave_one_out_report_without_embeddings() {
    let pack = KnowledgePack::embedded();
    let classifier = IntentClassifier::new(Arc::new(pack.clone()), None).unwrap();
    for language in [Language::En, Language::Zh] {
        let mut results = Vec::new();
        for intent in &pack.intents {
            for text in intent.examples.get(&language).into_iter().flatten() {
                let got = classifier.classify_held_out(text, &language).unwrap();
                results.push((intent.name.clone(), got));
            }
        }
        let right = results.iter().filter(|(e, g)| *e == g.intent).count();
        println!(
            "LOO {language}: {right}/{} = {:.1}%",
            results.len(),
            100.0 * right as f64 / results.len() as f64
        );
        for (expected, got) in results.iter().filter(|(e, g)| *e != g.intent).take(15) {
            println!("   expected {expected}, got {} ({:.2})", got.intent, got.confidence);
        }
    }
}

#[test]
#[ignore = "report only"]
fn leave_one_out_threshold_grid_without_embeddings() {
    let mut pack = KnowledgePack::embedded();
    pack.out_of_scope_threshold = 0.0;
    let classifier = IntentClassifier::new(Arc::new(pack.clone()), None).unwrap();
    for language in [Language::En, Language::Zh] {
        let mut results = Vec::new();
        for intent in &pack.intents {
            for text in intent.examples.get(&language).into_iter().flatten() {
                let got = classifier.classify_held_out(text, &language).unwrap();
                results.push((intent.name.clone(), got));
            }
        }
        for t in [0.0f32, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45] {
            let right = results
                .iter()
                .filter(|(e, g)| {
                    let predicted = if g.intent != "out_of_scope" && g.confidence < t {
                        "out_of_scope"
                    } else {
                        g.intent.as_str()
                    };
                    e == predicted
                })
                .count();
            println!("LOO {language} threshold {t:.2}: {:.1}%", 100.0 * right as f64 / results.len() as f64);
        }
    }
}
