//! The validated `[http]` and `[report]` sections: where the box's HTTP
//! server listens (health, metrics, tickets for agents' desktops, the report)
//! and what the daily service report keeps.
//!
//! Invariants: an empty `listen` turns the server off; the token file is only
//! named here (the daemon reads it at start and refuses to start if it is
//! unreadable); retentions are at least an hour; the emotion retention never
//! exceeds the record retention (emotion is the first thing deleted).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::raw::{RawHttp, RawReport};

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `None`: no HTTP server.
    pub listen: Option<SocketAddr>,
    /// The bearer token for `/tickets/{id}`; `None`: tickets are not served.
    pub token_file: Option<PathBuf>,
}

/// `[report]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    /// The per-call store; `None`: `report.db` beside the outbox.
    pub store: Option<PathBuf>,
    /// Hour of day, UTC, at which the report for the 24 h before is published.
    pub publish_hour_utc: u8,
    /// Emotion readings older than this are deleted.
    pub emotion_retention: Duration,
    /// Call records older than this are deleted.
    pub record_retention: Duration,
}

fn bad(origin: &str, key: &'static str, value: String, problem: &str) -> ConfigError {
    ConfigError::Value { origin: origin.to_owned(), key, value, problem: problem.to_owned() }
}

fn required<T: Clone>(value: &Option<T>, key: &'static str, origin: &str) -> Result<T, ConfigError> {
    value.clone().ok_or_else(|| bad(origin, key, "(missing)".into(), "no value and no default"))
}

fn path(text: String) -> Option<PathBuf> {
    (!text.trim().is_empty()).then(|| PathBuf::from(text.trim()))
}

/// Checks `[http]`.
///
/// # Errors
/// A listen address that is not `IP:port`.
pub fn validate_http(raw: &RawHttp, origin: &str) -> Result<HttpConfig, ConfigError> {
    let listen_text = required(&raw.listen, "http.listen", origin)?;
    let listen = match listen_text.trim() {
        "" => None,
        text => Some(text.parse::<SocketAddr>().map_err(|_| {
            bad(
                origin,
                "http.listen",
                format!("{text:?}"),
                "expected IP:port (e.g. \"127.0.0.1:9464\"), or \"\" for off",
            )
        })?),
    };
    Ok(HttpConfig { listen, token_file: path(required(&raw.token_file, "http.token_file", origin)?) })
}

/// Checks `[report]`.
///
/// # Errors
/// An hour outside 0..=23, a retention under an hour, or an emotion retention
/// longer than the record retention.
pub fn validate_report(raw: &RawReport, origin: &str) -> Result<ReportConfig, ConfigError> {
    let hour = required(&raw.publish_hour_utc, "report.publish_hour_utc", origin)?;
    if hour > 23 {
        return Err(bad(origin, "report.publish_hour_utc", hour.to_string(), "must be 0 to 23"));
    }
    let emotion_h = required(&raw.emotion_retention_h, "report.emotion_retention_h", origin)?;
    if emotion_h == 0 {
        return Err(bad(origin, "report.emotion_retention_h", "0".into(), "must be at least 1 hour"));
    }
    let record_days = required(&raw.record_retention_days, "report.record_retention_days", origin)?;
    if record_days == 0 {
        return Err(bad(origin, "report.record_retention_days", "0".into(), "must be at least 1 day"));
    }
    let emotion_retention = Duration::from_secs(u64::from(emotion_h) * 3600);
    let record_retention = Duration::from_secs(u64::from(record_days) * 86_400);
    if emotion_retention > record_retention {
        return Err(bad(
            origin,
            "report.emotion_retention_h",
            emotion_h.to_string(),
            "must not exceed report.record_retention_days (emotion is deleted first)",
        ));
    }
    Ok(ReportConfig {
        store: path(required(&raw.store, "report.store", origin)?),
        publish_hour_utc: u8::try_from(hour).unwrap_or(0),
        emotion_retention,
        record_retention,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_default_listens_on_loopback_9464_with_a_72_hour_emotion_retention() {
        let config = Config::embedded_default().unwrap();
        assert_eq!(config.http.listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(config.http.token_file, None);
        assert_eq!(config.report.emotion_retention.as_secs(), 72 * 3600);
        assert_eq!(config.report.publish_hour_utc, 0);
        assert_eq!(config.report.store, None);
    }

    #[test]
    fn an_empty_listen_turns_http_off_and_a_bad_one_names_the_key() {
        let config = Config::from_toml("[http]\nlisten = \"\"\n", "t.toml").unwrap();
        assert_eq!(config.http.listen, None);
        let err = Config::from_toml("[http]\nlisten = \"localhost\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("http.listen"), "{err}");
    }

    #[test]
    fn report_bounds_are_checked() {
        let err = Config::from_toml("[report]\npublish_hour_utc = 24\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("report.publish_hour_utc"), "{err}");
        let err = Config::from_toml("[report]\nemotion_retention_h = 0\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("report.emotion_retention_h"), "{err}");
        let err =
            Config::from_toml("[report]\nemotion_retention_h = 800\nrecord_retention_days = 30\n", "t.toml")
                .unwrap_err();
        assert!(err.to_string().contains("must not exceed"), "{err}");
        let config =
            Config::from_toml("[report]\nemotion_retention_h = 24\nstore = \"/tmp/r.db\"\n", "t.toml")
                .unwrap();
        assert_eq!(config.report.emotion_retention.as_secs(), 24 * 3600);
        assert_eq!(config.report.store.as_deref(), Some(std::path::Path::new("/tmp/r.db")));
    }
}
