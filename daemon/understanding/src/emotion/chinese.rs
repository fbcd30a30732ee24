//! The Chinese reader: VADER's rules over our own lexicon
//! ([`super::lexicon_zh`]).
//!
//! Chinese has no spaces, so the text is cut by greedy longest match against
//! the table; characters the table does not know become plain tokens, and
//! sentence particles (的 了 啊 吧 呢 …) are skipped so that they do not use up
//! the look-back. As in VADER, a sentiment word is modified by the degree
//! words and negators among the three tokens before it (degree steps decay by
//! 0.95 and 0.9 with distance; a negator multiplies by `N_SCALAR`), but here
//! the look-back also stops at clause punctuation. The first 但是/可是/不过
//! weights the text like "but", `！` and `？` count like `!` and `?`, and a
//! negator within two tokens before a service verb (没收到, 打不开) adds a
//! service failure, as in the English reader. Runs of Latin letters (code
//! switching: "我的order还没到") are looked up in the English lexicon.
//!
//! Invariants: never panics on any text; linear in its length.

use super::lexicon_en::SERVICE_FAILURE;
use super::lexicon_zh::{ANGER_CUES, MAX_KEY_CHARS, REPETITION_CUES, WORRY_CUES, ZhLexicon, ZhRole};
use super::reading::{Cues, TextReading};
use super::vader::{Lexicon, MAX_EXCLAMATIONS, N_SCALAR, compound, weight_around_but};

const BOOSTER_DECAY: [f32; 3] = [1.0, 0.95, 0.9];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Role(ZhRole),
    Plain,
    /// Clause punctuation.
    Break,
}

fn is_particle(c: char) -> bool {
    matches!(c, '的' | '了' | '啊' | '呀' | '吧' | '呢' | '嘛' | '哦' | '哈' | '啦' | '吗' | '么' | '嗯')
}

fn is_clause_break(c: char) -> bool {
    matches!(c, '，' | '。' | '！' | '？' | '；' | '、' | '：' | '…' | ',' | '.' | '!' | '?' | ';' | ':')
}

/// Byte offsets of the 不/没 in "A不A" / "A没A" questions (会不会, 能不能,
/// 有没有, 是不是): they ask, they do not negate.
fn question_negators(text: &str) -> Vec<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    chars
        .windows(3)
        .filter(|w| matches!(w[1].1, '不' | '没') && w[0].1 == w[2].1 && super::is_han(w[0].1))
        .map(|w| w[1].0)
        .collect()
}

