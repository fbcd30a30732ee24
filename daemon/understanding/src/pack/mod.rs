//! Knowledge packs: what the bot knows, provisioned by technicians.
//!
//! A pack is a versioned TOML file of intents (examples and answers per
//! language, flags, the slots an answer needs), FAQ entries and a product
//! catalogue. Loading validates everything; an error names the file, the line
//! and the problem, and a rejected pack never replaces the one in use
//! ([`PackStore`]).

mod prompts;
mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use voicebot_core::Language;

use crate::slots::SlotKind;
pub use prompts::{MenuEntry, PromptKind, Prompts, fill};
use raw::{ByLanguage, RawPack};

/// The embedded default pack: a retailer's hotline and store kiosk.
pub const DEFAULT_PACK: &str = include_str!("../default_pack.toml");

/// Intent names scripts rely on; the default pack has exactly these.
pub const CONTRACT_INTENTS: [&str; 15] = [
    "greeting",
    "goodbye",
    "affirm",
    "deny",
    "repeat",
    "order_status",
    "return_refund",
    "payment_problem",
    "account_security",
    "store_hours",
    "store_location",
    "product_availability",
    "complaint",
    "human_agent",
    "out_of_scope",
];

/// Intents every pack must have: the fallback and the hand-over.
const REQUIRED_INTENTS: [&str; 2] = ["out_of_scope", "human_agent"];

/// Why a pack was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("knowledge pack {origin}{}: {problem}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct PackError {
    pub origin: String,
    pub line: Option<usize>,
    pub problem: String,
}

