//! OpenAPI schemas of the domain's enumerations, generated from the domain's own lists of
//! values: a new event type, status or error class appears in the document (and in
//! schemathesis's checks) without anyone editing a pattern by hand.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{Array, Object};
use verihook_core::{
    CustomerStatus, CustomerType, DeliveryStatus, ErrorClass, EventType, SignatureScheme,
};

fn one_of(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

pub(super) fn event_type() -> Object {
    one_of(EventType::ALL.map(EventType::as_str))
}

pub(super) fn customer_status() -> Object {
    one_of(CustomerStatus::ALL.map(CustomerStatus::as_str))
}

pub(super) fn customer_type() -> Object {
    one_of(CustomerType::ALL.map(CustomerType::as_str))
}

pub(super) fn delivery_status() -> Object {
    one_of(DeliveryStatus::ALL.map(DeliveryStatus::as_str))
}

pub(super) fn error_class() -> Object {
    one_of(ErrorClass::ALL.map(ErrorClass::as_str))
}

pub(super) fn signature_scheme() -> Object {
    one_of(SignatureScheme::ALL.map(SignatureScheme::as_str))
}

/// A list of event types (an endpoint's filter).
pub(super) fn event_types() -> Array {
    ArrayBuilder::new().items(event_type()).build()
}
