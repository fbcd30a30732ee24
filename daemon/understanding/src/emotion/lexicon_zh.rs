//! Our own Chinese sentiment lexicon for hotline and kiosk callers, written
//! for this project and licensed with it. It is not derived from NRC, DUTIR,
//! HowNet or any other published lexicon.
//!
//! Scores use VADER's -4..=4 scale so that both languages share one
//! normalisation and one set of label thresholds. Besides sentiment words the
//! table holds negators, degree words (VADER's `B_INCR`/`B_DECR` steps), the
//! contrastive conjunctions that act like "but", service verbs (a negator
//! before one is a service failure: 没收到, 打不开, 没人) and neutral entries
//! (score 0) whose only job is to win the longest match over a misleading
//! shorter word: 快递 is not 快, 别人 is not 别, 不好意思 is not 不好.
//!
//! Invariants: every key is non-empty and at most [`MAX_KEY_CHARS`]
//! characters; every score is within -4..=4; no key appears twice.

use std::collections::HashMap;

use super::vader::{B_DECR, B_INCR};

/// The longest key, in characters.
pub(crate) const MAX_KEY_CHARS: usize = 4;

/// What a matched entry does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ZhRole {
    /// Sentiment on -4..=4; 0 for neutral blockers.
    Valence(f32),
    /// An intensifier (+) or dampener (-) step applied to a following word.
    Degree(f32),
    /// A degree step before a sentiment word (好慢, "so slow"), else a
    /// sentiment word on its own (好, "good/OK").
    DegreeOrValence(f32, f32),
    Negator,
    /// Contrastive conjunction: VADER's "but".
    But,
    /// A verb of service; negated, it is a service failure.
    Service,
}

use ZhRole::{But, Degree, DegreeOrValence, Negator, Service, Valence};

