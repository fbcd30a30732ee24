//! Sparse TF-IDF vectors of words and character n-grams, and cosine
//! similarity between them.
//!
//! English uses word unigrams and bigrams plus character trigrams inside
//! words (robust to ASR slips such as "refund"/"refunds"); Chinese, which has
//! no spaces, uses character unigrams, bigrams and trigrams.

use std::collections::HashMap;

use voicebot_core::language::is_han;

/// Feature id → weight, L2-normalised.
pub(crate) type SparseVector = Vec<(u32, f32)>;

/// Words that carry no intent.
const STOP_WORDS: [&str; 24] = [
    "a", "an", "the", "um", "uh", "er", "erm", "like", "so", "well", "please", "i", "i'm", "me", "my", "you",
    "your", "it", "is", "to", "of", "and", "just", "hmm",
];
const ZH_FILLERS: [char; 8] = ['嗯', '啊', '呃', '那', '个', '吧', '呢', '哦'];

/// Lower-cased words, fillers removed; Han characters are kept as one word.
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        let w = word.trim_matches('\'').to_owned();
        if !w.is_empty() && !STOP_WORDS.contains(&w.as_str()) {
            out.push(w);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_han(c) {
            flush(&mut word, &mut out);
            if !ZH_FILLERS.contains(&c) {
                out.push(c.to_string());
            }
        } else if c.is_alphanumeric() || c == '\'' {
            word.extend(c.to_lowercase());
        } else {
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The raw features of a text (not yet weighted).
pub(crate) fn features(text: &str) -> Vec<String> {
    let words = words(text);
    let mut out = Vec::with_capacity(words.len() * 4);
    let han: Vec<&String> = words.iter().filter(|w| w.chars().all(is_han)).collect();
    for pair in han.windows(2) {
        out.push(format!("{}{}", pair[0], pair[1]));
    }
    for triple in han.windows(3) {
        out.push(format!("{}{}{}", triple[0], triple[1], triple[2]));
    }
    let latin: Vec<&String> = words.iter().filter(|w| !w.chars().all(is_han)).collect();
    for pair in latin.windows(2) {
        out.push(format!("{} {}", pair[0], pair[1]));
    }
    for word in &words {
        out.push(word.clone());
        if !word.chars().all(is_han) {
            let padded: Vec<char> = format!("<{word}>").chars().collect();
            for tri in padded.windows(3) {
                out.push(format!("#{}", tri.iter().collect::<String>()));
            }
        }
    }
    out
}

/// A TF-IDF vocabulary fitted on a corpus of example texts.
#[derive(Debug, Clone, Default)]
pub(crate) struct TfIdf {
    ids: HashMap<String, u32>,
    idf: Vec<f32>,
}

impl TfIdf {
    pub(crate) fn fit<'a>(corpus: impl Iterator<Item = &'a str>) -> TfIdf {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut document_frequency: Vec<u32> = Vec::new();
        let mut documents = 0u32;
        for text in corpus {
            documents += 1;
            let mut seen: Vec<u32> = features(text)
                .into_iter()
                .map(|f| {
                    let next = ids.len() as u32;
                    *ids.entry(f).or_insert(next)
                })
                .collect();
            seen.sort_unstable();
            seen.dedup();
            document_frequency.resize(ids.len(), 0);
            for id in seen {
                document_frequency[id as usize] += 1;
            }
        }
        let n = documents.max(1) as f32;
        let idf = document_frequency.iter().map(|&df| ((1.0 + n) / (1.0 + df as f32)).ln() + 1.0).collect();
        TfIdf { ids, idf }
    }

    /// The normalised TF-IDF vector of `text`; unknown features are ignored.
    pub(crate) fn vector(&self, text: &str) -> SparseVector {
        let mut counts: HashMap<u32, f32> = HashMap::new();
        for feature in features(text) {
            if let Some(&id) = self.ids.get(&feature) {
                *counts.entry(id).or_default() += 1.0;
            }
        }
        let mut vector: SparseVector =
            counts.into_iter().map(|(id, tf)| (id, (1.0 + tf.ln()) * self.idf[id as usize])).collect();
        vector.sort_unstable_by_key(|&(id, _)| id);
        let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|(_, w)| *w /= norm);
        }
        vector
    }
}

/// Cosine similarity of two normalised sparse vectors (sorted by id).
pub(crate) fn cosine(a: &SparseVector, b: &SparseVector) -> f32 {
    let (mut i, mut j, mut dot) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    dot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fillers_and_stop_words_are_dropped() {
        assert_eq!(words("Um, where is my ORDER?"), ["where", "order"]);
        assert_eq!(words("嗯我的订单"), ["我", "的", "订", "单"]);
    }

    #[test]
    fn similar_texts_score_higher_than_unrelated_ones() {
        let tfidf = TfIdf::fit(["where is my order", "i want a refund", "what time do you open"].into_iter());
        let q = tfidf.vector("where's my order now");
        let order = tfidf.vector("where is my order");
        let refund = tfidf.vector("i want a refund");
        assert!(cosine(&q, &order) > 0.5);
        assert!(cosine(&q, &order) > cosine(&q, &refund) + 0.3);
    }

    #[test]
    fn chinese_bigrams_make_related_sentences_similar() {
        let tfidf = TfIdf::fit(["我的订单到哪了", "我要退货", "几点开门"].into_iter());
        let q = tfidf.vector("订单到哪里了");
        assert!(cosine(&q, &tfidf.vector("我的订单到哪了")) > cosine(&q, &tfidf.vector("我要退货")));
    }
}
