//! Which outbox entry a PUBACK acknowledges, sans IO.
//!
//! rumqttc reports a publish's packet id only as `Outgoing::Publish(pkid)`,
//! emitted in the order requests were handed to the client, and a PUBACK only
//! by packet id. The driver therefore records a tag for every publish it
//! requests, in order; the tracker pairs tags with packet ids as the event loop
//! writes them, and PUBACKs with outbox keys. Invariants: an entry is reported
//! acknowledged only after a PUBACK for the packet id it was written with; on
//! any disconnect everything unacknowledged is forgotten ([`DeliveryTracker::reset`])
//! and goes out again from the outbox (at least once, never lost).

use std::collections::{HashMap, HashSet, VecDeque};

/// What one requested publish carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// An outbox entry, by its sequence number.
    Outbox(i64),
    /// Anything else (birth, telemetry, job results): not tracked.
    Other,
}

#[derive(Debug, Default)]
pub struct DeliveryTracker {
    requested: VecDeque<Tag>,
    by_pkid: HashMap<u16, i64>,
    in_flight: HashSet<i64>,
}

impl DeliveryTracker {
    pub fn new() -> DeliveryTracker {
        DeliveryTracker::default()
    }

    /// The driver handed a publish to the client.
    pub fn requested(&mut self, tag: Tag) {
        if let Tag::Outbox(key) = tag {
            self.in_flight.insert(key);
        }
        self.requested.push_back(tag);
    }

    /// The event loop wrote the next requested publish with `pkid`.
    pub fn written(&mut self, pkid: u16) {
        if let Some(Tag::Outbox(key)) = self.requested.pop_front() {
            if pkid == 0 {
                // QoS 0 never gets a PUBACK: the driver never sends entries so.
                self.in_flight.remove(&key);
            } else {
                self.by_pkid.insert(pkid, key);
            }
        }
    }

    /// A PUBACK arrived; returns the outbox key it acknowledges.
    pub fn acked(&mut self, pkid: u16) -> Option<i64> {
        let key = self.by_pkid.remove(&pkid)?;
        self.in_flight.remove(&key);
        Some(key)
    }

    /// Whether an entry is already on its way (requested, not yet acknowledged).
    pub fn is_in_flight(&self, key: i64) -> bool {
        self.in_flight.contains(&key)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The connection dropped: nothing unacknowledged will be acknowledged now.
    pub fn reset(&mut self) {
        self.requested.clear();
        self.by_pkid.clear();
        self.in_flight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_map_back_to_outbox_keys_through_packet_ids() {
        let mut t = DeliveryTracker::new();
        t.requested(Tag::Other);
        t.requested(Tag::Outbox(1));
        t.requested(Tag::Outbox(2));
        t.written(0);
        t.written(1);
        t.written(2);
        assert_eq!(t.in_flight(), 2);
        assert_eq!(t.acked(2), Some(2));
        assert_eq!(t.acked(1), Some(1));
        assert_eq!(t.acked(1), None, "a second ack for the same packet id is ignored");
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn an_entry_is_in_flight_from_request_to_ack() {
        let mut t = DeliveryTracker::new();
        t.requested(Tag::Outbox(1));
        assert!(t.is_in_flight(1));
        t.written(5);
        assert!(t.is_in_flight(1));
        t.acked(5);
        assert!(!t.is_in_flight(1));
    }

    #[test]
    fn a_disconnect_forgets_everything_unacknowledged() {
        let mut t = DeliveryTracker::new();
        t.requested(Tag::Outbox(1));
        t.written(1);
        t.requested(Tag::Outbox(2));
        t.reset();
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.acked(1), None, "an ack from the old session must not mark anything");
        // The next session's packet ids start afresh.
        t.requested(Tag::Outbox(2));
        t.written(1);
        assert_eq!(t.acked(1), Some(2));
    }

    #[test]
    fn reused_packet_ids_pair_with_the_latest_write() {
        let mut t = DeliveryTracker::new();
        t.requested(Tag::Outbox(1));
        t.written(1);
        assert_eq!(t.acked(1), Some(1));
        t.requested(Tag::Outbox(3));
        t.written(1);
        assert_eq!(t.acked(1), Some(3));
    }
}
