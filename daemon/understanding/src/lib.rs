//! Understanding callers, in English and Mandarin, entirely on the device.
//!
//! - [`pack`]: knowledge packs (intents, FAQ, products), validated on load.
//! - [`intent`]: intent classification against the pack with confidences.
//! - [`slots`]: order numbers, phones, amounts, dates, times and products,
//!   with spoken numbers normalised ("four five seven one two", "四万五千").
//! - [`pii`]: masking of card numbers, national IDs and phone numbers for
//!   any text that leaves the process.
//! - [`emotion`]: a 5-level valence, arousal and label from text and voice.
//!
//! Pure logic: no tokio, no native code. Sentence embeddings arrive through
//! `voicebot_core::engine::SentenceEmbedder`.

pub mod analysis;
pub mod answer;
pub mod emotion;
pub mod intent;
pub mod pack;
pub mod pii;
pub mod slots;
