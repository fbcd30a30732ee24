//! A compact port of VADER (Hutto & Gilbert 2014, MIT licence) for English
//! transcripts.
//!
//! The lexicon (`vader_lexicon.txt`) is fetched at run time into the model
//! directory, so [`parse_lexicon`] takes its text. Ported rules, with VADER's
//! constants: booster and dampener words (`B_INCR`/`B_DECR`, decayed by 0.95
//! and 0.9 at two and three words' distance), negation of the three preceding
//! words (`N_SCALAR`, with the "never so/this" and "without doubt"
//! exceptions), "no" before a lexicon word, "least", ALL-CAPS emphasis when the
//! text is not all caps (`C_INCR`), "but" halving what comes before it and
//! weighting what follows by 1.5, `!`/`?` emphasis, and the compound
//! normalisation `x / sqrt(x² + 15)`.
//!
//! Not ported: emoji descriptions, the multi-word idiom table (`SPECIAL_CASES`)
//! and multi-word boosters ("sort of"). Two deliberate deviations: a token's
//! leading and trailing punctuation is always stripped unless that leaves
//! nothing or the raw token is itself a lexicon entry (VADER keeps any token
//! whose stripped form has ≤ 2 characters, which hides "No," and "ok!" in ASR
//! output); and the "never so/this" check at three words' distance follows the
//! intended logic, not the operator-precedence slip in `vaderSentiment.py`.
//!
//! Invariants: never panics on any text; cost is linear in the number of
//! words; the compound score is always finite and within -1..=1.

use std::borrow::Cow;
use std::collections::HashMap;

use super::lexicon_en;
use super::reading::TextReading;

/// Mean intensity added by a booster word ("very good").
pub(crate) const B_INCR: f32 = 0.293;
/// Mean intensity removed by a dampener word ("slightly annoying").
pub(crate) const B_DECR: f32 = -0.293;
/// Mean intensity added by writing a sentiment word in ALL CAPS.
pub(crate) const C_INCR: f32 = 0.733;
/// Factor applied to a negated sentiment word.
pub(crate) const N_SCALAR: f32 = -0.74;
/// Weight of sentiment before the first "but".
pub(crate) const BUT_BEFORE: f32 = 0.5;
/// Weight of sentiment after the first "but".
pub(crate) const BUT_AFTER: f32 = 1.5;
/// The `alpha` of `x / sqrt(x² + alpha)`: approximately the largest sum expected.
const NORMALIZE_ALPHA: f32 = 15.0;
/// Intensity added per `!`, for at most [`MAX_EXCLAMATIONS`] of them.
const EXCLAMATION_STEP: f32 = 0.292;
pub(crate) const MAX_EXCLAMATIONS: usize = 4;
/// Intensity added per `?` when there are two or three of them; more add the cap.
const QUESTION_STEP: f32 = 0.18;
const QUESTION_CAP: f32 = 0.96;
/// Decay of a booster's effect at two and three words' distance.
const BOOSTER_DECAY: [f32; 3] = [1.0, 0.95, 0.9];

/// The English lexicon: lower-case word to mean valence on VADER's -4..=4 scale.
pub(crate) type Lexicon = HashMap<String, f32>;

/// A malformed row in the VADER lexicon text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LexiconError {
    /// A row without the `word<TAB>mean` fields.
    #[error(
        "VADER lexicon line {line}: expected `word<TAB>mean<TAB>sd<TAB>ratings`, found {found:?}; \
         re-fetch vader_lexicon.txt"
    )]
    MissingField { line: usize, found: String },
    /// A mean that is not a finite number within -4..=4.
    #[error(
        "VADER lexicon line {line}: mean {mean:?} of {word:?} is not a number within -4..=4; \
         re-fetch vader_lexicon.txt"
    )]
    BadMean { line: usize, word: String, mean: String },
    /// No rows at all.
    #[error("VADER lexicon has no entries; re-fetch vader_lexicon.txt")]
    Empty,
}

