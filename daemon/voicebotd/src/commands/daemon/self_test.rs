//! The `diagnostics self_test_call` job: one scripted call through the same
//! path as `voicebotd simulate --text` — the real conversation core, the
//! analyzer and the voice in use — on a virtual clock, so it takes engine
//! time only. It never reaches the outbox: a hand-over it produces is
//! reported, not delivered.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use ulid::Ulid;
use voicebot_conversation::session::{self, CallEngines, CallerTurn, Pace, SessionOptions};
use voicebot_conversation::{Mouth, Understanding};
use voicebot_core::config::Config;
use voicebot_core::{Language, LanguageChoice};
use voicebot_dialog::call::{CallSetup, Channel, LineKind, Timing};
use voicebot_dialog::escalation::EscalationPolicy;
use voicebot_dialog::ticket::CallContext;
use voicebot_engines::loader::Engines;
use voicebot_understanding::analysis::Analyzer;

/// What the scripted caller types.
const SCRIPT: [&str; 2] = ["What are your opening hours?", "I want to speak to a person please"];

/// Runs the call.
///
/// # Errors
/// The call could not run, a turn got no reply, or it ended in an error.
pub(super) fn call(config: &Config, engines: &Engines, analyzer: Arc<Analyzer>) -> Result<Value, String> {
    let started = Instant::now();
    let tts = engines.tts.clone().ok_or("the TTS engine is not loaded")?;
    let mut call_engines = CallEngines {
        understanding: Understanding::new(Arc::clone(&analyzer), None, LanguageChoice::Fixed(Language::En)),
        vad: None,
        mouth: Mouth::new(tts),
    };
    let setup = CallSetup {
        channel: Channel::Phone,
        line: LineKind::Standard,
        vip: false,
        language: Language::En,
        timing: Timing::from_config(&config.dialog),
        policy: EscalationPolicy::from_config(&config.dialog),
        speaking_rate: config.tts.rate,
        elder_rate: config.tts.elder_rate,
        context: CallContext {
            channel: "self-test".to_owned(),
            line: None,
            caller_id_masked: None,
            started_at_ms: voicebot_fleet::now_ms(),
        },
        ticket_id: Ulid::new().to_string(),
        callback_ticket_id: Ulid::new().to_string(),
    };
    let script: Vec<CallerTurn> = SCRIPT.iter().map(|t| CallerTurn::Typed((*t).to_owned())).collect();
    let options = SessionOptions { pace: Pace::Virtual, reply_dir: None, ..SessionOptions::default() };
    let record =
        session::run_call(&mut call_engines, setup, Arc::clone(analyzer.pack()), &script, &options, |_| {})
            .map_err(|e| e.to_string())?;
    let turns: Vec<Value> = record
        .turns
        .iter()
        .map(
            |t| json!({"said": t.report.transcript, "intent": t.report.intent, "reply": t.report.reply_text}),
        )
        .collect();
    let detail = json!({
        "outcome": record.outcome.code(),
        "reason": record.outcome.reason().map(|r| r.code()),
        "turns": turns,
        "unplayed": record.unplayed,
        "handed_over": record.ticket.is_some(),
        "elapsed_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    if record.turns.is_empty() {
        return Err(format!("no turn was played: {detail}"));
    }
    if record.turns.iter().any(|t| t.report.reply_text.trim().is_empty()) {
        return Err(format!("a turn got no reply: {detail}"));
    }
    if record.outcome.code() == "error" {
        return Err(format!("the call ended in an error: {detail}"));
    }
    Ok(detail)
}
