//! PostgreSQL writes, each a job of the batching writer (see `crate::writer`).

use super::{announce_work, select_customer, PgWriter};
use crate::rows::{self, Get};
use crate::{
    AttemptOutcome, ClaimRequest, ClaimedDelivery, Lease, Mutation, NextStep, Recorded, StoreError,
    WebhookSet,
};
use sqlx::PgConnection;
use verihook_core::id::random_token;
use verihook_core::{
    Customer, CustomerChange, CustomerId, Event, EventId, Organization, OrganizationId, Timestamp,
    WebhookSecret,
};

/// The customer (inserted, or updated in every column but its identity and order), its
/// events and their outbox entries, and the wake-up of other nodes: one statement, one
/// round trip (data-modifying CTEs), since on a server round trips bound a batch.
const SAVE_CHANGE: &str = "\
    WITH customer AS ({upsert}), \
    event AS (INSERT INTO events (id, organization_id, customer_id, event_type, occurred_at, body) \
        SELECT * FROM UNNEST($18::text[], $19::text[], $20::text[], $21::text[], $22::bigint[], \
        $23::text[]) RETURNING seq, organization_id, occurred_at), \
    delivery AS (INSERT INTO deliveries (event_seq, organization_id, due_at) \
        SELECT seq, organization_id, occurred_at FROM event) \
    SELECT pg_notify('verihook_work', '') WHERE cardinality($18::text[]) > 0";

async fn save_change(
    conn: &mut PgConnection,
    c: &Customer,
    events: &[Event],
) -> Result<(), StoreError> {
    let a = &c.address;
    let text =
        |t: &Option<verihook_core::customer::Text>| t.as_ref().map(|t| t.as_str().to_owned());
    let column = |f: fn(&Event) -> String| events.iter().map(f).collect::<Vec<String>>();
    let sql = SAVE_CHANGE.replace("{upsert}", crate::sql::UPSERT_CUSTOMER);
    sqlx::query(&sql)
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
        .bind(column(|e| e.id.to_string()))
        .bind(column(|e| e.organization_id.to_string()))
        .bind(column(|e| e.customer_id.to_string()))
        .bind(column(|e| e.event_type.as_str().to_owned()))
        .bind(
            events
                .iter()
                .map(|e| e.occurred_at.unix_micros())
                .collect::<Vec<i64>>(),
        )
        .bind(column(|e| e.body.clone()))
        .execute(conn)
        .await?;
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
            Box::pin(async move { save_change(conn, &change.customer, &change.events).await })
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
                if change.customer != current || !change.events.is_empty() {
                    save_change(conn, &change.customer, &change.events).await?;
                }
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

/// Claims due deliveries: each organization's oldest first (an index seek per
/// organization, so a long backlog of one costs the others nothing), at most
/// `per_organization` of one minus those this sender has in flight (`$2`, `$7`;
/// organizations at the limit are not looked at), only where a webhook URL is set, and
/// none another node has locked.
const CLAIM: &str = "\
    WITH busy AS (SELECT * FROM UNNEST($2::text[], $7::bigint[]) AS b(organization_id, n)), \
    picked AS ( \
        SELECT d.event_seq, d.due_at FROM organizations o \
        LEFT JOIN busy b ON b.organization_id = o.id \
        CROSS JOIN LATERAL ( \
            SELECT d2.event_seq, d2.due_at FROM deliveries d2 \
            WHERE d2.organization_id = o.id AND d2.due_at <= $1 \
            ORDER BY d2.due_at LIMIT GREATEST($5 - COALESCE(b.n, 0), 0) \
            FOR UPDATE SKIP LOCKED) d \
        WHERE o.webhook_url IS NOT NULL AND COALESCE(b.n, 0) < $5 \
        ORDER BY d.due_at LIMIT $6 \
    ) \
    UPDATE deliveries SET due_at = $3, lease_token = $4, requeued = FALSE \
    WHERE event_seq IN (SELECT event_seq FROM picked) \
    RETURNING event_seq, attempt, budget_used";

async fn claim_in(
    conn: &mut PgConnection,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let token = random_token();
    let lease = i64::try_from(request.lease.as_micros()).unwrap_or(i64::MAX);
    let (busy, running): (Vec<String>, Vec<i64>) = request
        .in_flight
        .iter()
        .map(|(org, n)| (org.to_string(), i64::from(*n)))
        .unzip();
    let claimed: Vec<(i64, i64, i64)> = sqlx::query_as(CLAIM)
        .bind(request.now.unix_micros())
        .bind(&busy)
        .bind(request.now.unix_micros().saturating_add(lease))
        .bind(&token)
        .bind(i64::from(request.per_organization))
        .bind(i64::from(request.limit))
        .bind(&running)
        .fetch_all(&mut *conn)
        .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = claimed.iter().map(|c| c.0).collect();
    let sql = crate::sql::CLAIMED_DETAILS.replace("{ids}", "= ANY($1)");
    let details = sqlx::query(&sql)
        .bind(&seqs)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::claim_detail)
        .collect::<Result<_, _>>()?;
    rows::claimed_deliveries(claimed, details, &token)
}

pub(super) async fn record(
    writer: &PgWriter,
    outcomes: Vec<AttemptOutcome>,
) -> Result<Vec<Recorded>, StoreError> {
    writer
        .write(move |conn| Box::pin(async move { record_in(conn, &outcomes).await }))
        .await
}

