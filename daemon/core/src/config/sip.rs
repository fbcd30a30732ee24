//! The validated `[sip]` section: where the phone lines listen, who may call in,
//! and where callers are transferred to.
//!
//! Invariants: at least one of UDP and TCP listens; the allowlist is never empty
//! (the default is loopback only, so a fresh box answers nobody from outside);
//! every agent-queue URI is a `sip:`/`sips:` URI with a host (the SIP crate
//! parses it fully when the user agent starts).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use super::ConfigError;
use super::raw::RawSip;

/// An IP network that may call in: an address with a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl PeerNet {
    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for PeerNet {
    type Err = String;

    /// `192.0.2.7`, `192.0.2.0/24`, `::1` or `2001:db8::/32`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("prefix {p:?} must be 0 to {max}"))?,
        };
        Ok(PeerNet { addr, prefix })
    }
}

impl fmt::Display for PeerNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// How a call is handed to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// REFER the caller to the agent queue and leave the call (RFC 3515).
    Refer,
    /// INVITE the agent and bridge the media, staying in the call.
    Bridge,
}

/// `[sip]`.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// `None`: no UDP listener.
    pub listen_udp: Option<SocketAddr>,
    /// `None`: no TCP listener.
    pub listen_tcp: Option<SocketAddr>,
    /// The address put in Contact and SDP; `None`: the local address on the route to each peer.
    pub advertised_address: Option<IpAddr>,
    /// Networks allowed to call in; everyone else gets 403.
    pub allowed_peers: Vec<PeerNet>,
    /// Calls at once; one more gets 486 Busy Here.
    pub max_calls: usize,
    /// Jitter-buffer depth for caller audio.
    pub jitter_depth: Duration,
    pub transfer: TransferConfig,
    /// Digest authentication of callers outside `allowed_peers`; `None`: off.
    pub caller_auth: Option<CallerAuth>,
    /// Registration to a registrar; `None`: off.
    pub registrar: Option<RegistrarConfig>,
}

/// `[sip] auth_realm` and `[sip.auth_users]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerAuth {
    pub realm: String,
    pub users: BTreeMap<String, CallerSecret>,
}

/// A caller account's secret.
#[derive(Clone, PartialEq, Eq)]
pub enum CallerSecret {
    Password(String),
    /// Lowercase hex `H(user:realm:password)`: 32 digits for MD5, 64 for SHA-256.
    Ha1(String),
}

impl fmt::Debug for CallerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallerSecret::Password(_) => "Password(<redacted>)",
            CallerSecret::Ha1(_) => "Ha1(<redacted>)",
        })
    }
}

/// `[sip] registrar*`.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// The registrar's SIP URI.
    pub uri: String,
    pub username: String,
    pub password: String,
    /// The binding lifetime we ask for.
    pub expiry: Duration,
}

impl fmt::Debug for RegistrarConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrarConfig")
            .field("uri", &self.uri)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expiry", &self.expiry)
            .finish()
    }
}

/// Where and how calls are transferred.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    pub mode: TransferMode,
    /// The agent queue for tickets without a configured skill group.
    pub default_queue: String,
    /// Agent queue per skill group.
    pub queues: BTreeMap<String, String>,
    /// The `purpose` parameter of the User-to-User header (RFC 7433).
    pub uui_purpose: String,
    /// How long to wait for the agent side to answer.
    pub timeout: Duration,
}

impl TransferConfig {
    /// The queue for a skill group, falling back to the default queue.
    pub fn queue_for(&self, skill_group: Option<&str>) -> &str {
        skill_group.and_then(|g| self.queues.get(g)).map_or(self.default_queue.as_str(), String::as_str)
    }
}

fn value_error(origin: &str, key: &'static str, value: String, problem: String) -> ConfigError {
    ConfigError::Value { origin: origin.to_owned(), key, value, problem }
}

fn required<T: Clone>(value: &Option<T>, key: &'static str, origin: &str) -> Result<T, ConfigError> {
    value
        .clone()
        .ok_or_else(|| value_error(origin, key, "(missing)".into(), "no value and no default".into()))
}

fn listen(text: &str, key: &'static str, origin: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        value_error(
            origin,
            key,
            format!("{text:?}"),
            "expected IP:port, e.g. \"0.0.0.0:5060\", or \"\" to disable".into(),
        )
    })
}

