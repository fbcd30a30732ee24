//! Building the MQTT connection: broker address, TLS, credentials, last will.
//!
//! Invariants: MQTT 3.1.1 with a clean session (the outbox, not the broker,
//! holds what must be resent); the last will is the retained `offline` status;
//! TLS uses rustls with the configured CA only (never the system store), and a
//! client certificate when configured. Packets up to [`MAX_PACKET`] pass, so a
//! long transcript or a pack update fits. A failed connect is [`explain`]ed
//! with the `[mqtt]` key an operator has to fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
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
    #[error("{what} {path} holds no {expected}; fix [mqtt] {key}")]
    Unusable { what: &'static str, key: &'static str, path: PathBuf, expected: &'static str },
}

/// What a PEM file must hold to be of use to rustls.
#[derive(Debug, Clone, Copy)]
enum Holds {
    Certificates,
    PrivateKey,
}

/// Reads a PEM file and checks it holds what rumqttc will look for, so that a
/// swapped, encrypted or wrong-format file fails at start, not on every connect.
fn read_pem(
    what: &'static str,
    key: &'static str,
    path: &Path,
    holds: Holds,
) -> Result<Vec<u8>, ConnectionError> {
    let bytes = std::fs::read(path).map_err(|source| ConnectionError::ReadFile {
        what,
        key,
        path: path.to_path_buf(),
        source,
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ConnectionError::NotPem { what, key, path: path.to_path_buf() });
    }
    let (usable, expected) = match holds {
        Holds::Certificates => (
            CertificateDer::pem_slice_iter(&bytes).any(|cert| cert.is_ok()),
            "certificate (-----BEGIN CERTIFICATE-----)",
        ),
        Holds::PrivateKey => (
            PrivateKeyDer::from_pem_slice(&bytes).is_ok(),
            "unencrypted private key (PEM PKCS#8, PKCS#1 RSA or SEC1 EC)",
        ),
    };
    if !usable {
        return Err(ConnectionError::Unusable { what, key, path: path.to_path_buf(), expected });
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
        let ca = read_pem("CA file", "ca_file", ca_path, Holds::Certificates)?;
        let client_auth = match &config.client_auth {
            Some((cert, key)) => Some((
                read_pem("client certificate", "client_cert", cert, Holds::Certificates)?,
                read_pem("client key", "client_key", key, Holds::PrivateKey)?,
            )),
            None => None,
        };
        options.set_transport(Transport::Tls(TlsConfiguration::Simple { ca, alpn: None, client_auth }));
    }
    Ok(options)
}

const TLS_HINT: &str = "TLS failed: check [mqtt] ca_file, client_cert and client_key, and that the broker speaks TLS on that port";

/// What an operator reads when the broker cannot be reached: rumqttc's error
/// and, where the cause is a TLS or login setting, what to fix in `[mqtt]`.
pub fn explain(error: &rumqttc::ConnectionError) -> String {
    match hint(error) {
        Some(hint) => format!("{error}; {hint}"),
        None => error.to_string(),
    }
}

fn hint(error: &rumqttc::ConnectionError) -> Option<&'static str> {
    use rumqttc::{ConnectReturnCode as Code, ConnectionError as E, StateError, TlsError};
    let io = match error {
        E::ConnectionRefused(Code::BadUserNamePassword | Code::NotAuthorized) => {
            return Some("the broker refused the login: check [mqtt] username and password");
        }
        E::Tls(TlsError::NoValidCertInChain) => return Some("[mqtt] ca_file holds no usable certificate"),
        E::Tls(TlsError::NoValidClientCertInChain) => {
            return Some("[mqtt] client_cert holds no usable certificate");
        }
        E::Tls(TlsError::NoValidKeyInChain) => {
            return Some("[mqtt] client_key holds no unencrypted PKCS#8, PKCS#1 (RSA) or SEC1 (EC) key");
        }
        E::Tls(TlsError::DNSName(_)) => {
            return Some("the [mqtt] url host is neither a DNS name nor an IP address");
        }
        E::Tls(TlsError::TLS(tls)) => return Some(tls_hint(tls)),
        // Handshake failures come wrapped in I/O errors; a broker that refuses
        // the client certificate (TLS 1.3) says so on the first read after it.
        E::Tls(TlsError::Io(io))
        | E::Io(io)
        | E::MqttState(StateError::Io(io) | StateError::Deserialization(rumqttc::mqttbytes::Error::Io(io))) => {
            io
        }
        E::Tls(_) => return Some(TLS_HINT),
        _ => return None,
    };
    Some(tls_hint(io.get_ref()?.downcast_ref::<rustls::Error>()?))
}

