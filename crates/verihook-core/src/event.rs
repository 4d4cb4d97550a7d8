//! Webhook events. Each is rendered to compact JSON exactly once, when the change that causes
//! it happens; those bytes are stored, shown by the API and signed and sent as they are, so a
//! retry or redelivery can never differ from the first attempt by a byte.
//!
//! The field names and their order follow the product document's examples. serde_json's
//! compact output equals `JSON.stringify(JSON.parse(body))`: no insignificant whitespace,
//! non-ASCII kept as UTF-8, `/` not escaped, control characters as `\n` or `\u001f`.

use crate::customer::Customer;
use crate::error::DomainError;
use crate::id::{CustomerId, EventId, OrganizationId};
use crate::status::CustomerStatus;
use crate::timestamp::Timestamp;
use serde::Serialize;
use std::fmt;

/// The reason sent with `verification.rfi_required` when the decision gives none.
pub const DEFAULT_RFI_REASON: &str = "Additional information required";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    CustomerCreated,
    CustomerUpdated,
    CustomerStatusChanged,
    VerificationCompleted,
    VerificationRfiRequired,
    CustomerDeleted,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        Self::CustomerCreated,
        Self::CustomerUpdated,
        Self::CustomerStatusChanged,
        Self::VerificationCompleted,
        Self::VerificationRfiRequired,
        Self::CustomerDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerCreated => "customer.created",
            Self::CustomerUpdated => "customer.updated",
            Self::CustomerStatusChanged => "customer.status_changed",
            Self::VerificationCompleted => "verification.completed",
            Self::VerificationRfiRequired => "verification.rfi_required",
            Self::CustomerDeleted => "customer.deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as created and stored: its identity, what it is about, and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub organization_id: OrganizationId,
    pub customer_id: CustomerId,
    pub event_type: EventType,
    pub occurred_at: Timestamp,
    /// The event's place among its customer's events: 1, 2, 3, … in the order of the
    /// changes' commits (`X-Webhook-Sequence`). Numbered by the change that emits it.
    pub sequence: u64,
    /// The webhook body: compact JSON, rendered once.
    pub body: String,
}

#[derive(Serialize)]
struct Envelope<'a, P> {
    #[serde(rename = "type")]
    event_type: &'static str,
    payload: P,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    event_id: &'a EventId,
    occurred_at: Timestamp,
    organization_id: &'a OrganizationId,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedPayload<'a> {
    customer_id: &'a CustomerId,
    customer_type: &'static str,
    status: CustomerStatus,
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    created_at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdatedPayload<'a> {
    customer_id: &'a CustomerId,
    customer_type: &'static str,
    status: CustomerStatus,
    email: &'a str,
    changed_fields: &'a [&'static str],
    updated_at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusChangedPayload<'a> {
    customer_id: &'a CustomerId,
    previous_status: CustomerStatus,
    new_status: CustomerStatus,
    customer_type: &'static str,
    email: &'a str,
    updated_at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompletedPayload<'a> {
    customer_id: &'a CustomerId,
    previous_status: CustomerStatus,
    new_status: CustomerStatus,
    customer_type: &'static str,
    email: &'a str,
    completed_at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RfiPayload<'a> {
    customer_id: &'a CustomerId,
    previous_status: CustomerStatus,
    new_status: CustomerStatus,
    customer_type: &'static str,
    email: &'a str,
    reason: &'a str,
    updated_at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeletedPayload<'a> {
    customer_id: &'a CustomerId,
    customer_type: &'static str,
    deleted_at: Timestamp,
}

/// The type of the event `POST /v1/webhook/test` sends. It is not one of [`EventType`]
/// and is never stored: a receiver sees a well-formed, signed event of a type it does not
/// know, which it should accept (and the toolkit types as unknown).
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// A test event: a fresh id and the body, in the envelope of every event.
#[derive(Debug, Clone)]
pub struct TestEvent {
    pub id: EventId,
    pub body: String,
}

#[derive(Serialize)]
struct TestPayload {
    message: &'static str,
}

