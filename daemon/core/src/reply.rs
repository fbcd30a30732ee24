//! Canned replies per intent, standing in until knowledge packs (the
//! understanding issue) provide answers.

use crate::language::Language;

/// The reply for `intent` in `language` (English for languages without text).
pub fn canned_reply(intent: &str, language: &Language) -> &'static str {
    let zh = *language == Language::Zh;
    match (intent, zh) {
        ("greeting", false) => "Hello! How can I help you today?",
        ("greeting", true) => "您好！请问有什么可以帮您？",
        ("goodbye", false) => "Thank you for calling. Goodbye!",
        ("goodbye", true) => "感谢您的来电，再见！",
        ("order_status", false) => "I can help with your order. What is your order number?",
        ("order_status", true) => "我可以帮您查询订单。请告诉我您的订单号。",
        ("return_refund", false) => "You can return items within thirty days for a full refund.",
        ("return_refund", true) => "商品在三十天内可以退货并全额退款。",
        ("payment_problem", false) => "I am sorry about the payment trouble. Let me look into it.",
        ("payment_problem", true) => "很抱歉付款出现问题，我来帮您查看。",
        ("store_hours", false) => {
            "Our stores are open from nine in the morning to nine in the evening."
        }
        ("store_hours", true) => "我们的门店营业时间是早上九点到晚上九点。",
        ("store_location", false) => "Our nearest store is on Main Street, next to the station.",
        ("store_location", true) => "离您最近的门店在主街，车站旁边。",
        ("product_availability", false) => "Let me check whether that product is in stock.",
        ("product_availability", true) => "我帮您查一下这个商品是否有货。",
        ("human_agent" | "account_security" | "complaint", false) => {
            "Let me connect you with a colleague who can help."
        }
        ("human_agent" | "account_security" | "complaint", true) => "我为您转接人工客服。",
        ("repeat", false) => "Of course. How can I help you?",
        ("repeat", true) => "好的，请问有什么可以帮您？",
        ("affirm" | "deny", false) => "Thank you. Is there anything else I can help with?",
        ("affirm" | "deny", true) => "好的，还有什么可以帮您？",
        (_, false) => "Sorry, I did not understand that. Could you say it another way?",
        (_, true) => "抱歉，我没有听懂，您能换个说法吗？",
    }
}

/// The escalation reason a stand-in rule gives for an intent, if any.
pub fn escalation_reason(intent: &str) -> Option<&'static str> {
    match intent {
        "human_agent" => Some("requested"),
        "account_security" => Some("sensitive"),
        _ => None,
    }
}
