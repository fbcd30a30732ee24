//! What the bot says to run the conversation itself: greetings per channel and
//! line, no-input reprompts, the polite close, confirmations, the DTMF menu.
//!
//! A pack may override any prompt in its `[prompts]` table and define its own
//! `[[menu]]`; prompts it leaves out come from the embedded default pack, so
//! every [`PromptKind`] always has text (in the pack's first language at worst).

use std::collections::BTreeMap;

use voicebot_core::Language;

/// The conversation's own prompts (keys of the pack's `[prompts]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PromptKind {
    /// Answers a phone call.
    GreetingPhone,
    /// Greets someone at an in-branch kiosk.
    GreetingKiosk,
    /// Answers an elder line: slower, and a person is offered up front.
    GreetingElder,
    /// After an answer: is there anything else?
    AnythingElse,
    /// Nothing was heard after a question.
    NoInput,
    /// Repeated silence: the bot says goodbye and hangs up.
    NoInputClose,
    /// Speech was heard but nothing usable came of it.
    DidNotCatch,
    /// Checks a value heard poorly; `{value}` is the value.
    Confirm,
    /// Offers the keypad menu; `{options}` lists "press N for ...".
    Menu,
    /// One menu option; `{digit}` and `{label}`.
    MenuOption,
    /// The agent side could not take the call; a call-back is promised.
    TransferFailed,
    /// The service is shutting down while the caller is on the line.
    ShuttingDown,
}

impl PromptKind {
    pub const ALL: [PromptKind; 12] = [
        PromptKind::GreetingPhone,
        PromptKind::GreetingKiosk,
        PromptKind::GreetingElder,
        PromptKind::AnythingElse,
        PromptKind::NoInput,
        PromptKind::NoInputClose,
        PromptKind::DidNotCatch,
        PromptKind::Confirm,
        PromptKind::Menu,
        PromptKind::MenuOption,
        PromptKind::TransferFailed,
        PromptKind::ShuttingDown,
    ];

    /// The key in the pack's `[prompts]` table.
    pub fn key(self) -> &'static str {
        match self {
            PromptKind::GreetingPhone => "greeting_phone",
            PromptKind::GreetingKiosk => "greeting_kiosk",
            PromptKind::GreetingElder => "greeting_elder",
            PromptKind::AnythingElse => "anything_else",
            PromptKind::NoInput => "no_input",
            PromptKind::NoInputClose => "no_input_close",
            PromptKind::DidNotCatch => "did_not_catch",
            PromptKind::Confirm => "confirm",
            PromptKind::Menu => "menu",
            PromptKind::MenuOption => "menu_option",
            PromptKind::TransferFailed => "transfer_failed",
            PromptKind::ShuttingDown => "shutting_down",
        }
    }

    pub fn from_key(key: &str) -> Option<PromptKind> {
        PromptKind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The `{placeholders}` this prompt may use.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            PromptKind::Confirm => &["value"],
            PromptKind::Menu => &["options"],
            PromptKind::MenuOption => &["digit", "label"],
            _ => &[],
        }
    }
}

/// One keypad menu entry: pressing `digit` is taken as asking about `intent`.
#[derive(Debug, Clone, PartialEq)]
pub struct MenuEntry {
    pub digit: char,
    pub intent: String,
    pub labels: BTreeMap<Language, String>,
}

/// Every prompt, per language.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prompts {
    texts: BTreeMap<PromptKind, BTreeMap<Language, String>>,
}

impl Prompts {
    pub(crate) fn new(texts: BTreeMap<PromptKind, BTreeMap<Language, String>>) -> Prompts {
        Prompts { texts }
    }

    /// Fills the prompts this set lacks from `defaults`, language by language.
    pub(crate) fn or(mut self, defaults: &Prompts) -> Prompts {
        for (kind, by_language) in &defaults.texts {
            let mine = self.texts.entry(*kind).or_default();
            for (language, text) in by_language {
                mine.entry(language.clone()).or_insert_with(|| text.clone());
            }
        }
        self
    }

    /// The prompt in `language`, else English, else any language it has.
    pub fn text(&self, kind: PromptKind, language: &Language) -> &str {
        let Some(by_language) = self.texts.get(&kind) else { return "" };
        by_language
            .get(language)
            .or_else(|| by_language.get(&Language::En))
            .or_else(|| by_language.values().next())
            .map_or("", String::as_str)
    }
}

/// Replaces `{name}` placeholders in a prompt.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |text, (name, value)| text.replace(&format!("{{{name}}}"), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::KnowledgePack;

    #[test]
    fn the_embedded_pack_has_every_prompt_in_both_languages() {
        let pack = KnowledgePack::embedded();
        for kind in PromptKind::ALL {
            for language in [Language::En, Language::Zh] {
                assert!(!pack.prompts.text(kind, &language).is_empty(), "{} {language}", kind.key());
            }
        }
        assert!(pack.menu.iter().any(|m| m.intent == "order_status"));
    }

    #[test]
    fn keys_round_trip() {
        for kind in PromptKind::ALL {
            assert_eq!(PromptKind::from_key(kind.key()), Some(kind));
        }
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(
            fill("Press {digit} for {label}.", &[("digit", "1"), ("label", "orders")]),
            "Press 1 for orders."
        );
    }
}
