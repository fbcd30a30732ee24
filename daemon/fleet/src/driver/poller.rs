//! The task that owns rumqttc's event loop: polls it, forwards events, and
//! does the reconnect backoff that `poll()` lacks.
//!
//! `poll()` is never cancelled mid-flight (only at the very end), so no packet
//! is half written. After a connection error the poller tells the driver and
//! waits for its go-ahead before reconnecting: by then the driver has stopped
//! publishing and forgotten its in-flight tags, so the poller can discard
//! every request of the old session (`clean` + `pending.clear()` + stale
//! events) and the new session's packet ids pair only with new tags.

use std::time::Duration;

use rumqttc::{Event, EventLoop};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::backoff::Backoff;

/// What the poller tells the driver.
#[derive(Debug)]
pub(crate) enum PollEvent {
    Event(Event),
    /// The connection failed or dropped; reply on `resume` once nothing more
    /// will be published for the old session.
    Down {
        error: String,
        retry_in: Duration,
        resume: oneshot::Sender<()>,
    },
}

/// Runs until `stop` is cancelled or the driver hangs up.
///
/// # Cancel safety
/// Meant to run as its own task; it stops at `stop`.
pub(crate) async fn run(
    mut eventloop: EventLoop,
    events: mpsc::Sender<PollEvent>,
    mut backoff: Backoff,
    stop: CancellationToken,
) {
    loop {
        let polled = tokio::select! {
            polled = eventloop.poll() => polled,
            () = stop.cancelled() => return,
        };
        let event = match polled {
            Ok(event) => {
                if matches!(event, Event::Incoming(rumqttc::Packet::ConnAck(_))) {
                    backoff.reset();
                }
                PollEvent::Event(event)
            }
            Err(error) => {
                let retry_in = backoff.next_delay(rand::random());
                let (resume, resumed) = oneshot::channel();
                if events
                    .send(PollEvent::Down { error: crate::connection::explain(&error), retry_in, resume })
                    .await
                    .is_err()
                {
                    return;
                }
                // The driver's go-ahead, then the backoff: both end early at stop.
                tokio::select! {
                    _ = resumed => {}
                    () = stop.cancelled() => return,
                }
                eventloop.clean();
                eventloop.pending.clear();
                eventloop.state.events.clear();
                tokio::select! {
                    () = tokio::time::sleep(retry_in) => {}
                    () = stop.cancelled() => return,
                }
                // Requests the driver queued before it heard of the drop.
                eventloop.clean();
                eventloop.pending.clear();
                eventloop.state.events.clear();
                continue;
            }
        };
        if events.send(event).await.is_err() {
            warn!("fleet driver gone; MQTT poller stops");
            return;
        }
    }
}
