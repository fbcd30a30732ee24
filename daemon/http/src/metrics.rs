//! The daemon's Prometheus metrics, rendered in the OpenMetrics text format
//! (which Prometheus scrapes natively) by the `prometheus-client` crate.
//!
//! Every name starts with `voicebot_` (the registry's prefix). Per-call values
//! are counted once, when the call ends ([`Metrics::call_ended`]); values that
//! belong to the box rather than to calls (outbox backlog, health) are set at
//! scrape time ([`Metrics::render`]), as are the SIP user agent's counters
//! ([`SipCounters`], which the agent keeps itself; absent when SIP is off).
//! Recording is lock-free atomics, so the call path never waits on a scrape.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::record::CallRecord;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;

/// Voice-to-voice latency buckets, seconds (caller stops → first reply audio).
const LATENCY_BUCKETS: [f64; 10] = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0];
/// Real-time-factor buckets (processing time / audio time; 1.0 is real time).
const RTF_BUCKETS: [f64; 9] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 3.0];
/// Per-call RTP interarrival jitter buckets, seconds.
const JITTER_BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2];
/// Per-call RTP loss ratio buckets.
const LOSS_BUCKETS: [f64; 7] = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25];

/// What the box reports about itself at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BoxGauges {
    /// Tickets the broker has not acknowledged; `None`: unreadable (not exported).
    pub outbox_backlog: Option<u64>,
    /// Whether the daemon's loops are healthy (as `/healthz`).
    pub healthy: bool,
    /// Calls in progress.
    pub active_calls: u64,
    /// The SIP user agent's counters; `None` when SIP is off (not exported).
    pub sip: Option<SipCounters>,
}

/// The SIP user agent's counters since start, read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SipCounters {
    /// Requests the SIP stack delivered to the user agent.
    pub requests: u64,
    /// Malformed requests answered 4xx/5xx by the message checker.
    pub rejected: u64,
    /// Dropped unanswered by the message checker.
    pub dropped: u64,
    /// Dropped by the SIP stack before the checker, unparseable (as the stack
    /// reported them; per process).
    pub unparseable: u64,
    /// INVITEs and OPTIONS refused with 403.
    pub forbidden: u64,
    /// INVITEs refused with 486 (call cap).
    pub busy: u64,
    /// INVITEs answered 401 with a digest challenge.
    pub challenged: u64,
    /// INVITEs that became calls.
    pub calls_answered: u64,
    /// INVITEs accepted for setup that did not become calls.
    pub calls_failed: u64,
}

impl SipCounters {
    /// (name without `voicebot_` and `_total`, help, value) of each counter.
    fn families(&self) -> [(&'static str, &'static str, u64); 9] {
        [
            ("sip_requests", "SIP requests the stack delivered to the user agent", self.requests),
            ("sip_rejected", "Malformed SIP requests answered 4xx/5xx", self.rejected),
            (
                "sip_dropped",
                "SIP messages dropped unanswered: by our checker, plus those the stack could not parse",
                self.dropped + self.unparseable,
            ),
            (
                "sip_unparseable",
                "SIP messages the stack dropped as unparseable, as it reported them (part of sip_dropped)",
                self.unparseable,
            ),
            ("sip_forbidden", "SIP INVITEs and OPTIONS refused with 403", self.forbidden),
            ("sip_busy", "SIP INVITEs refused with 486 (max_calls)", self.busy),
            ("sip_challenged", "SIP INVITEs answered 401 with a digest challenge", self.challenged),
            ("sip_calls_answered", "SIP INVITEs that became calls", self.calls_answered),
            (
                "sip_calls_failed",
                "SIP INVITEs accepted for setup that did not become calls (488, CANCEL, no ACK)",
                self.calls_failed,
            ),
        ]
    }
}