/// The table: 211 sentiment words (68 positive with 好, 142 negative), 32
/// neutral blockers, 12 negators, 28 degree words, 5 contrastive conjunctions
/// and 17 service verbs.
pub(crate) const ENTRIES: &[(&str, ZhRole)] = &[
    // Satisfaction and praise.
    ("满意", Valence(2.4)),
    ("满足", Valence(1.5)),
    ("好", DegreeOrValence(B_INCR, 1.0)),
    ("太好了", Valence(3.0)),
    ("好极了", Valence(3.0)),
    ("不错", Valence(1.9)),
    ("棒", Valence(2.5)),
    ("太棒了", Valence(3.2)),
    ("优秀", Valence(2.5)),
    ("完美", Valence(3.0)),
    ("赞", Valence(2.3)),
    ("喜欢", Valence(2.2)),
    ("开心", Valence(2.4)),
    ("高兴", Valence(2.4)),
    ("快乐", Valence(2.3)),
    ("愉快", Valence(2.1)),
    ("舒服", Valence(1.6)),
    ("舒心", Valence(2.0)),
    ("放心", Valence(1.8)),
    ("安心", Valence(1.8)),
    ("感谢", Valence(2.0)),
    ("谢谢", Valence(1.5)),
    ("多谢", Valence(1.8)),
    ("非常感谢", Valence(3.0)),
    ("太感谢了", Valence(3.0)),
    ("感激", Valence(2.3)),
    ("辛苦了", Valence(1.6)),
    ("方便", Valence(1.5)),
    ("快", Valence(1.2)),
    ("快速", Valence(1.5)),
    ("及时", Valence(1.8)),
    ("迅速", Valence(1.8)),
    ("高效", Valence(2.0)),
    ("专业", Valence(1.8)),
    ("耐心", Valence(1.8)),
    ("热情", Valence(2.0)),
    ("周到", Valence(2.0)),
    ("贴心", Valence(2.2)),
    ("靠谱", Valence(2.0)),
    ("划算", Valence(1.8)),
    ("便宜", Valence(1.2)),
    ("实惠", Valence(1.6)),
    ("值得", Valence(1.5)),
    ("顺利", Valence(1.8)),
    ("成功", Valence(1.5)),
    ("解决了", Valence(1.8)),
    ("搞定", Valence(1.6)),
    ("没问题", Valence(1.0)),
    ("还行", Valence(0.8)),
    ("还可以", Valence(0.8)),
    ("还好", Valence(0.8)),
    ("惊喜", Valence(2.5)),
    ("好用", Valence(2.0)),
    ("好评", Valence(2.5)),
    ("给力", Valence(2.3)),
    ("厉害", Valence(2.0)),
    ("合适", Valence(1.2)),
    ("感动", Valence(2.0)),
    ("礼貌", Valence(1.5)),
    ("友好", Valence(1.8)),
    ("清楚", Valence(0.8)),
    ("明白", Valence(0.5)),
    ("安全", Valence(0.8)),
    ("幸好", Valence(1.2)),
    ("好的", Valence(0.3)),
    ("没关系", Valence(0.3)),
    ("没错", Valence(0.3)),
    ("麻烦你", Valence(0.3)),
    ("麻烦您", Valence(0.3)),
    // Neutral blockers.
    ("你好", Valence(0.0)),
    ("您好", Valence(0.0)),
    ("好像", Valence(0.0)),
    ("好几", Valence(0.0)),
    ("最好", Valence(0.0)),
    ("好吗", Valence(0.0)),
    ("好不好", Valence(0.0)),
    ("快递", Valence(0.0)),
    ("快要", Valence(0.0)),
    ("尽快", Valence(0.0)),
    ("差不多", Valence(0.0)),
    ("出差", Valence(0.0)),
    ("慢慢", Valence(0.0)),
    ("别人", Valence(0.0)),
    ("别的", Valence(0.0)),
    ("区别", Valence(0.0)),
    ("分别", Valence(0.0)),
    ("没事", Valence(0.0)),
    ("没想到", Valence(0.0)),
    ("没什么", Valence(0.0)),
    ("不好意思", Valence(0.0)),
    ("不客气", Valence(0.0)),
    ("不用", Valence(0.0)),
    ("不少", Valence(0.0)),
    ("不管", Valence(0.0)),
    ("不仅", Valence(0.0)),
    ("不然", Valence(0.0)),
    ("不得不", Valence(0.0)),
    ("不到", Valence(0.0)),
    ("未来", Valence(0.0)),
    ("恐怕", Valence(0.0)),
    ("哪怕", Valence(0.0)),
    // Complaints about service.
    ("差", Valence(-2.2)),
    ("差劲", Valence(-2.5)),
    ("差评", Valence(-2.5)),
    ("差价", Valence(-0.3)),
    ("差点", Valence(-0.5)),
    ("慢", Valence(-1.8)),
    ("烂", Valence(-2.5)),
    ("破", Valence(-1.2)),
    ("坏", Valence(-1.8)),
    ("问题", Valence(-0.5)),
    ("故障", Valence(-1.6)),
    ("错", Valence(-1.5)),
    ("错误", Valence(-1.5)),
    ("弄错", Valence(-2.0)),
    ("搞错", Valence(-2.0)),
    ("发错", Valence(-2.0)),
    ("麻烦", Valence(-1.5)),
    ("不行", Valence(-1.5)),
    ("没用", Valence(-1.8)),
    ("不能用", Valence(-1.5)),
    ("用不了", Valence(-1.5)),
    ("打不通", Valence(-1.8)),
    ("联系不上", Valence(-1.8)),
    ("登不上", Valence(-1.5)),
    ("退不了", Valence(-1.8)),
    ("收不到", Valence(-1.5)),
    ("无法", Valence(-1.0)),
    ("还没到", Valence(-1.5)),
    ("还没", Valence(-0.6)),
    ("怎么回事", Valence(-1.6)),
    ("敷衍", Valence(-2.2)),
    ("推卸", Valence(-2.2)),
    ("踢皮球", Valence(-2.2)),
    ("忽悠", Valence(-2.4)),
    ("失望", Valence(-2.4)),
    ("无语", Valence(-2.0)),
    ("不满", Valence(-2.0)),
    ("不满意", Valence(-2.2)),
    ("不爽", Valence(-2.2)),
    ("不舒服", Valence(-1.6)),
    ("不靠谱", Valence(-2.2)),
    ("不合理", Valence(-2.0)),
    ("不公平", Valence(-2.2)),
    ("不负责", Valence(-2.4)),
    ("不专业", Valence(-2.0)),
    ("赔偿", Valence(-0.5)),
    // Waiting, repetition and obstacles.
    ("又", Valence(-0.5)),
    ("一直", Valence(-0.3)),
    ("两次", Valence(-0.4)),
    ("三次", Valence(-1.0)),
    ("第三次", Valence(-1.5)),
    ("好几天", Valence(-1.0)),
    ("好几次", Valence(-1.2)),
    ("多少次", Valence(-1.5)),
    ("老是", Valence(-0.8)),
    ("总是", Valence(-0.5)),
    ("反复", Valence(-0.8)),
    ("一再", Valence(-1.0)),
    ("再三", Valence(-1.0)),
    ("不停", Valence(-0.5)),
    ("不断", Valence(-0.5)),
    ("到现在", Valence(-1.0)),
    ("这么久", Valence(-1.4)),
    ("太久", Valence(-1.8)),
    ("好久", Valence(-1.0)),
    ("久", Valence(-0.8)),
    ("半天", Valence(-0.8)),
    ("拖", Valence(-1.2)),
    ("拖延", Valence(-1.8)),
    ("延误", Valence(-1.6)),
    ("延迟", Valence(-1.3)),
    ("耽误", Valence(-1.6)),
    ("快点", Valence(-0.5)),
    // Anger and hostility.
    ("生气", Valence(-2.5)),
    ("气死", Valence(-3.2)),
    ("气人", Valence(-2.5)),
    ("火大", Valence(-2.6)),
    ("愤怒", Valence(-3.0)),
    ("恼火", Valence(-2.5)),
    ("发火", Valence(-2.2)),
    ("烦", Valence(-2.0)),
    ("烦死", Valence(-2.8)),
    ("讨厌", Valence(-2.3)),
    ("恶心", Valence(-2.6)),
    ("离谱", Valence(-2.4)),
    ("过分", Valence(-2.2)),
    ("投诉", Valence(-2.0)),
    ("骗子", Valence(-3.2)),
    ("骗人", Valence(-2.8)),
    ("欺骗", Valence(-2.8)),
    ("垃圾", Valence(-3.0)),
    ("搞什么", Valence(-2.5)),
    ("什么鬼", Valence(-2.3)),
    ("坑", Valence(-2.0)),
    ("坑人", Valence(-2.6)),
    ("黑心", Valence(-2.8)),
    ("可恶", Valence(-2.6)),
    ("该死", Valence(-2.8)),
    ("妈的", Valence(-2.8)),
    ("混蛋", Valence(-3.2)),
    ("废物", Valence(-3.0)),
    ("滚", Valence(-3.0)),
    ("受够了", Valence(-3.0)),
    ("忍无可忍", Valence(-3.2)),
    ("欺负", Valence(-2.3)),
    // Sadness, worry and fear.
    ("糟糕", Valence(-2.4)),
    ("倒霉", Valence(-2.0)),
    ("郁闷", Valence(-1.8)),
    ("难受", Valence(-1.8)),
    ("委屈", Valence(-1.8)),
    ("伤心", Valence(-2.2)),
    ("难过", Valence(-2.0)),
    ("崩溃", Valence(-2.6)),
    ("绝望", Valence(-3.0)),
    ("着急", Valence(-1.8)),
    ("急", Valence(-1.2)),
    ("急死", Valence(-2.8)),
    ("紧急", Valence(-1.0)),
    ("担心", Valence(-1.8)),
    ("害怕", Valence(-2.0)),
    ("怕", Valence(-1.2)),
    ("焦虑", Valence(-2.2)),
    ("紧张", Valence(-1.5)),
    ("慌", Valence(-1.8)),
    ("不安", Valence(-1.8)),
    ("不安全", Valence(-1.8)),
    ("不放心", Valence(-1.6)),
    ("吓死", Valence(-2.6)),
    ("吓人", Valence(-2.2)),
    ("风险", Valence(-1.2)),
    ("危险", Valence(-2.0)),
    ("被盗", Valence(-2.8)),
    ("盗刷", Valence(-3.0)),
    ("盗用", Valence(-2.7)),
    ("冒用", Valence(-2.5)),
    ("泄露", Valence(-2.3)),
    ("诈骗", Valence(-3.0)),
    ("被骗", Valence(-2.8)),
    ("骗", Valence(-2.2)),
    ("丢了", Valence(-1.5)),
    ("丢失", Valence(-1.5)),
    ("不见了", Valence(-1.5)),
    // Negators.
    ("不", Negator),
    ("没", Negator),
    ("没有", Negator),
    ("别", Negator),
    ("不是", Negator),
    ("并不", Negator),
    ("从不", Negator),
    ("从没", Negator),
    ("从来没", Negator),
    ("未", Negator),
    ("毫不", Negator),
    ("绝不", Negator),
    // Degree words.
    ("很", Degree(B_INCR)),
    ("非常", Degree(B_INCR)),
    ("特别", Degree(B_INCR)),
    ("太", Degree(B_INCR)),
    ("极其", Degree(B_INCR)),
    ("超级", Degree(B_INCR)),
    ("超", Degree(B_INCR)),
    ("十分", Degree(B_INCR)),
    ("真", Degree(B_INCR)),
    ("真的", Degree(B_INCR)),
    ("真是", Degree(B_INCR)),
    ("挺", Degree(B_INCR)),
    ("相当", Degree(B_INCR)),
    ("实在", Degree(B_INCR)),
    ("更", Degree(B_INCR)),
    ("最", Degree(B_INCR)),
    ("这么", Degree(B_INCR)),
    ("那么", Degree(B_INCR)),
    ("完全", Degree(B_INCR)),
    ("简直", Degree(B_INCR)),
    ("根本", Degree(B_INCR)),
    ("一点都", Degree(B_INCR)),
    ("有点", Degree(B_DECR)),
    ("有些", Degree(B_DECR)),
    ("稍微", Degree(B_DECR)),
    ("略", Degree(B_DECR)),
    ("比较", Degree(B_DECR)),
    ("还算", Degree(B_DECR)),
    // Contrast.
    ("但是", But),
    ("但", But),
    ("可是", But),
    ("不过", But),
    ("然而", But),
    // Service verbs.
    ("到", Service),
    ("收到", Service),
    ("发货", Service),
    ("回复", Service),
    ("回应", Service),
    ("回电", Service),
    ("解决", Service),
    ("处理", Service),
    ("退款", Service),
    ("联系", Service),
    ("反应", Service),
    ("动静", Service),
    ("通知", Service),
    ("人", Service),
    ("送到", Service),
    ("开", Service),
    ("登录", Service),
];

