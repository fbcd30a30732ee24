//! The validated `[mqtt]` and `[fleet]` sections: where the broker is and who
//! this box is in the fleet.
//!
//! Invariants: a [`BrokerUrl`] always has a host and a port, and TLS exactly
//! when its scheme is `mqtts`; a site or device id is always a valid single
//! MQTT topic level (no `/`, `+`, `#`). Defaults that need the machine (the
//! hostname, the state directory) are left as `None` for the fleet crate.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::raw::{RawFleet, RawMqtt};

/// A broker address: `mqtt://host:1883` or `mqtts://host:8883`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// Why a broker URL was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("broker URL {url:?}: {problem} (expected mqtt://host[:port] or mqtts://host[:port])")]
pub struct BrokerUrlError {
    pub url: String,
    pub problem: String,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` (plain TCP, default 1883) or
    /// `mqtts://host[:port]` (TLS, default 8883). IPv6 hosts go in brackets.
    ///
    /// # Errors
    /// Any other scheme, an empty host, a bad port, or a path.
    pub fn parse(url: &str) -> Result<BrokerUrl, BrokerUrlError> {
        let bad = |problem: &str| BrokerUrlError { url: url.to_owned(), problem: problem.to_owned() };
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(bad("unknown scheme"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('@') || rest.contains('?') {
            return Err(bad("no path, user or query may follow the host"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '[' in an IPv6 host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("bad port"))?,
        };
        Ok(BrokerUrl { tls, host: host.to_owned(), port })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// `[mqtt]`: the broker and how to log in.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    /// `None`: no broker; tickets stay in the local outbox.
    pub url: Option<BrokerUrl>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub client_auth: Option<(PathBuf, PathBuf)>,
    pub keepalive: Duration,
}

/// `[fleet]`: this box's identity and the outbox bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// `None`: the hostname.
    pub device_id: Option<String>,
    pub site: String,
    /// `None`: every command is rejected (no key to check it against).
    pub public_key: Option<PathBuf>,
    /// `None`: the default state directory.
    pub outbox: Option<PathBuf>,
    pub outbox_max_tickets: u32,
    pub outbox_max_bytes: u64,
    pub outbox_max_age: Duration,
    pub telemetry_interval: Duration,
    pub job_window: Duration,
}

/// Checks one MQTT topic level (a site or device id).
///
/// # Errors
/// A message saying what is wrong with it.
pub fn check_topic_level(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 64 {
        return Err("must be at most 64 bytes".into());
    }
    if let Some(c) =
        value.chars().find(|c| matches!(c, '/' | '+' | '#') || c.is_control() || c.is_whitespace())
    {
        return Err(format!("must not contain {c:?} (it is one MQTT topic level)"));
    }
    Ok(())
}

fn value_error(origin: &str, key: &'static str, value: String, problem: String) -> ConfigError {
    ConfigError::Value { origin: origin.to_owned(), key, value, problem }
}

fn missing(origin: &str, key: &'static str) -> ConfigError {
    value_error(origin, key, "(missing)".into(), "no value and no default".into())
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// Validates `[mqtt]`.
///
/// # Errors
/// A bad URL, a half-configured client certificate, or a bad keepalive.
pub(crate) fn validate_mqtt(raw: &RawMqtt, origin: &str) -> Result<MqttConfig, ConfigError> {
    let url = match non_empty(raw.url.as_ref()) {
        None => None,
        Some(text) => Some(
            BrokerUrl::parse(&text)
                .map_err(|e| value_error(origin, "mqtt.url", format!("{text:?}"), e.problem))?,
        ),
    };
    let client_cert = non_empty(raw.client_cert.as_ref()).map(PathBuf::from);
    let client_key = non_empty(raw.client_key.as_ref()).map(PathBuf::from);
    let client_auth = match (client_cert, client_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (cert, _) => {
            let (key, value) = if cert.is_some() {
                ("mqtt.client_key", "\"\"".to_owned())
            } else {
                ("mqtt.client_cert", "\"\"".to_owned())
            };
            return Err(value_error(origin, key, value, "set client_cert and client_key together".into()));
        }
    };
    let ca_file = non_empty(raw.ca_file.as_ref()).map(PathBuf::from);
    if url.as_ref().is_some_and(|u| u.tls) && ca_file.is_none() {
        return Err(value_error(
            origin,
            "mqtt.ca_file",
            "\"\"".into(),
            "an mqtts:// broker needs the CA file that signed its certificate".into(),
        ));
    }
    let keepalive_s = raw.keepalive_s.ok_or_else(|| missing(origin, "mqtt.keepalive_s"))?;
    if !(5..=3600).contains(&keepalive_s) {
        return Err(value_error(
            origin,
            "mqtt.keepalive_s",
            keepalive_s.to_string(),
            "must be 5 to 3600".into(),
        ));
    }
    Ok(MqttConfig {
        url,
        username: non_empty(raw.username.as_ref()),
        password: raw.password.clone().filter(|p| !p.is_empty()),
        ca_file,
        client_auth,
        keepalive: Duration::from_secs(u64::from(keepalive_s)),
    })
}

/// Validates `[fleet]`.
///
/// # Errors
/// A site or device id that is not one topic level, or a bound out of range.
pub(crate) fn validate_fleet(raw: &RawFleet, origin: &str) -> Result<FleetConfig, ConfigError> {
    let device_id = non_empty(raw.device_id.as_ref());
    if let Some(id) = &device_id {
        check_topic_level(id).map_err(|p| value_error(origin, "fleet.device_id", format!("{id:?}"), p))?;
    }
    let site = raw.site.clone().ok_or_else(|| missing(origin, "fleet.site"))?;
    check_topic_level(&site).map_err(|p| value_error(origin, "fleet.site", format!("{site:?}"), p))?;
    let bounded = |key: &'static str, value: Option<u32>, range: std::ops::RangeInclusive<u32>| {
        let v = value.ok_or_else(|| missing(origin, key))?;
        if range.contains(&v) {
            Ok(v)
        } else {
            let problem = format!("must be {} to {}", range.start(), range.end());
            Err(value_error(origin, key, v.to_string(), problem))
        }
    };
    let max_tickets = bounded("fleet.outbox_max_tickets", raw.outbox_max_tickets, 10..=10_000_000)?;
    let max_mb = bounded("fleet.outbox_max_mb", raw.outbox_max_mb, 1..=1_000_000)?;
    let max_age_days = bounded("fleet.outbox_max_age_days", raw.outbox_max_age_days, 1..=3650)?;
    let telemetry_s = bounded("fleet.telemetry_interval_s", raw.telemetry_interval_s, 1..=86_400)?;
    let window_s = bounded("fleet.job_window_s", raw.job_window_s, 10..=86_400)?;
    Ok(FleetConfig {
        device_id,
        site,
        public_key: non_empty(raw.public_key.as_ref()).map(PathBuf::from),
        outbox: non_empty(raw.outbox.as_ref()).map(PathBuf::from),
        outbox_max_tickets: max_tickets,
        outbox_max_bytes: u64::from(max_mb) * 1024 * 1024,
        outbox_max_age: Duration::from_secs(u64::from(max_age_days) * 86_400),
        telemetry_interval: Duration::from_secs(u64::from(telemetry_s)),
        job_window: Duration::from_secs(u64::from(window_s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn broker_urls_get_default_ports_by_scheme() {
        let plain = BrokerUrl::parse("mqtt://127.0.0.1").unwrap();
        assert_eq!((plain.tls, plain.host.as_str(), plain.port), (false, "127.0.0.1", 1883));
        let tls = BrokerUrl::parse("mqtts://broker.example:9000").unwrap();
        assert_eq!((tls.tls, tls.host.as_str(), tls.port), (true, "broker.example", 9000));
        assert_eq!(BrokerUrl::parse("mqtts://h").unwrap().port, 8883);
        let v6 = BrokerUrl::parse("mqtt://[::1]:1884").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 1884));
        assert_eq!(v6.to_string(), "mqtt://[::1]:1884");
    }

    #[test]
    fn bad_broker_urls_say_why() {
        for (url, needle) in [
            ("http://h", "scheme"),
            ("mqtt://", "empty host"),
            ("mqtt://h:0", "port"),
            ("mqtt://h:99999", "port"),
            ("mqtt://h/x", "path"),
        ] {
            let err = BrokerUrl::parse(url).unwrap_err();
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn topic_levels_reject_wildcards_and_separators() {
        assert!(check_topic_level("branch-12.eu").is_ok());
        for bad in ["", "a/b", "a+", "#", "a b"] {
            assert!(check_topic_level(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_has_no_broker_and_the_default_site() {
        let config = Config::embedded_default().unwrap();
        assert_eq!(config.mqtt.url, None);
        assert_eq!(config.fleet.site, "default");
        assert_eq!(config.fleet.device_id, None);
    }

    #[test]
    fn fleet_keys_are_validated_with_their_names() {
        let err = Config::from_toml("[mqtt]\nurl = \"tcp://x\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("mqtt.url"), "{err}");
        let err = Config::from_toml("[mqtt]\nurl = \"mqtts://x\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("mqtt.ca_file"), "{err}");
        let err = Config::from_toml("[mqtt]\nclient_cert = \"c.pem\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("mqtt.client_key"), "{err}");
        let err = Config::from_toml("[fleet]\nsite = \"a/b\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("fleet.site"), "{err}");
        let err = Config::from_toml("[fleet]\ndevice_id = \"#\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("fleet.device_id"), "{err}");
        let ok = Config::from_toml("[mqtt]\nurl = \"mqtt://127.0.0.1:1884\"\n", "t.toml").unwrap();
        assert_eq!(ok.mqtt.url.unwrap().port, 1884);
    }
}