/// Parses `word<TAB>mean<TAB>sd<TAB>ratings` rows; blank lines are skipped and a
/// repeated word keeps its last mean, as VADER does.
///
/// # Errors
/// [`LexiconError`] naming the first malformed line (1-based).
pub(crate) fn parse_lexicon(text: &str) -> Result<Lexicon, LexiconError> {
    let mut lexicon = Lexicon::with_capacity(8192);
    for (index, row) in text.lines().enumerate() {
        let line = index + 1;
        let row = row.trim_end_matches('\r');
        if row.trim().is_empty() {
            continue;
        }
        let mut fields = row.split('\t');
        let (Some(word), Some(mean)) = (fields.next(), fields.next()) else {
            return Err(LexiconError::MissingField { line, found: excerpt(row) });
        };
        let word = word.trim();
        if word.is_empty() {
            return Err(LexiconError::MissingField { line, found: excerpt(row) });
        }
        let value = match mean.trim().parse::<f32>() {
            Ok(v) if v.is_finite() && (-4.0..=4.0).contains(&v) => v,
            _ => {
                return Err(LexiconError::BadMean { line, word: excerpt(word), mean: excerpt(mean) });
            }
        };
        lexicon.insert(word.to_lowercase(), value);
    }
    if lexicon.is_empty() {
        return Err(LexiconError::Empty);
    }
    Ok(lexicon)
}

fn excerpt(s: &str) -> String {
    s.chars().take(60).collect()
}

/// VADER's normalisation of a summed valence into -1..=1.
pub(crate) fn normalize(score: f32) -> f32 {
    if !score.is_finite() {
        return 0.0;
    }
    (score / (score * score + NORMALIZE_ALPHA).sqrt()).clamp(-1.0, 1.0)
}

/// Intensity VADER adds for `!` (up to four) and for `??`/`???` or more.
pub(crate) fn punctuation_amplifier(exclamations: usize, questions: usize) -> f32 {
    let ep = exclamations.min(MAX_EXCLAMATIONS) as f32 * EXCLAMATION_STEP;
    let qm = match questions {
        0 | 1 => 0.0,
        2 | 3 => questions as f32 * QUESTION_STEP,
        _ => QUESTION_CAP,
    };
    ep + qm
}

/// Sums item valences, adds punctuation emphasis away from zero and normalises.
pub(crate) fn compound(sentiments: &[f32], exclamations: usize, questions: usize) -> f32 {
    let sum: f32 = sentiments.iter().sum();
    let emphasis = punctuation_amplifier(exclamations, questions);
    let sum = if sum > 0.0 {
        sum + emphasis
    } else if sum < 0.0 {
        sum - emphasis
    } else {
        sum
    };
    normalize(sum)
}

/// Halves the items before position `but` and weights those after it by 1.5.
pub(crate) fn weight_around_but(sentiments: &mut [f32], but: Option<usize>) {
    let Some(but) = but else { return };
    for (i, s) in sentiments.iter_mut().enumerate() {
        if i < but {
            *s *= BUT_BEFORE;
        } else if i > but {
            *s *= BUT_AFTER;
        }
    }
}

/// One whitespace-separated word: as written, and lower-cased for look-ups.
pub(crate) struct Token<'a> {
    pub(crate) raw: &'a str,
    pub(crate) lower: Cow<'a, str>,
}

fn tokenize<'a>(lexicon: &Lexicon, text: &'a str) -> Vec<Token<'a>> {
    text.split_whitespace()
        .map(|word| {
            let stripped = word.trim_matches(|c: char| c.is_ascii_punctuation());
            let raw =
                if stripped.is_empty() || lexicon.contains_key(&*lower(word)) { word } else { stripped };
            Token { raw, lower: lower(raw) }
        })
        .collect()
}

fn lower(word: &str) -> Cow<'_, str> {
    if word.chars().any(|c| c.is_uppercase() || c == '\u{2019}') {
        Cow::Owned(word.to_lowercase().replace('\u{2019}', "'"))
    } else {
        Cow::Borrowed(word)
    }
}

/// Python's `str.isupper()`: some cased letter, none lower-case.
fn is_all_caps(word: &str) -> bool {
    word.chars().any(char::is_uppercase) && !word.chars().any(char::is_lowercase)
}