/// Anger cues: hostility, outrage, threats to complain.
#[rustfmt::skip]
pub(crate) const ANGER_CUES: &[&str] = &[
    "气死", "生气", "愤怒", "火大", "恼火", "发火", "垃圾", "骗子", "投诉", "受够", "忍无可忍", "滚", "妈的", "搞什么", "什么鬼",
    "什么破", "过分", "欺负", "黑心", "可恶", "该死", "离谱", "混蛋", "废物", "去死", "坑人", "坑爹", "差劲",
];

/// Worry and fear cues: theft, fraud, urgency, fear.
#[rustfmt::skip]
pub(crate) const WORRY_CUES: &[&str] = &[
    "担心", "害怕", "怕", "着急", "急", "被盗", "盗刷", "盗用", "冒用", "诈骗", "被骗", "泄露", "紧张", "焦虑", "慌", "不安",
    "不放心", "丢了", "丢失", "不见了", "危险", "风险", "吓", "万一",
];

/// Repetition and obstacle cues.
#[rustfmt::skip]
pub(crate) const REPETITION_CUES: &[&str] = &[
    "又", "还是", "一直", "几次", "两次", "三次", "第二次", "第三次", "多少次", "老是", "总是", "每次", "已经", "反复", "一再",
    "再三", "到现在", "仍然", "依然", "还没", "还不", "不停", "不断", "再次", "重复", "等了", "半天", "这么久", "好久", "太久", "拖",
];

/// The table, indexed for longest-match look-up.
pub(crate) struct ZhLexicon {
    entries: HashMap<&'static str, ZhRole>,
}

impl ZhLexicon {
    pub(crate) fn new() -> ZhLexicon {
        ZhLexicon { entries: ENTRIES.iter().copied().collect() }
    }

    pub(crate) fn get(&self, key: &str) -> Option<ZhRole> {
        self.entries.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn keys_are_unique_short_and_scores_in_range() {
        let mut seen = HashSet::new();
        for (key, role) in ENTRIES {
            assert!(seen.insert(key), "{key} appears twice");
            let chars = key.chars().count();
            assert!((1..=MAX_KEY_CHARS).contains(&chars), "{key} has {chars} characters");
            if let Valence(v) | DegreeOrValence(_, v) = role {
                assert!((-4.0..=4.0).contains(v), "{key} scores {v}");
            }
        }
    }

    #[test]
    fn cues_are_non_empty() {
        for cue in ANGER_CUES.iter().chain(WORRY_CUES).chain(REPETITION_CUES) {
            assert!(!cue.is_empty());
        }
    }
}