/// The metric families; cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    calls: Family<Labels, Counter>,
    intents: Family<Labels, Counter>,
    asr_rtf: Histogram,
    tts_rtf: Histogram,
    latency: Histogram,
    rtp_received: Counter,
    rtp_lost: Counter,
    rtp_jitter: Histogram,
    rtp_loss: Histogram,
    active_calls: Gauge,
    outbox_backlog: Gauge,
    healthy: Gauge,
    /// Only registered once a value was read, so an unreadable outbox is absent, not 0.
    backlog_seen: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every family; `models` become the labels of
    /// `voicebot_model_info` (e.g. `("asr", "whisper-tiny.en/ggml-tiny.en.bin")`).
    pub fn new(models: Vec<(String, String)>) -> Metrics {
        let mut registry = Registry::with_prefix("voicebot");
        let calls = Family::<Labels, Counter>::default();
        // Outcomes without a reason start at 0, so rates work from the first
        // scrape; escalation reasons and intents appear when they first happen.
        for outcome in ["resolved", "abandoned", "timeout", "error"] {
            let _zero = calls
                .get_or_create(&vec![("outcome".into(), outcome.into()), ("reason".into(), "none".into())]);
        }
        registry.register("calls", "Finished calls by outcome and escalation reason", calls.clone());
        let intents = Family::<Labels, Counter>::default();
        registry.register("intents", "Caller turns by recognised intent", intents.clone());
        let asr_rtf = Histogram::new(RTF_BUCKETS);
        registry.register(
            "asr_real_time_factor",
            "Recognition and understanding time over utterance duration, per utterance",
            asr_rtf.clone(),
        );
        let tts_rtf = Histogram::new(RTF_BUCKETS);
        registry.register(
            "tts_real_time_factor",
            "Synthesis time over synthesised audio duration, per prompt part",
            tts_rtf.clone(),
        );
        let latency = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "voice_to_voice_latency_seconds",
            "From the end of the caller's speech to the first audio of the reply sent to the line",
            latency.clone(),
        );
        let rtp_received = Counter::default();
        registry.register("rtp_packets_received", "RTP packets received from callers", rtp_received.clone());
        let rtp_lost = Counter::default();
        registry.register(
            "rtp_packets_lost",
            "Caller frames lost or late (concealed by the jitter buffer)",
            rtp_lost.clone(),
        );
        let rtp_jitter = Histogram::new(JITTER_BUCKETS);
        registry.register(
            "rtp_jitter_seconds",
            "RFC 3550 interarrival jitter of the caller's stream at call end, per call",
            rtp_jitter.clone(),
        );
        let rtp_loss = Histogram::new(LOSS_BUCKETS);
        registry.register("rtp_loss_ratio", "Lost over expected caller frames, per call", rtp_loss.clone());
        let active_calls = Gauge::default();
        registry.register("calls_active", "Calls in progress", active_calls.clone());
        let outbox_backlog = Gauge::default();
        let healthy = Gauge::default();
        registry.register("healthy", "1 when the daemon's loops are healthy (as /healthz)", healthy.clone());
        let models: Labels = models.into_iter().map(|(k, v)| (k, escape(&v))).collect();
        registry.register("model", "Models and versions in use", Info::new(models));
        Metrics {
            registry,
            calls,
            intents,
            asr_rtf,
            tts_rtf,
            latency,
            rtp_received,
            rtp_lost,
            rtp_jitter,
            rtp_loss,
            active_calls,
            outbox_backlog,
            healthy,
            backlog_seen: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Counts one finished call.
    pub fn call_ended(&self, call: &CallRecord) {
        let reason = escape(call.reason.as_deref().unwrap_or("none"));
        self.calls
            .get_or_create(&vec![("outcome".into(), escape(&call.outcome)), ("reason".into(), reason)])
            .inc();
        for turn in &call.turns {
            self.intents.get_or_create(&vec![("intent".into(), escape(&turn.intent))]).inc();
        }
        for rtf in &call.asr_rtf {
            self.asr_rtf.observe(f64::from(*rtf));
        }
        for rtf in &call.tts_rtf {
            self.tts_rtf.observe(f64::from(*rtf));
        }
        for latency in &call.reply_latencies {
            self.latency.observe(latency.as_secs_f64());
        }
        if let Some(rtp) = &call.rtp {
            self.rtp_received.inc_by(rtp.packets_received);
            self.rtp_lost.inc_by(rtp.frames_lost);
            if rtp.packets_received > 0 {
                self.rtp_jitter.observe(rtp.jitter.as_secs_f64());
                let expected = rtp.frames_played + rtp.frames_lost;
                if expected > 0 {
                    self.rtp_loss.observe(rtp.frames_lost as f64 / expected as f64);
                }
            }
        }
    }

    /// The exposition text, with the box's gauges as of now.
    pub fn render(&self, gauges: BoxGauges) -> String {
        self.active_calls.set(i64::try_from(gauges.active_calls).unwrap_or(i64::MAX));
        self.healthy.set(i64::from(gauges.healthy));
        let mut text = String::with_capacity(8 * 1024);
        // The registry cannot unregister; the backlog gauge and the SIP counters
        // are rendered by hand so that an unreadable outbox, or SIP off, shows
        // as absent rather than as 0.
        if encode(&mut text, &self.registry).is_err() {
            return String::from("# EOF\n");
        }
        let mut extra = String::new();
        if let Some(backlog) = gauges.outbox_backlog {
            self.outbox_backlog.set(i64::try_from(backlog).unwrap_or(i64::MAX));
            self.backlog_seen.store(true, std::sync::atomic::Ordering::Relaxed);
            extra.push_str(&format!(
                "# HELP voicebot_outbox_backlog Hand-over tickets not yet acknowledged by the broker.\n\
                 # TYPE voicebot_outbox_backlog gauge\nvoicebot_outbox_backlog {}\n",
                self.outbox_backlog.get()
            ));
        }
        for (name, help, value) in gauges.sip.iter().flat_map(SipCounters::families) {
            extra.push_str(&format!(
                "# HELP voicebot_{name} {help}.\n# TYPE voicebot_{name} counter\nvoicebot_{name}_total {value}\n"
            ));
        }
        let eof = text.rfind("# EOF").unwrap_or(text.len());
        text.insert_str(eof, &extra);
        text
    }
}

