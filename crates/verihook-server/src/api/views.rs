//! The JSON the API answers with (camelCase). Event bodies are embedded as the stored
//! bytes, never re-serialized.

use super::schemas;
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use verihook_core::customer::{format_date, Text};
use verihook_core::{Address, Customer, EndpointId, ErrorClass, Timestamp};
use verihook_store::{AttemptRecord, ErasureRecord, EventRecord, EventSummary, Page};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerView<'a> {
    id: &'a str,
    organization_id: &'a str,
    #[serde(rename = "type")]
    #[schema(schema_with = schemas::customer_type)]
    customer_type: &'static str,
    #[schema(schema_with = schemas::customer_status)]
    status: &'static str,
    status_reason: Option<&'a str>,
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    date_of_birth: Option<String>,
    address: Option<AddressView<'a>>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AddressView<'a> {
    line1: Option<&'a str>,
    line2: Option<&'a str>,
    city: Option<&'a str>,
    state: Option<&'a str>,
    postal_code: Option<&'a str>,
    country: Option<&'a str>,
}

fn text(t: &Option<Text>) -> Option<&str> {
    t.as_ref().map(Text::as_str)
}

impl<'a> AddressView<'a> {
    fn of(a: &'a Address) -> Option<Self> {
        (!a.is_empty()).then(|| Self {
            line1: text(&a.line1),
            line2: text(&a.line2),
            city: text(&a.city),
            state: text(&a.state),
            postal_code: text(&a.postal_code),
            country: a.country.as_ref().map(|c| c.as_str()),
        })
    }
}