fn sip_uri(text: &str, key: &'static str, origin: &str) -> Result<String, ConfigError> {
    let rest = text.strip_prefix("sip:").or_else(|| text.strip_prefix("sips:"));
    let host = rest.map(|r| r.rsplit_once('@').map_or(r, |(_, host)| host));
    match host {
        Some(host) if !host.trim().is_empty() && !text.contains(char::is_whitespace) => Ok(text.to_owned()),
        _ => Err(value_error(
            origin,
            key,
            format!("{text:?}"),
            "expected a SIP URI like \"sip:agents@192.0.2.10:5060\"".into(),
        )),
    }
}

/// Validates `[sip]`.
///
/// # Errors
/// A bad address, network, count, mode or URI, naming the key.
pub(crate) fn validate_sip(raw: &RawSip, origin: &str) -> Result<SipConfig, ConfigError> {
    let listen_udp = listen(&required(&raw.listen_udp, "sip.listen_udp", origin)?, "sip.listen_udp", origin)?;
    let listen_tcp = listen(&required(&raw.listen_tcp, "sip.listen_tcp", origin)?, "sip.listen_tcp", origin)?;
    if listen_udp.is_none() && listen_tcp.is_none() {
        return Err(value_error(
            origin,
            "sip.listen_udp",
            "\"\"".into(),
            "UDP and TCP cannot both be disabled".into(),
        ));
    }
    let advertised: String = required(&raw.advertised_address, "sip.advertised_address", origin)?;
    let advertised_address = match advertised.trim() {
        "" => None,
        text => Some(text.parse().map_err(|_| {
            value_error(
                origin,
                "sip.advertised_address",
                format!("{text:?}"),
                "expected an IP address or \"\"".into(),
            )
        })?),
    };
    let peers: Vec<String> = required(&raw.allowed_peers, "sip.allowed_peers", origin)?;
    let allowed_peers = peers
        .iter()
        .map(|p| p.parse::<PeerNet>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|problem| value_error(origin, "sip.allowed_peers", format!("{peers:?}"), problem))?;
    if allowed_peers.is_empty() {
        return Err(value_error(
            origin,
            "sip.allowed_peers",
            "[]".into(),
            "name at least one peer (\"0.0.0.0/0\" to allow every IPv4 caller)".into(),
        ));
    }
    let max_calls: u32 = required(&raw.max_calls, "sip.max_calls", origin)?;
    if !(1..=1000).contains(&max_calls) {
        return Err(value_error(origin, "sip.max_calls", max_calls.to_string(), "must be 1 to 1000".into()));
    }
    let jitter_ms: u32 = required(&raw.jitter_ms, "sip.jitter_ms", origin)?;
    if !(20..=500).contains(&jitter_ms) {
        return Err(value_error(origin, "sip.jitter_ms", jitter_ms.to_string(), "must be 20 to 500".into()));
    }
    let mode_text: String = required(&raw.transfer_mode, "sip.transfer_mode", origin)?;
    let mode = match mode_text.as_str() {
        "refer" => TransferMode::Refer,
        "bridge" => TransferMode::Bridge,
        other => {
            return Err(value_error(
                origin,
                "sip.transfer_mode",
                format!("{other:?}"),
                "expected \"refer\" or \"bridge\"".into(),
            ));
        }
    };
    let default_queue =
        sip_uri(&required(&raw.agent_queue, "sip.agent_queue", origin)?, "sip.agent_queue", origin)?;
    let mut queues = BTreeMap::new();
    for (group, uri) in required(&raw.skill_queues, "sip.skill_queues", origin)? {
        queues.insert(group, sip_uri(&uri, "sip.skill_queues", origin)?);
    }
    let uui_purpose: String = required(&raw.uui_purpose, "sip.uui_purpose", origin)?;
    if uui_purpose.is_empty() || !uui_purpose.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return Err(value_error(
            origin,
            "sip.uui_purpose",
            format!("{uui_purpose:?}"),
            "must be a token: letters, digits, - . _".into(),
        ));
    }
    let timeout_s: u32 = required(&raw.transfer_timeout_s, "sip.transfer_timeout_s", origin)?;
    if !(1..=300).contains(&timeout_s) {
        return Err(value_error(
            origin,
            "sip.transfer_timeout_s",
            timeout_s.to_string(),
            "must be 1 to 300".into(),
        ));
    }
    let caller_auth = caller_auth(raw, origin)?;
    let registrar = registrar(raw, origin)?;
    Ok(SipConfig {
        listen_udp,
        listen_tcp,
        advertised_address,
        allowed_peers,
        max_calls: max_calls as usize,
        jitter_depth: Duration::from_millis(u64::from(jitter_ms)),
        transfer: TransferConfig {
            mode,
            default_queue,
            queues,
            uui_purpose,
            timeout: Duration::from_secs(u64::from(timeout_s)),
        },
        caller_auth,
        registrar,
    })
}

