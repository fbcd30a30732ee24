//! Keeping the box registered at a registrar (RFC 3261 §10), when `[sip]
//! registrar` is set.
//!
//! One tracked task per user agent: REGISTER with digest client auth
//! (`ezk-sip-auth`'s `DigestAuthenticator`), refresh before the granted expiry
//! ([`refresh_after`]), and on failure log, publish [`RegistrationState::Failed`]
//! and retry with exponential backoff (1 s doubling to [`MAX_BACKOFF`]). It
//! shares only the endpoint with call handling, so a slow or dead registrar
//! never holds up answering calls. On shutdown it removes its binding
//! (Expires: 0), bounded in time.
//!
//! ezk-sip-ua's own `Registration` is not used: it panics when the registrar
//! does not answer (`receive_final().await.unwrap()`), refreshes from an
//! untracked `tokio::spawn` without backoff, and puts the bound address (often
//! `0.0.0.0`) in Contact. We use its sans-IO REGISTER builder
//! (`ezk_sip_ua::register::Registration`) and drive it ourselves.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ezk_sip_auth::{
    ClientAuthenticator, DigestAuthenticator, DigestCredentials, DigestUser, RequestParts, ResponseParts,
};
use ezk_sip_core::Endpoint;
use ezk_sip_core::transaction::TsxResponse;
use ezk_sip_core::transport::TargetTransportInfo;
use ezk_sip_types::header::typed::{Contact, Expires};
use ezk_sip_types::uri::{NameAddr, SipUri};
use ezk_sip_types::{Method, Name};
use ezk_sip_ua::register::Registration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use voicebot_core::config::RegistrarConfig;

use crate::agent::local_ip_towards;

/// Longest wait between two failed attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Longest one REGISTER exchange (with its challenge) may take.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(32);

/// Where registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    /// No `[sip] registrar` configured.
    Off,
    /// The first REGISTER is on its way.
    Registering,
    /// The registrar accepted our binding for this long (refreshed before it ends).
    Registered { expires: Duration },
    /// The last attempt failed; the next one follows after `retry_in`.
    Failed { reason: String, retry_in: Duration },
}

/// When to refresh a binding granted for `granted`: half-way, or 30 s before
/// it ends when that is later; at least 1 s.
pub fn refresh_after(granted: Duration) -> Duration {
    (granted / 2).max(granted.saturating_sub(Duration::from_secs(30))).max(Duration::from_secs(1))
}

/// The next backoff after `current`.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

/// The expiry the registrar granted: our Contact's `expires` parameter, else the
/// `Expires` header, else what we asked for.
fn granted(response: &TsxResponse, ours: &str, requested: Duration) -> Duration {
    let from_contact = response.headers.get_raw(&Name::CONTACT).find_map(|value| {
        let value = value.to_string();
        if !value.contains(ours) {
            return None;
        }
        value.split(';').find_map(|param| {
            let (name, v) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("expires")
                .then(|| v.trim().trim_end_matches(',').parse().ok())?
        })
    });
    from_contact
        .or_else(|| response.headers.get_named::<Expires>().ok().map(|e| e.0))
        .map_or(requested, |s: u32| Duration::from_secs(u64::from(s)))
}

/// Everything the task needs.
pub(crate) struct Registrar {
    pub(crate) endpoint: Endpoint,
    pub(crate) config: RegistrarConfig,
    pub(crate) advertised: Option<IpAddr>,
    pub(crate) sip_port: u16,
    pub(crate) state: watch::Sender<RegistrationState>,
}

struct Binding {
    proto: Registration,
    auth: DigestAuthenticator,
    target: TargetTransportInfo,
    /// `host:port` of our Contact, to find our binding in the response.
    contact_host: String,
}

