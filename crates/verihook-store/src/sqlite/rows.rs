//! Rows to domain values. Stored values were validated on the way in; a value that no
//! longer parses means the database was changed behind verihook's back: `Corrupt`.

use crate::{AttemptRecord, DeliveryStatus, EventSummary, StoreError};
use sqlx::sqlite::SqliteRow;
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

pub(crate) const EVENT_COLUMNS: &str =
    "id, organization_id, customer_id, event_type, occurred_at, body, delivery_status";

/// [`EVENT_COLUMNS`] of an `events e` joined with other tables.
pub(crate) const EVENT_COLUMNS_OF_E: &str = "e.id, e.organization_id, e.customer_id, \
    e.event_type, e.occurred_at, e.body, e.delivery_status";

fn text(row: &SqliteRow, column: &str) -> Result<Text, StoreError> {
    let value: String = row.try_get(column)?;
    Text::parse(&value).map_err(|_| StoreError::corrupt(column))
}

fn optional_text(row: &SqliteRow, column: &str) -> Result<Option<Text>, StoreError> {
    let value: Option<String> = row.try_get(column)?;
    value
        .map(|v| Text::parse(&v).map_err(|_| StoreError::corrupt(column)))
        .transpose()
}

pub(crate) fn organization(row: &SqliteRow) -> Result<Organization, StoreError> {
    let id: String = row.try_get("id")?;
    let mode: String = row.try_get("mode")?;
    Ok(Organization {
        id: OrganizationId::parse(&id).map_err(StoreError::corrupt)?,
        name: row.try_get("name")?,
        mode: Mode::parse(&mode).ok_or_else(|| StoreError::corrupt("organizations.mode"))?,
        created_at: Timestamp::from_unix_micros(row.try_get("created_at")?),
    })
}

pub(crate) fn customer(row: &SqliteRow) -> Result<Customer, StoreError> {
    let id: String = row.try_get("id")?;
    let organization_id: String = row.try_get("organization_id")?;
    let customer_type: String = row.try_get("customer_type")?;
    let status: String = row.try_get("status")?;
    let email: String = row.try_get("email")?;
    let date_of_birth: Option<String> = row.try_get("date_of_birth")?;
    let country: Option<String> = row.try_get("address_country")?;
    Ok(Customer {
        id: CustomerId::parse(&id).map_err(StoreError::corrupt)?,
        organization_id: OrganizationId::parse(&organization_id).map_err(StoreError::corrupt)?,
        customer_type: CustomerType::parse(&customer_type)
            .ok_or_else(|| StoreError::corrupt("customers.customer_type"))?,
        status: CustomerStatus::parse(&status).map_err(StoreError::corrupt)?,
        status_reason: row.try_get("status_reason")?,
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
        created_at: Timestamp::from_unix_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_unix_micros(row.try_get("updated_at")?),
    })
}

fn parse_date(s: &str) -> Result<Date, StoreError> {
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map_err(|_| StoreError::corrupt("customers.date_of_birth"))
}

pub(crate) fn event_summary(row: &SqliteRow) -> Result<EventSummary, StoreError> {
    let id: String = row.try_get("id")?;
    let organization_id: String = row.try_get("organization_id")?;
    let customer_id: String = row.try_get("customer_id")?;
    let event_type: String = row.try_get("event_type")?;
    let delivery_status: String = row.try_get("delivery_status")?;
    Ok(EventSummary {
        event: Event {
            id: EventId::parse(&id).map_err(StoreError::corrupt)?,
            organization_id: OrganizationId::parse(&organization_id)
                .map_err(StoreError::corrupt)?,
            customer_id: CustomerId::parse(&customer_id).map_err(StoreError::corrupt)?,
            event_type: EventType::parse(&event_type)
                .ok_or_else(|| StoreError::corrupt("events.event_type"))?,
            occurred_at: Timestamp::from_unix_micros(row.try_get("occurred_at")?),
            body: row.try_get("body")?,
        },
        delivery_status: DeliveryStatus::parse(&delivery_status)
            .ok_or_else(|| StoreError::corrupt("events.delivery_status"))?,
    })
}

pub(crate) fn attempt(row: &SqliteRow) -> Result<AttemptRecord, StoreError> {
    let attempt: i64 = row.try_get("attempt")?;
    let duration_ms: i64 = row.try_get("duration_ms")?;
    let status_code: Option<i64> = row.try_get("status_code")?;
    Ok(AttemptRecord {
        attempt: u32::try_from(attempt).map_err(StoreError::corrupt)?,
        started_at: Timestamp::from_unix_micros(row.try_get("started_at")?),
        duration_ms: u64::try_from(duration_ms).map_err(StoreError::corrupt)?,
        status_code: status_code
            .map(u16::try_from)
            .transpose()
            .map_err(StoreError::corrupt)?,
        error_class: row.try_get("error_class")?,
        error: row.try_get("error")?,
        response_body: row.try_get("response_body")?,
    })
}
