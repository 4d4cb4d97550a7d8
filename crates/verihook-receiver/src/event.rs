//! Typed webhook events. Fields follow verihook's documented payloads; fields verihook may
//! add later are ignored, an unknown event type is [`Event::Unknown`], and an unknown status
//! value is [`Status::Other`], so receivers keep working as the API grows.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A customer's verification status.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Status {
    Created,
    UnderReview,
    NeedsAdditionalInformation,
    Active,
    Rejected,
    Deactivated,
    /// A status this version of the crate does not know.
    Other(String),
}

impl Status {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "CREATED",
            Self::UnderReview => "UNDER_REVIEW",
            Self::NeedsAdditionalInformation => "NEEDS_ADDITIONAL_INFORMATION",
            Self::Active => "ACTIVE",
            Self::Rejected => "REJECTED",
            Self::Deactivated => "DEACTIVATED",
            Self::Other(s) => s,
        }
    }

    fn from_name(s: String) -> Self {
        match s.as_str() {
            "CREATED" => Self::Created,
            "UNDER_REVIEW" => Self::UnderReview,
            "NEEDS_ADDITIONAL_INFORMATION" => Self::NeedsAdditionalInformation,
            "ACTIVE" => Self::Active,
            "REJECTED" => Self::Rejected,
            "DEACTIVATED" => Self::Deactivated,
            _ => Self::Other(s),
        }
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Status::from_name)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `metadata` of every event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Unique forever: the key for idempotent processing.
    pub event_id: String,
    pub occurred_at: String,
    pub organization_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerCreated {
    pub customer_id: String,
    pub customer_type: String,
    pub status: Status,
    /// `None` once the customer's personal data is erased (see [`CustomerDeleted`]).
    pub email: Option<String>,
    /// `None` once erased, as `email`.
    pub first_name: Option<String>,
    /// `None` once erased, as `email`.
    pub last_name: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerUpdated {
    pub customer_id: String,
    pub customer_type: String,
    pub status: Status,
    /// `None` once the customer's personal data is erased (see [`CustomerDeleted`]).
    pub email: Option<String>,
    /// The names of the fields the update changed, e.g. `["email", "address"]`.
    pub changed_fields: Vec<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChanged {
    pub customer_id: String,
    pub previous_status: Status,
    pub new_status: Status,
    pub customer_type: String,
    /// `None` once the customer's personal data is erased (see [`CustomerDeleted`]).
    pub email: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationCompleted {
    pub customer_id: String,
    pub previous_status: Status,
    /// ACTIVE, REJECTED or DEACTIVATED.
    pub new_status: Status,
    pub customer_type: String,
    /// `None` once the customer's personal data is erased (see [`CustomerDeleted`]).
    pub email: Option<String>,
    pub completed_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RfiRequired {
    pub customer_id: String,
    pub previous_status: Status,
    pub new_status: Status,
    pub customer_type: String,
    /// `None` once the customer's personal data is erased (see [`CustomerDeleted`]).
    pub email: Option<String>,
    /// What the customer must provide (`None` once erased, as `email`).
    pub reason: Option<String>,
    pub updated_at: String,
}

/// `customer.deleted`: the customer's personal data was erased (the right to erasure).
/// Every stored event of the customer now carries `null` in place of its email, names and
/// reason, and pending or redelivered events are sent that way. Erase your own copy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDeleted {
    pub customer_id: String,
    pub customer_type: String,
    pub deleted_at: String,
}

/// A verified webhook event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    CustomerCreated {
        payload: CustomerCreated,
        metadata: Metadata,
    },
    CustomerUpdated {
        payload: CustomerUpdated,
        metadata: Metadata,
    },
    CustomerStatusChanged {
        payload: StatusChanged,
        metadata: Metadata,
    },
    VerificationCompleted {
        payload: VerificationCompleted,
        metadata: Metadata,
    },
    VerificationRfiRequired {
        payload: RfiRequired,
        metadata: Metadata,
    },
    CustomerDeleted {
        payload: CustomerDeleted,
        metadata: Metadata,
    },
    /// A type this version of the crate does not know, kept whole.
    Unknown { event_type: String, raw: Value },
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    payload: Value,
    metadata: Value,
}

impl Event {
    /// Parses an event body (already verified).
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        let raw: Value = serde_json::from_slice(body)?;
        let envelope = Envelope::deserialize(&raw)?;
        let metadata = || Metadata::deserialize(&envelope.metadata);
        let payload = &envelope.payload;
        Ok(match envelope.event_type.as_str() {
            "customer.created" => Self::CustomerCreated {
                payload: CustomerCreated::deserialize(payload)?,
                metadata: metadata()?,
            },
            "customer.updated" => Self::CustomerUpdated {
                payload: CustomerUpdated::deserialize(payload)?,
                metadata: metadata()?,
            },
            "customer.status_changed" => Self::CustomerStatusChanged {
                payload: StatusChanged::deserialize(payload)?,
                metadata: metadata()?,
            },
            "verification.completed" => Self::VerificationCompleted {
                payload: VerificationCompleted::deserialize(payload)?,
                metadata: metadata()?,
            },
            "verification.rfi_required" => Self::VerificationRfiRequired {
                payload: RfiRequired::deserialize(payload)?,
                metadata: metadata()?,
            },
            "customer.deleted" => Self::CustomerDeleted {
                payload: CustomerDeleted::deserialize(payload)?,
                metadata: metadata()?,
            },
            _ => Self::Unknown {
                event_type: envelope.event_type,
                raw,
            },
        })
    }

    /// The event type, e.g. `customer.status_changed`.
    pub fn event_type(&self) -> &str {
        match self {
            Self::CustomerCreated { .. } => "customer.created",
            Self::CustomerUpdated { .. } => "customer.updated",
            Self::CustomerStatusChanged { .. } => "customer.status_changed",
            Self::VerificationCompleted { .. } => "verification.completed",
            Self::VerificationRfiRequired { .. } => "verification.rfi_required",
            Self::CustomerDeleted { .. } => "customer.deleted",
            Self::Unknown { event_type, .. } => event_type,
        }
    }

    /// The metadata of a known event type.
    pub fn metadata(&self) -> Option<&Metadata> {
        match self {
            Self::CustomerCreated { metadata, .. }
            | Self::CustomerUpdated { metadata, .. }
            | Self::CustomerStatusChanged { metadata, .. }
            | Self::VerificationCompleted { metadata, .. }
            | Self::VerificationRfiRequired { metadata, .. }
            | Self::CustomerDeleted { metadata, .. } => Some(metadata),
            Self::Unknown { .. } => None,
        }
    }

    /// `metadata.eventId`, of known and unknown types alike.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Self::Unknown { raw, .. } => raw["metadata"]["eventId"].as_str(),
            known => known.metadata().map(|m| m.event_id.as_str()),
        }
    }

    /// The customer the event is about, when the payload names one.
    pub fn customer_id(&self) -> Option<&str> {
        match self {
            Self::CustomerCreated { payload, .. } => Some(&payload.customer_id),
            Self::CustomerUpdated { payload, .. } => Some(&payload.customer_id),
            Self::CustomerStatusChanged { payload, .. } => Some(&payload.customer_id),
            Self::VerificationCompleted { payload, .. } => Some(&payload.customer_id),
            Self::VerificationRfiRequired { payload, .. } => Some(&payload.customer_id),
            Self::CustomerDeleted { payload, .. } => Some(&payload.customer_id),
            Self::Unknown { raw, .. } => raw["payload"]["customerId"].as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../verihook-core/tests/fixtures/seed/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(path).expect("fixture")
    }

    #[test]
    fn the_product_document_examples_parse_into_their_types() {
        let created = Event::from_slice(&seed("customer-created")).expect("parses");
        assert!(
            matches!(&created, Event::CustomerCreated { payload, .. } if payload.first_name.as_deref() == Some("Jane"))
        );
        let changed =
            Event::from_slice(&seed("customer-status_changed-under-review")).expect("parses");
        assert!(
            matches!(&changed, Event::CustomerStatusChanged { payload, .. } if payload.new_status == Status::UnderReview)
        );
        let done = Event::from_slice(&seed("verification-completed-active")).expect("parses");
        assert!(
            matches!(&done, Event::VerificationCompleted { payload, .. } if payload.new_status == Status::Active)
        );
        let rfi = Event::from_slice(&seed("verification-rfi_required")).expect("parses");
        assert!(
            matches!(&rfi, Event::VerificationRfiRequired { payload, .. } if payload.reason.as_deref().is_some_and(|r| r.contains("document")))
        );
        assert_eq!(rfi.event_id(), Some("evt_rfi_101"));
        assert_eq!(rfi.customer_id(), Some("cus_1a2b3c4d5e6f"));
    }

    #[test]
    fn unknown_types_and_statuses_are_kept() {
        let body = br#"{"type":"customer.archived","payload":{"customerId":"cus_9"},"metadata":{"eventId":"evt_9","occurredAt":"x","organizationId":"org_1"}}"#;
        let event = Event::from_slice(body).expect("parses");
        assert_eq!(event.event_type(), "customer.archived");
        assert_eq!(event.event_id(), Some("evt_9"));
        assert_eq!(event.customer_id(), Some("cus_9"));
        let body = br#"{"type":"customer.status_changed","payload":{"customerId":"c","previousStatus":"ACTIVE","newStatus":"SUSPENDED","customerType":"INDIVIDUAL","email":"e","updatedAt":"t","extra":1},"metadata":{"eventId":"e","occurredAt":"t","organizationId":"o"}}"#;
        match Event::from_slice(body).expect("parses") {
            Event::CustomerStatusChanged { payload, .. } => {
                assert_eq!(payload.new_status, Status::Other("SUSPENDED".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn erased_bodies_and_the_deletion_parse() {
        let body = br#"{"type":"customer.created","payload":{"customerId":"cus_1","customerType":"INDIVIDUAL","status":"CREATED","email":null,"firstName":null,"lastName":null,"createdAt":"2025-11-05T10:30:00Z"},"metadata":{"eventId":"evt_1","occurredAt":"2025-11-05T10:30:00Z","organizationId":"org_1"}}"#;
        match Event::from_slice(body).expect("parses") {
            Event::CustomerCreated { payload, .. } => {
                assert_eq!(payload.email, None);
                assert_eq!(payload.first_name, None);
            }
            other => panic!("{other:?}"),
        }
        let body = br#"{"type":"customer.deleted","payload":{"customerId":"cus_1","customerType":"INDIVIDUAL","deletedAt":"2025-11-06T10:30:00Z"},"metadata":{"eventId":"evt_2","occurredAt":"2025-11-06T10:30:00Z","organizationId":"org_1"}}"#;
        let deleted = Event::from_slice(body).expect("parses");
        assert_eq!(deleted.event_type(), "customer.deleted");
        assert_eq!(deleted.customer_id(), Some("cus_1"));
    }

    #[test]
    fn a_known_type_with_a_broken_payload_is_an_error() {
        let body = br#"{"type":"customer.created","payload":{},"metadata":{}}"#;
        assert!(Event::from_slice(body).is_err());
    }
}
