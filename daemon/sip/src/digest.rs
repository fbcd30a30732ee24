//! Digest authentication of callers, server side (RFC 3261 §22, RFC 2617,
//! RFC 7616), sans-IO: header text and `now` in, a verdict out.
//!
//! [`Verifier`] issues nonces (`WWW-Authenticate` values for a 401) and checks
//! `Authorization` headers against configured users, each with a password or a
//! precomputed HA1 (MD5 or SHA-256). Algorithms: MD5 and SHA-256, with
//! `qop=auth` or without qop (RFC 2069 style); `-sess` variants and `auth-int`
//! are refused.
//!
//! Invariants:
//! - a nonce is valid only if we issued it, for [`NONCE_LIFETIME`]; an expired or
//!   unknown nonce with otherwise correct credentials gets a new challenge with
//!   `stale=true`;
//! - with qop, each use must carry a higher nonce count than the last one seen
//!   for that nonce; without qop a nonce is good for one request. A replay is
//!   refused (403), like wrong credentials;
//! - the nonce book is bounded ([`NONCE_CAPACITY`]); when full the oldest nonce
//!   is forgotten (its holder gets `stale=true` and retries).
//!
//! The server side is written here because the maintained crates are client
//! sides: `ezk-sip-auth` only answers challenges (we use it for REGISTER and to
//! test this module), `digest_auth` targets HTTP clients and leaves nonce
//! handling to its user.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// How long an issued nonce may be used.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(60);
/// Nonces remembered at once.
pub const NONCE_CAPACITY: usize = 4096;

/// Hash algorithm of a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn hash(self, input: &str) -> String {
        match self {
            Algorithm::Md5 => format!("{:x}", md5::compute(input.as_bytes())),
            Algorithm::Sha256 => {
                let digest = sha2::Sha256::digest(input.as_bytes());
                let mut out = String::with_capacity(64);
                for byte in digest {
                    let _ = write!(out, "{byte:02x}");
                }
                out
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
}

/// What we know of a user's password.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    /// `H(username:realm:password)` as lowercase hex, for one algorithm.
    Ha1 {
        algorithm: Algorithm,
        hex: String,
    },
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(<redacted>)"),
            Secret::Ha1 { algorithm, .. } => write!(f, "Ha1({algorithm:?}, <redacted>)"),
        }
    }
}

/// `H(username:realm:password)`.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&format!("{username}:{realm}:{password}"))
}

/// The parameters of an `Authorization: Digest ...` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorization {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    /// As written (`MD5` when absent).
    pub algorithm: String,
    pub qop: Option<String>,
    /// Exactly as sent: it is hashed as text.
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

/// Why an `Authorization` header is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest authorization")]
    NotDigest,
    #[error("malformed Digest parameters")]
    Syntax,
    #[error("Digest parameter {0} is missing")]
    Missing(&'static str),
    #[error("unsupported algorithm {0:?}")]
    Algorithm(String),
    #[error("unsupported qop {0:?}")]
    Qop(String),
}

/// Parses `Digest name=value, name="quoted", ...`.
///
/// # Errors
/// Another scheme, broken syntax, or a missing required parameter.
pub fn parse_authorization(value: &str) -> Result<Authorization, DigestError> {
    let value = value.trim();
    let (scheme, mut rest) = value.split_once(char::is_whitespace).ok_or(DigestError::NotDigest)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(DigestError::NotDigest);
    }
    let mut auth = Authorization::default();
    let mut seen_algorithm = false;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=').ok_or(DigestError::Syntax)?;
        let name = name.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (param, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => text.push(chars.next().ok_or(DigestError::Syntax)?.1),
                    Some((_, c)) => text.push(c),
                    None => return Err(DigestError::Syntax),
                }
            };
            (text, &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        match name.as_str() {
            "username" => auth.username = param,
            "realm" => auth.realm = param,
            "nonce" => auth.nonce = param,
            "uri" => auth.uri = param,
            "response" => auth.response = param,
            "algorithm" => {
                auth.algorithm = param;
                seen_algorithm = true;
            }
            "qop" => auth.qop = Some(param),
            "nc" => auth.nc = Some(param),
            "cnonce" => auth.cnonce = Some(param),
            _ => {}
        }
        rest = remaining;
    }
    if !seen_algorithm {
        auth.algorithm = "MD5".into();
    }
    for (name, value) in [
        ("username", &auth.username),
        ("realm", &auth.realm),
        ("nonce", &auth.nonce),
        ("uri", &auth.uri),
        ("response", &auth.response),
    ] {
        if value.is_empty() {
            return Err(DigestError::Missing(name));
        }
    }
    Ok(auth)
}