pub(crate) fn booster(word: &str) -> Option<f32> {
    match word {
        "absolutely" | "amazingly" | "awfully" | "completely" | "considerable" | "considerably"
        | "decidedly" | "deeply" | "effing" | "enormous" | "enormously" | "entirely" | "especially"
        | "exceptional" | "exceptionally" | "extreme" | "extremely" | "fabulously" | "flipping"
        | "flippin" | "frackin" | "fracking" | "fricking" | "frickin" | "frigging" | "friggin" | "fully"
        | "fuckin" | "fucking" | "fuggin" | "fugging" | "greatly" | "hella" | "highly" | "hugely"
        | "incredible" | "incredibly" | "intensely" | "major" | "majorly" | "more" | "most"
        | "particularly" | "purely" | "quite" | "really" | "remarkably" | "so" | "substantially"
        | "thoroughly" | "total" | "totally" | "tremendous" | "tremendously" | "uber" | "unbelievably"
        | "unusually" | "utter" | "utterly" | "very" => Some(B_INCR),
        "almost" | "barely" | "hardly" | "kinda" | "kindof" | "kind-of" | "less" | "little" | "marginal"
        | "marginally" | "occasional" | "occasionally" | "partly" | "scarce" | "scarcely" | "slight"
        | "slightly" | "somewhat" | "sorta" | "sortof" | "sort-of" => Some(B_DECR),
        _ => None,
    }
}

/// VADER's `negated()` for one lower-case word.
pub(crate) fn is_negation(word: &str) -> bool {
    matches!(
        word,
        "aint"
            | "arent"
            | "cannot"
            | "cant"
            | "couldnt"
            | "darent"
            | "didnt"
            | "doesnt"
            | "dont"
            | "hadnt"
            | "hasnt"
            | "havent"
            | "isnt"
            | "mightnt"
            | "mustnt"
            | "neither"
            | "neednt"
            | "never"
            | "none"
            | "nope"
            | "nor"
            | "not"
            | "nothing"
            | "nowhere"
            | "oughtnt"
            | "shant"
            | "shouldnt"
            | "uhuh"
            | "wasnt"
            | "werent"
            | "uh-uh"
            | "without"
            | "wont"
            | "wouldnt"
            | "rarely"
            | "seldom"
            | "despite"
    ) || word.contains("n't")
}

/// Scores an English transcript.
pub(crate) fn read_english(lexicon: &Lexicon, text: &str) -> TextReading {
    let tokens = tokenize(lexicon, text);
    let caps_differ = {
        let caps = tokens.iter().filter(|t| is_all_caps(t.raw)).count();
        caps > 0 && caps < tokens.len()
    };
    let mut shouted = false;
    let mut sentiments: Vec<f32> = (0..tokens.len())
        .map(|i| {
            let (valence, caps) = valence_at(lexicon, &tokens, i, caps_differ);
            shouted |= caps;
            valence
        })
        .collect();
    lexicon_en::add_hotline_phrases(&tokens, &mut sentiments);
    let but = tokens.iter().position(|t| t.lower == "but");
    weight_around_but(&mut sentiments, but);

    let exclamations = text.matches('!').count();
    let questions = text.matches('?').count();
    TextReading {
        compound: compound(&sentiments, exclamations, questions),
        exclamations: exclamations.min(MAX_EXCLAMATIONS),
        shouted,
        cues: lexicon_en::cues(&tokens),
    }
}