impl TestEvent {
    pub fn new(organization: &OrganizationId, now: Timestamp) -> Result<Self, DomainError> {
        let id = EventId::generate();
        let envelope = Envelope {
            event_type: TEST_EVENT_TYPE,
            payload: TestPayload {
                message: "A test event from verihook: your endpoint is reachable.",
            },
            metadata: Metadata {
                event_id: &id,
                occurred_at: now,
                organization_id: organization,
            },
        };
        let body = serde_json::to_string(&envelope)?;
        Ok(Self { id, body })
    }
}

impl Event {
    fn render<P: Serialize>(
        event_type: EventType,
        customer: &Customer,
        now: Timestamp,
        payload: P,
    ) -> Result<Event, DomainError> {
        let id = EventId::generate();
        let envelope = Envelope {
            event_type: event_type.as_str(),
            payload,
            metadata: Metadata {
                event_id: &id,
                occurred_at: now,
                organization_id: &customer.organization_id,
            },
        };
        let body = serde_json::to_string(&envelope)?;
        Ok(Event {
            id,
            organization_id: customer.organization_id.clone(),
            customer_id: customer.id.clone(),
            event_type,
            occurred_at: now,
            sequence: 0,
            body,
        })
    }

    pub fn customer_created(c: &Customer, now: Timestamp) -> Result<Event, DomainError> {
        let payload = CreatedPayload {
            customer_id: &c.id,
            customer_type: c.customer_type.as_str(),
            status: c.status,
            email: c.email.as_str(),
            first_name: c.first_name.as_str(),
            last_name: c.last_name.as_str(),
            created_at: c.created_at,
        };
        Self::render(EventType::CustomerCreated, c, now, payload)
    }

    /// `changed` names the fields the update changed, in camelCase.
    pub fn customer_updated(
        c: &Customer,
        changed: &[&'static str],
        now: Timestamp,
    ) -> Result<Event, DomainError> {
        let payload = UpdatedPayload {
            customer_id: &c.id,
            customer_type: c.customer_type.as_str(),
            status: c.status,
            email: c.email.as_str(),
            changed_fields: changed,
            updated_at: now,
        };
        Self::render(EventType::CustomerUpdated, c, now, payload)
    }

    /// `customer.deleted`, the customer's last event: its personal data is erased. It
    /// carries none itself, and is numbered after every other event of the customer.
    pub fn customer_deleted(c: &Customer, now: Timestamp) -> Result<Event, DomainError> {
        let payload = DeletedPayload {
            customer_id: &c.id,
            customer_type: c.customer_type.as_str(),
            deleted_at: now,
        };
        let mut event = Self::render(EventType::CustomerDeleted, c, now, payload)?;
        event.sequence = c.last_sequence + 1;
        Ok(event)
    }

    /// The events of a change from `previous` to `next.status`, in the order they are sent.
    pub fn for_status_change(
        previous: CustomerStatus,
        next: &Customer,
        now: Timestamp,
    ) -> Result<Vec<Event>, DomainError> {
        let (customer_id, new_status, email) = (&next.id, next.status, next.email.as_str());
        let customer_type = next.customer_type.as_str();
        let changed = StatusChangedPayload {
            customer_id,
            previous_status: previous,
            new_status,
            customer_type,
            email,
            updated_at: now,
        };
        let mut events = vec![Self::render(
            EventType::CustomerStatusChanged,
            next,
            now,
            changed,
        )?];
        if new_status.completes_verification() {
            let completed = CompletedPayload {
                customer_id,
                previous_status: previous,
                new_status,
                customer_type,
                email,
                completed_at: now,
            };
            events.push(Self::render(
                EventType::VerificationCompleted,
                next,
                now,
                completed,
            )?);
        }
        if new_status == CustomerStatus::NeedsAdditionalInformation {
            let rfi = RfiPayload {
                customer_id,
                previous_status: previous,
                new_status,
                customer_type,
                email,
                reason: next.status_reason.as_deref().unwrap_or(DEFAULT_RFI_REASON),
                updated_at: now,
            };
            events.push(Self::render(
                EventType::VerificationRfiRequired,
                next,
                now,
                rfi,
            )?);
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("customer.archived"), None);
    }
}
