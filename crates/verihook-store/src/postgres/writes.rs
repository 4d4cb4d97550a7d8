//! PostgreSQL writes, each a job of the batching writer (see `crate::writer`).

use super::{announce_work, select_customer, PgWriter};
use crate::rows::{self, Get};
use crate::{
    AttemptOutcome, ClaimRequest, ClaimedDelivery, Mutation, NextStep, StoreError, WebhookSet,
};
use sqlx::PgConnection;
use verihook_core::id::random_token;
use verihook_core::{
    Customer, CustomerChange, CustomerId, Event, EventId, Organization, OrganizationId, Timestamp,
    WebhookSecret,
};

/// Inserts the customer, or updates every column but its identity and order.
async fn upsert_customer(conn: &mut PgConnection, c: &Customer) -> Result<(), StoreError> {
    let a = &c.address;
    let text =
        |t: &Option<verihook_core::customer::Text>| t.as_ref().map(|t| t.as_str().to_owned());
    sqlx::query(crate::sql::UPSERT_CUSTOMER)
        .bind(c.id.as_str())
        .bind(c.organization_id.as_str())
        .bind(c.customer_type.as_str())
        .bind(c.status.as_str())
        .bind(c.status_reason.as_deref())
        .bind(c.email.as_str())
        .bind(c.first_name.as_str())
        .bind(c.last_name.as_str())
        .bind(c.date_of_birth.map(verihook_core::customer::format_date))
        .bind(text(&a.line1))
        .bind(text(&a.line2))
        .bind(text(&a.city))
        .bind(text(&a.state))
        .bind(text(&a.postal_code))
        .bind(a.country.map(|c| c.as_str().to_owned()))
        .bind(c.created_at.unix_micros())
        .bind(c.updated_at.unix_micros())
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores events and their outbox entries, due at once.
async fn insert_events(conn: &mut PgConnection, events: &[Event]) -> Result<(), StoreError> {
    for e in events {
        sqlx::query(crate::sql::INSERT_EVENT)
            .bind(e.id.as_str())
            .bind(e.organization_id.as_str())
            .bind(e.customer_id.as_str())
            .bind(e.event_type.as_str())
            .bind(e.occurred_at.unix_micros())
            .bind(&e.body)
            .execute(&mut *conn)
            .await?;
        sqlx::query(crate::sql::INSERT_DELIVERY)
            .bind(e.id.as_str())
            .bind(e.organization_id.as_str())
            .bind(e.occurred_at.unix_micros())
            .execute(&mut *conn)
            .await?;
    }
    if !events.is_empty() {
        announce_work(conn).await?;
    }
    Ok(())
}

pub(super) async fn create_organization(
    writer: &PgWriter,
    org: Organization,
    api_key_digest: [u8; 32],
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query(crate::sql::INSERT_ORGANIZATION)
                    .bind(org.id.as_str())
                    .bind(&org.name)
                    .bind(org.mode.as_str())
                    .bind(&api_key_digest[..])
                    .bind(org.created_at.unix_micros())
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
}

pub(super) async fn set_webhook_url(
    writer: &PgWriter,
    id: OrganizationId,
    url: String,
    fresh_secret: WebhookSecret,
) -> Result<WebhookSet, StoreError> {
    writer
        .write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(crate::sql::SET_WEBHOOK_URL)
                    .bind(&url)
                    .bind(fresh_secret.expose())
                    .bind(id.as_str())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                // Events waiting for a URL are due now.
                announce_work(conn).await?;
                let secret = WebhookSecret::from_stored(row.string("webhook_secret")?);
                Ok(WebhookSet {
                    url: row.string("webhook_url")?,
                    secret_is_new: secret == fresh_secret,
                    secret,
                })
            })
        })
        .await
}

pub(super) async fn rotate_webhook_secret(
    writer: &PgWriter,
    id: OrganizationId,
    secret: WebhookSecret,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(crate::sql::ROTATE_SECRET)
                    .bind(secret.expose())
                    .bind(id.as_str())
                    .execute(conn)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
        })
        .await
}

pub(super) async fn insert_customer(
    writer: &PgWriter,
    change: CustomerChange,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            Box::pin(async move {
                upsert_customer(&mut *conn, &change.customer).await?;
                insert_events(conn, &change.events).await
            })
        })
        .await
}

pub(super) async fn modify_customer(
    writer: &PgWriter,
    organization: Option<OrganizationId>,
    id: CustomerId,
    mutation: Mutation,
) -> Result<CustomerChange, StoreError> {
    writer
        .write(move |conn| {
            Box::pin(async move {
                let current = select_customer(&mut *conn, organization.as_ref(), &id, true)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let change = mutation(&current)?;
                if change.customer != current {
                    upsert_customer(&mut *conn, &change.customer).await?;
                }
                insert_events(conn, &change.events).await?;
                Ok(change)
            })
        })
        .await
}

