//! Choosing what the bot says for an understood utterance: the FAQ answer,
//! the intent's answer with its slots filled, or the question for a slot the
//! answer still needs.

use voicebot_core::Language;

use crate::pack::KnowledgePack;
use crate::slots::{Slot, SlotKind, fill_template};

/// What to say next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    /// Set when `text` asks for this slot instead of answering.
    pub asking_for: Option<SlotKind>,
}

/// The text in `language`, else in the pack's first language.
fn in_language<'a>(
    map: &'a std::collections::BTreeMap<Language, String>,
    language: &Language,
    pack: &KnowledgePack,
) -> Option<&'a String> {
    map.get(language).or_else(|| pack.languages.iter().find_map(|l| map.get(l)))
}

/// The answer for `intent` (and `faq`, when one matched), filled from the
/// slots the call has gathered so far.
pub fn compose(
    pack: &KnowledgePack,
    intent: &str,
    faq: Option<&str>,
    call_slots: &[Slot],
    language: &Language,
) -> Answer {
    if let Some(text) = faq
        .and_then(|id| pack.faqs.iter().find(|f| f.id == id))
        .and_then(|f| in_language(&f.answers, language, pack))
    {
        return Answer { text: text.clone(), asking_for: None };
    }
    let fallback = || pack.intent("out_of_scope").and_then(|i| in_language(&i.answers, language, pack));
    let Some(intent) = pack.intent(intent) else {
        return Answer { text: fallback().cloned().unwrap_or_default(), asking_for: None };
    };
    let Some(template) = in_language(&intent.answers, language, pack).or_else(fallback) else {
        return Answer { text: String::new(), asking_for: None };
    };
    match fill_template(template, call_slots) {
        Ok(text) => Answer { text, asking_for: None },
        Err(missing) => {
            let kind = missing[0];
            let prompt = intent
                .asks
                .iter()
                .find(|(k, _)| *k == kind)
                .and_then(|(_, prompts)| in_language(prompts, language, pack));
            Answer { text: prompt.cloned().unwrap_or_else(|| template.clone()), asking_for: Some(kind) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_slot_is_asked_for_then_filled() {
        let pack = KnowledgePack::embedded();
        let ask = compose(&pack, "order_status", None, &[], &Language::En);
        assert_eq!(ask.asking_for, Some(SlotKind::OrderNumber));
        let slots = [Slot { kind: SlotKind::OrderNumber, value: "45712".into() }];
        let answer = compose(&pack, "order_status", None, &slots, &Language::En);
        assert_eq!(answer.asking_for, None);
        assert!(answer.text.contains("45712"), "{}", answer.text);
    }

    #[test]
    fn faq_answers_win_and_follow_the_language() {
        let pack = KnowledgePack::embedded();
        let faq = &pack.faqs[0];
        let answer = compose(&pack, &faq.intent, Some(&faq.id), &[], &Language::Zh);
        assert_eq!(Some(&answer.text), faq.answers.get(&Language::Zh));
    }

    #[test]
    fn unknown_intents_get_the_out_of_scope_answer() {
        let pack = KnowledgePack::embedded();
        let answer = compose(&pack, "no_such_intent", None, &[], &Language::En);
        assert_eq!(Some(&answer.text), pack.intent("out_of_scope").unwrap().answers.get(&Language::En));
    }
}