fn tokenize(zh: &ZhLexicon, english: &Lexicon, text: &str) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(text.len() / 3 + 1);
    let questions = question_negators(text);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if questions.contains(&(text.len() - rest.len())) {
            tokens.push(Token::Plain);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c.is_whitespace() || is_particle(c) {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if is_clause_break(c) {
            tokens.push(Token::Break);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c.is_ascii_alphabetic() {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '\'')).unwrap_or(rest.len());
            let word = rest[..end].to_ascii_lowercase();
            tokens.push(english.get(&word).map_or(Token::Plain, |&v| Token::Role(ZhRole::Valence(v))));
            rest = &rest[end..];
            continue;
        }
        let mut ends = [0usize; MAX_KEY_CHARS];
        let mut count = 0;
        for (slot, (offset, ch)) in ends.iter_mut().zip(rest.char_indices()) {
            *slot = offset + ch.len_utf8();
            count += 1;
        }
        let matched =
            ends[..count].iter().rev().find_map(|&end| zh.get(&rest[..end]).map(|role| (role, end)));
        match matched {
            Some((role, end)) => {
                tokens.push(Token::Role(role));
                rest = &rest[end..];
            }
            None => {
                tokens.push(Token::Plain);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    resolve_dual_roles(&mut tokens);
    tokens
}

/// 好 before a sentiment word is a degree word (好慢, 好开心); otherwise it is
/// a sentiment word itself.
fn resolve_dual_roles(tokens: &mut [Token]) {
    for i in 0..tokens.len() {
        if let Token::Role(ZhRole::DegreeOrValence(step, valence)) = tokens[i] {
            let before_sentiment = matches!(
                tokens.get(i + 1),
                Some(Token::Role(ZhRole::Valence(v))) if *v != 0.0
            );
            tokens[i] =
                Token::Role(if before_sentiment { ZhRole::Degree(step) } else { ZhRole::Valence(valence) });
        }
    }
}

/// The valence of the sentiment word at `i` after degree words and negators.
fn modified_valence(tokens: &[Token], i: usize, base: f32) -> f32 {
    let mut valence = base;
    let before = tokens[..i].iter().rev();
    for (decay, token) in BOOSTER_DECAY.iter().zip(before) {
        match token {
            Token::Break | Token::Role(ZhRole::But) => break,
            Token::Role(ZhRole::Degree(step)) => {
                let step = if valence < 0.0 { -step } else { *step };
                valence += step * decay;
            }
            Token::Role(ZhRole::Negator) => valence *= N_SCALAR,
            _ => {}
        }
    }
    valence
}

/// Adds a service failure after each negator that precedes a service verb
/// within two tokens; returns whether any did.
fn add_service_failures(tokens: &[Token], sentiments: &mut [f32]) -> bool {
    let mut any = false;
    for (i, token) in tokens.iter().enumerate() {
        if *token != Token::Role(ZhRole::Negator) {
            continue;
        }
        let after = tokens.iter().enumerate().skip(i + 1).take(2);
        for (j, next) in after {
            match next {
                Token::Role(ZhRole::Service) => {
                    if let Some(s) = sentiments.get_mut(j) {
                        *s += SERVICE_FAILURE;
                    }
                    any = true;
                    break;
                }
                Token::Break | Token::Role(ZhRole::But) => break,
                _ => {}
            }
        }
    }
    any
}

/// Scores a Chinese (or mixed Chinese-English) transcript.
pub(crate) fn read_chinese(zh: &ZhLexicon, english: &Lexicon, text: &str) -> TextReading {
    let tokens = tokenize(zh, english, text);
    let mut sentiments: Vec<f32> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| match token {
            Token::Role(ZhRole::Valence(v)) if *v != 0.0 => modified_valence(&tokens, i, *v),
            _ => 0.0,
        })
        .collect();
    let service_failure = add_service_failures(&tokens, &mut sentiments);
    let but = tokens.iter().position(|t| *t == Token::Role(ZhRole::But));
    weight_around_but(&mut sentiments, but);

    let exclamations = text.chars().filter(|&c| c == '!' || c == '！').count();
    let questions = text.chars().filter(|&c| c == '?' || c == '？').count();
    TextReading {
        compound: compound(&sentiments, exclamations, questions),
        exclamations: exclamations.min(MAX_EXCLAMATIONS),
        shouted: false,
        cues: cues(text, service_failure),
    }
}

fn cues(text: &str, service_failure: bool) -> Cues {
    let any = |list: &[&str]| list.iter().any(|cue| text.contains(cue));
    Cues {
        anger: any(ANGER_CUES),
        worry: any(WORRY_CUES),
        repetition: service_failure || any(REPETITION_CUES) || counted_times(text),
    }
}

/// "打了3次", "问了5遍": an Arabic count of two or more before 次 or 遍.
fn counted_times(text: &str) -> bool {
    let mut previous = ' ';
    for c in text.chars() {
        if matches!(c, '次' | '遍') && matches!(previous, '2'..='9') {
            return true;
        }
        previous = c;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::vader::{B_INCR, normalize, tests::lexicon};
    use super::*;

    fn read(text: &str) -> TextReading {
        read_chinese(&ZhLexicon::new(), &lexicon(), text)
    }

    #[test]
    fn very_satisfied_is_strongly_positive() {
        let reading = read("非常满意");
        assert!((reading.compound - normalize(2.4 + B_INCR)).abs() < 1e-4);
        assert!(read("满意").compound < reading.compound);
    }

    #[test]
    fn an_a_not_a_question_does_not_negate() {
        assert!(read("会不会泄露").compound < 0.0, "will it leak? stays negative");
        assert!(read("满意不满意").compound >= 0.0);
    }

    #[test]
    fn not_satisfied_is_negative() {
        assert!(read("不满意").compound < -0.3);
        assert!(read("我不是很满意").compound < -0.3, "negator two tokens back");
        assert!(read("我对这个服务没有不满意").compound > 0.0, "double negation");
    }

    #[test]
    fn too_slow_and_furious_is_very_negative_with_an_anger_cue() {
        let reading = read("太慢了气死我了");
        assert!(reading.compound < -0.7, "{}", reading.compound);
        assert!(reading.cues.anger);
    }

    #[test]
    fn stolen_card_and_anxious_is_negative_with_a_worry_cue() {
        let reading = read("我的卡被盗了很着急");
        assert!(reading.compound < -0.55, "{}", reading.compound);
        assert!(reading.cues.worry && !reading.cues.anger);
    }

    #[test]
    fn longest_match_keeps_neutral_words_neutral() {
        for text in ["我的快递到哪里了", "不好意思，我想问一下", "别人帮我下的单", "你好"]
        {
            assert_eq!(read(text).compound, 0.0, "{text}");
        }
    }

    #[test]
    fn hao_before_a_sentiment_word_intensifies_it() {
        assert!((read("好慢啊").compound - normalize(-1.8 - B_INCR)).abs() < 1e-4);
        assert!(read("好").compound > 0.0);
    }

    #[test]
    fn negated_service_verb_is_a_failure_and_an_obstacle_cue() {
        let reading = read("我一直没收到退款");
        assert!(reading.compound < -0.3, "{}", reading.compound);
        assert!(reading.cues.repetition);
    }

    #[test]
    fn clause_punctuation_stops_negation() {
        assert!(read("不，很满意").compound > 0.3);
    }

    #[test]
    fn contrast_weights_the_clause_after_dan_shi() {
        let reading = read("服务很好，但是太慢了");
        assert!(reading.compound < 0.0, "{}", reading.compound);
    }

    #[test]
    fn english_words_inside_chinese_use_the_english_lexicon() {
        assert!(read("这个服务太terrible了").compound < -0.3);
    }

    #[test]
    fn counted_repetition_is_a_cue() {
        assert!(read("我打了3次电话").cues.repetition);
        assert!(!read("我打了1次电话").cues.repetition);
    }
}
