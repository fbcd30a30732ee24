//! A minimal keyword intent rule, standing in until the knowledge-pack NLU
//! (the understanding issue) lands. It uses the contract intent names, and any
//! explicit request for a person always wins.

use crate::language::Language;

/// A recognised intent with a confidence in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct IntentGuess {
    pub intent: &'static str,
    pub confidence: f32,
}

/// Phrases that always mean "give me a person".
const HANDOVER_PHRASES: &[&str] = &[
    "agent",
    "representative",
    "real person",
    "operator",
    "human",
    "转人工",
    "人工客服",
    "真人",
];

/// Ordered rules: the first intent with a matching phrase wins.
const RULES: &[(&str, &[&str])] = &[
    (
        "account_security",
        &[
            "stolen",
            "fraud",
            "hacked",
            "lost my card",
            "lost card",
            "password",
            "被盗",
            "盗刷",
            "诈骗",
            "密码",
        ],
    ),
    (
        "order_status",
        &[
            "order", "package", "parcel", "delivery", "shipped", "订单", "包裹", "快递",
        ],
    ),
    (
        "return_refund",
        &["return", "refund", "money back", "退货", "退款"],
    ),
    (
        "payment_problem",
        &[
            "payment", "charged", "declined", "pay ", "付款", "支付", "扣款",
        ],
    ),
    ("store_hours", &["open", "close", "hours", "营业", "几点"]),
    (
        "store_location",
        &[
            "where is the store",
            "address",
            "location",
            "nearest",
            "地址",
            "在哪",
        ],
    ),
    (
        "product_availability",
        &["in stock", "available", "do you have", "有货", "库存"],
    ),
    (
        "complaint",
        &[
            "complain",
            "terrible",
            "awful",
            "angry",
            "unacceptable",
            "投诉",
            "太差",
        ],
    ),
    ("goodbye", &["goodbye", "bye", "that's all", "再见"]),
    ("greeting", &["hello", "hi ", "good morning", "你好"]),
    ("repeat", &["say that again", "repeat", "再说一遍"]),
    ("affirm", &["yes", "correct", "right", "是的", "对"]),
    ("deny", &["no ", "not really", "不是", "不对"]),
];

/// Classifies an utterance with the keyword rules.
pub fn classify(text: &str, _language: &Language) -> IntentGuess {
    let lowered = format!(" {} ", text.to_lowercase());
    if HANDOVER_PHRASES.iter().any(|p| lowered.contains(p)) {
        return IntentGuess {
            intent: "human_agent",
            confidence: 1.0,
        };
    }
    for (intent, phrases) in RULES {
        if phrases.iter().any(|p| lowered.contains(p)) {
            return IntentGuess {
                intent,
                confidence: 0.6,
            };
        }
    }
    IntentGuess {
        intent: "out_of_scope",
        confidence: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_for_an_agent_always_wins() {
        let guess = classify("where is my order, actually get me an agent", &Language::En);
        assert_eq!(guess.intent, "human_agent");
        assert_eq!(classify("我要转人工", &Language::Zh).intent, "human_agent");
    }

    #[test]
    fn a_stolen_card_is_account_security() {
        assert_eq!(
            classify("My card was stolen.", &Language::En).intent,
            "account_security"
        );
    }

    #[test]
    fn nothing_matching_is_out_of_scope() {
        let guess = classify("the purple elephant sings", &Language::En);
        assert_eq!(
            guess,
            IntentGuess {
                intent: "out_of_scope",
                confidence: 0.0
            }
        );
    }
}