fn algorithm_of(auth: &Authorization) -> Result<Algorithm, DigestError> {
    match auth.algorithm.to_ascii_uppercase().as_str() {
        "MD5" => Ok(Algorithm::Md5),
        "SHA-256" => Ok(Algorithm::Sha256),
        _ => Err(DigestError::Algorithm(auth.algorithm.clone())),
    }
}

/// The response a client knowing the password must have sent.
///
/// # Errors
/// An unsupported algorithm or qop, or qop without nc/cnonce.
pub fn expected_response(auth: &Authorization, method: &str, ha1: &str) -> Result<String, DigestError> {
    let algorithm = algorithm_of(auth)?;
    let ha2 = algorithm.hash(&format!("{method}:{}", auth.uri));
    match auth.qop.as_deref() {
        None => Ok(algorithm.hash(&format!("{ha1}:{}:{ha2}", auth.nonce))),
        Some(qop) if qop.eq_ignore_ascii_case("auth") => {
            let nc = auth.nc.as_deref().ok_or(DigestError::Missing("nc"))?;
            let cnonce = auth.cnonce.as_deref().ok_or(DigestError::Missing("cnonce"))?;
            Ok(algorithm.hash(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", auth.nonce)))
        }
        Some(other) => Err(DigestError::Qop(other.to_owned())),
    }
}

/// Compares two hex strings without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Credentials are good: let the request in.
    Authenticated { username: String },
    /// Send 401 with fresh challenges; `stale`: the credentials were right but
    /// the nonce was expired or unknown.
    Challenge { stale: bool },
    /// Wrong credentials, an unknown user, or a replayed nonce: 403.
    Forbidden(String),
}

#[derive(Debug, Clone, Copy)]
struct NonceState {
    issued: Instant,
    /// Highest nonce count used; `Some(0)` without qop means spent.
    last_nc: Option<u32>,
}

/// Issued nonces and their use, bounded.
#[derive(Debug, Default)]
struct NonceBook {
    states: HashMap<String, NonceState>,
    order: VecDeque<String>,
}

enum NonceUse {
    Fresh,
    Stale,
    Replayed,
}

impl NonceBook {
    fn issue(&mut self, nonce: String, now: Instant) {
        while self.order.len() >= NONCE_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.states.remove(&old);
            }
        }
        self.order.push_back(nonce.clone());
        self.states.insert(nonce, NonceState { issued: now, last_nc: None });
    }

    fn expire(&mut self, now: Instant) {
        while let Some(oldest) = self.order.front() {
            let expired = self
                .states
                .get(oldest)
                .is_none_or(|s| now.saturating_duration_since(s.issued) >= NONCE_LIFETIME);
            if !expired {
                break;
            }
            if let Some(old) = self.order.pop_front() {
                self.states.remove(&old);
            }
        }
    }

    /// Records one use of `nonce` with nonce count `nc` (`None`: no qop).
    fn use_nonce(&mut self, nonce: &str, nc: Option<u32>, now: Instant) -> NonceUse {
        self.expire(now);
        let Some(state) = self.states.get_mut(nonce) else { return NonceUse::Stale };
        match (nc, state.last_nc) {
            (None, None) => state.last_nc = Some(0),
            (None, Some(_)) => return NonceUse::Replayed,
            (Some(nc), last) if last.is_none_or(|last| nc > last) => state.last_nc = Some(nc),
            (Some(_), Some(_)) => return NonceUse::Replayed,
            (Some(_), None) => unreachable!("covered by the guard above"),
        }
        NonceUse::Fresh
    }
}

/// The configured users of one realm, and the nonces issued to callers.
#[derive(Debug)]
pub struct Verifier {
    realm: String,
    users: BTreeMap<String, Secret>,
    nonces: NonceBook,
}

