//! Spoken Chinese numbers to digits.
//!
//! - digit strings read one by one: "四五七一二", "幺三八" → `45712`, `138`;
//! - quantities with place values: "四万五千", "三百二十", "一千二百五十块",
//!   "十五", "两百" → `45000`, `320`, `1250块`, `15`, `200`.
//!
//! A run of Chinese numerals with any place character (十百千万亿) is read as a
//! quantity; a run of two or more bare digits as a digit string.

fn digit(c: char) -> Option<u64> {
    Some(match c {
        '零' | '〇' | '洞' => 0,
        '一' | '幺' | '壹' => 1,
        '二' | '两' | '贰' => 2,
        '三' | '叁' => 3,
        '四' | '肆' => 4,
        '五' | '伍' => 5,
        '六' | '陆' => 6,
        '七' | '柒' => 7,
        '八' | '捌' => 8,
        '九' | '玖' => 9,
        _ => return None,
    })
}

fn place(c: char) -> Option<u64> {
    Some(match c {
        '十' | '拾' => 10,
        '百' | '佰' => 100,
        '千' | '仟' => 1000,
        '万' => 10_000,
        '亿' => 100_000_000,
        _ => return None,
    })
}

/// Units after which even a single numeral is a number (三点, 五号, 两块).
const UNITS: [char; 12] = ['点', '号', '月', '日', '块', '元', '分', '秒', '岁', '楼', '折', '件'];

fn is_numeral(c: char) -> bool {
    digit(c).is_some() || place(c).is_some()
}

/// The value of a quantity such as 四万五千 or 一千零五十.
fn quantity(chars: &[char]) -> Option<u64> {
    let mut total: u64 = 0; // completed 万/亿 groups
    let mut section: u64 = 0; // below 万
    let mut pending: Option<u64> = None;
    for &c in chars {
        if let Some(d) = digit(c) {
            pending = Some(d);
        } else if let Some(p) = place(c) {
            if p >= 10_000 {
                section += pending.take().unwrap_or(0);
                let group = if section == 0 { 1 } else { section };
                total = if p == 100_000_000 {
                    (total + group).checked_mul(p)?
                } else {
                    total.checked_add(group.checked_mul(p)?)?
                };
                section = 0;
            } else {
                section += pending.take().unwrap_or(1) * p;
            }
        }
    }
    // 四万五 means 45000: a trailing digit after a place takes the next lower place.
    let trailing = pending.unwrap_or(0);
    let last_place = chars.iter().rev().find_map(|&c| place(c));
    let trailing = match (trailing, last_place, chars.last().copied().and_then(digit)) {
        (d, Some(p), Some(_))
            if d > 0 && p >= 100 && chars.len() >= 2 && digit(chars[chars.len() - 2]).is_none() =>
        {
            d * (p / 10)
        }
        (d, _, _) => d,
    };
    Some(total + section + trailing)
}

/// Rewrites Chinese numerals in `text` as digits.
pub fn normalize_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_numeral(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_numeral(chars[i]) {
            i += 1;
        }
        let run = &chars[start..i];
        let has_place = run.iter().any(|&c| place(c).is_some());
        if has_place {
            match quantity(run) {
                Some(value) => out.push_str(&value.to_string()),
                None => out.extend(run),
            }
        } else if run.len() >= 2 || chars.get(i).is_some_and(|&c| UNITS.contains(&c)) {
            out.extend(run.iter().filter_map(|&c| digit(c)).map(|d| char::from(b'0' + d as u8)));
        } else {
            // A lone 一/两 is usually a word (一下, 一个), not a number.
            out.extend(run);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize_numbers as n;

    #[test]
    fn digit_strings_become_digits() {
        assert_eq!(n("四五七一二"), "45712");
        assert_eq!(n("我的订单号是四五七幺二"), "我的订单号是45712");
        assert_eq!(n("一三八零零一三八零零零"), "13800138000");
    }

    #[test]
    fn quantities_with_place_values_become_numbers() {
        assert_eq!(n("四万五千"), "45000");
        assert_eq!(n("四万五"), "45000");
        assert_eq!(n("三百二十"), "320");
        assert_eq!(n("一千二百五十块"), "1250块");
        assert_eq!(n("十五"), "15");
        assert_eq!(n("两百块钱"), "200块钱");
        assert_eq!(n("一千零五十"), "1050");
        assert_eq!(n("十二万三千四百五十六"), "123456");
        assert_eq!(n("一亿两千万"), "120000000");
    }

    #[test]
    fn a_lone_numeral_word_is_left_alone() {
        assert_eq!(n("等一下"), "等一下");
        assert_eq!(n("买一个"), "买一个");
        assert_eq!(n("下午三点"), "下午3点");
    }
}