fn caller_auth(raw: &RawSip, origin: &str) -> Result<Option<CallerAuth>, ConfigError> {
    let realm: String = required(&raw.auth_realm, "sip.auth_realm", origin)?;
    let raw_users = raw.auth_users.clone().unwrap_or_default();
    if realm.is_empty() {
        if !raw_users.is_empty() {
            return Err(value_error(
                origin,
                "sip.auth_realm",
                "\"\"".into(),
                "[sip.auth_users] has users: set auth_realm (e.g. \"voicebot\") to turn digest auth on"
                    .into(),
            ));
        }
        return Ok(None);
    }
    if realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
        return Err(value_error(
            origin,
            "sip.auth_realm",
            format!("{realm:?}"),
            "no quotes, backslashes or control characters".into(),
        ));
    }
    if raw_users.is_empty() {
        return Err(value_error(
            origin,
            "sip.auth_users",
            "{}".into(),
            "auth_realm is set but no users are: add e.g. pbx = { password = \"...\" }".into(),
        ));
    }
    let mut users = BTreeMap::new();
    for (name, user) in raw_users {
        let secret = match (user.password, user.ha1) {
            (Some(password), None) if !password.is_empty() => CallerSecret::Password(password),
            (None, Some(ha1))
                if matches!(ha1.len(), 32 | 64) && ha1.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                CallerSecret::Ha1(ha1.to_ascii_lowercase())
            }
            _ => {
                return Err(value_error(
                    origin,
                    "sip.auth_users",
                    format!("{name} = {{ ... }}"),
                    "give exactly one of password = \"...\" (not empty) or ha1 = \"<32 or 64 hex digits>\""
                        .into(),
                ));
            }
        };
        users.insert(name, secret);
    }
    Ok(Some(CallerAuth { realm, users }))
}

