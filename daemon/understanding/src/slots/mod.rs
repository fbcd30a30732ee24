//! Slots: the facts a caller gives, extracted into a ticket.
//!
//! Text is first normalised so spoken numbers become digits
//! ([`numbers_en`], [`numbers_zh`]); extraction then works on digit runs and
//! cue words. Raw values stay in the call's memory; anything printed or
//! published goes through [`crate::pii`].

pub mod numbers_en;
pub mod numbers_zh;
mod scan;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use voicebot_core::Language;

pub use scan::{DigitRun, digit_runs, is_phone as scan_is_phone};

use crate::pack::KnowledgePack;

/// The kinds of slot a pack may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    OrderNumber,
    Phone,
    Amount,
    Date,
    Time,
    Product,
}

impl SlotKind {
    pub const ALL: [SlotKind; 6] = [
        SlotKind::OrderNumber,
        SlotKind::Phone,
        SlotKind::Amount,
        SlotKind::Date,
        SlotKind::Time,
        SlotKind::Product,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SlotKind::OrderNumber => "order_number",
            SlotKind::Phone => "phone",
            SlotKind::Amount => "amount",
            SlotKind::Date => "date",
            SlotKind::Time => "time",
            SlotKind::Product => "product",
        }
    }
}

impl fmt::Display for SlotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SlotKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SlotKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            format!("unknown slot {s:?} (known: order_number, phone, amount, date, time, product)")
        })
    }
}

/// One extracted value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub kind: SlotKind,
    /// Normalised: digits for numbers, the SKU for products, the phrase for dates and times.
    pub value: String,
}

/// Rewrites spoken numbers of either language as digits.
pub fn normalize_numbers(text: &str, language: &Language) -> String {
    match language {
        Language::Zh => numbers_zh::normalize_numbers(&numbers_en::normalize_numbers(text)),
        _ => numbers_en::normalize_numbers(text),
    }
}

/// Extracts every slot in an utterance (one value per kind, the most specific).
pub fn extract(text: &str, language: &Language, pack: &KnowledgePack) -> Vec<Slot> {
    let normalized = normalize_numbers(text, language);
    let lower = normalized.to_lowercase();
    let mut slots = Vec::new();
    let runs = digit_runs(&normalized);
    let mut used = vec![false; runs.len()];

    if let Some(i) = runs.iter().position(|r| scan::is_phone(r, &lower)) {
        used[i] = true;
        slots.push(Slot { kind: SlotKind::Phone, value: runs[i].digits.clone() });
    }
    if let Some((i, value)) =
        runs.iter().enumerate().find_map(|(i, r)| scan::amount(r, &lower).map(|v| (i, v)))
    {
        used[i] = true;
        slots.push(Slot { kind: SlotKind::Amount, value });
    }
    let order = runs
        .iter()
        .enumerate()
        .filter(|(i, r)| !used[*i] && scan::could_be_order_number(r, &lower))
        .max_by_key(|(_, r)| (scan::near_order_cue(r, &lower), r.digits.len()));
    if let Some((_, run)) = order {
        slots.push(Slot { kind: SlotKind::OrderNumber, value: run.digits.clone() });
    }
    if let Some(date) = scan::date(&lower) {
        slots.push(Slot { kind: SlotKind::Date, value: date });
    }
    if let Some(time) = scan::time(&lower) {
        slots.push(Slot { kind: SlotKind::Time, value: time });
    }
    if let Some(sku) = product(&lower, pack) {
        slots.push(Slot { kind: SlotKind::Product, value: sku });
    }
    slots
}

/// The SKU of the longest catalogue name in the text.
fn product(lower: &str, pack: &KnowledgePack) -> Option<String> {
    pack.products
        .iter()
        .flat_map(|p| p.names.values().flatten().map(move |name| (name.to_lowercase(), &p.sku)))
        .filter(|(name, _)| !name.is_empty() && contains_phrase(lower, name))
        .max_by_key(|(name, _)| name.chars().count())
        .map(|(_, sku)| sku.clone())
}

/// Substring match on word boundaries for Latin text; plain for Chinese.
pub fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    if phrase.chars().any(voicebot_core::language::is_han) {
        return haystack.contains(phrase);
    }
    haystack.match_indices(phrase).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The `{placeholder}` names in an answer template.
