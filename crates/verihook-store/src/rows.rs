//! Values in and out of the database, the same on every backend: [`Value`] for parameters
//! and cells, [`Row`] for a result row, and the mappings between rows and domain values.
//!
//! Stored values were validated on the way in; a value that no longer parses means the
//! database was changed behind verihook's back: `Corrupt`.

use crate::{AttemptRecord, AttemptSample, EventSummary, StoreError};
use std::borrow::Cow;
use std::sync::Arc;
use time::{macros::format_description, Date};
use verihook_core::country::CountryCode;
use verihook_core::customer::{format_date, Email, Text};
use verihook_core::{
    Address, Customer, CustomerId, CustomerStatus, CustomerType, DeliveryStatus, Endpoint,
    EndpointHealth, EndpointId, ErrorClass, Event, EventId, EventType, EventTypes, Mode,
    Organization, OrganizationId, RetryPolicy, SignatureScheme, Timestamp, WebhookSecret,
};

/// A parameter or a cell. Parameters borrow where they can; cells are owned. Integers and
/// texts carry their type even when NULL, which PostgreSQL needs to bind them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
    Bytes(Cow<'a, [u8]>),
}

impl<'a> Value<'a> {
    /// The value of an `Int` (`None` for another kind).
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(v) => *v,
            _ => None,
        }
    }

    /// The value of a `Text` (`None` for another kind).
    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => t.as_deref(),
            _ => None,
        }
    }

    /// The value of `Bytes` (`None` for another kind).
    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn int(v: i64) -> Self {
        Self::Int(Some(v))
    }

    pub(crate) fn text(s: &'a str) -> Self {
        Self::Text(Some(Cow::Borrowed(s)))
    }

    pub(crate) fn opt_text(s: Option<&'a str>) -> Self {
        Self::Text(s.map(Cow::Borrowed))
    }

    pub(crate) fn owned_text(s: Option<String>) -> Self {
        Self::Text(s.map(Cow::Owned))
    }

    pub(crate) fn time(t: Timestamp) -> Self {
        Self::int(t.unix_micros())
    }

    /// The same value, owning its data (to cross a thread or a `'static` bound).
    pub(crate) fn into_owned(self) -> Value<'static> {
        match self {
            Self::Int(v) => Value::Int(v),
            Self::Text(t) => Value::Text(t.map(|t| Cow::Owned(t.into_owned()))),
            Self::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
        }
    }
}

/// Owned parameters, as reads take them.
pub(crate) fn owned(params: Vec<Value<'_>>) -> Vec<Value<'static>> {
    params.into_iter().map(Value::into_owned).collect()
}

/// One result row: its cells by column name.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    columns: Arc<[String]>,
    cells: Vec<Value<'static>>,
}

impl Row {
    pub(crate) fn new(columns: Arc<[String]>, cells: Vec<Value<'static>>) -> Self {
        Self { columns, cells }
    }

    fn index(&self, column: &str) -> Result<usize, StoreError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .filter(|&i| i < self.cells.len())
            .ok_or_else(|| StoreError::corrupt(format!("no column {column}")))
    }

    fn cell(&self, column: &str) -> Result<&Value<'static>, StoreError> {
        Ok(&self.cells[self.index(column)?])
    }

    /// Text borrowed from the row: what is parsed into a domain type need not be copied
    /// first.
    pub(crate) fn opt_str(&self, column: &str) -> Result<Option<&str>, StoreError> {
        match self.cell(column)? {
            Value::Text(t) => Ok(t.as_deref()),
            Value::Int(None) => Ok(None),
            _ => Err(StoreError::corrupt(format!("{column} is not text"))),
        }
    }

    pub(crate) fn str(&self, column: &str) -> Result<&str, StoreError> {
        self.opt_str(column)?
            .ok_or_else(|| StoreError::corrupt(format!("{column} is NULL")))
    }

    /// The text of `column`, moved out of the row (which reads NULL there after).
    pub(crate) fn take_string(&mut self, column: &str) -> Result<String, StoreError> {
        let i = self.index(column)?;
        match std::mem::replace(&mut self.cells[i], Value::Int(None)) {
            Value::Text(Some(t)) => Ok(t.into_owned()),
            _ => Err(StoreError::corrupt(format!("{column} is not text"))),
        }
    }

    pub(crate) fn opt_string(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.opt_str(column)?.map(str::to_owned))
    }

    pub(crate) fn string(&self, column: &str) -> Result<String, StoreError> {
        self.str(column).map(str::to_owned)
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.cell(column)? {
            Value::Int(v) => Ok(*v),
            Value::Text(None) => Ok(None),
            _ => Err(StoreError::corrupt(format!("{column} is not an integer"))),
        }
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.opt_int(column)?
            .ok_or_else(|| StoreError::corrupt(format!("{column} is NULL")))
    }

    pub(crate) fn digest(&self, column: &str) -> Result<[u8; 32], StoreError> {
        match self.cell(column)? {
            Value::Bytes(b) => b[..]
                .try_into()
                .map_err(|_| StoreError::corrupt(format!("{column} is not 32 bytes"))),
            _ => Err(StoreError::corrupt(format!("{column} is not bytes"))),
        }
    }

    pub(crate) fn time(&self, column: &str) -> Result<Timestamp, StoreError> {
        Ok(Timestamp::from_unix_micros(self.int(column)?))
    }

    /// A count or sequence number: never negative.
    pub(crate) fn count(&self, column: &str) -> Result<u64, StoreError> {
        u64::try_from(self.int(column)?)
            .map_err(|_| StoreError::corrupt(format!("{column} is negative")))
    }
}