impl Verifier {
    pub fn new(realm: impl Into<String>, users: BTreeMap<String, Secret>) -> Verifier {
        Verifier { realm: realm.into(), users, nonces: NonceBook::default() }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Issues a nonce made from `entropy` (16 random bytes) and returns the
    /// `WWW-Authenticate` values for it: SHA-256 first, then MD5 (RFC 8760 §2.4
    /// order of preference), both `qop="auth"`.
    pub fn challenge(&mut self, entropy: [u8; 16], stale: bool, now: Instant) -> Vec<String> {
        self.nonces.expire(now);
        let mut nonce = String::with_capacity(32);
        for byte in entropy {
            let _ = write!(nonce, "{byte:02x}");
        }
        self.nonces.issue(nonce.clone(), now);
        let stale = if stale { ", stale=true" } else { "" };
        [Algorithm::Sha256, Algorithm::Md5]
            .into_iter()
            .map(|algorithm| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    self.realm,
                    algorithm.name()
                )
            })
            .collect()
    }

    /// Checks a request's `Authorization` header (`None`: it had none).
    pub fn verify(&mut self, method: &str, authorization: Option<&str>, now: Instant) -> Outcome {
        let Some(header) = authorization else { return Outcome::Challenge { stale: false } };
        let auth = match parse_authorization(header) {
            Ok(auth) => auth,
            Err(DigestError::NotDigest) => return Outcome::Challenge { stale: false },
            Err(e) => return Outcome::Forbidden(e.to_string()),
        };
        if auth.realm != self.realm {
            return Outcome::Challenge { stale: false };
        }
        let Some(secret) = self.users.get(&auth.username) else {
            return Outcome::Forbidden(format!("unknown user {:?}", auth.username));
        };
        let algorithm = match algorithm_of(&auth) {
            Ok(a) => a,
            Err(e) => return Outcome::Forbidden(e.to_string()),
        };
        let ha1 = match secret {
            Secret::Password(password) => ha1(algorithm, &auth.username, &self.realm, password),
            Secret::Ha1 { algorithm: stored, hex } if *stored == algorithm => hex.to_ascii_lowercase(),
            Secret::Ha1 { .. } => {
                return Outcome::Forbidden(format!("no {} HA1 for {:?}", algorithm.name(), auth.username));
            }
        };
        let expected = match expected_response(&auth, method, &ha1) {
            Ok(expected) => expected,
            Err(e) => return Outcome::Forbidden(e.to_string()),
        };
        if !same(&expected, &auth.response.to_ascii_lowercase()) {
            return Outcome::Forbidden(format!("wrong credentials for {:?}", auth.username));
        }
        let nc = match auth.nc.as_deref().map(|nc| u32::from_str_radix(nc, 16)) {
            None => None,
            Some(Ok(nc)) => Some(nc),
            Some(Err(_)) => return Outcome::Forbidden("nonce count is not hex".into()),
        };
        match self.nonces.use_nonce(&auth.nonce, nc, now) {
            NonceUse::Fresh => Outcome::Authenticated { username: auth.username },
            NonceUse::Stale => Outcome::Challenge { stale: true },
            NonceUse::Replayed => {
                Outcome::Forbidden(format!("replayed nonce count from {:?}", auth.username))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5.
    const RFC2617: &str = r#"Digest username="Mufasa", realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001,
        cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    /// RFC 7616 §3.9.1, SHA-256 then MD5.
    const RFC7616_SHA256: &str = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html",
        algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001,
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth,
        response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC7616_MD5: &str = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html",
        algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001,
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth,
        response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;

    #[test]
    fn rfc_2617_and_7616_test_vectors_verify() {
        let auth = parse_authorization(RFC2617).unwrap();
        assert_eq!((auth.nc.as_deref(), auth.cnonce.as_deref()), (Some("00000001"), Some("0a4f113b")));
        let h = ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(expected_response(&auth, "GET", &h).unwrap(), auth.response);

        let auth = parse_authorization(RFC7616_SHA256).unwrap();
        let h = ha1(Algorithm::Sha256, "Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(expected_response(&auth, "GET", &h).unwrap(), auth.response);
        let auth = parse_authorization(RFC7616_MD5).unwrap();
        let h = ha1(Algorithm::Md5, "Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(expected_response(&auth, "GET", &h).unwrap(), auth.response);
        assert_ne!(expected_response(&auth, "POST", &h).unwrap(), auth.response, "the method is covered");
    }

    #[test]
    fn parsing_rejects_other_schemes_and_missing_parameters() {
        assert_eq!(parse_authorization("Basic QWxhZGRpbjpvcGVu"), Err(DigestError::NotDigest));
        assert_eq!(
            parse_authorization(r#"Digest username="a", realm="r""#),
            Err(DigestError::Missing("nonce"))
        );
        assert_eq!(parse_authorization(r#"Digest username="a"#), Err(DigestError::Syntax));
        let quoted =
            parse_authorization(r#"Digest username="a\"b", realm="r", nonce=n, uri="u", response=x"#);
        assert_eq!(quoted.unwrap().username, "a\"b");
    }

    fn verifier(secret: Secret) -> Verifier {
        Verifier::new("voicebot", BTreeMap::from([("alice".to_owned(), secret)]))
    }

    /// What a client answers to `challenge` (qop=auth, MD5), with nonce count `nc`.
    fn answer(challenge: &str, password: &str, nc: u32) -> String {
        let nonce = challenge.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap();
        let mut auth = Authorization {
            username: "alice".into(),
            realm: "voicebot".into(),
            nonce: nonce.into(),
            uri: "sip:support@192.0.2.1".into(),
            algorithm: "MD5".into(),
            qop: Some("auth".into()),
            nc: Some(format!("{nc:08x}")),
            cnonce: Some("c0ffee".into()),
            response: String::new(),
        };
        let h = ha1(Algorithm::Md5, "alice", "voicebot", password);
        auth.response = expected_response(&auth, "INVITE", &h).unwrap();
        format!(
            "Digest username=\"alice\", realm=\"voicebot\", nonce=\"{nonce}\", uri=\"{}\", algorithm=MD5, \
             qop=auth, nc={}, cnonce=\"c0ffee\", response=\"{}\"",
            auth.uri,
            auth.nc.unwrap(),
            auth.response
        )
    }

    #[test]
    fn good_credentials_pass_once_per_nonce_count_and_bad_ones_are_forbidden() {
        let now = Instant::now();
        let mut v = verifier(Secret::Password("s3cret".into()));
        assert_eq!(v.verify("INVITE", None, now), Outcome::Challenge { stale: false });
        let challenges = v.challenge([7; 16], false, now);
        assert!(challenges[0].contains("algorithm=SHA-256") && challenges[1].contains("algorithm=MD5"));
        let good = answer(&challenges[1], "s3cret", 1);
        assert_eq!(v.verify("INVITE", Some(&good), now), Outcome::Authenticated { username: "alice".into() });
        assert!(
            matches!(v.verify("INVITE", Some(&good), now), Outcome::Forbidden(r) if r.contains("replayed"))
        );
        let next = answer(&challenges[1], "s3cret", 2);
        assert!(matches!(v.verify("INVITE", Some(&next), now), Outcome::Authenticated { .. }));
        let bad = answer(&challenges[1], "guess", 3);
        assert!(matches!(v.verify("INVITE", Some(&bad), now), Outcome::Forbidden(r) if r.contains("wrong")));
        assert!(matches!(
            v.verify("BYE", Some(&answer(&challenges[1], "s3cret", 4)), now),
            Outcome::Forbidden(_)
        ));
    }

    #[test]
    fn expired_and_unknown_nonces_are_stale_not_accepted() {
        let now = Instant::now();
        let mut v = verifier(Secret::Ha1 {
            algorithm: Algorithm::Md5,
            hex: ha1(Algorithm::Md5, "alice", "voicebot", "s3cret"),
        });
        let challenge = v.challenge([1; 16], false, now).remove(1);
        let late = now + NONCE_LIFETIME + Duration::from_secs(1);
        assert_eq!(
            v.verify("INVITE", Some(&answer(&challenge, "s3cret", 1)), late),
            Outcome::Challenge { stale: true }
        );
        let forged = answer(&challenge.replace("01010101", "02020202"), "s3cret", 1);
        assert_eq!(v.verify("INVITE", Some(&forged), now), Outcome::Challenge { stale: true });
        assert!(v.challenge([2; 16], true, now)[0].ends_with("stale=true"));
    }

    #[test]
    fn a_nonce_without_qop_is_single_use_and_the_book_is_bounded() {
        let now = Instant::now();
        let mut v = verifier(Secret::Password("pw".into()));
        let challenge = v.challenge([9; 16], false, now).remove(1);
        let nonce = challenge.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let mut auth = Authorization {
            username: "alice".into(),
            realm: "voicebot".into(),
            nonce: nonce.clone(),
            uri: "sip:x@y".into(),
            algorithm: "MD5".into(),
            ..Authorization::default()
        };
        auth.response =
            expected_response(&auth, "INVITE", &ha1(Algorithm::Md5, "alice", "voicebot", "pw")).unwrap();
        let header = format!(
            "Digest username=\"alice\", realm=\"voicebot\", nonce=\"{nonce}\", uri=\"sip:x@y\", response=\"{}\"",
            auth.response
        );
        assert!(matches!(v.verify("INVITE", Some(&header), now), Outcome::Authenticated { .. }));
        assert!(matches!(v.verify("INVITE", Some(&header), now), Outcome::Forbidden(_)));
        for i in 0..NONCE_CAPACITY + 10 {
            let mut entropy = [0u8; 16];
            entropy[..8].copy_from_slice(&(i as u64).to_le_bytes());
            v.challenge(entropy, false, now);
        }
        assert!(v.nonces.states.len() <= NONCE_CAPACITY && v.nonces.order.len() <= NONCE_CAPACITY);
    }
}
