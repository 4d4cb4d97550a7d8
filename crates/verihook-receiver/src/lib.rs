//! # verihook-receiver
//!
//! Everything a service needs to receive verihook webhooks correctly:
//!
//! - [`Verifier`] checks `X-Webhook-Signature` (HMAC-SHA256 of `timestamp + "." + body`,
//!   compared in constant time) and `X-Webhook-Timestamp` (within 5 minutes, either way, by
//!   default) against the raw body, and returns the typed [`Event`] or a precise
//!   [`VerifyError`]. The body is never re-serialized.
//! - [`Event`] types the five event types; an unknown type or status value is kept, not an
//!   error, so a receiver keeps working when verihook adds one.
//! - [`dedup`] drops events already seen (deliveries are at least once): in memory with a
//!   time-to-live, or in SQLite across restarts (feature `sqlite`).
//! - [`sequence`] tells whether an event is newer than the last one applied for its
//!   customer (`X-Webhook-Sequence`): latest wins, whatever order the requests arrive in.
//! - [`axum`](crate::axum) (feature `axum`) gives handlers a verified, typed event and
//!   answers 401 for anything else.
//!
//! ```
//! use verihook_receiver::{signature, Event, Verifier};
//!
//! let secret = "whsec_example";
//! let body = br#"{"type":"customer.status_changed","payload":{"customerId":"cus_1","previousStatus":"UNDER_REVIEW","newStatus":"ACTIVE","customerType":"INDIVIDUAL","email":"jane@example.com","updatedAt":"2025-11-05T10:30:00Z"},"metadata":{"eventId":"evt_1","occurredAt":"2025-11-05T10:30:00Z","organizationId":"org_1"}}"#;
//! let timestamp = 1_762_338_600;
//! // What verihook sends in X-Webhook-Signature:
//! let sig = signature::sign(secret.as_bytes(), timestamp, body);
//!
//! let verifier = Verifier::new(secret);
//! let event = verifier
//!     .verify_at(timestamp + 10, Some(&timestamp.to_string()), Some(&sig), body)
//!     .expect("valid");
//! match event {
//!     Event::CustomerStatusChanged { payload, metadata } => {
//!         assert_eq!(payload.new_status.as_str(), "ACTIVE");
//!         assert_eq!(metadata.event_id, "evt_1");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

#[cfg(feature = "axum")]
pub mod axum;
pub mod dedup;
pub mod event;
pub mod sequence;
pub mod signature;
pub mod standard_webhooks;
mod verifier;

pub use event::{Event, Metadata, Status};
pub use verifier::{Verifier, VerifyError, DEFAULT_TOLERANCE};

/// How an endpoint's requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// verihook's own (`X-Webhook-Signature`: hex HMAC of `timestamp.body`, keyed with the
    /// whole secret string), the default.
    #[default]
    Verihook,
    /// Standard Webhooks (`webhook-signature: v1,<base64>`), see [`standard_webhooks`].
    StandardWebhooks,
}

impl Scheme {
    pub const ALL: [Scheme; 2] = [Self::Verihook, Self::StandardWebhooks];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verihook => "verihook",
            Self::StandardWebhooks => "standard-webhooks",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The header names verihook sends.
pub mod headers {
    pub const SIGNATURE: &str = "x-webhook-signature";
    /// During a secret rotation's overlap: the signature by the new secret (the one above
    /// is by the previous secret).
    pub const SIGNATURE_NEXT: &str = "x-webhook-signature-next";
    pub const TIMESTAMP: &str = "x-webhook-timestamp";
    pub const EVENT_ID: &str = "x-webhook-event-id";
    pub const EVENT_TYPE: &str = "x-webhook-event-type";
    pub const ATTEMPT: &str = "x-webhook-attempt";
    /// The event's place among its customer's events: 1, 2, 3, … in the order of the
    /// changes' commits (0 on a test event, which is about no customer). See
    /// [`crate::sequence`].
    pub const SEQUENCE: &str = "x-webhook-sequence";
}
