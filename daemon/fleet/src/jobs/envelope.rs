//! Signed commands: the envelope, the fleet key, and the signature check.
//!
//! A command is `{"job": "<job JSON as text>", "sig": "<base64 signature>"}`.
//! The signature is ed25519 over `b"voicebot/v1 job\n"` followed by the exact
//! UTF-8 bytes of the `job` string, so no JSON canonicalisation is needed and
//! a signature for anything else cannot be reused here. The job names its
//! site, device and command, so a job signed for one box or command is
//! rejected on every other. Verification is strict (`verify_strict`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The signing domain: what precedes the job text in the signed message.
pub const SIGNING_DOMAIN: &[u8] = b"voicebot/v1 job\n";

/// The signed message for a job text.
pub fn signed_message(job_text: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_DOMAIN.len() + job_text.len());
    message.extend_from_slice(SIGNING_DOMAIN);
    message.extend_from_slice(job_text.as_bytes());
    message
}

/// A job, as signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub job_id: String,
    pub command: String,
    pub site: String,
    pub device: String,
    pub issued_at_ms: u64,
    pub nonce: String,
    #[serde(default)]
    pub params: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    job: String,
    sig: String,
}

/// Why a command was not accepted; the text goes into the `rejected` result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed command: {0}")]
    Malformed(String),
    #[error("unsigned command: {0}")]
    Unsigned(String),
    #[error("no fleet public key is configured on this box ([fleet] public_key); every command is rejected")]
    NoKey,
    #[error("bad signature: the command was not signed by the fleet key configured on this box")]
    BadSignature,
    #[error("command addressed to {site}/{device}/{command}, not to this box's {expected}")]
    Misaddressed { site: String, device: String, command: String, expected: String },
    #[error(
        "stale command: issued at {issued_at_ms} ms, {skew_s} s from this box's clock (window {window_s} s); re-sign it now"
    )]
    Stale { issued_at_ms: u64, skew_s: i64, window_s: u64 },
    #[error("replayed command: nonce {nonce:?} was already used by job {by}")]
    ReplayedNonce { nonce: String, by: String },
    #[error("job queue full ({0} jobs waiting); retry later")]
    Busy(usize),
    #[error("unknown command {0:?} (known: config_update, pack_update, diagnostics, model_update, kiosk)")]
    UnknownCommand(String),
}

/// Why the fleet public key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("fleet public key {path}: {problem}")]
pub struct KeyError {
    pub path: PathBuf,
    pub problem: String,
}

/// Loads the fleet's ed25519 public key: a PEM `PUBLIC KEY` (as `openssl pkey
/// -pubout` writes), or the raw 32 bytes as base64 or hex.
///
/// # Errors
/// The file cannot be read or holds no ed25519 public key.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let bad = |problem: String| KeyError { path: path.to_path_buf(), problem };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    parse_public_key(&text).map_err(bad)
}

/// Parses a public key text (see [`load_public_key`]).
///
/// # Errors
/// A message saying which forms were tried.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text)
            .map_err(|e| format!("not an ed25519 PEM public key: {e}"));
    }
    let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0)).collect()
    } else {
        BASE64
            .decode(text)
            .map_err(|_| "expected a PEM public key, or 32 bytes as base64 or hex".to_owned())?
    };
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("an ed25519 public key is 32 bytes, not {}", b.len()))?;
    VerifyingKey::from_bytes(&array).map_err(|e| format!("not a valid ed25519 point: {e}"))
}

