//! Building the MQTT connection: broker address, TLS, credentials, last will.
//!
//! Invariants: MQTT 3.1.1 with a clean session (the outbox, not the broker,
//! holds what must be resent); the last will is the retained `offline` status;
//! TLS uses rustls with the configured CA only (never the system store), and a
//! client certificate when configured. Packets up to [`MAX_PACKET`] pass, so a
//! long transcript or a pack update fits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use voicebot_core::config::MqttConfig;

use crate::messages::Status;
use crate::topics::Topics;

/// Largest packet either way (bytes).
pub const MAX_PACKET: usize = 4 * 1024 * 1024;

/// Why the connection could not be set up (before any network traffic).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("[mqtt] url is empty: no broker to connect to")]
    NoBroker,
    #[error("cannot read {what} {path}: {source}; fix [mqtt] {key}")]
    ReadFile { what: &'static str, key: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{what} {path} holds no PEM data; fix [mqtt] {key}")]
    NotPem { what: &'static str, key: &'static str, path: PathBuf },
}

fn read_pem(what: &'static str, key: &'static str, path: &Path) -> Result<Vec<u8>, ConnectionError> {
    let bytes = std::fs::read(path).map_err(|source| ConnectionError::ReadFile {
        what,
        key,
        path: path.to_path_buf(),
        source,
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ConnectionError::NotPem { what, key, path: path.to_path_buf() });
    }
    Ok(bytes)
}

/// The client options for `config`, as device `device` of `site`.
///
/// # Errors
/// No broker configured, or an unreadable CA / client certificate / key.
pub fn options(
    config: &MqttConfig,
    topics: &Topics,
    site: &str,
    device: &str,
) -> Result<MqttOptions, ConnectionError> {
    let url = config.url.as_ref().ok_or(ConnectionError::NoBroker)?;
    let mut options = MqttOptions::new(format!("voicebot-{site}-{device}"), url.host.clone(), url.port);
    options.set_keep_alive(config.keepalive.max(Duration::from_secs(5)));
    options.set_clean_session(true);
    options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    options.set_last_will(LastWill::new(
        topics.status(),
        Status::will(device, site).to_json(),
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &config.username {
        options.set_credentials(user.clone(), config.password.clone().unwrap_or_default());
    }
    if url.tls {
        // rustls needs one process-wide crypto provider; a second install is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca_path = config.ca_file.as_deref().unwrap_or(Path::new(""));
        let ca = read_pem("CA file", "ca_file", ca_path)?;
        let client_auth = match &config.client_auth {
            Some((cert, key)) => Some((
                read_pem("client certificate", "client_cert", cert)?,
                read_pem("client key", "client_key", key)?,
            )),
            None => None,
        };
        options.set_transport(Transport::Tls(TlsConfiguration::Simple { ca, alpn: None, client_auth }));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use voicebot_core::config::BrokerUrl;

    fn config(url: &str) -> MqttConfig {
        MqttConfig {
            url: Some(BrokerUrl::parse(url).unwrap()),
            username: Some("box".into()),
            password: Some("secret".into()),
            ca_file: None,
            client_auth: None,
            keepalive: Duration::from_secs(30),
        }
    }

    #[test]
    fn plain_options_carry_identity_credentials_and_the_retained_offline_will() {
        let topics = Topics::new("s", "d");
        let options = options(&config("mqtt://127.0.0.1:1884"), &topics, "s", "d").unwrap();
        assert_eq!(options.broker_address(), ("127.0.0.1".to_owned(), 1884));
        assert_eq!(options.client_id(), "voicebot-s-d");
        assert!(options.clean_session());
        let login = options.credentials().unwrap();
        assert_eq!((login.username.as_str(), login.password.as_str()), ("box", "secret"));
        let will = options.last_will().unwrap();
        assert_eq!(will.topic, "voicebot/v1/s/d/status");
        assert!(will.retain && will.qos == QoS::AtLeastOnce);
        let body: serde_json::Value = serde_json::from_slice(&will.message).unwrap();
        assert_eq!(body["state"], "offline");
    }

    #[test]
    fn tls_without_a_readable_pem_ca_is_a_clear_error() {
        let topics = Topics::new("s", "d");
        let mut c = config("mqtts://broker:8883");
        c.ca_file = Some("/nonexistent/ca.pem".into());
        let err = options(&c, &topics, "s", "d").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/ca.pem") && err.to_string().contains("ca_file"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, b"hello").unwrap();
        c.ca_file = Some(not_pem);
        assert!(matches!(options(&c, &topics, "s", "d"), Err(ConnectionError::NotPem { .. })));
    }

    #[test]
    fn no_broker_is_an_error() {
        let topics = Topics::new("s", "d");
        let c = MqttConfig { url: None, ..config("mqtt://h") };
        assert!(matches!(options(&c, &topics, "s", "d"), Err(ConnectionError::NoBroker)));
    }
}