/// A validated knowledge pack.
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgePack {
    pub name: String,
    pub version: String,
    pub languages: Vec<Language>,
    /// Below this confidence an utterance is `out_of_scope`.
    pub out_of_scope_threshold: f32,
    pub intents: Vec<Intent>,
    pub faqs: Vec<Faq>,
    pub products: Vec<Product>,
    /// The conversation's prompts; those the file leaves out come from the embedded pack.
    pub prompts: Prompts,
    /// Keypad options offered when speech keeps failing (may be empty).
    pub menu: Vec<MenuEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub name: String,
    /// Always hand over to a person.
    pub sensitive: bool,
    pub skill_group: String,
    pub priority: u8,
    pub examples: BTreeMap<Language, Vec<String>>,
    /// Words or phrases that strongly suggest this intent.
    pub keywords: BTreeMap<Language, Vec<String>>,
    /// Answer templates; `{slot}` placeholders are filled from the utterance.
    pub answers: BTreeMap<Language, String>,
    /// Slots the answer needs, with the prompt that asks for each.
    pub asks: Vec<(SlotKind, BTreeMap<Language, String>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Faq {
    pub id: String,
    pub intent: String,
    /// The question and its paraphrases, per language.
    pub phrasings: BTreeMap<Language, Vec<String>>,
    pub answers: BTreeMap<Language, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub sku: String,
    pub names: BTreeMap<Language, Vec<String>>,
}

impl KnowledgePack {
    /// The embedded default pack.
    pub fn embedded() -> KnowledgePack {
        // A unit test keeps the embedded pack valid.
        KnowledgePack::parse(DEFAULT_PACK, "(embedded default pack)").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Reads and validates a pack file.
    ///
    /// # Errors
    /// An unreadable file, or any problem [`KnowledgePack::parse`] finds.
    pub fn load(path: &Path) -> Result<KnowledgePack, PackError> {
        let text = std::fs::read_to_string(path).map_err(|e| PackError {
            origin: path.display().to_string(),
            line: None,
            problem: format!("cannot read: {e}"),
        })?;
        KnowledgePack::parse(&text, &path.display().to_string())
    }

    /// The embedded pack's prompts: the defaults every pack falls back on.
    fn default_prompts() -> Prompts {
        static DEFAULTS: std::sync::OnceLock<Prompts> = std::sync::OnceLock::new();
        DEFAULTS
            .get_or_init(|| {
                let raw: RawPack =
                    toml::from_str(DEFAULT_PACK).unwrap_or_else(|e| panic!("embedded pack: {e}"));
                let validator = Validator { text: DEFAULT_PACK, origin: "(embedded default pack)" };
                let languages = [Language::En, Language::Zh];
                validator.prompts(raw.prompts, &languages).unwrap_or_else(|e| panic!("{e}"))
            })
            .clone()
    }

    /// Parses and validates pack text; `origin` names it in errors.
    ///
    /// # Errors
    /// TOML syntax, unknown keys, duplicate or missing intents, examples
    /// missing for a declared language, unknown slots in templates, FAQ
    /// entries pointing at unknown intents, bad thresholds.
    pub fn parse(text: &str, origin: &str) -> Result<KnowledgePack, PackError> {
        let raw: RawPack = toml::from_str(text).map_err(|e| PackError {
            origin: origin.to_owned(),
            line: e.span().map(|s| line_of(text, s.start)),
            problem: e.message().to_owned(),
        })?;
        Validator { text, origin }.pack(raw)
    }

    pub fn intent(&self, name: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.name == name)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Validator<'_> {
    fn error(&self, span: Option<std::ops::Range<usize>>, problem: String) -> PackError {
        PackError { origin: self.origin.to_owned(), line: span.map(|s| line_of(self.text, s.start)), problem }
    }

    fn languages<T>(
        &self,
        map: ByLanguage<T>,
        declared: &[Language],
        span: std::ops::Range<usize>,
        what: &str,
    ) -> Result<BTreeMap<Language, T>, PackError> {
        let mut out = BTreeMap::new();
        for (code, value) in map {
            let language =
                code.parse::<Language>().ok().filter(|l| declared.contains(l)).ok_or_else(|| {
                    self.error(
                        Some(span.clone()),
                        format!("{what}: language {code:?} is not declared in [pack] languages"),
                    )
                })?;
            out.insert(language, value);
        }
        Ok(out)
    }

    fn pack(&self, raw: RawPack) -> Result<KnowledgePack, PackError> {
        if raw.pack.version.get_ref().trim().is_empty() {
            return Err(self.error(Some(raw.pack.version.span()), "[pack] version is empty".into()));
        }
        let mut languages = Vec::new();
        for code in &raw.pack.languages {
            let language = code
                .get_ref()
                .parse::<Language>()
                .map_err(|e| self.error(Some(code.span()), format!("[pack] languages: {e}")))?;
            languages.push(language);
        }
        if languages.is_empty() {
            return Err(self.error(None, "[pack] languages is empty".into()));
        }
        let threshold = match raw.pack.out_of_scope_threshold {
            Some(t) if !(0.0..1.0).contains(t.get_ref()) => {
                return Err(self.error(Some(t.span()), "out_of_scope_threshold must be in [0, 1)".into()));
            }
            Some(t) => *t.get_ref(),
            None => 0.5,
        };

        let mut intents = Vec::new();
        let mut names = BTreeSet::new();
        for raw_intent in raw.intents {
            let intent = self.intent(raw_intent, &languages)?;
            names.insert(intent.name.clone());
            intents.push(intent);
        }
        for required in REQUIRED_INTENTS {
            if !names.contains(required) {
                return Err(self.error(None, format!("intent {required:?} is required and missing")));
            }
        }

        let mut faqs = Vec::new();
        let mut faq_ids = BTreeSet::new();
        for faq in raw.faqs {
            let span = faq.id.span();
            let id = faq.id.into_inner();
            if !faq_ids.insert(id.clone()) {
                return Err(self.error(Some(span), format!("duplicate FAQ id {id:?}")));
            }
            if !names.contains(faq.intent.get_ref()) {
                let problem = format!("FAQ {id:?} refers to unknown intent {:?}", faq.intent.get_ref());
                return Err(self.error(Some(faq.intent.span()), problem));
            }
            let mut phrasings = self
                .languages(faq.question, &languages, span.clone(), &format!("FAQ {id}"))?
                .into_iter()
                .map(|(l, q)| (l, vec![q]))
                .collect::<BTreeMap<_, _>>();
            for (language, more) in
                self.languages(faq.paraphrases, &languages, span.clone(), &format!("FAQ {id}"))?
            {
                phrasings.entry(language).or_default().extend(more);
            }
            let answers = self.templates(faq.answer, &languages, span, &format!("FAQ {id}"))?;
            faqs.push(Faq { id, intent: faq.intent.into_inner(), phrasings, answers });
        }

        let mut products = Vec::new();
        for product in raw.products {
            let span = product.sku.span();
            let names = self.languages(product.names, &languages, span.clone(), "product")?;
            if names.values().all(Vec::is_empty) {
                return Err(
                    self.error(Some(span), format!("product {:?} has no names", product.sku.get_ref()))
                );
            }
            products.push(Product { sku: product.sku.into_inner(), names });
        }

        let prompts = self.prompts(raw.prompts, &languages)?.or(&KnowledgePack::default_prompts());
        let mut menu = Vec::new();
        for entry in raw.menu {
            menu.push(self.menu_entry(entry, &languages, &names, &menu)?);
        }

        Ok(KnowledgePack {
            name: raw.pack.name,
            version: raw.pack.version.into_inner(),
            languages,
            out_of_scope_threshold: threshold,
            intents,
            faqs,
            products,
            prompts,
            menu,
        })
    }

    fn prompts(
        &self,
        raw: BTreeMap<toml::Spanned<String>, ByLanguage<String>>,
        languages: &[Language],
    ) -> Result<Prompts, PackError> {
        let mut texts = BTreeMap::new();
        for (key, by_language) in raw {
            let span = key.span();
            let Some(kind) = PromptKind::from_key(key.get_ref()) else {
                let known: Vec<&str> = PromptKind::ALL.iter().map(|k| k.key()).collect();
                let problem =
                    format!("unknown prompt {:?}; known prompts: {}", key.get_ref(), known.join(", "));
                return Err(self.error(Some(span), problem));
            };
            let by_language =
                self.languages(by_language, languages, span.clone(), &format!("prompt {}", kind.key()))?;
            for (language, text) in &by_language {
                for placeholder in crate::slots::template_placeholders(text) {
                    if !kind.placeholders().contains(&placeholder) {
                        let problem = format!(
                            "prompt {}: unknown placeholder {{{placeholder}}} in the {language} text (allowed: {:?})",
                            kind.key(),
                            kind.placeholders()
                        );
                        return Err(self.error(Some(span), problem));
                    }
                }
            }
            texts.insert(kind, by_language);
        }
        Ok(Prompts::new(texts))
    }

    fn menu_entry(
        &self,
        raw: raw::RawMenuEntry,
        languages: &[Language],
        intents: &BTreeSet<String>,
        earlier: &[MenuEntry],
    ) -> Result<MenuEntry, PackError> {
        let span = raw.digit.span();
        let digit = match raw.digit.get_ref().as_bytes() {
            [d @ b'1'..=b'9'] => char::from(*d),
            _ => {
                let problem = format!(
                    "menu digit {:?} must be one of 1-9 (0 always asks for a person)",
                    raw.digit.get_ref()
                );
                return Err(self.error(Some(span), problem));
            }
        };
        if earlier.iter().any(|e| e.digit == digit) {
            return Err(self.error(Some(span), format!("menu digit {digit} is used twice")));
        }
        if !intents.contains(raw.intent.get_ref()) {
            let problem = format!("menu digit {digit} refers to unknown intent {:?}", raw.intent.get_ref());
            return Err(self.error(Some(raw.intent.span()), problem));
        }
        let labels = self.languages(raw.label, languages, span, &format!("menu digit {digit}"))?;
        Ok(MenuEntry { digit, intent: raw.intent.into_inner(), labels })
    }

    fn intent(&self, raw: raw::RawIntent, languages: &[Language]) -> Result<Intent, PackError> {
        let span = raw.name.span();
        let name = raw.name.into_inner();
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            return Err(self.error(Some(span), format!("intent name {name:?} must be snake_case")));
        }
        let what = format!("intent {name}");
        let examples = self.languages(raw.examples, languages, span.clone(), &what)?;
        if name != "out_of_scope" {
            for language in languages {
                if examples.get(language).is_none_or(Vec::is_empty) {
                    let problem = format!("intent {name:?} has no {language} examples");
                    return Err(self.error(Some(span), problem));
                }
            }
        }
        let keywords = self.languages(raw.keywords, languages, span.clone(), &what)?;
        let answers = self.templates(raw.answer, languages, span.clone(), &what)?;
        let mut asks = Vec::new();
        for (slot, prompts) in raw.ask {
            let kind = slot
                .get_ref()
                .parse::<SlotKind>()
                .map_err(|e| self.error(Some(slot.span()), format!("intent {name:?} asks for {e}")))?;
            asks.push((kind, self.languages(prompts, languages, slot.span(), &what)?));
        }
        Ok(Intent {
            name,
            sensitive: raw.sensitive,
            skill_group: raw.skill_group,
            priority: raw.priority,
            examples,
            keywords,
            answers,
            asks,
        })
    }

    /// Answer templates, with every `{placeholder}` checked to be a slot kind.
    fn templates(
        &self,
        raw: ByLanguage<toml::Spanned<String>>,
        languages: &[Language],
        span: std::ops::Range<usize>,
        what: &str,
    ) -> Result<BTreeMap<Language, String>, PackError> {
        let mut out = BTreeMap::new();
        for (language, template) in self.languages(raw, languages, span, what)? {
            for placeholder in crate::slots::template_placeholders(template.get_ref()) {
                if placeholder.parse::<SlotKind>().is_err() {
                    let problem = format!("{what}: unknown slot {{{placeholder}}} in the {language} answer");
                    return Err(self.error(Some(template.span()), problem));
                }
            }
            out.insert(language, template.into_inner());
        }
        Ok(out)
    }
}

/// The pack in use, swapped atomically on a successful reload.
#[derive(Debug)]
pub struct PackStore {
    current: RwLock<Arc<KnowledgePack>>,
    path: Option<PathBuf>,
}

impl PackStore {
    pub fn new(pack: KnowledgePack, path: Option<PathBuf>) -> PackStore {
        PackStore { current: RwLock::new(Arc::new(pack)), path }
    }

    /// The pack in use; calls keep the `Arc` they started with.
    pub fn current(&self) -> Arc<KnowledgePack> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Re-reads the pack file. On any error the pack in use stays.
    ///
    /// # Errors
    /// The reason the new pack was rejected.
    pub fn reload(&self) -> Result<Arc<KnowledgePack>, PackError> {
        let Some(path) = &self.path else {
            return Ok(self.current());
        };
        self.replace(KnowledgePack::load(path)?)
    }

    /// Puts a validated pack in use.
    ///
    /// # Errors
    /// None today; kept fallible for packs checked against the running config.
    pub fn replace(&self, pack: KnowledgePack) -> Result<Arc<KnowledgePack>, PackError> {
        let pack = Arc::new(pack);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&pack);
        Ok(pack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[pack]
name = "t"
version = "1"
languages = ["en"]

[[intent]]
name = "human_agent"
examples.en = ["agent please"]
answer.en = "Connecting you."

[[intent]]
name = "out_of_scope"
answer.en = "Sorry."
"#;

    #[test]
    fn the_embedded_pack_has_exactly_the_contract_intents() {
        let pack = KnowledgePack::embedded();
        let mut names: Vec<&str> = pack.intents.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        let mut expected = CONTRACT_INTENTS.to_vec();
        expected.sort_unstable();
        assert_eq!(names, expected);
        assert!(pack.intent("account_security").unwrap().sensitive);
    }

    #[test]
    fn a_minimal_pack_loads() {
        let pack = KnowledgePack::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(pack.intents.len(), 2);
        assert_eq!(pack.out_of_scope_threshold, 0.5);
    }

    #[test]
    fn an_unknown_slot_in_an_answer_names_the_line() {
        let text = MINIMAL.replace("Connecting you.", "Connecting you about {colour}.");
        let err = KnowledgePack::parse(&text, "bad.toml").unwrap_err();
        assert_eq!(err.line, Some(10), "{err}");
        assert!(err.to_string().starts_with("knowledge pack bad.toml, line 10:"), "{err}");
        assert!(err.problem.contains("{colour}"), "{err}");
    }

    #[test]
    fn a_missing_required_intent_is_rejected() {
        let text = MINIMAL.replace("name = \"human_agent\"", "name = \"greeting\"");
        let err = KnowledgePack::parse(&text, "bad.toml").unwrap_err();
        assert!(err.problem.contains("human_agent"), "{err}");
    }

    #[test]
    fn an_intent_without_examples_in_a_declared_language_is_rejected() {
        let text = MINIMAL.replace("languages = [\"en\"]", "languages = [\"en\", \"zh\"]");
        let err = KnowledgePack::parse(&text, "bad.toml").unwrap_err();
        assert!(err.problem.contains("no zh examples"), "{err}");
        assert_eq!(err.line, Some(8));
    }

    #[test]
    fn unknown_keys_and_syntax_errors_name_the_line() {
        let err = KnowledgePack::parse(
            &MINIMAL.replace("answer.en = \"Sorry.\"", "answr.en = \"Sorry.\""),
            "bad.toml",
        )
        .unwrap_err();
        assert!(err.problem.contains("answr"), "{err}");
        assert_eq!(err.line, Some(14));
        let err = KnowledgePack::parse("[pack\n", "bad.toml").unwrap_err();
        assert_eq!(err.line, Some(1));
    }

    #[test]
    fn prompts_override_the_defaults_and_bad_ones_are_rejected() {
        let text = format!("{MINIMAL}\n[prompts]\ngreeting_phone.en = \"Welcome to Test.\"\n");
        let pack = KnowledgePack::parse(&text, "t.toml").unwrap();
        assert_eq!(pack.prompts.text(PromptKind::GreetingPhone, &Language::En), "Welcome to Test.");
        let default_close =
            KnowledgePack::embedded().prompts.text(PromptKind::NoInputClose, &Language::En).to_owned();
        assert_eq!(pack.prompts.text(PromptKind::NoInputClose, &Language::En), default_close);

        let err = KnowledgePack::parse(&format!("{MINIMAL}\n[prompts]\ngreting.en = \"x\"\n"), "t.toml")
            .unwrap_err();
        assert!(err.problem.contains("unknown prompt \"greting\""), "{err}");
        assert_eq!(err.line, Some(17));
        let err =
            KnowledgePack::parse(&format!("{MINIMAL}\n[prompts]\nconfirm.en = \"{{colour}}?\"\n"), "t.toml")
                .unwrap_err();
        assert!(err.problem.contains("{colour}"), "{err}");
    }

    #[test]
    fn menu_digits_must_be_1_to_9_once_and_name_known_intents() {
        let entry = |digit: &str, intent: &str| {
            format!("{MINIMAL}\n[[menu]]\ndigit = \"{digit}\"\nintent = \"{intent}\"\nlabel.en = \"x\"\n")
        };
        assert_eq!(KnowledgePack::parse(&entry("1", "human_agent"), "t").unwrap().menu[0].digit, '1');
        assert!(KnowledgePack::parse(&entry("0", "human_agent"), "t").unwrap_err().problem.contains("1-9"));
        assert!(KnowledgePack::parse(&entry("12", "human_agent"), "t").is_err());
        assert!(
            KnowledgePack::parse(&entry("2", "refunds"), "t").unwrap_err().problem.contains("unknown intent")
        );
        let twice = format!(
            "{}[[menu]]\ndigit = \"1\"\nintent = \"human_agent\"\nlabel.en = \"y\"\n",
            entry("1", "human_agent")
        );
        assert!(KnowledgePack::parse(&twice, "t").unwrap_err().problem.contains("twice"));
    }

    #[test]
    fn a_rejected_reload_keeps_the_pack_in_use() {
        let dir = std::env::temp_dir().join(format!("vb-pack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pack.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let store = PackStore::new(KnowledgePack::load(&path).unwrap(), Some(path.clone()));
        std::fs::write(&path, MINIMAL.replace("version = \"1\"", "version = \"2\"\nbogus = 1")).unwrap();
        assert!(store.reload().is_err());
        assert_eq!(store.current().version, "1");
        std::fs::write(&path, MINIMAL.replace("version = \"1\"", "version = \"2\"")).unwrap();
        assert_eq!(store.reload().unwrap().version, "2");
        assert_eq!(store.current().version, "2");
    }
}