/// A sequence number as the databases store it (a signed 64-bit integer, which no
/// customer's count of events comes near).
pub(crate) fn sequence(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) const CUSTOMER_COLUMNS: &str = "id, organization_id, customer_type, status, \
    status_reason, email, first_name, last_name, date_of_birth, address_line1, address_line2, \
    address_city, address_state, address_postal_code, address_country, created_at, updated_at, \
    last_sequence";

/// The columns of an event, read `FROM events` (unaliased), with its delivery status, which
/// follows from where the event is: in the outbox (pending), among the failed, or neither.
pub(crate) const EVENT_COLUMNS: &str = concat!(
    "seq, id, organization_id, customer_id, event_type, occurred_at, sequence, body, ",
    "CASE WHEN EXISTS (SELECT 1 FROM failed_events f WHERE f.event_seq = events.seq) THEN 'failed' ",
    "WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq) THEN 'pending' ",
    "ELSE 'delivered' END AS delivery_status"
);

/// A customer as the parameters of [`crate::sql::UPSERT_CUSTOMER`], in the order of
/// [`CUSTOMER_COLUMNS`]: the one place the column list is bound.
pub(crate) fn customer_params(c: &Customer) -> Vec<Value<'_>> {
    fn text(t: &Option<Text>) -> Value<'_> {
        Value::opt_text(t.as_ref().map(Text::as_str))
    }
    let a = &c.address;
    vec![
        Value::text(c.id.as_str()),
        Value::text(c.organization_id.as_str()),
        Value::text(c.customer_type.as_str()),
        Value::text(c.status.as_str()),
        Value::opt_text(c.status_reason.as_deref()),
        Value::text(c.email.as_str()),
        Value::text(c.first_name.as_str()),
        Value::text(c.last_name.as_str()),
        Value::owned_text(c.date_of_birth.map(format_date)),
        text(&a.line1),
        text(&a.line2),
        text(&a.city),
        text(&a.state),
        text(&a.postal_code),
        Value::opt_text(a.country.as_ref().map(CountryCode::as_str)),
        Value::time(c.created_at),
        Value::time(c.updated_at),
        Value::int(sequence(c.last_sequence)),
    ]
}

fn text(row: &Row, column: &str) -> Result<Text, StoreError> {
    Text::parse(row.str(column)?).map_err(|_| StoreError::corrupt(column))
}

fn optional_text(row: &Row, column: &str) -> Result<Option<Text>, StoreError> {
    row.opt_str(column)?
        .map(|v| Text::parse(v).map_err(|_| StoreError::corrupt(column)))
        .transpose()
}

pub(crate) fn organization(row: &Row) -> Result<Organization, StoreError> {
    let mode = row.str("mode")?;
    Ok(Organization {
        id: OrganizationId::parse(row.str("id")?).map_err(StoreError::corrupt)?,
        name: row.string("name")?,
        mode: Mode::parse(mode).ok_or_else(|| StoreError::corrupt("organizations.mode"))?,
        created_at: row.time("created_at")?,
    })
}