/// A label value as the exposition format needs it: `\\`, `\"` and `\n`
/// escaped (`prometheus-client` 0.24 writes label values verbatim).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::record::{RtpRecord, TurnRecord};

    fn call(outcome: &str, reason: Option<&str>) -> CallRecord {
        CallRecord {
            call_id: "c1".into(),
            ended_ms: 1,
            duration: Duration::from_secs(30),
            outcome: outcome.into(),
            reason: reason.map(Into::into),
            turns: vec![
                TurnRecord {
                    intent: "opening_hours".into(),
                    valence: Some(0),
                    emotion: None,
                    question: None,
                },
                TurnRecord { intent: "agent".into(), valence: Some(-1), emotion: None, question: None },
            ],
            reply_latencies: vec![Duration::from_millis(600), Duration::from_millis(1800)],
            asr_rtf: vec![0.25],
            tts_rtf: vec![0.15, 0.4],
            rtp: Some(RtpRecord {
                packets_received: 1500,
                frames_played: 1485,
                frames_lost: 15,
                jitter: Duration::from_millis(4),
            }),
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"))
    }

    #[test]
    fn a_finished_call_is_counted_by_outcome_reason_and_intent() {
        let m = Metrics::new(vec![("asr".into(), "whisper-tiny.en".into())]);
        m.call_ended(&call("escalated", Some("requested")));
        m.call_ended(&call("escalated", Some("requested")));
        m.call_ended(&call("resolved", None));
        let text = m.render(BoxGauges::default());
        assert_eq!(
            line(&text, "voicebot_calls_total{outcome=\"escalated\",reason=\"requested\"}"),
            "voicebot_calls_total{outcome=\"escalated\",reason=\"requested\"} 2"
        );
        assert!(text.contains("voicebot_calls_total{outcome=\"resolved\",reason=\"none\"} 1\n"), "{text}");
        assert!(text.contains("voicebot_intents_total{intent=\"agent\"} 3\n"), "{text}");
        assert!(text.contains("# TYPE voicebot_calls counter\n"), "{text}");
    }

    #[test]
    fn latency_is_a_cumulative_histogram_in_seconds() {
        let m = Metrics::new(vec![]);
        m.call_ended(&call("resolved", None));
        let text = m.render(BoxGauges::default());
        assert!(text.contains("# TYPE voicebot_voice_to_voice_latency_seconds histogram\n"), "{text}");
        // 0.6 s and 1.8 s: one at or under 0.75, both at or under 2.0, both in +Inf.
        assert!(text.contains("voicebot_voice_to_voice_latency_seconds_bucket{le=\"0.5\"} 0\n"), "{text}");
        assert!(text.contains("voicebot_voice_to_voice_latency_seconds_bucket{le=\"0.75\"} 1\n"), "{text}");
        assert!(text.contains("voicebot_voice_to_voice_latency_seconds_bucket{le=\"2.0\"} 2\n"), "{text}");
        assert!(text.contains("voicebot_voice_to_voice_latency_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("voicebot_voice_to_voice_latency_seconds_count 2\n"), "{text}");
        let sum: f64 = line(&text, "voicebot_voice_to_voice_latency_seconds_sum ")
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 2.4).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn rtp_counters_and_per_call_loss_and_jitter_are_exported() {
        let m = Metrics::new(vec![]);
        m.call_ended(&call("resolved", None));
        let text = m.render(BoxGauges::default());
        assert!(text.contains("voicebot_rtp_packets_received_total 1500\n"), "{text}");
        assert!(text.contains("voicebot_rtp_packets_lost_total 15\n"), "{text}");
        // 15 of 1500 frames: 1 %, inside the 0.01 bucket; 4 ms jitter inside 0.005.
        assert!(text.contains("voicebot_rtp_loss_ratio_bucket{le=\"0.01\"} 1\n"), "{text}");
        assert!(text.contains("voicebot_rtp_loss_ratio_bucket{le=\"0.005\"} 0\n"), "{text}");
        assert!(text.contains("voicebot_rtp_jitter_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("voicebot_rtp_jitter_seconds_bucket{le=\"0.001\"} 0\n"), "{text}");
    }

    #[test]
    fn box_gauges_model_info_and_the_eof_marker_are_rendered() {
        let m =
            Metrics::new(vec![("asr".into(), "whisper-tiny.en".into()), ("firmware".into(), "0.1.0".into())]);
        let text = m.render(BoxGauges { outbox_backlog: Some(3), healthy: true, active_calls: 2, sip: None });
        assert!(
            text.contains("voicebot_model_info{asr=\"whisper-tiny.en\",firmware=\"0.1.0\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("voicebot_healthy 1\n"), "{text}");
        assert!(text.contains("voicebot_calls_active 2\n"), "{text}");
        assert!(text.contains("# TYPE voicebot_outbox_backlog gauge\nvoicebot_outbox_backlog 3\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        let unreadable =
            m.render(BoxGauges { outbox_backlog: None, healthy: false, active_calls: 0, sip: None });
        assert!(!unreadable.contains("voicebot_outbox_backlog"), "{unreadable}");
        assert!(unreadable.contains("voicebot_healthy 0\n"), "{unreadable}");
    }

    #[test]
    fn sip_counters_are_rendered_as_counters_with_unparseable_messages_among_the_dropped() {
        let m = Metrics::new(vec![]);
        let sip = SipCounters {
            requests: 10,
            rejected: 2,
            dropped: 1,
            unparseable: 4,
            forbidden: 3,
            busy: 5,
            challenged: 6,
            calls_answered: 7,
            calls_failed: 8,
        };
        let text = m.render(BoxGauges { sip: Some(sip), ..BoxGauges::default() });
        for (name, value) in [
            ("requests", 10),
            ("rejected", 2),
            ("dropped", 5),
            ("unparseable", 4),
            ("forbidden", 3),
            ("busy", 5),
            ("challenged", 6),
            ("calls_answered", 7),
            ("calls_failed", 8),
        ] {
            let family = format!("voicebot_sip_{name}");
            assert!(text.contains(&format!("# TYPE {family} counter\n{family}_total {value}\n")), "{text}");
            assert!(text.contains(&format!("# HELP {family} ")), "{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }

    #[test]
    fn sip_counters_are_absent_when_sip_is_off() {
        let m = Metrics::new(vec![]);
        let text = m.render(BoxGauges { outbox_backlog: Some(1), healthy: true, active_calls: 0, sip: None });
        assert!(!text.contains("voicebot_sip_"), "{text}");
        assert!(text.contains("voicebot_outbox_backlog 1\n") && text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new(vec![]);
        let mut c = call("resolved", None);
        c.turns =
            vec![TurnRecord { intent: "a\"b\\c\nd".into(), valence: None, emotion: None, question: None }];
        m.call_ended(&c);
        let text = m.render(BoxGauges::default());
        assert!(text.contains("voicebot_intents_total{intent=\"a\\\"b\\\\c\\nd\"} 1\n"), "{text}");
    }

    #[test]
    fn every_metric_name_starts_with_voicebot() {
        let m = Metrics::new(vec![("asr".into(), "x".into())]);
        m.call_ended(&call("resolved", None));
        let sip = Some(SipCounters::default());
        let text = m.render(BoxGauges { outbox_backlog: Some(0), healthy: true, active_calls: 0, sip });
        assert!(text.contains("voicebot_sip_requests_total 0\n"), "{text}");
        for l in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            assert!(l.starts_with("voicebot_"), "{l}");
        }
    }
}