/// VADER's `sentiment_valence` for the word at `i`; also says whether ALL-CAPS
/// emphasis applied.
fn valence_at(lexicon: &Lexicon, tokens: &[Token<'_>], i: usize, caps_differ: bool) -> (f32, bool) {
    let words = Words(tokens);
    let word = |j: usize| words.at(j);
    let item = word(i);
    if booster(item).is_some() || (item == "kind" && word(i + 1) == "of") {
        return (0.0, false);
    }
    let Some(&base) = lexicon.get(item) else {
        return (0.0, false);
    };
    let mut valence = base;
    if item == "no" && lexicon.contains_key(word(i + 1)) {
        valence = 0.0;
    }
    let no_before = (i >= 1 && word(i - 1) == "no")
        || (i >= 2 && word(i - 2) == "no")
        || (i >= 3 && word(i - 3) == "no" && matches!(word(i - 1), "or" | "nor"));
    if no_before {
        valence = base * N_SCALAR;
    }
    let mut shouted = false;
    if caps_differ && tokens.get(i).is_some_and(|t| is_all_caps(t.raw)) {
        valence += if valence > 0.0 { C_INCR } else { -C_INCR };
        shouted = true;
    }
    for (distance, decay) in BOOSTER_DECAY.iter().enumerate() {
        if i <= distance {
            break;
        }
        let j = i - distance - 1;
        let prev = word(j);
        if lexicon.contains_key(prev) {
            continue;
        }
        if let Some(step) = booster(prev) {
            let mut scalar = if valence < 0.0 { -step } else { step };
            if caps_differ && tokens.get(j).is_some_and(|t| is_all_caps(t.raw)) {
                scalar += if valence > 0.0 { C_INCR } else { -C_INCR };
                shouted = true;
            }
            valence += scalar * decay;
        }
        valence = negation_check(valence, &words, distance, i);
    }
    (least_check(valence, lexicon, &words, i), shouted)
}

/// Lower-case look-up of neighbouring words; "" outside the text.
struct Words<'t, 'a>(&'t [Token<'a>]);

impl Words<'_, '_> {
    fn at(&self, j: usize) -> &str {
        self.0.get(j).map_or("", |t| &*t.lower)
    }
}

fn negation_check(valence: f32, words: &Words<'_, '_>, distance: usize, i: usize) -> f32 {
    let word = |j: usize| words.at(j);
    let so_or_this = |w: &str| w == "so" || w == "this";
    match distance {
        0 if is_negation(word(i - 1)) => valence * N_SCALAR,
        1 if word(i - 2) == "never" && so_or_this(word(i - 1)) => valence * 1.25,
        1 if word(i - 2) == "without" && word(i - 1) == "doubt" => valence,
        1 if is_negation(word(i - 2)) => valence * N_SCALAR,
        2 if word(i - 3) == "never" && (so_or_this(word(i - 2)) || so_or_this(word(i - 1))) => valence * 1.25,
        2 if word(i - 3) == "without" && (word(i - 2) == "doubt" || word(i - 1) == "doubt") => valence,
        2 if is_negation(word(i - 3)) => valence * N_SCALAR,
        _ => valence,
    }
}