impl<'a> CustomerView<'a> {
    pub fn of(c: &'a Customer) -> Self {
        Self {
            id: c.id.as_str(),
            organization_id: c.organization_id.as_str(),
            customer_type: c.customer_type.as_str(),
            status: c.status.as_str(),
            status_reason: c.status_reason.as_deref(),
            email: c.email.as_str(),
            first_name: c.first_name.as_str(),
            last_name: c.last_name.as_str(),
            date_of_birth: c.date_of_birth.map(format_date),
            address: AddressView::of(&c.address),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// The stored body as a JSON value, byte for byte.
fn raw(body: &str) -> Box<RawValue> {
    // Stored bodies were rendered by serde_json; should one ever not parse, show it as a
    // string rather than fail the whole listing.
    RawValue::from_string(body.to_owned()).unwrap_or_else(|error| {
        tracing::error!(%error, "a stored event body is not JSON; shown as a string");
        serde_json::value::to_raw_value(body).unwrap_or_default()
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventListItem<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    #[schema(schema_with = schemas::event_type)]
    event_type: &'static str,
    organization_id: &'a str,
    customer_id: &'a str,
    #[schema(value_type = String, format = DateTime)]
    occurred_at: Timestamp,
    /// The event's place among its customer's events (1, 2, 3, … in the order of the
    /// changes' commits), as sent in `X-Webhook-Sequence`.
    sequence: u64,
    /// `pending`, `delivered` or `failed`.
    #[schema(schema_with = schemas::delivery_status)]
    delivery_status: &'static str,
    /// The webhook body, exactly as sent.
    #[schema(value_type = Object)]
    event: Box<RawValue>,
}

impl<'a> EventListItem<'a> {
    pub fn of(s: &'a EventSummary) -> Self {
        Self {
            id: s.event.id.as_str(),
            event_type: s.event.event_type.as_str(),
            organization_id: s.event.organization_id.as_str(),
            customer_id: s.event.customer_id.as_str(),
            occurred_at: s.event.occurred_at,
            sequence: s.event.sequence,
            delivery_status: s.delivery_status.as_str(),
            event: raw(&s.event.body),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView<'a> {
    /// The webhook body, exactly as sent.
    #[schema(value_type = Object)]
    event: Box<RawValue>,
    /// As sent in `X-Webhook-Sequence`: the event's place among its customer's events.
    sequence: u64,
    /// The aggregate over its endpoints: `failed` if any failed, else `pending` if any is
    /// pending, else `delivered`.
    #[schema(schema_with = schemas::delivery_status)]
    delivery_status: &'static str,
    /// Where the event stands at each endpoint it was queued for.
    deliveries: Vec<DeliveryView<'a>>,
    /// Every attempt, at every endpoint, in the order they started: the newest 100.
    attempts: Vec<AttemptView<'a>>,
    /// Present (true) when older attempts were left out of `attempts`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    attempts_truncated: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryView<'a> {
    #[schema(value_type = String)]
    endpoint_id: &'a str,
    #[schema(schema_with = schemas::delivery_status)]
    status: &'static str,
    /// The attempts at this endpoint.
    attempts: Vec<AttemptView<'a>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AttemptView<'a> {
    /// Where it went (null for an attempt logged before endpoints existed, by an
    /// organization that has no endpoint since).
    endpoint_id: Option<&'a str>,
    attempt: u32,
    #[schema(value_type = String, format = DateTime)]
    started_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schemas::error_class)]
    error_class: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_body: Option<&'a str>,
}

impl<'a> AttemptView<'a> {
    fn of(a: &'a AttemptRecord) -> Self {
        Self {
            endpoint_id: a.endpoint_id.as_ref().map(EndpointId::as_str),
            attempt: a.attempt,
            started_at: a.started_at,
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            error: a.error.as_deref(),
            error_class: a.error_class.map(ErrorClass::as_str),
            response_body: a.response_body.as_deref(),
        }
    }
}

impl<'a> EventView<'a> {
    pub fn of(r: &'a EventRecord) -> Self {
        Self {
            event: raw(&r.event.body),
            sequence: r.event.sequence,
            delivery_status: r.delivery_status.as_str(),
            deliveries: r
                .deliveries
                .iter()
                .map(|d| DeliveryView {
                    endpoint_id: d.endpoint_id.as_str(),
                    status: d.status.as_str(),
                    attempts: r
                        .attempts
                        .iter()
                        .filter(|a| a.endpoint_id.as_ref() == Some(&d.endpoint_id))
                        .map(AttemptView::of)
                        .collect(),
                })
                .collect(),
            attempts: r.attempts.iter().map(AttemptView::of).collect(),
            attempts_truncated: r.attempts_truncated,
        }
    }
}

/// A page of a listing: `{"data":[…],"hasMore":…,"nextCursor":…}`. Pass `nextCursor` as
/// `after` to get the next page.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageView<T> {
    data: Vec<T>,
    has_more: bool,
    next_cursor: Option<String>,
}

impl<T> PageView<T> {
    pub fn of<'p, I>(
        page: &'p Page<I>,
        view: impl Fn(&'p I) -> T,
        cursor: impl Fn(&I) -> String,
    ) -> Self {
        Self {
            data: page.items.iter().map(view).collect(),
            has_more: page.has_more,
            next_cursor: page
                .has_more
                .then(|| page.items.last().map(cursor))
                .flatten(),
        }
    }
}

/// One erasure in the audit trail: no personal data.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureView<'a> {
    #[schema(value_type = String)]
    customer_id: &'a str,
    #[schema(value_type = String)]
    organization_id: &'a str,
    /// The id of the API key that asked (`key_…`), or `admin`.
    erased_by: &'a str,
    #[schema(value_type = String, format = DateTime)]
    erased_at: Timestamp,
}

impl<'a> ErasureView<'a> {
    pub fn of(e: &'a ErasureRecord) -> Self {
        Self {
            customer_id: e.customer_id.as_str(),
            organization_id: e.organization_id.as_str(),
            erased_by: &e.erased_by,
            erased_at: e.erased_at,
        }
    }
}

/// An endpoint's health (CONTRACT §9).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    /// `failing` from the first event that finally fails there until the next success.
    #[schema(example = "healthy", pattern = "^(healthy|failing)$")]
    state: &'static str,
    #[schema(value_type = Option<String>, format = DateTime)]
    failing_since: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    last_success_at: Option<Timestamp>,
    /// The last attempt that did not succeed.
    #[schema(value_type = Option<String>, format = DateTime)]
    last_failure_at: Option<Timestamp>,
    /// Events finally failed since `failingSince`.
    failed_events: u64,
}

impl HealthView {
    pub fn of(h: &verihook_core::EndpointHealth) -> Self {
        Self {
            state: if h.is_failing() { "failing" } else { "healthy" },
            failing_since: h.failing_since,
            last_success_at: h.last_success_at,
            last_failure_at: h.last_failure_at,
            failed_events: h.failed_events,
        }
    }
}