/// The settable fields of an endpoint, then its key, as [`crate::sql::UPDATE_ENDPOINT`]
/// binds them.
pub(crate) fn endpoint_update_params(e: &Endpoint) -> Vec<Value<'_>> {
    vec![
        Value::text(e.url.as_str()),
        Value::text(&e.description),
        Value::owned_text(Some(e.event_types.to_stored())),
        Value::text(e.scheme.as_str()),
        Value::owned_text(e.retry_schedule.as_ref().map(RetryPolicy::to_string)),
        Value::int(i64::from(e.auto_recover)),
        Value::int(i64::from(e.disabled)),
        Value::text(e.id.as_str()),
        Value::text(e.organization_id.as_str()),
    ]
}

/// An endpoint as the parameters of [`crate::sql::INSERT_ENDPOINT`].
pub(crate) fn endpoint_params(e: &Endpoint) -> Vec<Value<'static>> {
    vec![
        Value::text(e.id.as_str()).into_owned(),
        Value::text(e.organization_id.as_str()).into_owned(),
        Value::text(e.url.as_str()).into_owned(),
        Value::text(&e.description).into_owned(),
        Value::owned_text(Some(e.event_types.to_stored())),
        Value::text(e.secret.expose()).into_owned(),
        Value::text(e.scheme.as_str()),
        Value::owned_text(e.retry_schedule.as_ref().map(RetryPolicy::to_string)),
        Value::int(i64::from(e.auto_recover)),
        Value::int(i64::from(e.disabled)),
        Value::int(i64::from(e.is_default)),
        Value::time(e.created_at),
    ]
}

pub(crate) fn endpoint(row: &Row) -> Result<Endpoint, StoreError> {
    let scheme = row.str("signature_scheme")?;
    Ok(Endpoint {
        id: EndpointId::parse(row.str("id")?).map_err(StoreError::corrupt)?,
        organization_id: OrganizationId::parse(row.str("organization_id")?)
            .map_err(StoreError::corrupt)?,
        url: crate::database::stored_url(row.str("url")?)?,
        description: row.string("description")?,
        event_types: EventTypes::from_stored(row.str("event_types")?)
            .map_err(|t| StoreError::corrupt(format!("endpoints.event_types: {t}")))?,
        secret: WebhookSecret::from_stored(row.string("secret")?),
        scheme: scheme_of(scheme)?,
        retry_schedule: retry_schedule(row)?,
        auto_recover: row.int("auto_recover")? != 0,
        disabled: row.int("disabled")? != 0,
        is_default: row.int("is_default")? != 0,
        created_at: row.time("created_at")?,
        health: health(row)?,
    })
}

/// An endpoint's health columns (see migration 0009).
pub(crate) fn health(row: &Row) -> Result<EndpointHealth, StoreError> {
    let time = |column| Ok::<_, StoreError>(row.opt_int(column)?.map(Timestamp::from_unix_micros));
    Ok(EndpointHealth {
        failing_since: time("failing_since")?,
        last_success_at: time("last_success_at")?,
        last_failure_at: time("last_failure_at")?,
        failed_events: u64::try_from(row.opt_int("failed_events")?.unwrap_or(0)).unwrap_or(0),
    })
}

/// The replaced secret of a rotation whose overlap still runs at `now`.
pub(crate) fn previous_secret(
    row: &Row,
    now: Timestamp,
) -> Result<Option<WebhookSecret>, StoreError> {
    let until = row.opt_int("previous_secret_expires_at")?;
    let running = until.is_some_and(|until| until > now.unix_micros());
    Ok(row
        .opt_string("previous_secret")?
        .filter(|_| running)
        .map(WebhookSecret::from_stored))
}

pub(crate) fn scheme_of(s: &str) -> Result<SignatureScheme, StoreError> {
    SignatureScheme::parse(s).ok_or_else(|| StoreError::corrupt("endpoints.signature_scheme"))
}

pub(crate) fn retry_schedule(row: &Row) -> Result<Option<RetryPolicy>, StoreError> {
    row.opt_string("retry_schedule")?
        .map(|s| RetryPolicy::parse(&s).map_err(StoreError::corrupt))
        .transpose()
}

