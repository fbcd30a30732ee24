//! The knowledge-pack file as written (stage one). Names carry their source
//! span so validation errors can point at a line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPack {
    pub(crate) pack: RawHeader,
    #[serde(default, rename = "intent")]
    pub(crate) intents: Vec<RawIntent>,
    #[serde(default, rename = "faq")]
    pub(crate) faqs: Vec<RawFaq>,
    #[serde(default, rename = "product")]
    pub(crate) products: Vec<RawProduct>,
    /// The conversation's own prompts: key → text per language.
    #[serde(default)]
    pub(crate) prompts: BTreeMap<Spanned<String>, ByLanguage<String>>,
    #[serde(default, rename = "menu")]
    pub(crate) menu: Vec<RawMenuEntry>,
}

/// `[[menu]]`: a keypad option offered when speech keeps failing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMenuEntry {
    pub(crate) digit: Spanned<String>,
    pub(crate) intent: Spanned<String>,
    pub(crate) label: ByLanguage<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeader {
    pub(crate) name: String,
    pub(crate) version: Spanned<String>,
    pub(crate) languages: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) out_of_scope_threshold: Option<Spanned<f32>>,
}

/// Per-language text: `{ en = "...", zh = "..." }`.
pub(crate) type ByLanguage<T> = BTreeMap<String, T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntent {
    pub(crate) name: Spanned<String>,
    #[serde(default)]
    pub(crate) sensitive: bool,
    #[serde(default = "default_skill_group")]
    pub(crate) skill_group: String,
    #[serde(default)]
    pub(crate) priority: u8,
    #[serde(default)]
    pub(crate) examples: ByLanguage<Vec<String>>,
    #[serde(default)]
    pub(crate) keywords: ByLanguage<Vec<String>>,
    #[serde(default)]
    pub(crate) answer: ByLanguage<Spanned<String>>,
    /// Slots the answer needs, asked for when missing: slot kind → prompt per language.
    #[serde(default)]
    pub(crate) ask: BTreeMap<Spanned<String>, ByLanguage<String>>,
}

fn default_skill_group() -> String {
    "general".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFaq {
    pub(crate) id: Spanned<String>,
    /// The intent this entry refines (e.g. `store_hours` for "open on Sundays?").
    pub(crate) intent: Spanned<String>,
    pub(crate) question: ByLanguage<String>,
    #[serde(default)]
    pub(crate) paraphrases: ByLanguage<Vec<String>>,
    pub(crate) answer: ByLanguage<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProduct {
    pub(crate) sku: Spanned<String>,
    pub(crate) names: ByLanguage<Vec<String>>,
}