/// Claims with `FOR UPDATE SKIP LOCKED`: nodes never wait for each other's claims and
/// never claim the same row.
pub(super) async fn claim(
    writer: &PgWriter,
    request: ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    writer
        .write(move |conn| Box::pin(async move { claim_in(conn, &request).await }))
        .await
}

async fn claim_in(
    conn: &mut PgConnection,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let token = random_token();
    let lease = i64::try_from(request.lease.as_micros()).unwrap_or(i64::MAX);
    let exclude: Vec<String> = request.exclude.iter().map(|o| o.to_string()).collect();
    let sql = crate::sql::CLAIM
        .replace("{exclude}", "= ANY($2)")
        .replace("{lock}", "FOR UPDATE OF d SKIP LOCKED");
    let claimed: Vec<(String, i64, i64)> = sqlx::query_as(&sql)
        .bind(request.now.unix_micros())
        .bind(&exclude)
        .bind(i64::from(
            request.limit.saturating_mul(crate::sql::SCAN_FACTOR),
        ))
        .bind(request.now.unix_micros().saturating_add(lease))
        .bind(&token)
        .bind(i64::from(request.per_organization))
        .bind(i64::from(request.limit))
        .fetch_all(&mut *conn)
        .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = claimed.iter().map(|(id, _, _)| id.as_str()).collect();
    let sql = crate::sql::CLAIMED_DETAILS.replace("{ids}", "= ANY($1)");
    let details = sqlx::query(&sql)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::claim_detail)
        .collect::<Result<_, _>>()?;
    rows::claimed_deliveries(claimed, details, &token)
}

pub(super) async fn record(writer: &PgWriter, outcome: AttemptOutcome) -> Result<bool, StoreError> {
    writer
        .write(move |conn| Box::pin(async move { record_in(conn, &outcome).await }))
        .await
}

async fn record_in(conn: &mut PgConnection, o: &AttemptOutcome) -> Result<bool, StoreError> {
    let id = o.event_id.as_str();
    let moved = match o.next {
        NextStep::RetryAt(due) => {
            sqlx::query(crate::sql::RESCHEDULE_DELIVERY)
                .bind(due.unix_micros())
                .bind(id)
                .bind(&o.lease_token)
                .execute(&mut *conn)
                .await?
        }
        NextStep::Delivered | NextStep::Failed => {
            sqlx::query(crate::sql::DELETE_DELIVERY)
                .bind(id)
                .bind(&o.lease_token)
                .execute(&mut *conn)
                .await?
        }
    };
    if moved.rows_affected() == 0 {
        return Ok(false);
    }
    if let Some(status) = crate::sql::final_status(o.next) {
        sqlx::query(crate::sql::SET_DELIVERY_STATUS)
            .bind(status)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    let r = &o.record;
    sqlx::query(crate::sql::INSERT_ATTEMPT)
        .bind(id)
        .bind(i64::from(r.attempt))
        .bind(r.started_at.unix_micros())
        .bind(i64::try_from(r.duration_ms).unwrap_or(i64::MAX))
        .bind(r.status_code.map(i64::from))
        .bind(r.error_class.as_deref())
        .bind(r.error.as_deref())
        .bind(r.response_body.as_deref())
        .execute(&mut *conn)
        .await?;
    if matches!(o.next, NextStep::RetryAt(_)) {
        announce_work(conn).await?;
    }
    Ok(true)
}

pub(super) async fn release(
    writer: &PgWriter,
    leases: Vec<(EventId, String)>,
    now: Timestamp,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            Box::pin(async move {
                for (id, token) in &leases {
                    sqlx::query(crate::sql::RELEASE_DELIVERY)
                        .bind(now.unix_micros())
                        .bind(id.as_str())
                        .bind(token)
                        .execute(&mut *conn)
                        .await?;
                }
                announce_work(conn).await
            })
        })
        .await
}

pub(super) async fn redeliver(
    writer: &PgWriter,
    organization: Option<OrganizationId>,
    id: EventId,
    now: Timestamp,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            Box::pin(async move {
                let owner: Option<String> = sqlx::query_scalar(crate::sql::EVENT_OWNER)
                    .bind(id.as_str())
                    .bind(organization.as_ref().map(OrganizationId::as_str))
                    .fetch_optional(&mut *conn)
                    .await?;
                let owner = owner.ok_or(StoreError::NotFound)?;
                sqlx::query(crate::sql::REQUEUE_DELIVERY)
                    .bind(id.as_str())
                    .bind(&owner)
                    .bind(now.unix_micros())
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(crate::sql::SET_PENDING)
                    .bind(id.as_str())
                    .execute(&mut *conn)
                    .await?;
                announce_work(conn).await
            })
        })
        .await
}