fn least_check(valence: f32, lexicon: &Lexicon, words: &Words<'_, '_>, i: usize) -> f32 {
    let word = |j: usize| words.at(j);
    if i == 0 || word(i - 1) != "least" || lexicon.contains_key("least") {
        return valence;
    }
    if i >= 2 && matches!(word(i - 2), "at" | "very") { valence } else { valence * N_SCALAR }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A few rows of the real lexicon, in its format.
    pub(crate) const EXCERPT: &str = "\
angry\t-2.3\t0.64031\t[-3, -2, -2, -2, -3, -2, -3, -2, -2, -2]
bad\t-2.5\t0.67082\t[-2, -3, -3, -2, -2, -3, -2, -3, -2, -3]
good\t1.9\t0.9434\t[2, 1, 1, 3, 2, 4, 2, 2, 1, 1]
great\t3.1\t0.7\t[3, 4, 4, 2, 3, 3, 3, 2, 4, 3]
happy\t2.7\t0.78102\t[3, 3, 2, 3, 2, 3, 3, 3, 2, 3]
helpful\t1.8\t0.87178\t[2, 1, 2, 3, 2, 2, 0, 2, 2, 2]
horrible\t-2.5\t0.92195\t[-3, -3, -3, -3, -2, -3, -1, -3, -3, -1]
no\t-1.2\t0.74833\t[-1, -2, -1, -1, -1, -2, -1, 0, -2, -1]
problem\t-1.7\t0.45826\t[-2, -2, -1, -2, -2, -2, -1, -1, -2, -2]
scared\t-1.9\t0.53852\t[-2, -2, -2, -2, -2, -3, -1, -2, -2, -1]
stolen\t-2.2\t0.6\t[-2, -3, -2, -2, -2, -2, -3, -2, -2, -2]
terrible\t-2.1\t1.3\t[-3, -2, -4, -2, -2, -3, -3, 1, -2, -1]
thanks\t1.9\t0.53852\t[2, 2, 1, 2, 2, 2, 2, 2, 1, 3]
worried\t-1.2\t0.74833\t[-1, -1, -1, -1, -2, -2, -1, -3, -1, 1]
";

    pub(crate) fn lexicon() -> Lexicon {
        parse_lexicon(EXCERPT).expect("the test excerpt parses")
    }

    fn score(text: &str) -> f32 {
        read_english(&lexicon(), text).compound
    }

    #[test]
    fn a_lexicon_word_scores_its_normalised_mean() {
        let expected = 1.9 / (1.9f32 * 1.9 + 15.0).sqrt();
        assert!((score("The service was good") - expected).abs() < 1e-4);
    }

    #[test]
    fn negation_in_the_three_preceding_words_flips_and_damps() {
        let good = score("it was good");
        assert!((score("it was not good") - normalize(1.9 * N_SCALAR)).abs() < 1e-4);
        assert!(score("it isn't really that good") < 0.0);
        assert!(score("not at all good") < 0.0, "three words back still negates");
        assert!(good > 0.0);
    }

    #[test]
    fn booster_words_intensify_and_dampeners_soften() {
        let plain = score("this is bad");
        assert!((score("this is very bad") - normalize(-2.5 - B_INCR)).abs() < 1e-4);
        assert!(score("this is slightly bad") > plain);
    }

    #[test]
    fn all_caps_word_in_mixed_text_is_emphasised() {
        let reading = read_english(&lexicon(), "this is HORRIBLE service");
        assert!((reading.compound - normalize(-2.5 - C_INCR)).abs() < 1e-4);
        assert!(reading.shouted);
        let all_caps = read_english(&lexicon(), "THIS IS HORRIBLE");
        assert!(!all_caps.shouted, "all-caps text has no contrast to emphasise");
    }

    #[test]
    fn but_shifts_weight_to_the_clause_after_it() {
        let mixed = score("the agent was helpful but the delivery was terrible");
        let expected = normalize(1.8 * BUT_BEFORE - 2.1 * BUT_AFTER);
        assert!((mixed - expected).abs() < 1e-4, "{mixed} vs {expected}");
    }

    #[test]
    fn exclamation_marks_add_emphasis_up_to_four() {
        assert!((score("great!!") - normalize(3.1 + 2.0 * EXCLAMATION_STEP)).abs() < 1e-4);
        assert_eq!(score("great!!!!"), score("great!!!!!!!!"));
    }

    #[test]
    fn no_before_a_lexicon_word_negates_it_instead_of_scoring() {
        assert!(score("no problem") > 0.0);
        assert!(score("no") < 0.0);
    }

    #[test]
    fn punctuation_attached_by_asr_does_not_hide_words() {
        assert!(score("No, good.") < 0.0, "'No,' still negates 'good'");
        assert!(score("Great!") > score("Great"));
    }

    #[test]
    fn malformed_lexicon_row_is_reported_with_its_line() {
        let err = parse_lexicon("good\t1.9\t0.9\t[]\nbad\tminus\t0\t[]\n").unwrap_err();
        assert!(matches!(err, LexiconError::BadMean { line: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("line 2"));
        let err = parse_lexicon("\n\nlonely\n").unwrap_err();
        assert!(matches!(err, LexiconError::MissingField { line: 3, .. }), "{err:?}");
        assert_eq!(parse_lexicon("\n \n"), Err(LexiconError::Empty));
        assert!(parse_lexicon("x\tNaN\t0\t[]").is_err());
    }

    #[test]
    fn empty_and_punctuation_only_text_is_neutral() {
        assert_eq!(score(""), 0.0);
        assert_eq!(score("?!?! ... ,,,"), 0.0);
    }
}
