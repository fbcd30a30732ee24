//! What the caller said over the bot: a backchannel ("ok", "mm", "嗯"), the
//! bot's own voice coming back, or a real interruption.
//!
//! Only the first two let the bot carry on; anything else is a barge-in.

/// Listener noises that acknowledge without taking the turn.
const BACKCHANNELS_EN: [&str; 22] = [
    "ok",
    "okay",
    "k",
    "yeah",
    "yep",
    "yes",
    "mm",
    "mhm",
    "mmhm",
    "hmm",
    "uh huh",
    "um",
    "uh",
    "right",
    "sure",
    "alright",
    "all right",
    "i see",
    "got it",
    "cool",
    "great",
    "fine",
];

const BACKCHANNELS_ZH: [&str; 12] =
    ["嗯", "嗯嗯", "好", "好的", "对", "对对", "是", "是的", "哦", "噢", "行", "明白"];

/// Lower case, no punctuation, single spaces; repeated backchannels ("ok ok") collapse.
fn normalise(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() { c.to_lowercase().next().unwrap_or(c) } else { ' ' }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True when `text` is only backchannel words, in English or Chinese.
pub(crate) fn is_backchannel(text: &str) -> bool {
    let text = normalise(text);
    if text.is_empty() {
        // Speech with no words at all (a breath, "mm" Whisper dropped) does not take the turn.
        return true;
    }
    if text.chars().any(voicebot_core::language::is_han) {
        let bare: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        return chinese_backchannel(&bare);
    }
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let Some(word) = BACKCHANNELS_EN
            .iter()
            .filter(|b| rest == **b || rest.starts_with(&format!("{b} ")))
            .max_by_key(|b| b.len())
        else {
            return false;
        };
        rest = rest[word.len()..].trim_start();
    }
    true
}

fn chinese_backchannel(text: &str) -> bool {
    let mut rest = text;
    while !rest.is_empty() {
        let Some(word) = BACKCHANNELS_ZH.iter().filter(|b| rest.starts_with(**b)).max_by_key(|b| b.len())
        else {
            return false;
        };
        rest = &rest[word.len()..];
    }
    true
}

/// True when what was "heard" is mostly the bot's own words: its echo.
pub(crate) fn is_echo(heard: &str, playing: &str) -> bool {
    let heard = normalise(heard);
    let playing = normalise(playing);
    if heard.chars().any(voicebot_core::language::is_han) {
        let chars: Vec<char> = heard.chars().filter(|c| !c.is_whitespace()).collect();
        let inside = chars.iter().filter(|c| playing.contains(**c)).count();
        return chars.len() >= 2 && inside * 10 >= chars.len() * 8;
    }
    let words: Vec<&str> = heard.split_whitespace().collect();
    let prompt: Vec<&str> = playing.split_whitespace().collect();
    let inside = words.iter().filter(|w| prompt.contains(w)).count();
    words.len() >= 2 && inside * 10 >= words.len() * 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backchannels_in_both_languages_are_recognised() {
        for text in [
            "ok",
            "Okay.",
            "yeah",
            "mm",
            "Mm-hmm",
            "uh huh",
            "ok ok",
            "right, got it",
            "嗯",
            "好的",
            "嗯嗯，好的。",
            "",
        ] {
            assert!(is_backchannel(text), "{text:?}");
        }
    }

    #[test]
    fn real_interruptions_are_not_backchannels() {
        for text in
            ["no", "stop", "wait", "ok but where is my order", "I want an agent", "不对", "我要转人工"]
        {
            assert!(!is_backchannel(text), "{text:?}");
        }
    }

    #[test]
    fn the_bots_own_words_coming_back_are_echo() {
        let prompt =
            "Our stores are open Monday to Saturday from nine in the morning to nine in the evening.";
        assert!(is_echo("open Monday to Saturday from nine", prompt));
        assert!(!is_echo("where is my order", prompt));
        assert!(!is_echo("nine", prompt), "one word is too little to call echo");
        assert!(is_echo("周一到周六营业", "我们的门店周一到周六营业时间是上午九点到晚上九点"));
    }
}
