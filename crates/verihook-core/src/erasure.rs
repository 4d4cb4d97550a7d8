//! The right to erasure (CONTRACT §11): a stored event body with the customer's personal
//! data replaced by `null`. Every other byte stays as it was rendered (key order, the
//! compact form), so that an erased body is still what the seed's receivers parse and
//! re-serialize, and a receiver sees only those fields change.

use crate::error::DomainError;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// The payload fields that hold personal data, in any event type that has them.
pub const PERSONAL_FIELDS: [&str; 6] = [
    "email",
    "firstName",
    "lastName",
    "dateOfBirth",
    "address",
    "reason",
];

/// `body` with every [`PERSONAL_FIELDS`] entry of its `payload` set to `null`. A body
/// erased already comes back unchanged.
pub fn erase_body(body: &str) -> Result<String, DomainError> {
    let unreadable = |e: serde_json::Error| DomainError::Render(format!("a stored body: {e}"));
    let mut envelope: Ordered = serde_json::from_str(body).map_err(unreadable)?;
    for (key, value) in &mut envelope.0 {
        if key == "payload" {
            let mut payload: Ordered = serde_json::from_str(value.get()).map_err(unreadable)?;
            for (field, value) in &mut payload.0 {
                if PERSONAL_FIELDS.contains(&field.as_str()) {
                    *value = null();
                }
            }
            *value = serde_json::value::to_raw_value(&payload)?;
        }
    }
    Ok(serde_json::to_string(&envelope)?)
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_default()
}

/// A JSON object's entries in their order, each value as its raw bytes.
struct Ordered(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(Entries)
    }
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_fields_become_null_and_nothing_else_moves() {
        let body = r#"{"type":"customer.created","payload":{"customerId":"cus_1","customerType":"INDIVIDUAL","status":"CREATED","email":"jane@example.com","firstName":"Jane","lastName":"Smith","createdAt":"2025-11-05T10:30:00Z"},"metadata":{"eventId":"evt_1","occurredAt":"2025-11-05T10:30:00Z","organizationId":"org_1"}}"#;
        let erased = erase_body(body).expect("erased");
        assert_eq!(
            erased,
            r#"{"type":"customer.created","payload":{"customerId":"cus_1","customerType":"INDIVIDUAL","status":"CREATED","email":null,"firstName":null,"lastName":null,"createdAt":"2025-11-05T10:30:00Z"},"metadata":{"eventId":"evt_1","occurredAt":"2025-11-05T10:30:00Z","organizationId":"org_1"}}"#
        );
        assert_eq!(erase_body(&erased).expect("again"), erased, "idempotent");
    }

    #[test]
    fn a_reason_and_escaped_text_elsewhere_are_handled() {
        let body = r#"{"type":"verification.rfi_required","payload":{"customerId":"cus_1","email":"a\"b@example.com","reason":"Proof of \u001f address","changedFields":["email"]},"metadata":{"eventId":"evt_\u00e9"}}"#;
        let erased = erase_body(body).expect("erased");
        assert_eq!(
            erased,
            r#"{"type":"verification.rfi_required","payload":{"customerId":"cus_1","email":null,"reason":null,"changedFields":["email"]},"metadata":{"eventId":"evt_\u00e9"}}"#
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_an_error() {
        assert!(erase_body("[1]").is_err());
        assert!(erase_body("{").is_err());
    }
}