/// Attempts' outcomes in one statement: move each delivery on under its lease (delete it,
/// or reschedule it where a due time is given; make it due at once with a fresh budget
/// where a redelivery was asked for meanwhile), mark finally failed events, log the
/// attempts. Answers the events whose deliveries moved, and whether each was requeued; a
/// lost lease moves nothing.
const RECORD: &str = "\
    WITH input AS (SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], \
        $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], \
        $11::text[]) AS i(event_seq, lease_token, due_at, final_status, attempt, started_at, \
        duration_ms, status_code, error_class, error, response_body)), \
    finished AS (DELETE FROM deliveries d USING input i \
        WHERE d.event_seq = i.event_seq AND d.lease_token = i.lease_token AND i.due_at IS NULL \
        AND NOT d.requeued RETURNING d.event_seq), \
    rescheduled AS (UPDATE deliveries d SET due_at = i.due_at, attempt = d.attempt + 1, \
        budget_used = d.budget_used + 1, lease_token = NULL FROM input i \
        WHERE d.event_seq = i.event_seq AND d.lease_token = i.lease_token \
        AND i.due_at IS NOT NULL AND NOT d.requeued RETURNING d.event_seq), \
    requeued AS (UPDATE deliveries d SET due_at = i.started_at + i.duration_ms * 1000, \
        attempt = d.attempt + 1, budget_used = 0, lease_token = NULL, requeued = FALSE \
        FROM input i WHERE d.event_seq = i.event_seq AND d.lease_token = i.lease_token \
        AND d.requeued RETURNING d.event_seq), \
    moved AS (SELECT event_seq, FALSE AS requeued FROM finished \
        UNION ALL SELECT event_seq, FALSE FROM rescheduled \
        UNION ALL SELECT event_seq, TRUE FROM requeued), \
    failed AS (INSERT INTO failed_events (event_seq, organization_id) \
        SELECT e.seq, e.organization_id FROM events e JOIN input i ON i.event_seq = e.seq \
        WHERE i.final_status = 'failed' AND e.seq IN (SELECT event_seq FROM finished) \
        ON CONFLICT (event_seq) DO NOTHING), \
    logged AS (INSERT INTO attempts (event_seq, attempt, started_at, duration_ms, status_code, \
        error_class, error, response_body) \
        SELECT i.event_seq, i.attempt, i.started_at, i.duration_ms, i.status_code, \
        i.error_class, i.error, i.response_body FROM input i \
        WHERE i.event_seq IN (SELECT event_seq FROM moved)) \
    SELECT event_seq, requeued FROM moved";

async fn record_in(
    conn: &mut PgConnection,
    outcomes: &[AttemptOutcome],
) -> Result<Vec<Recorded>, StoreError> {
    fn column<T>(outcomes: &[AttemptOutcome], f: impl Fn(&AttemptOutcome) -> T) -> Vec<T> {
        outcomes.iter().map(f).collect()
    }
    let due = |o: &AttemptOutcome| match o.next {
        NextStep::RetryAt(due) => Some(due.unix_micros()),
        NextStep::Delivered | NextStep::Failed => None,
    };
    let moved: Vec<(i64, bool)> = sqlx::query_as(RECORD)
        .bind(column(outcomes, |o| o.lease.delivery))
        .bind(column(outcomes, |o| o.lease.token.clone()))
        .bind(column(outcomes, due))
        .bind(column(outcomes, |o| crate::sql::final_status(o.next)))
        .bind(column(outcomes, |o| i64::from(o.record.attempt)))
        .bind(column(outcomes, |o| o.record.started_at.unix_micros()))
        .bind(column(outcomes, |o| {
            i64::try_from(o.record.duration_ms).unwrap_or(i64::MAX)
        }))
        .bind(column(outcomes, |o| o.record.status_code.map(i64::from)))
        .bind(column(outcomes, |o| o.record.error_class.clone()))
        .bind(column(outcomes, |o| o.record.error.clone()))
        .bind(column(outcomes, |o| o.record.response_body.clone()))
        .fetch_all(conn)
        .await?;
    let moved: std::collections::HashMap<i64, bool> = moved.into_iter().collect();
    Ok(outcomes
        .iter()
        .map(|o| match moved.get(&o.lease.delivery) {
            Some(true) => Recorded::Requeued,
            Some(false) => Recorded::Moved,
            None => Recorded::LeaseLost,
        })
        .collect())
}

pub(super) async fn release(
    writer: &PgWriter,
    leases: Vec<Lease>,
    now: Timestamp,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            Box::pin(async move {
                for lease in &leases {
                    sqlx::query(crate::sql::RELEASE_DELIVERY)
                        .bind(now.unix_micros())
                        .bind(lease.delivery)
                        .bind(&lease.token)
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
                let owner: Option<(String, i64)> = sqlx::query_as(crate::sql::EVENT_OWNER)
                    .bind(id.as_str())
                    .bind(organization.as_ref().map(OrganizationId::as_str))
                    .fetch_optional(&mut *conn)
                    .await?;
                let (owner, seq) = owner.ok_or(StoreError::NotFound)?;
                sqlx::query(crate::sql::REQUEUE_DELIVERY)
                    .bind(seq)
                    .bind(&owner)
                    .bind(now.unix_micros())
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(crate::sql::UNMARK_FAILED)
                    .bind(seq)
                    .execute(&mut *conn)
                    .await?;
                announce_work(conn).await
            })
        })
        .await
}
