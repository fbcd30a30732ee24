//! Hotline adaptations of the English (VADER) lexicon and the English cue
//! words. These tables are ours, licensed with the project.
//!
//! VADER was rated on social-media text. On a retailer's hotline some of its
//! words are used in a functional sense ("I'd *like* to return", "*please*",
//! "*gift* card", "customer *support*") and would make every polite caller
//! look satisfied, while common complaints carry no lexicon word at all
//! ("it still hasn't arrived", "this is the third time"). So:
//! - [`OVERRIDES`] replace or add lexicon entries after the VADER file is read;
//! - [`PHRASES`] and the service-failure rule add valence for complaint
//!   phrasings, before VADER's "but" weighting;
//! - [`cues`] finds anger, worry and repetition words for the label rules.
//!
//! Invariant: these tables only add or replace entries; every VADER rule
//! still applies to the result.

use super::reading::Cues;
use super::vader::{Lexicon, Token, is_negation};

/// Entries that replace VADER's (or fill a gap in it), on VADER's -4..=4 scale.
pub(crate) const OVERRIDES: &[(&str, f32)] = &[
    // Functional or polite senses on a service line: neutral.
    ("like", 0.0),
    ("please", 0.0),
    ("giving", 0.0),
    ("sorry", 0.0),
    ("nah", 0.0),
    ("give", 0.0),
    ("yes", 0.0),
    ("yeah", 0.0),
    ("ok", 0.0),
    ("okay", 0.0),
    ("sure", 0.0),
    ("well", 0.0),
    ("help", 0.0),
    ("kind", 0.0),
    ("pretty", 0.0),
    ("care", 0.0),
    ("credit", 0.0),
    ("gift", 0.0),
    ("support", 0.0),
    ("security", 0.0),
    ("secure", 0.5),
    ("interest", 0.0),
    ("share", 0.0),
    ("save", 0.0),
    ("reward", 0.0),
    ("rewards", 0.0),
    ("clear", 0.0),
    ("ready", 0.0),
    ("dear", 0.0),
    ("number", 0.0),
    ("block", 0.0),
    ("pay", 0.0),
    ("accept", 0.0),
    ("accepted", 0.0),
    ("bonus", 0.0),
    ("wish", 0.0),
    ("favorite", 0.0),
    ("value", 0.0),
    ("benefit", 0.0),
    ("benefits", 0.0),
    ("special", 0.0),
    ("vip", 0.0),
    ("active", 0.0),
    ("important", 0.0),
    ("promise", 0.0),
    ("promised", 0.0),
    ("guarantee", 0.0),
    ("super", 0.0),
    ("free", 0.5),
    ("hope", 0.5),
    ("approved", 0.5),
    ("best", 1.5),
    // Words whose hotline sense is more negative than VADER's rating.
    ("urgent", -0.8),
    ("joke", -1.0),
    ("missing", -1.5),
    ("lost", -1.5),
    ("delayed", -1.3),
    // Gaps in VADER that callers use.
    ("overcharged", -2.0),
    ("scammed", -2.5),
    ("scammer", -2.6),
    ("unauthorized", -1.5),
    ("unauthorised", -1.5),
    ("afraid", -1.0),
    ("theft", -2.2),
    ("stole", -2.2),
    ("late", -1.0),
    ("ripoff", -2.5),
    ("absurd", -1.8),
];

/// Complaint phrasings without a lexicon word; the valence is added at the
/// phrase's last word.
pub(crate) const PHRASES: &[(&[&str], f32)] = &[
    (&["still", "waiting"], -1.5),
    (&["second", "time"], -0.8),
    (&["third", "time"], -1.5),
    (&["fourth", "time"], -1.8),
    (&["three", "times"], -1.2),
    (&["several", "times"], -1.2),
    (&["multiple", "times"], -1.2),
    (&["many", "times"], -1.0),
    (&["yet", "again"], -1.2),
    (&["over", "and", "over"], -1.2),
    (&["for", "weeks"], -0.8),
    (&["for", "ages"], -0.8),
    (&["fed", "up"], -2.2),
    (&["screwed", "up"], -1.5),
    (&["rip", "off"], -2.5),
];

/// Valence of a service failure: a negation within two words before one of
/// [`is_service_verb`] ("hasn't arrived", "still doesn't work", "nobody called").
pub(crate) const SERVICE_FAILURE: f32 = -1.5;

fn is_service_verb(word: &str) -> bool {
    matches!(
        word,
        "arrive"
            | "arrived"
            | "come"
            | "came"
            | "receive"
            | "received"
            | "deliver"
            | "delivered"
            | "ship"
            | "shipped"
            | "work"
            | "works"
            | "worked"
            | "working"
            | "fix"
            | "fixed"
            | "resolved"
            | "refund"
            | "refunded"
            | "answer"
            | "answered"
            | "respond"
            | "responded"
            | "reply"
            | "replied"
            | "call"
            | "called"
            | "heard"
            | "got"
            | "gotten"
            | "show"
            | "showed"
            | "shown"
            | "updated"
            | "processed"
            | "helped"
            | "log"
            | "login"
            | "load"
            | "open"
            | "connect"
    )
}

fn negates_service(word: &str) -> bool {
    is_negation(word) || matches!(word, "no" | "nobody" | "noone")
}

/// Builds the English lexicon: VADER's entries, then [`OVERRIDES`].
pub(crate) fn adapt(lexicon: &mut Lexicon) {
    for &(word, valence) in OVERRIDES {
        lexicon.insert(word.to_owned(), valence);
    }
}

