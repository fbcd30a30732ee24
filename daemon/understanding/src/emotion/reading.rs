//! What a transcript alone says about the caller: the VADER-style compound
//! score plus the cues the label rules need. The English reader
//! ([`super::vader`]) and the Chinese reader ([`super::chinese`]) both produce a
//! [`TextReading`]; [`super::fusion`] turns it into an emotion.
//!
//! Invariant: `compound` is finite and within -1..=1.

/// Evidence drawn from the text of one turn.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct TextReading {
    /// Normalised sentiment, -1 (very negative) ..= +1 (very positive).
    pub(crate) compound: f32,
    /// Number of `!` (ASCII or full-width), capped at VADER's four.
    pub(crate) exclamations: usize,
    /// A sentiment or booster word written in ALL CAPS in mixed-case text.
    pub(crate) shouted: bool,
    pub(crate) cues: Cues,
}

/// Word classes that decide between the negative labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Cues {
    /// Hostility or outrage: "ridiculous", "furious", 气死, 垃圾, 投诉.
    pub(crate) anger: bool,
    /// Worry or fear: "stolen", "fraud", "worried", 担心, 害怕, 着急, 被盗.
    pub(crate) worry: bool,
    /// Repetition or an obstacle: "again", "still", "third time", 又, 一直, 好几次.
    pub(crate) repetition: bool,
}