impl Registrar {
    /// Keeps the binding until `cancel`, then removes it.
    ///
    /// # Cancel safety
    /// Meant to be spawned and stopped through `cancel`.
    pub(crate) async fn run(self, cancel: CancellationToken) {
        // Checked by `UserAgent::start`.
        let Ok(registrar) = self.config.uri.parse::<SipUri>() else { return };
        self.state.send_replace(RegistrationState::Registering);
        let mut binding: Option<Binding> = None;
        let mut backoff = Duration::from_secs(1);
        loop {
            let attempt = async {
                if binding.is_none() {
                    binding = Some(self.bind(&registrar).await?);
                }
                let binding = binding.as_mut().expect("bound above");
                exchange(&self.endpoint, binding, false, self.config.expiry).await
            };
            let result = tokio::select! {
                () = cancel.cancelled() => break,
                result = tokio::time::timeout(ATTEMPT_LIMIT, attempt) => {
                    result.unwrap_or_else(|_| Err(format!("no final answer within {ATTEMPT_LIMIT:?}")))
                }
            };
            let wait = match result {
                Ok(expires) => {
                    backoff = Duration::from_secs(1);
                    tracing::info!(registrar = %self.config.uri, ?expires, "registered");
                    self.state.send_replace(RegistrationState::Registered { expires });
                    refresh_after(expires)
                }
                Err(reason) => {
                    tracing::warn!(registrar = %self.config.uri, %reason, retry_in = ?backoff, "REGISTER failed");
                    self.state.send_replace(RegistrationState::Failed { reason, retry_in: backoff });
                    // Start afresh (new transport, new challenge) next time.
                    binding = None;
                    let wait = backoff;
                    backoff = next_backoff(backoff);
                    wait
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Some(mut binding) = binding {
            let removal = exchange(&self.endpoint, &mut binding, true, self.config.expiry);
            if !matches!(tokio::time::timeout(Duration::from_secs(2), removal).await, Ok(Ok(_))) {
                tracing::debug!("could not remove our registration within 2 s");
            }
        }
        self.state.send_replace(RegistrationState::Off);
    }

    async fn bind(&self, registrar: &SipUri) -> Result<Binding, String> {
        let (transport, remote) = self
            .endpoint
            .select_transport(registrar)
            .await
            .map_err(|e| format!("cannot reach the registrar: {e}"))?;
        let local_ip = self.advertised.unwrap_or_else(|| local_ip_towards(remote.ip()));
        let contact_host = SocketAddr::new(local_ip, self.sip_port).to_string();
        let username = &self.config.username;
        let contact: SipUri = format!("sip:{username}@{contact_host}")
            .parse()
            .map_err(|_| format!("cannot form a Contact for user {username:?}"))?;
        let id = NameAddr::uri(SipUri::new(registrar.host_port.clone()).user(username.clone().into()));
        let proto = Registration::new(
            id,
            Contact::new(NameAddr::uri(contact)),
            registrar.clone(),
            self.config.expiry,
        );
        let mut credentials = DigestCredentials::new();
        credentials.set_default(DigestUser::new(username.clone(), self.config.password.clone()));
        let target = TargetTransportInfo {
            via_host_port: Some(SocketAddr::new(local_ip, transport.bound().port()).into()),
            transport: Some((transport, remote)),
        };
        Ok(Binding { proto, auth: DigestAuthenticator::new(credentials), target, contact_host })
    }
}

/// One REGISTER (answering up to two challenges); returns the granted expiry.
async fn exchange(
    endpoint: &Endpoint,
    binding: &mut Binding,
    remove: bool,
    requested: Duration,
) -> Result<Duration, String> {
    for _ in 0..3 {
        let mut request = binding.proto.create_register(remove);
        request.headers.insert_named(endpoint.allowed());
        binding.auth.authorize_request(&mut request.headers);
        let mut transaction = endpoint
            .send_request(request, &mut binding.target)
            .await
            .map_err(|e| format!("cannot send REGISTER: {e}"))?;
        let response = transaction.receive_final().await.map_err(|e| format!("REGISTER: {e}"))?;
        let code = response.line.code.into_u16();
        match code {
            200..=299 => return Ok(granted(&response, &binding.contact_host, requested)),
            401 | 407 => {
                let sent = transaction.request();
                binding
                    .auth
                    .handle_rejection(
                        RequestParts {
                            line: &sent.msg.line,
                            headers: &sent.msg.headers,
                            body: &sent.msg.body,
                        },
                        ResponseParts {
                            line: &response.line,
                            headers: &response.headers,
                            body: &response.body,
                        },
                    )
                    .map_err(|e| format!("registrar refused our credentials ({code}): {e}"))?;
            }
            423 if !remove => {
                if !binding.proto.receive_error_response(response) {
                    return Err("423 Interval Too Brief without Min-Expires".into());
                }
            }
            _ => return Err(format!("registrar answered {code}")),
        }
    }
    Err(format!("{} not accepted after 3 attempts", Method::REGISTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_refreshed_before_they_end() {
        assert_eq!(refresh_after(Duration::from_secs(600)), Duration::from_secs(570));
        assert_eq!(refresh_after(Duration::from_secs(60)), Duration::from_secs(30));
        assert_eq!(refresh_after(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(refresh_after(Duration::ZERO), Duration::from_secs(1));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Duration::from_secs(1);
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(b.as_secs());
            b = next_backoff(b);
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    }
}