fn phrase_ends_at(tokens: &[Token<'_>], words: &[&str], end: usize) -> bool {
    let Some(start) = (end + 1).checked_sub(words.len()) else {
        return false;
    };
    tokens.get(start..=end).is_some_and(|span| span.iter().zip(words).all(|(t, w)| t.lower == *w))
}

fn service_failure_at(tokens: &[Token<'_>], i: usize) -> bool {
    let word = |j: usize| tokens.get(j).map_or("", |t| &*t.lower);
    is_service_verb(word(i))
        && ((i >= 1 && negates_service(word(i - 1))) || (i >= 2 && negates_service(word(i - 2))))
}

/// Adds [`PHRASES`] and [`SERVICE_FAILURE`] valences to the per-word
/// sentiments (same length as `tokens`).
pub(crate) fn add_hotline_phrases(tokens: &[Token<'_>], sentiments: &mut [f32]) {
    for (i, sentiment) in sentiments.iter_mut().enumerate() {
        for &(words, valence) in PHRASES {
            if phrase_ends_at(tokens, words, i) {
                *sentiment += valence;
            }
        }
        if service_failure_at(tokens, i) {
            *sentiment += SERVICE_FAILURE;
        }
    }
}

fn is_anger_word(word: &str) -> bool {
    matches!(
        word,
        "angry"
            | "furious"
            | "livid"
            | "mad"
            | "pissed"
            | "outraged"
            | "outrageous"
            | "ridiculous"
            | "unacceptable"
            | "absurd"
            | "insane"
            | "disgusting"
            | "pathetic"
            | "incompetent"
            | "idiot"
            | "idiots"
            | "stupid"
            | "useless"
            | "worst"
            | "hate"
            | "joke"
            | "rude"
            | "ripoff"
            | "lawyer"
            | "sue"
            | "hell"
            | "damn"
            | "crap"
            | "shit"
            | "bullshit"
            | "fuck"
            | "fucking"
    )
}

fn is_worry_word(word: &str) -> bool {
    matches!(
        word,
        "stolen"
            | "stole"
            | "steal"
            | "theft"
            | "fraud"
            | "fraudulent"
            | "scam"
            | "scammed"
            | "scammer"
            | "hacked"
            | "unauthorized"
            | "unauthorised"
            | "worried"
            | "worry"
            | "worrying"
            | "scared"
            | "afraid"
            | "anxious"
            | "nervous"
            | "panic"
            | "panicking"
            | "frightened"
            | "terrified"
            | "fear"
            | "urgent"
            | "urgently"
            | "emergency"
            | "suspicious"
    )
}

fn is_repetition_word(word: &str) -> bool {
    matches!(
        word,
        "again"
            | "still"
            | "keeps"
            | "kept"
            | "already"
            | "repeatedly"
            | "constantly"
            | "twice"
            | "nobody"
            | "ages"
    )
}

const ANGER_PHRASES: &[[&str; 2]] = &[["fed", "up"], ["sick", "of"], ["rip", "off"]];
const REPETITION_PHRASES: &[[&str; 2]] = &[
    ["every", "time"],
    ["second", "time"],
    ["third", "time"],
    ["fourth", "time"],
    ["three", "times"],
    ["several", "times"],
    ["multiple", "times"],
    ["many", "times"],
    ["for", "weeks"],
    ["for", "days"],
    ["no", "one"],
];

/// Finds the English anger, worry and repetition cues.
pub(crate) fn cues(tokens: &[Token<'_>]) -> Cues {
    let mut cues = Cues::default();
    for (i, token) in tokens.iter().enumerate() {
        let word = &*token.lower;
        cues.anger |= is_anger_word(word);
        cues.worry |= is_worry_word(word);
        cues.repetition |= is_repetition_word(word) || service_failure_at(tokens, i);
        if i >= 1 {
            let pair = [&*tokens[i - 1].lower, word];
            cues.anger |= ANGER_PHRASES.contains(&pair);
            cues.repetition |= REPETITION_PHRASES.contains(&pair);
        }
    }
    cues
}

#[cfg(test)]
mod tests {
    use super::super::vader::{read_english, tests::lexicon};
    use super::*;

    fn adapted() -> Lexicon {
        let mut lexicon = lexicon();
        lexicon.insert("like".into(), 1.5);
        adapt(&mut lexicon);
        lexicon
    }

    #[test]
    fn polite_requests_are_not_read_as_praise() {
        let reading = read_english(&adapted(), "Yes, I'd like to check my order please");
        assert_eq!(reading.compound, 0.0);
    }

    #[test]
    fn a_missing_delivery_reads_negative_with_a_repetition_cue() {
        let reading = read_english(&adapted(), "My package still hasn't arrived");
        assert!(reading.compound < -0.3, "{}", reading.compound);
        assert!(reading.cues.repetition);
        assert!(!reading.cues.worry && !reading.cues.anger);
    }

    #[test]
    fn repeated_calls_read_negative() {
        let reading = read_english(&adapted(), "This is the third time I am calling about it");
        assert!(reading.compound < -0.3, "{}", reading.compound);
        assert!(reading.cues.repetition);
    }

    #[test]
    fn fraud_words_are_worry_cues_and_outrage_words_are_anger_cues() {
        let worried = read_english(&adapted(), "my card was stolen and I'm worried");
        assert!(worried.cues.worry && !worried.cues.anger);
        let angry = read_english(&adapted(), "this is ridiculous, I'm fed up");
        assert!(angry.cues.anger);
    }

    #[test]
    fn a_negated_service_verb_needs_the_negation_close_by() {
        let far = read_english(&adapted(), "not that it matters, the parcel arrived");
        assert_eq!(far.compound, 0.0);
    }
}