fn registrar(raw: &RawSip, origin: &str) -> Result<Option<RegistrarConfig>, ConfigError> {
    let uri: String = required(&raw.registrar, "sip.registrar", origin)?;
    if uri.trim().is_empty() {
        return Ok(None);
    }
    let uri = sip_uri(uri.trim(), "sip.registrar", origin)?;
    let username: String = required(&raw.registrar_username, "sip.registrar_username", origin)?;
    if username.is_empty() || username.contains(|c: char| c.is_whitespace() || "@:;<>\"".contains(c)) {
        return Err(value_error(
            origin,
            "sip.registrar_username",
            format!("{username:?}"),
            "a registrar needs a username (no spaces, @ : ; < > or quotes)".into(),
        ));
    }
    let password: String = required(&raw.registrar_password, "sip.registrar_password", origin)?;
    let expiry_s: u32 = required(&raw.registrar_expiry_s, "sip.registrar_expiry_s", origin)?;
    if !(60..=86_400).contains(&expiry_s) {
        return Err(value_error(
            origin,
            "sip.registrar_expiry_s",
            expiry_s.to_string(),
            "must be 60 to 86400".into(),
        ));
    }
    Ok(Some(RegistrarConfig { uri, username, password, expiry: Duration::from_secs(u64::from(expiry_s)) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_default_is_the_documented_contract() {
        let sip = Config::embedded_default().unwrap().sip;
        assert_eq!(sip.listen_udp, Some("0.0.0.0:5060".parse().unwrap()));
        assert_eq!(sip.listen_tcp, Some("0.0.0.0:5060".parse().unwrap()));
        assert!(sip.allowed_peers.iter().all(|p| p.addr.is_loopback()));
        assert!(sip.allowed_peers.iter().any(|p| p.contains("127.0.0.1".parse().unwrap())));
        assert!(sip.allowed_peers.iter().any(|p| p.contains("::1".parse().unwrap())));
        assert!(!sip.allowed_peers.iter().any(|p| p.contains("192.0.2.1".parse().unwrap())));
        assert_eq!(sip.transfer.mode, TransferMode::Refer);
        assert_eq!(sip.transfer.default_queue, "sip:agents@127.0.0.1:5070");
        assert_eq!(sip.transfer.queue_for(Some("billing")), "sip:agents@127.0.0.1:5070");
        assert_eq!(sip.caller_auth, None, "digest auth is off until a realm is set");
        assert_eq!(sip.registrar, None, "no registration by default");
    }

    #[test]
    fn caller_auth_and_registrar_are_read_and_secrets_stay_out_of_debug() {
        let text = "[sip]\nauth_realm = \"voicebot\"\nregistrar = \"sip:pbx.example.net\"\n\
                    registrar_username = \"box7\"\nregistrar_password = \"hunter2\"\n\
                    [sip.auth_users]\npbx = { password = \"s3cret\" }\n\
                    trunk = { ha1 = \"939E7578ED9E3C518A452ACEE763BCE9\" }\n";
        let sip = Config::from_toml(text, "t.toml").unwrap().sip;
        let auth = sip.caller_auth.as_ref().unwrap();
        assert_eq!(auth.realm, "voicebot");
        assert_eq!(auth.users["pbx"], CallerSecret::Password("s3cret".into()));
        assert_eq!(auth.users["trunk"], CallerSecret::Ha1("939e7578ed9e3c518a452acee763bce9".into()));
        let registrar = sip.registrar.as_ref().unwrap();
        assert_eq!((registrar.uri.as_str(), registrar.username.as_str()), ("sip:pbx.example.net", "box7"));
        assert_eq!(registrar.expiry, Duration::from_secs(600));
        let shown = format!("{sip:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2") && !shown.contains("939e75"),
            "{shown}"
        );
    }

    #[test]
    fn peer_networks_match_by_prefix() {
        let net: PeerNet = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains("192.0.2.200".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(net.contains("::ffff:192.0.2.9".parse().unwrap()), "IPv4-mapped IPv6");
        let all: PeerNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.5".parse().unwrap()));
        let v6: PeerNet = "2001:db8::/32".parse().unwrap();
        assert!(
            v6.contains("2001:db8:1::1".parse().unwrap()) && !v6.contains("2001:db9::1".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<PeerNet>().is_err());
        assert!("example.com".parse::<PeerNet>().is_err());
    }

    #[test]
    fn skill_queues_and_settings_are_read() {
        let text = "[sip]\nlisten_tcp = \"\"\nallowed_peers = [\"10.1.0.0/16\"]\nmax_calls = 3\n\
                    transfer_mode = \"bridge\"\n[sip.skill_queues]\nbilling = \"sip:billing@10.1.0.5\"\n";
        let sip = Config::from_toml(text, "t.toml").unwrap().sip;
        assert_eq!(sip.listen_tcp, None);
        assert_eq!(sip.max_calls, 3);
        assert_eq!(sip.transfer.mode, TransferMode::Bridge);
        assert_eq!(sip.transfer.queue_for(Some("billing")), "sip:billing@10.1.0.5");
        assert_eq!(sip.transfer.queue_for(Some("other")), "sip:agents@127.0.0.1:5070");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("[sip]\nlisten_udp = \"5060\"\n", "sip.listen_udp"),
            ("[sip]\nlisten_udp = \"\"\nlisten_tcp = \"\"\n", "sip.listen_udp"),
            ("[sip]\nallowed_peers = []\n", "sip.allowed_peers"),
            ("[sip]\nallowed_peers = [\"nope\"]\n", "sip.allowed_peers"),
            ("[sip]\nmax_calls = 0\n", "sip.max_calls"),
            ("[sip]\ntransfer_mode = \"warm\"\n", "sip.transfer_mode"),
            ("[sip]\nagent_queue = \"agents@host\"\n", "sip.agent_queue"),
            ("[sip]\nadvertised_address = \"host\"\n", "sip.advertised_address"),
            ("[sip]\nuui_purpose = \"a b\"\n", "sip.uui_purpose"),
            ("[sip]\nauth_realm = \"r\"\n", "sip.auth_users"),
            ("[sip.auth_users]\na = { password = \"p\" }\n", "sip.auth_realm"),
            ("[sip]\nauth_realm = \"r\"\n[sip.auth_users]\na = { ha1 = \"xyz\" }\n", "sip.auth_users"),
            (
                "[sip]\nauth_realm = \"r\"\n[sip.auth_users]\na = { password = \"p\", ha1 = \"939e7578ed9e3c518a452acee763bce9\" }\n",
                "sip.auth_users",
            ),
            ("[sip]\nregistrar = \"pbx\"\nregistrar_username = \"u\"\n", "sip.registrar"),
            ("[sip]\nregistrar = \"sip:pbx\"\n", "sip.registrar_username"),
            (
                "[sip]\nregistrar = \"sip:pbx\"\nregistrar_username = \"u\"\nregistrar_expiry_s = 5\n",
                "sip.registrar_expiry_s",
            ),
        ] {
            let err = Config::from_toml(text, "t.toml").unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("t.toml"), "{text}: {err}");
        }
    }
}