/// Parses an envelope and checks its signature; returns the job.
///
/// # Errors
/// [`Rejection::Malformed`], [`Rejection::Unsigned`], [`Rejection::NoKey`] or
/// [`Rejection::BadSignature`]. Nothing in the job is trusted before this passes.
pub fn open(payload: &[u8], key: Option<&VerifyingKey>) -> Result<Job, Rejection> {
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| Rejection::Malformed(format!("not JSON ({e})")))?;
    let object = value.as_object().ok_or_else(|| Rejection::Malformed("not a JSON object".into()))?;
    if !object.contains_key("sig") {
        return Err(Rejection::Unsigned("no \"sig\" field".into()));
    }
    let envelope: Envelope = serde_json::from_value(value)
        .map_err(|e| Rejection::Malformed(format!("expected {{\"job\": string, \"sig\": string}} ({e})")))?;
    let key = key.ok_or(Rejection::NoKey)?;
    let sig_bytes = BASE64.decode(envelope.sig.trim()).map_err(|_| Rejection::BadSignature)?;
    let signature = Signature::from_slice(&sig_bytes).map_err(|_| Rejection::BadSignature)?;
    key.verify_strict(&signed_message(&envelope.job), &signature).map_err(|_| Rejection::BadSignature)?;
    let job: Job = serde_json::from_str(&envelope.job)
        .map_err(|e| Rejection::Malformed(format!("signed job is not a valid job ({e})")))?;
    let id_ok = |s: &str| {
        !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if !id_ok(&job.job_id) {
        return Err(Rejection::Malformed("job_id must be 1-64 of [A-Za-z0-9._-]".into()));
    }
    if job.nonce.len() < 8 || job.nonce.len() > 128 {
        return Err(Rejection::Malformed("nonce must be 8-128 characters".into()));
    }
    Ok(job)
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! A fixed fleet key for tests (never use outside tests).
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    pub(crate) fn fleet() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    pub(crate) fn stranger() -> SigningKey {
        SigningKey::from_bytes(&[9u8; 32])
    }

    pub(crate) fn sign(key: &SigningKey, job: &serde_json::Value) -> Vec<u8> {
        let text = job.to_string();
        let sig = key.sign(&signed_message(&text));
        serde_json::json!({"job": text, "sig": BASE64.encode(sig.to_bytes())}).to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::*;
    use super::*;
    use serde_json::json;

    fn job() -> serde_json::Value {
        json!({"job_id": "J1", "command": "diagnostics", "site": "s", "device": "d",
               "issued_at_ms": 1000, "nonce": "n-00000001", "params": {"action": "models_verify"}})
    }

    #[test]
    fn a_job_signed_by_the_fleet_key_opens() {
        let key = fleet().verifying_key();
        let opened = open(&sign(&fleet(), &job()), Some(&key)).unwrap();
        assert_eq!((opened.job_id.as_str(), opened.command.as_str()), ("J1", "diagnostics"));
        assert_eq!(opened.params["action"], "models_verify");
    }

    #[test]
    fn unsigned_wrongly_signed_and_malformed_commands_are_rejected() {
        let key = fleet().verifying_key();
        let unsigned = json!({"job": job().to_string()}).to_string();
        assert!(matches!(open(unsigned.as_bytes(), Some(&key)), Err(Rejection::Unsigned(_))));
        assert_eq!(open(&sign(&stranger(), &job()), Some(&key)), Err(Rejection::BadSignature));
        // A valid signature over different text.
        let mut tampered: serde_json::Value = serde_json::from_slice(&sign(&fleet(), &job())).unwrap();
        tampered["job"] = json!(tampered["job"].as_str().unwrap().replace("J1", "J2"));
        assert_eq!(open(tampered.to_string().as_bytes(), Some(&key)), Err(Rejection::BadSignature));
        assert!(matches!(open(b"{not json", Some(&key)), Err(Rejection::Malformed(_))));
        assert!(matches!(open(b"[1]", Some(&key)), Err(Rejection::Malformed(_))));
        let bad_sig = json!({"job": job().to_string(), "sig": "@@"}).to_string();
        assert_eq!(open(bad_sig.as_bytes(), Some(&key)), Err(Rejection::BadSignature));
        assert_eq!(open(&sign(&fleet(), &job()), None), Err(Rejection::NoKey));
        let mut no_nonce = job();
        no_nonce["nonce"] = json!("x");
        assert!(matches!(open(&sign(&fleet(), &no_nonce), Some(&key)), Err(Rejection::Malformed(_))));
        let mut extra = job();
        extra["sudo"] = json!(true);
        assert!(matches!(open(&sign(&fleet(), &extra), Some(&key)), Err(Rejection::Malformed(_))));
    }

    #[test]
    fn public_keys_load_from_pem_base64_or_hex() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let key = fleet().verifying_key();
        let pem = key.to_public_key_pem(Default::default()).unwrap();
        assert_eq!(parse_public_key(&pem).unwrap(), key);
        assert_eq!(parse_public_key(&BASE64.encode(key.as_bytes())).unwrap(), key);
        let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_public_key(&hex).unwrap(), key);
        assert!(parse_public_key("abc").unwrap_err().contains("expected"));
        assert!(parse_public_key(&BASE64.encode([1u8; 31])).unwrap_err().contains("32 bytes"));
    }
}