pub(crate) fn customer(row: &Row) -> Result<Customer, StoreError> {
    let customer_type = row.str("customer_type")?;
    let date_of_birth = row.opt_string("date_of_birth")?;
    let country = row.opt_string("address_country")?;
    Ok(Customer {
        id: CustomerId::parse(row.str("id")?).map_err(StoreError::corrupt)?,
        organization_id: OrganizationId::parse(row.str("organization_id")?)
            .map_err(StoreError::corrupt)?,
        customer_type: CustomerType::parse(customer_type)
            .ok_or_else(|| StoreError::corrupt("customers.customer_type"))?,
        status: CustomerStatus::parse(row.str("status")?).map_err(StoreError::corrupt)?,
        status_reason: row.opt_string("status_reason")?,
        email: Email::parse(row.str("email")?).map_err(StoreError::corrupt)?,
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
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        last_sequence: row.count("last_sequence")?,
    })
}

fn parse_date(s: &str) -> Result<Date, StoreError> {
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map_err(|_| StoreError::corrupt("customers.date_of_birth"))
}

pub(crate) fn event(row: &Row) -> Result<Event, StoreError> {
    event_with_body(row, row.string("body")?)
}

/// An event, its body (the largest cell) moved out of the row rather than copied.
pub(crate) fn owned_event(mut row: Row) -> Result<Event, StoreError> {
    let body = row.take_string("body")?;
    event_with_body(&row, body)
}

fn event_with_body(row: &Row, body: String) -> Result<Event, StoreError> {
    let event_type = row.str("event_type")?;
    Ok(Event {
        id: EventId::parse(row.str("id")?).map_err(StoreError::corrupt)?,
        organization_id: OrganizationId::parse(row.str("organization_id")?)
            .map_err(StoreError::corrupt)?,
        customer_id: CustomerId::parse(row.str("customer_id")?).map_err(StoreError::corrupt)?,
        event_type: EventType::parse(event_type)
            .ok_or_else(|| StoreError::corrupt("events.event_type"))?,
        occurred_at: row.time("occurred_at")?,
        sequence: row.count("sequence")?,
        body,
    })
}

pub(crate) fn event_summary(row: &Row) -> Result<EventSummary, StoreError> {
    let delivery_status = row.str("delivery_status")?;
    Ok(EventSummary {
        event: event(row)?,
        delivery_status: DeliveryStatus::parse(delivery_status)
            .ok_or_else(|| StoreError::corrupt("events.delivery_status"))?,
    })
}

pub(crate) fn attempt_sample(row: &Row) -> Result<AttemptSample, StoreError> {
    Ok(AttemptSample {
        started_at: row.time("started_at")?,
        duration_ms: u64::try_from(row.int("duration_ms")?).map_err(StoreError::corrupt)?,
        status_code: row
            .opt_int("status_code")?
            .map(u16::try_from)
            .transpose()
            .map_err(StoreError::corrupt)?,
    })
}

pub(crate) fn attempt(row: &Row) -> Result<AttemptRecord, StoreError> {
    let error_class = row.opt_string("error_class")?;
    let sample = attempt_sample(row)?;
    Ok(AttemptRecord {
        endpoint_id: row
            .opt_string("endpoint_id")?
            .map(|id| EndpointId::parse(&id).map_err(StoreError::corrupt))
            .transpose()?,
        attempt: u32::try_from(row.int("attempt")?).map_err(StoreError::corrupt)?,
        started_at: sample.started_at,
        duration_ms: sample.duration_ms,
        status_code: sample.status_code,
        error_class: error_class
            .map(|c| ErrorClass::parse(&c).ok_or_else(|| StoreError::corrupt("error_class")))
            .transpose()?,
        error: row.opt_string("error")?,
        response_body: row.opt_string("response_body")?,
    })
}

/// An attempt as the parameters of [`crate::sql::INSERT_ATTEMPT`] (after the event's seq).
pub(crate) fn attempt_params(r: &AttemptRecord) -> [Value<'_>; 7] {
    [
        Value::int(i64::from(r.attempt)),
        Value::time(r.started_at),
        Value::int(i64::try_from(r.duration_ms).unwrap_or(i64::MAX)),
        Value::Int(r.status_code.map(i64::from)),
        Value::opt_text(r.error_class.map(ErrorClass::as_str)),
        Value::opt_text(r.error.as_deref()),
        Value::opt_text(r.response_body.as_deref()),
    ]
}
