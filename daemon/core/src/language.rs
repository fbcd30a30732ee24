//! Caller languages. The product speaks English and Mandarin; Whisper may report
//! any other language it detects, which is kept as its ISO code.

use std::fmt;
use std::str::FromStr;

/// A spoken language, as reported by ASR or chosen for TTS.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Language {
    En,
    Zh,
    /// Another Whisper language code, e.g. `de`.
    Other(String),
}

impl Language {
    /// The ISO 639-1 code Whisper uses.
    pub fn code(&self) -> &str {
        match self {
            Language::En => "en",
            Language::Zh => "zh",
            Language::Other(code) => code,
        }
    }

    /// Maps a Whisper language code to a language.
    pub fn from_code(code: &str) -> Language {
        match code {
            "en" => Language::En,
            "zh" => Language::Zh,
            other => Language::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What the caller asked for: a fixed language or detection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LanguageChoice {
    #[default]
    Auto,
    Fixed(Language),
}

/// The error for a language name that is not `auto`, `en` or `zh`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?}: expected auto, en or zh")]
pub struct UnknownLanguage(pub String);

impl FromStr for LanguageChoice {
    type Err = UnknownLanguage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LanguageChoice::Auto),
            "en" => Ok(LanguageChoice::Fixed(Language::En)),
            "zh" => Ok(LanguageChoice::Fixed(Language::Zh)),
            other => Err(UnknownLanguage(other.to_owned())),
        }
    }
}

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<LanguageChoice>()? {
            LanguageChoice::Fixed(lang) => Ok(lang),
            LanguageChoice::Auto => Err(UnknownLanguage(s.to_owned())),
        }
    }
}

/// Guesses the language of typed text: any Han character makes it Chinese.
pub fn detect_text_language(text: &str) -> Language {
    if text.chars().any(is_han) { Language::Zh } else { Language::En }
}

/// True for CJK unified ideographs (the common Chinese characters).
pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_contract_choices() {
        assert_eq!("auto".parse(), Ok(LanguageChoice::Auto));
        assert_eq!("en".parse(), Ok(LanguageChoice::Fixed(Language::En)));
        assert_eq!("zh".parse(), Ok(LanguageChoice::Fixed(Language::Zh)));
    }

    #[test]
    fn rejects_an_unknown_language_by_name() {
        let err = "fr".parse::<LanguageChoice>().unwrap_err();
        assert!(err.to_string().contains("\"fr\""), "{err}");
    }

    #[test]
    fn detects_chinese_text_by_han_characters() {
        assert_eq!(detect_text_language("我的订单在哪里"), Language::Zh);
        assert_eq!(detect_text_language("where is my order"), Language::En);
    }
}
