//! The understanding stack as the product runs it (MiniLM embeddings on),
//! scored on the held-out evaluation set in `tests/eval/`. The thresholds
//! fail the build when accuracy drops.

use std::sync::{Arc, OnceLock};

use voicebot_core::Language;
use voicebot_core::config::Config;
use voicebot_engines::loader::{EngineNeeds, load};
use voicebot_understanding::intent::{IntentClassifier, IntentResult};
use voicebot_understanding::pack::KnowledgePack;

fn classifier_with(pack: KnowledgePack) -> IntentClassifier {
    let config = Config::embedded_default().expect("config");
    let engines =
        load(&config, EngineNeeds { embedder: true, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"));
    IntentClassifier::new(Arc::new(pack), engines.embedder).expect("classifier")
}

fn classifier() -> &'static IntentClassifier {
    static CLASSIFIER: OnceLock<IntentClassifier> = OnceLock::new();
    CLASSIFIER.get_or_init(|| classifier_with(KnowledgePack::embedded()))
}

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

/// Per-intent (right, total), overall accuracy, and the misclassified rows.
struct Score {
    per_intent: std::collections::BTreeMap<String, (usize, usize)>,
    accuracy: f64,
    errors: Vec<(String, String, IntentResult)>,
}

fn score(file: &str, language: &Language) -> Score {
    let rows = rows(file);
    let mut per_intent = std::collections::BTreeMap::new();
    let mut errors = Vec::new();
    for (expected, text) in &rows {
        let got = classifier().classify(text, language).expect("classify");
        let entry = per_intent.entry(expected.clone()).or_insert((0, 0));
        entry.1 += 1;
        if &got.intent == expected {
            entry.0 += 1;
        } else {
            errors.push((expected.clone(), text.clone(), got));
        }
    }
    let right: usize = per_intent.values().map(|v| v.0).sum();
    Score { per_intent, accuracy: right as f64 / rows.len() as f64, errors }
}

/// Prints per-intent recall and the confusions (run with `--nocapture`).
fn report(score: &Score) {
    for (intent, (right, total)) in &score.per_intent {
        eprintln!("  recall {intent:<22} {right}/{total}");
    }
    let mut confusions: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for (expected, text, got) in &score.errors {
        *confusions.entry((expected.clone(), got.intent.clone())).or_default() += 1;
        eprintln!("  {text:?}: expected {expected}, got {} ({:.2})", got.intent, got.confidence);
    }
    for ((expected, got), n) in &confusions {
        eprintln!("  confusion {expected} -> {got}: {n}");
    }
}

fn recall(score: &Score, intent: &str) -> f64 {
    let (right, total) = score.per_intent[intent];
    right as f64 / total as f64
}

#[test]
fn english_intent_accuracy_and_safety_recall() {
    let score = score("intents_en.tsv", &Language::En);
    report(&score);
    eprintln!("en accuracy {:.3}", score.accuracy);
    assert!(score.accuracy >= 0.95, "en accuracy {:.3}", score.accuracy);
    assert_eq!(recall(&score, "human_agent"), 1.0);
    assert_eq!(recall(&score, "account_security"), 1.0);
}

#[test]
fn chinese_intent_accuracy_and_safety_recall() {
    let score = score("intents_zh.tsv", &Language::Zh);
    report(&score);
    eprintln!("zh accuracy {:.3}", score.accuracy);
    assert!(score.accuracy >= 0.90, "zh accuracy {:.3}", score.accuracy);
    assert_eq!(recall(&score, "human_agent"), 1.0);
    assert_eq!(recall(&score, "account_security"), 1.0);
}

/// Leave-one-out over the pack's own examples, for calibration (never the eval set).
#[test]
#[ignore = "calibration report"]
fn leave_one_out_threshold_grid() {
    let mut pack = KnowledgePack::embedded();
    pack.out_of_scope_threshold = 0.0;
    let classifier = classifier_with(pack);
    for language in [Language::En, Language::Zh] {
        let cuts = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        for (cut, accuracy) in classifier.leave_one_out_accuracy(&language, &cuts).expect("classify") {
            eprintln!("LOO {language} confidence cut {cut:.2}: {:.1}%", 100.0 * accuracy);
        }
    }
}

/// The published sentence-transformers example: cos ≈ 0.7553 for this pair.
#[test]
fn minilm_reproduces_the_published_similarity() {
    let config = Config::embedded_default().expect("config");
    let engines =
        load(&config, EngineNeeds { embedder: true, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"));
    let embedder = engines.embedder.expect("embedder");
    let v = embedder.embed(&["A man is eating food.", "A man is eating a piece of bread."]).expect("embed");
    let cos: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
    assert!((cos - 0.7553).abs() < 0.01, "cos {cos}");
}

/// Valence sign on the clearly emotional rows (labelled valence ≠ 0) of
/// `tests/eval/emotion.tsv`, through the product path (intent-aware emotion),
/// text only (the set has no audio).
#[test]
fn emotion_valence_sign_on_clearly_emotional_utterances() {
    use voicebot_understanding::analysis::Analyzer;
    use voicebot_understanding::emotion::EmotionEstimator;
    let config = Config::embedded_default().expect("config");
    let store = voicebot_engines::loader::model_store(&config);
    let lexicon = std::fs::read_to_string(
        store.verified(&config.nlu.sentiment_lexicon).unwrap_or_else(|e| panic!("{e}")),
    )
    .expect("lexicon");
    let engines =
        load(&config, EngineNeeds { embedder: true, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"));
    let analyzer = Analyzer::new(
        Arc::new(KnowledgePack::embedded()),
        engines.embedder,
        EmotionEstimator::new(&lexicon).expect("estimator"),
    )
    .expect("analyzer");
    let path = format!("{}/../../tests/eval/emotion.tsv", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("emotion.tsv");
    let mut per_language: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut neutral = (0usize, 0usize);
    let mut labels = (0usize, 0usize);
    for row in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (lang, valence, label, utterance) =
            (cols[0], cols[1].parse::<i8>().expect("valence"), cols[2], cols[3]);
        let language: Language = lang.parse().expect("language");
        let got = analyzer.analyze(utterance, &language, None, None).expect("analyze").emotion;
        labels.1 += 1;
        labels.0 += usize::from(got.label.as_str() == label);
        if valence == 0 {
            neutral.1 += 1;
            neutral.0 += usize::from(got.valence == 0);
            continue;
        }
        let entry = per_language.entry(lang.to_owned()).or_default();
        entry.1 += 1;
        if got.valence.signum() == valence.signum() {
            entry.0 += 1;
        } else {
            eprintln!(
                "  {lang} {utterance:?}: labelled {valence}, got {} ({})",
                got.valence,
                got.label.as_str()
            );
        }
    }
    eprintln!(
        "emotion label agreement {}/{}; neutral rows read as neutral {}/{}",
        labels.0, labels.1, neutral.0, neutral.1
    );
    for (lang, (right, total)) in &per_language {
        eprintln!("emotion valence sign {lang}: {right}/{total} = {:.3}", *right as f64 / *total as f64);
    }
    for (lang, (right, total)) in &per_language {
        let rate = *right as f64 / *total as f64;
        assert!(rate >= 0.85, "{lang} valence sign {rate:.3}");
    }
}
