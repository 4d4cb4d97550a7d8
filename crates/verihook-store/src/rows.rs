//! Rows to domain values. Stored values were validated on the way in; a value that no
//! longer parses means the database was changed behind verihook's back: `Corrupt`.

use crate::{AttemptRecord, DeliveryStatus, EventSummary, StoreError};
use sqlx::Row;
use time::{macros::format_description, Date};
use verihook_core::country::CountryCode;
use verihook_core::customer::{Email, Text};
use verihook_core::{
    Address, Customer, CustomerId, CustomerStatus, CustomerType, Event, EventId, EventType, Mode,
    Organization, OrganizationId, Timestamp,
};

pub(crate) const CUSTOMER_COLUMNS: &str = "id, organization_id, customer_type, status, \
    status_reason, email, first_name, last_name, date_of_birth, address_line1, address_line2, \
    address_city, address_state, address_postal_code, address_country, created_at, updated_at";

/// The columns of an event, read `FROM events` (unaliased); the delivery status follows
/// from where the event is (see [`crate::sql::DELIVERY_STATUS`]).
pub(crate) const EVENT_COLUMNS: &str = concat!(
    "id, organization_id, customer_id, event_type, occurred_at, body, ",
    "CASE WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq) THEN 'pending' ",
    "WHEN EXISTS (SELECT 1 FROM failed_events f WHERE f.event_seq = events.seq) THEN 'failed' ",
    "ELSE 'delivered' END AS delivery_status"
);

/// The column reads the mappings need, on each backend's concrete row type.
pub(crate) trait Get {
    fn string(&self, column: &str) -> Result<String, StoreError>;
    fn opt_string(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
}

macro_rules! impl_get {
    ($row:ty, $get:ident) => {
        impl Get for $row {
            fn string(&self, column: &str) -> Result<String, StoreError> {
                Ok(self.$get(column)?)
            }
            fn opt_string(&self, column: &str) -> Result<Option<String>, StoreError> {
                Ok(self.$get(column)?)
            }
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                Ok(self.$get(column)?)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                Ok(self.$get(column)?)
            }
        }
    };
}

