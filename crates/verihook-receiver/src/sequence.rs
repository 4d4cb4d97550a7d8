//! Latest wins, by sequence number. Webhooks can arrive out of order (a retry overtakes,
//! two endpoints race), and timestamps have whole-second resolution, so a receiver cannot
//! tell from them which of a customer's events is the latest. Every request carries
//! `X-Webhook-Sequence`: the event's place among its customer's events, 1, 2, 3, … in the
//! order of the changes' commits, the events of one change in their documented order.
//!
//! Apply an event's state only if it is newer than the last one applied for its customer:
//!
//! ```
//! use verihook_receiver::sequence::{Freshness, SequenceGuard};
//!
//! let guard = SequenceGuard::new();
//! assert_eq!(guard.check_and_record("cus_1", 3), Freshness::Newer);
//! // Sequence 2 arrives late (its first attempt failed): its status is no longer current.
//! assert_eq!(guard.check_and_record("cus_1", 2), Freshness::Older);
//! assert_eq!(guard.check_and_record("cus_1", 3), Freshness::Seen);
//! assert_eq!(guard.check_and_record("cus_2", 1), Freshness::Newer);
//! ```
//!
//! An older event is still worth its 2xx (it was received) and may still be worth a log
//! entry; only its state must not overwrite newer state. Keep the last sequence in the same
//! store and transaction as the state it guards (a `last_sequence` column beside the
//! customer's status is the usual shape): [`SequenceGuard`] is the in-memory form, for
//! one process, and [`is_newer`] the rule itself for that column.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// How an event's sequence compares with the last one applied for its customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Newer than anything applied: apply it.
    Newer,
    /// The sequence last applied (a retry or redelivery): already applied.
    Seen,
    /// Older than what was applied: a newer event has overtaken it; do not apply its state.
    Older,
}

/// The rule: an event with `sequence` is newer than the last one applied (`last`, `None`
/// when nothing was applied for the customer yet).
pub fn freshness(last: Option<u64>, sequence: u64) -> Freshness {
    match last {
        Some(last) if sequence < last => Freshness::Older,
        Some(last) if sequence == last => Freshness::Seen,
        _ => Freshness::Newer,
    }
}

/// `true` when the event should be applied: see [`freshness`].
pub fn is_newer(last: Option<u64>, sequence: u64) -> bool {
    freshness(last, sequence) == Freshness::Newer
}

/// Parses the `X-Webhook-Sequence` header's value.
pub fn parse(header: &str) -> Option<u64> {
    header.trim().parse().ok()
}

/// The last sequence applied per customer, in memory.
#[derive(Debug, Default)]
pub struct SequenceGuard {
    last: Mutex<HashMap<String, u64>>,
}

impl SequenceGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compares `sequence` with the last one applied for `customer_id`, and records it
    /// when it is newer.
    pub fn check_and_record(&self, customer_id: &str, sequence: u64) -> Freshness {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let verdict = freshness(last.get(customer_id).copied(), sequence);
        if verdict == Freshness::Newer {
            last.insert(customer_id.to_owned(), sequence);
        }
        verdict
    }

    /// The last sequence applied for `customer_id`.
    pub fn last(&self, customer_id: &str) -> Option<u64> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.get(customer_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_older_event_is_rejected() {
        let guard = SequenceGuard::new();
        for n in 1..=5 {
            assert_eq!(guard.check_and_record("cus_a", n), Freshness::Newer);
        }
        assert_eq!(guard.check_and_record("cus_a", 4), Freshness::Older);
        assert_eq!(guard.check_and_record("cus_a", 5), Freshness::Seen);
        assert_eq!(guard.last("cus_a"), Some(5));
        assert_eq!(
            guard.check_and_record("cus_b", 2),
            Freshness::Newer,
            "per customer"
        );
    }

    #[test]
    fn the_header_parses() {
        assert_eq!(parse("42"), Some(42));
        assert_eq!(parse(" 7 "), Some(7));
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("x"), None);
    }
}
