//! The bot's voice for one call: speaks prompts first sentence first, and
//! synthesises a prompt the call expects to say next ahead of time.
//!
//! Splitting at the first sentence (or, for a long one, at its first comma)
//! lets audio start while the rest is synthesised; the latency to first audio
//! is measured per prompt. At most [`MAX_PREPARED`] prompts are held ready;
//! older ones are dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voicebot_core::EngineError;
use voicebot_core::engine::{SpeechSynthesizer, SynthesizedAudio};
use voicebot_dialog::call::{Prompt, PromptId};

/// Prepared prompts kept at most (the call speculates one turn ahead).
pub(crate) const MAX_PREPARED: usize = 4;

/// A first sentence longer than this (characters) is split so audio starts sooner.
const LONG_FIRST_CHUNK: usize = 40;

/// Words a long English sentence may be split before: the start of a phrase.
const PHRASE_STARTS: [&str; 20] = [
    "from", "to", "and", "with", "for", "in", "on", "at", "or", "but", "so", "because", "when", "which",
    "that", "if", "as", "until", "after", "before",
];

/// Splits `text` so its first part can be spoken while the rest is synthesised:
/// after the first sentence; a long first sentence at its first comma, or else
/// before a word that starts a phrase ("from", "and", ...) 30–60 characters in.
/// `rest` may be empty.
pub fn first_sentence_split(text: &str) -> (&str, &str) {
    let find = |marks: &[char], from: usize, to: usize| {
        text.char_indices()
            .filter(|(i, _)| *i >= from && *i < to)
            .find(|(_, c)| marks.contains(c))
            .map(|(i, c)| i + c.len_utf8())
    };
    let sentence = find(&['.', '?', '!', '。', '？', '！'], 0, text.len()).unwrap_or(text.len());
    let head = &text[..sentence];
    let cut = if head.chars().count() <= LONG_FIRST_CHUNK {
        sentence
    } else if let Some(comma) = find(&[',', '，', ';', '；'], 6, sentence) {
        comma
    } else {
        // Before a phrase word, at a byte offset that is a word boundary.
        head.match_indices(' ')
            .map(|(i, _)| i)
            .filter(|&i| (30..=60).contains(&head[..i].chars().count()))
            .find(|&i| {
                let word = head[i + 1..].split(' ').next().unwrap_or("");
                PHRASE_STARTS.contains(&word.to_ascii_lowercase().as_str())
            })
            .unwrap_or(sentence)
    };
    (text[..cut].trim(), text[cut..].trim())
}

/// A prompt's audio, and how long the first of it took to synthesise.
#[derive(Debug, Clone)]
pub struct Utterance {
    pub audio: SynthesizedAudio,
    /// From the request to speak to the first audio being ready (zero when prepared).
    pub first_audio_after: Duration,
}

/// Per-call speech output.
pub struct Mouth {
    tts: Arc<dyn SpeechSynthesizer>,
    prepared: VecDeque<(PromptId, SynthesizedAudio)>,
}

impl Mouth {
    pub fn new(tts: Arc<dyn SpeechSynthesizer>) -> Mouth {
        Mouth { tts, prepared: VecDeque::new() }
    }

    fn synthesize(&self, text: &str, prompt: &Prompt) -> Result<SynthesizedAudio, EngineError> {
        self.tts.synthesize(text, &prompt.language, prompt.rate)
    }

    /// Synthesises the prompt's first chunk now, to be spoken later.
    ///
    /// # Errors
    /// TTS failures.
    pub fn prepare(&mut self, prompt: &Prompt) -> Result<(), EngineError> {
        let (first, _) = first_sentence_split(&prompt.text);
        let audio = self.synthesize(first, prompt)?;
        if self.prepared.len() == MAX_PREPARED {
            self.prepared.pop_front();
        }
        self.prepared.push_back((prompt.id, audio));
        Ok(())
    }

    /// The first chunk of `prompt`: prepared, or synthesised now.
    ///
    /// # Errors
    /// TTS failures.
    pub fn start(&mut self, prompt: &Prompt) -> Result<Utterance, EngineError> {
        let began = Instant::now();
        let ready = self.prepared.iter().position(|(id, _)| *id == prompt.id);
        let audio = match ready.and_then(|i| self.prepared.remove(i)) {
            Some((_, audio)) => audio,
            None => self.synthesize(first_sentence_split(&prompt.text).0, prompt)?,
        };
        let first_audio_after = if ready.is_some() { Duration::ZERO } else { began.elapsed() };
        Ok(Utterance { audio, first_audio_after })
    }

    /// The rest of `prompt` after its first chunk (empty audio when there is none).
    ///
    /// # Errors
    /// TTS failures.
    pub fn rest(&mut self, prompt: &Prompt, sample_rate: u32) -> Result<SynthesizedAudio, EngineError> {
        let (_, rest) = first_sentence_split(&prompt.text);
        if rest.is_empty() {
            return Ok(SynthesizedAudio { samples: Vec::new(), sample_rate });
        }
        self.synthesize(rest, prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sentence_goes_first() {
        assert_eq!(
            first_sentence_split("Sure. Our stores open at nine."),
            ("Sure.", "Our stores open at nine.")
        );
        assert_eq!(first_sentence_split("No full stop"), ("No full stop", ""));
        assert_eq!(first_sentence_split("好的。我们九点开门。"), ("好的。", "我们九点开门。"));
        let long =
            "You can return anything within 30 days with your receipt, in any of our stores or by post.";
        assert_eq!(
            first_sentence_split(long),
            ("You can return anything within 30 days with your receipt,", "in any of our stores or by post.")
        );
        let hours = "Our stores are open Monday to Saturday from nine in the morning to nine in the evening.";
        assert_eq!(
            first_sentence_split(hours),
            ("Our stores are open Monday to Saturday", "from nine in the morning to nine in the evening.")
        );
        assert_eq!(
            first_sentence_split("好的，已查到订单45712。标准配送需要二到四个工作日。").0,
            "好的，已查到订单45712。"
        );
    }
}