pub fn template_placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        names.push(&after[..close]);
        rest = &after[close + 1..];
    }
    names
}

/// Fills `{slot}` placeholders; returns the slots that are missing instead.
///
/// # Errors
/// The kinds the template needs that `slots` lacks.
pub fn fill_template(template: &str, slots: &[Slot]) -> Result<String, Vec<SlotKind>> {
    let mut out = template.to_owned();
    let mut missing = Vec::new();
    for name in template_placeholders(template) {
        let Ok(kind) = name.parse::<SlotKind>() else { continue };
        match slots.iter().find(|s| s.kind == kind) {
            Some(slot) => out = out.replace(&format!("{{{name}}}"), &slot.value),
            None => missing.push(kind),
        }
    }
    if missing.is_empty() { Ok(out) } else { Err(missing) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack() -> KnowledgePack {
        KnowledgePack::embedded()
    }

    fn value(slots: &[Slot], kind: SlotKind) -> Option<&str> {
        slots.iter().find(|s| s.kind == kind).map(|s| s.value.as_str())
    }

    #[test]
    fn a_spoken_order_number_is_extracted_as_digits() {
        let slots = extract("my order number is four five seven one two", &Language::En, &pack());
        assert_eq!(value(&slots, SlotKind::OrderNumber), Some("45712"));
        let slots = extract("订单号是四五七一二", &Language::Zh, &pack());
        assert_eq!(value(&slots, SlotKind::OrderNumber), Some("45712"));
    }

    #[test]
    fn an_order_number_split_by_asr_is_joined() {
        let slots = extract("My order number is 451-2", &Language::En, &pack());
        assert_eq!(value(&slots, SlotKind::OrderNumber), Some("4512"));
    }

    #[test]
    fn amounts_come_with_their_currency_cue() {
        let slots = extract("I was charged twenty dollars twice", &Language::En, &pack());
        assert_eq!(value(&slots, SlotKind::Amount), Some("20"));
        let slots = extract("多扣了四万五千块", &Language::Zh, &pack());
        assert_eq!(value(&slots, SlotKind::Amount), Some("45000"));
        let slots = extract("it cost $19.99", &Language::En, &pack());
        assert_eq!(value(&slots, SlotKind::Amount), Some("19.99"));
    }

    #[test]
    fn phone_numbers_are_recognised_by_cue_or_shape() {
        let slots = extract("call me on 0 2 0 7 9 4 6 0 9 5 8", &Language::En, &pack());
        assert_eq!(value(&slots, SlotKind::Phone), Some("02079460958"));
        let slots = extract("我的手机是13800138000", &Language::Zh, &pack());
        assert_eq!(value(&slots, SlotKind::Phone), Some("13800138000"));
        assert_eq!(value(&slots, SlotKind::OrderNumber), None);
    }

    #[test]
    fn dates_and_times_are_found() {
        let slots = extract("can I pick it up tomorrow at 3 pm", &Language::En, &pack());
        assert_eq!(value(&slots, SlotKind::Date), Some("tomorrow"));
        assert_eq!(value(&slots, SlotKind::Time), Some("3 pm"));
        let slots = extract("下周三下午三点去拿", &Language::Zh, &pack());
        assert_eq!(value(&slots, SlotKind::Date), Some("下周三"));
        assert_eq!(value(&slots, SlotKind::Time), Some("下午3点"));
    }

    #[test]
    fn templates_fill_or_report_what_is_missing() {
        let slots = vec![Slot { kind: SlotKind::OrderNumber, value: "45712".into() }];
        assert_eq!(
            fill_template("Order {order_number} ships today.", &slots).unwrap(),
            "Order 45712 ships today."
        );
        assert_eq!(fill_template("Your {product} is in stock.", &slots), Err(vec![SlotKind::Product]));
    }

    #[test]
    fn phrases_match_on_word_boundaries() {
        assert!(contains_phrase("do you have the rain jacket", "rain jacket"));
        assert!(!contains_phrase("brainjacket", "rain jacket"));
        assert!(contains_phrase("有雨衣吗", "雨衣"));
    }
}
