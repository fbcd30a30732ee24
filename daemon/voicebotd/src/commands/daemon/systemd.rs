//! systemd's notify protocol (sd_notify(3)), by hand: one datagram per state
//! change to the Unix socket named by `NOTIFY_SOCKET` (a path, or `@name` in
//! the abstract namespace). Without `NOTIFY_SOCKET` every call is a no-op, so
//! the daemon runs the same outside systemd.
//!
//! Sent: `READY=1` once the models are loaded and SIP listens, `STATUS=` lines,
//! `WATCHDOG=1` every half `WATCHDOG_USEC` while the daemon's loops are
//! healthy (never when they are not, so systemd restarts a wedged daemon), and
//! `STOPPING=1` when the drain starts.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::observe::Health;

/// The notify socket, if systemd gave one.
#[derive(Debug)]
pub(super) struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    /// How often to ping the watchdog; `None`: no watchdog for this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub(super) fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let address = if let Some(name) = path.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            } else {
                std::os::unix::net::SocketAddr::from_pathname(&path)
            };
            let opened = address.and_then(|a| {
                let socket = UnixDatagram::unbound()?;
                socket.set_nonblocking(true)?;
                Ok((socket, a))
            });
            match opened {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(socket = %path, error = %e, "cannot use NOTIFY_SOCKET; systemd will not hear from us");
                    None
                }
            }
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|pid| pid.trim().parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|usec| *usec > 0 && for_us)
            .map(|usec| Duration::from_micros(usec / 2));
        Notifier { socket, watchdog }
    }

    /// Sends one notification (`KEY=value` lines). Never blocks; a failure is logged.
    pub(super) fn notify(&self, state: &str) {
        let Some((socket, address)) = &self.socket else { return };
        match socket.send_to_addr(state.as_bytes(), address) {
            Ok(_) => debug!(state, "sd_notify"),
            Err(e) => warn!(error = %e, "sd_notify failed"),
        }
    }

    pub(super) fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.socket.is_some())
    }
}

/// Pings the watchdog while `health` is good, until `cancel`.
///
/// # Cancel safety
/// Returns at `cancel` without sending anything more.
pub(super) async fn watchdog(notifier: Arc<Notifier>, health: Arc<Health>, cancel: CancellationToken) {
    let Some(every) = notifier.watchdog_interval() else { return };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_healthy = true;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = cancel.cancelled() => return,
        }
        let problems = health.problems();
        if problems.is_empty() {
            notifier.notify("WATCHDOG=1");
            if !was_healthy {
                notifier.notify("STATUS=Answering calls");
            }
        } else {
            // No ping: systemd restarts us when WatchdogSec passes like this.
            warn!(problems = ?problems, "unhealthy: not pinging the systemd watchdog");
            notifier.notify(&format!("STATUS=Unhealthy: {}", problems.join("; ")));
        }
        was_healthy = problems.is_empty();
    }
}
