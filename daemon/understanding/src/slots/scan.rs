//! Low-level scanning of number-normalised text: digit runs, and the cues
//! that say what a run is (a phone, an amount, an order number), plus date
//! and time phrases.

use std::sync::LazyLock;

use regex::Regex;

/// A run of digits, possibly written in groups ("451-2", "0 2 0 7").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitRun {
    /// The digits alone.
    pub digits: String,
    /// `12.50` style value when the run is a decimal number.
    pub decimal: Option<String>,
    /// Byte range in the scanned text.
    pub start: usize,
    pub end: usize,
    /// Written with a leading `+` (an international phone number).
    pub plus: bool,
}

/// Finds digit runs, joining groups separated by a single space or hyphen.
pub fn digit_runs(text: &str) -> Vec<DigitRun> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = String::new();
        let mut decimal = None;
        let mut end;
        loop {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                digits.push(bytes[i] as char);
                i += 1;
            }
            end = i;
            // 19.99: a decimal point followed by digits ends the run.
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                let frac_start = i + 1;
                let mut j = frac_start;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                decimal = Some(format!("{digits}.{}", &text[frac_start..j]));
                digits.push_str(&text[frac_start..j]);
                end = j;
                break;
            }
            let joins =
                i + 1 < bytes.len() && matches!(bytes[i], b' ' | b'-') && bytes[i + 1].is_ascii_digit();
            if !joins {
                break;
            }
            i += 1;
        }
        let plus = start > 0 && bytes[start - 1] == b'+';
        runs.push(DigitRun { digits, decimal, start, end, plus });
        i = end.max(start + 1);
    }
    runs
}

/// The text up to `window` bytes before a run (on a char boundary).
fn before<'a>(text: &'a str, run: &DigitRun, window: usize) -> &'a str {
    let mut from = run.start.saturating_sub(window);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..run.start]
}

fn after<'a>(text: &'a str, run: &DigitRun, window: usize) -> &'a str {
    let mut to = (run.end + window).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    &text[run.end..to]
}

const PHONE_CUES: [&str; 10] =
    ["phone", "mobile", "cell", "call me", "call back", "reach me", "电话", "手机", "联系", "号码是"];
const ORDER_CUES: [&str; 7] = ["order", "tracking", "confirmation", "reference", "订单", "单号", "运单"];

/// A phone number: 7–15 digits with a phone cue before it, a Chinese mobile
/// number's shape, or a leading `+`.
pub fn is_phone(run: &DigitRun, lower: &str) -> bool {
    let n = run.digits.len();
    if !(7..=15).contains(&n) || run.decimal.is_some() {
        return false;
    }
    let context = before(lower, run, 30);
    let order_cue = ORDER_CUES.iter().any(|c| context.contains(c));
    let phone_cue = PHONE_CUES.iter().any(|c| context.contains(c));
    let chinese_mobile =
        n == 11 && run.digits.starts_with('1') && matches!(run.digits.as_bytes()[1], b'3'..=b'9');
    run.plus || (phone_cue && !order_cue) || (chinese_mobile && !order_cue)
}

const CURRENCY_BEFORE: [&str; 5] = ["$", "¥", "￥", "£", "€"];
const CURRENCY_AFTER: [&str; 14] = [
    "dollar", "buck", "pound", "euro", "yuan", "rmb", "cent", "quid", "块", "元", "美元", "刀", "欧", "英镑",
];

/// The amount a run states, when a currency cue sits next to it.
pub(crate) fn amount(run: &DigitRun, lower: &str) -> Option<String> {
    let prefix = before(lower, run, 3);
    let suffix = after(lower, run, 12).trim_start();
    let cued = CURRENCY_BEFORE.iter().any(|c| prefix.ends_with(c))
        || CURRENCY_AFTER.iter().any(|c| suffix.starts_with(c));
    cued.then(|| run.decimal.clone().unwrap_or_else(|| run.digits.clone()))
}

pub(crate) fn near_order_cue(run: &DigitRun, lower: &str) -> bool {
    let context = before(lower, run, 30);
    ORDER_CUES.iter().any(|c| context.contains(c))
}

/// Long enough to be an order number, and not a card or national ID number.
pub(crate) fn could_be_order_number(run: &DigitRun, lower: &str) -> bool {
    let n = run.digits.len();
    if run.decimal.is_some() || n > 12 {
        return false;
    }
    let unit_after = after(lower, run, 4).trim_start();
    let is_time_or_date =
        ["am", "pm", "点", "号", "月", "日", "o'clock"].iter().any(|u| unit_after.starts_with(u));
    if is_time_or_date {
        return false;
    }
    n >= 5 || (n >= 4 && near_order_cue(run, lower))
}

static DATE_EN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:(?:next|this|last)\s+)?(?:today|tomorrow|yesterday|tonight|monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend)\b|\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\s+\d{1,2}(?:st|nd|rd|th)?\b|\b\d{1,2}(?:st|nd|rd|th)?\s+of\s+(?:january|february|march|april|may|june|july|august|september|october|november|december)\b",
    )
    .expect("date pattern")
});
static DATE_ZH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:今天|明天|后天|昨天|前天|大后天|(?:下|上|这)?(?:个)?(?:星期|礼拜|周)[一二三四五六日天1-6]|\d{1,2}月\d{1,2}[号日]|\d{1,2}[号日])")
        .expect("date pattern")
});
static TIME_EN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\bat\s+)?(\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|o'clock))|\b(noon|midnight)\b|\bat\s+(\d{1,2}(?::\d{2})?)\b",
    )
    .expect("time pattern")
});
static TIME_ZH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:上午|下午|晚上|早上|中午|凌晨)?\d{1,2}(?:点|:)(?:半|\d{1,2}分?)?").expect("time pattern")
});

/// The first date phrase, as said.
pub(crate) fn date(lower: &str) -> Option<String> {
    DATE_EN.find(lower).or_else(|| DATE_ZH.find(lower)).map(|m| m.as_str().trim().to_owned())
}

/// The first time-of-day phrase, as said.
pub(crate) fn time(lower: &str) -> Option<String> {
    if let Some(captures) = TIME_EN.captures(lower) {
        return captures.iter().skip(1).flatten().next().map(|m| m.as_str().trim().to_owned());
    }
    TIME_ZH.find(lower).map(|m| m.as_str().trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_digits_join_into_one_run() {
        let runs = digit_runs("call 0 2 0 7 9 4 6 or 451-2");
        let digits: Vec<&str> = runs.iter().map(|r| r.digits.as_str()).collect();
        assert_eq!(digits, ["0207946", "4512"]);
    }

    #[test]
    fn decimals_are_kept_apart() {
        let runs = digit_runs("$19.99 now");
        assert_eq!(runs[0].decimal.as_deref(), Some("19.99"));
    }

    #[test]
    fn a_number_after_an_order_cue_is_not_a_phone() {
        let text = "my order number is 13800138000";
        let runs = digit_runs(text);
        assert!(!is_phone(&runs[0], text));
    }
}