fn tls_hint(error: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error};
    match error {
        Error::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature) => {
            "the broker's certificate is not signed by the CA in [mqtt] ca_file: set ca_file to the CA that signed it"
        }
        Error::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => {
            "the broker's certificate is not valid for the [mqtt] url host: use a name or IP address from its subjectAltName"
        }
        Error::InvalidCertificate(
            Cert::Expired | Cert::ExpiredContext { .. } | Cert::NotValidYet | Cert::NotValidYetContext { .. },
        ) => "the broker's certificate is outside its validity period: renew it, or check this box's clock",
        Error::InvalidCertificate(_) => {
            "the broker's certificate was rejected: check it against [mqtt] ca_file"
        }
        Error::AlertReceived(Alert::CertificateRequired) => {
            "the broker requires a client certificate: set [mqtt] client_cert and client_key"
        }
        Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::UnsupportedCertificate
            | Alert::AccessDenied,
        ) => {
            "the broker rejected this box's client certificate: set [mqtt] client_cert and client_key to a certificate its CA signed"
        }
        _ => TLS_HINT,
    }
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

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    fn pem_key(label: &str) -> String {
        format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n")
    }

    #[test]
    fn client_keys_in_pkcs8_pkcs1_and_sec1_are_taken() {
        let topics = Topics::new("s", "d");
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = (dir.path().join("ca.pem"), dir.path().join("c.pem"), dir.path().join("c.key"));
        std::fs::write(&ca, CERT).unwrap();
        std::fs::write(&cert, CERT).unwrap();
        let mut c = config("mqtts://127.0.0.1:8883");
        c.ca_file = Some(ca);
        c.client_auth = Some((cert, key.clone()));
        for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
            std::fs::write(&key, pem_key(label)).unwrap();
            let options = options(&c, &topics, "s", "d").unwrap_or_else(|e| panic!("{label}: {e}"));
            assert!(matches!(options.transport(), Transport::Tls(_)), "{label}");
        }
    }

    #[test]
    fn a_swapped_or_encrypted_tls_file_fails_at_start_naming_its_key() {
        let topics = Topics::new("s", "d");
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = (dir.path().join("ca.pem"), dir.path().join("c.pem"), dir.path().join("c.key"));
        let mut c = config("mqtts://127.0.0.1:8883");
        c.ca_file = Some(ca.clone());
        c.client_auth = Some((cert.clone(), key.clone()));
        // A key where the CA belongs.
        std::fs::write(&ca, pem_key("PRIVATE KEY")).unwrap();
        std::fs::write(&cert, CERT).unwrap();
        std::fs::write(&key, pem_key("PRIVATE KEY")).unwrap();
        let err = options(&c, &topics, "s", "d").unwrap_err().to_string();
        assert!(err.contains("ca_file") && err.contains("BEGIN CERTIFICATE"), "{err}");
        std::fs::write(&ca, CERT).unwrap();
        // Certificate and key swapped.
        c.client_auth = Some((key.clone(), cert.clone()));
        let err = options(&c, &topics, "s", "d").unwrap_err().to_string();
        assert!(err.contains("client_cert"), "{err}");
        // An encrypted key: rustls cannot use it.
        c.client_auth = Some((cert, key.clone()));
        std::fs::write(&key, pem_key("ENCRYPTED PRIVATE KEY")).unwrap();
        let err = options(&c, &topics, "s", "d").unwrap_err();
        assert!(matches!(err, ConnectionError::Unusable { key: "client_key", .. }), "{err}");
        assert!(err.to_string().contains("unencrypted"), "{err}");
    }

    #[test]
    fn no_broker_is_an_error() {
        let topics = Topics::new("s", "d");
        let c = MqttConfig { url: None, ..config("mqtt://h") };
        assert!(matches!(options(&c, &topics, "s", "d"), Err(ConnectionError::NoBroker)));
    }

    fn wrapped(tls: rustls::Error) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, tls)
    }

    #[test]
    fn a_broker_certificate_from_another_ca_names_the_cause_and_ca_file() {
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let text = explain(&rumqttc::ConnectionError::Tls(rumqttc::TlsError::Io(wrapped(unknown))));
        assert!(text.contains("invalid peer certificate: UnknownIssuer"), "{text}");
        assert!(text.contains("[mqtt] ca_file"), "{text}");
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let text = explain(&rumqttc::ConnectionError::Tls(rumqttc::TlsError::Io(wrapped(name))));
        assert!(text.contains("NotValidForName") && text.contains("[mqtt] url host"), "{text}");
    }

    #[test]
    fn a_refused_client_certificate_or_login_names_the_keys_to_fix() {
        // As rumqttc reports it: on reading the CONNACK, after a TLS 1.3 handshake.
        let required = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let read = rumqttc::mqttbytes::Error::Io(wrapped(required));
        let text = explain(&rumqttc::ConnectionError::MqttState(rumqttc::StateError::Deserialization(read)));
        assert!(
            text.contains("CertificateRequired") && text.contains("client_cert and client_key"),
            "{text}"
        );
        let unknown_ca = rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA);
        let text =
            explain(&rumqttc::ConnectionError::MqttState(rumqttc::StateError::Io(wrapped(unknown_ca))));
        assert!(text.contains("rejected this box's client certificate"), "{text}");
        let text =
            explain(&rumqttc::ConnectionError::ConnectionRefused(rumqttc::ConnectReturnCode::NotAuthorized));
        assert!(text.contains("username and password"), "{text}");
        let text = explain(&rumqttc::ConnectionError::Tls(rumqttc::TlsError::NoValidKeyInChain));
        assert!(text.contains("[mqtt] client_key"), "{text}");
    }

    #[test]
    fn a_plain_network_failure_is_left_as_it_is() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = rumqttc::ConnectionError::Io(refused);
        assert_eq!(explain(&error), error.to_string());
    }
}