impl_get!(sqlx::sqlite::SqliteRow, try_get);
impl_get!(sqlx::postgres::PgRow, try_get);
impl_get!(rusqlite::Row<'_>, get);

fn text(row: &impl Get, column: &str) -> Result<Text, StoreError> {
    let value = row.string(column)?;
    Text::parse(&value).map_err(|_| StoreError::corrupt(column))
}

fn optional_text(row: &impl Get, column: &str) -> Result<Option<Text>, StoreError> {
    let value = row.opt_string(column)?;
    value
        .map(|v| Text::parse(&v).map_err(|_| StoreError::corrupt(column)))
        .transpose()
}

pub(crate) fn organization(row: &impl Get) -> Result<Organization, StoreError> {
    let id = row.string("id")?;
    let mode = row.string("mode")?;
    Ok(Organization {
        id: OrganizationId::parse(&id).map_err(StoreError::corrupt)?,
        name: row.string("name")?,
        mode: Mode::parse(&mode).ok_or_else(|| StoreError::corrupt("organizations.mode"))?,
        created_at: Timestamp::from_unix_micros(row.int("created_at")?),
    })
}

pub(crate) fn customer(row: &impl Get) -> Result<Customer, StoreError> {
    let id = row.string("id")?;
    let organization_id = row.string("organization_id")?;
    let customer_type = row.string("customer_type")?;
    let status = row.string("status")?;
    let email = row.string("email")?;
    let date_of_birth = row.opt_string("date_of_birth")?;
    let country = row.opt_string("address_country")?;
    Ok(Customer {
        id: CustomerId::parse(&id).map_err(StoreError::corrupt)?,
        organization_id: OrganizationId::parse(&organization_id).map_err(StoreError::corrupt)?,
        customer_type: CustomerType::parse(&customer_type)
            .ok_or_else(|| StoreError::corrupt("customers.customer_type"))?,
        status: CustomerStatus::parse(&status).map_err(StoreError::corrupt)?,
        status_reason: row.opt_string("status_reason")?,
        email: Email::parse(&email).map_err(StoreError::corrupt)?,
        first_name: text(row, "first_name")?,
        last_name: text(row, "last_name")?,
        date_of_birth: date_of_birth.as_deref().map(parse_date).transpose()?,
        address: Address {
            line1: optional_text(row, "address_line1")?,
            line2: optional_text(row, "address_line2")?,
            city: optional_text(row, "address_city")?,
            state: optional_text(row, "address_state")?,
            postal_code: optional_text(row, "address_postal_code")?,
            country: country
                .map(|c| CountryCode::parse(&c).ok_or_else(|| StoreError::corrupt("country")))
                .transpose()?,
        },
        created_at: Timestamp::from_unix_micros(row.int("created_at")?),
        updated_at: Timestamp::from_unix_micros(row.int("updated_at")?),
    })
}

fn parse_date(s: &str) -> Result<Date, StoreError> {
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map_err(|_| StoreError::corrupt("customers.date_of_birth"))
}

pub(crate) fn event_summary(row: &impl Get) -> Result<EventSummary, StoreError> {
    let id = row.string("id")?;
    let organization_id = row.string("organization_id")?;
    let customer_id = row.string("customer_id")?;
    let event_type = row.string("event_type")?;
    let delivery_status = row.string("delivery_status")?;
    Ok(EventSummary {
        event: Event {
            id: EventId::parse(&id).map_err(StoreError::corrupt)?,
            organization_id: OrganizationId::parse(&organization_id)
                .map_err(StoreError::corrupt)?,
            customer_id: CustomerId::parse(&customer_id).map_err(StoreError::corrupt)?,
            event_type: EventType::parse(&event_type)
                .ok_or_else(|| StoreError::corrupt("events.event_type"))?,
            occurred_at: Timestamp::from_unix_micros(row.int("occurred_at")?),
            body: row.string("body")?,
        },
        delivery_status: DeliveryStatus::parse(&delivery_status)
            .ok_or_else(|| StoreError::corrupt("events.delivery_status"))?,
    })
}

pub(crate) fn attempt(row: &impl Get) -> Result<AttemptRecord, StoreError> {
    let attempt = row.int("attempt")?;
    let duration_ms = row.int("duration_ms")?;
    let status_code = row.opt_int("status_code")?;
    Ok(AttemptRecord {
        attempt: u32::try_from(attempt).map_err(StoreError::corrupt)?,
        started_at: Timestamp::from_unix_micros(row.int("started_at")?),
        duration_ms: u64::try_from(duration_ms).map_err(StoreError::corrupt)?,
        status_code: status_code
            .map(u16::try_from)
            .transpose()
            .map_err(StoreError::corrupt)?,
        error_class: row.opt_string("error_class")?,
        error: row.opt_string("error")?,
        response_body: row.opt_string("response_body")?,
    })
}

/// What a claim needs of each claimed event: its `seq`, the event, its URL and its secret
/// (a row of [`crate::sql::CLAIMED_DETAILS`]).
pub(crate) type ClaimDetail = (i64, verihook_core::Event, Option<String>, Option<String>);

pub(crate) fn claim_detail(row: &impl Get) -> Result<ClaimDetail, StoreError> {
    let summary = event_summary(row)?;
    Ok((
        row.int("seq")?,
        summary.event,
        row.opt_string("webhook_url")?,
        row.opt_string("webhook_secret")?,
    ))
}

/// Claimed rows `(event_seq, attempt, budget_used)` joined with their details, in claim
/// order.
pub(crate) fn claimed_deliveries(
    claimed: Vec<(i64, i64, i64)>,
    details: Vec<ClaimDetail>,
    lease_token: &str,
) -> Result<Vec<crate::ClaimedDelivery>, StoreError> {
    use verihook_core::WebhookSecret;
    let mut by_seq: std::collections::HashMap<i64, ClaimDetail> =
        details.into_iter().map(|d| (d.0, d)).collect();
    claimed
        .into_iter()
        .map(|(seq, attempt, budget_used)| {
            let (_, event, url, secret) = by_seq
                .remove(&seq)
                .ok_or_else(|| StoreError::corrupt("delivery without its event"))?;
            Ok(crate::ClaimedDelivery {
                event,
                url: url.ok_or_else(|| StoreError::corrupt("claimed without a URL"))?,
                secret: WebhookSecret::from_stored(
                    secret.ok_or_else(|| StoreError::corrupt("webhook URL without a secret"))?,
                ),
                attempt: u32::try_from(attempt).map_err(StoreError::corrupt)?,
                budget_used: u32::try_from(budget_used).map_err(StoreError::corrupt)?,
                lease: crate::Lease {
                    delivery: seq,
                    token: lease_token.to_owned(),
                },
            })
        })
        .collect()
}
