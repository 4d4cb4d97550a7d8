//! SQLite writes, run on the writer thread (rusqlite), each in its own savepoint of the
//! batch transaction. The SQL is the shared one of `crate::sql`.

use super::writer::SqliteWriter;
use crate::rows::{self, CUSTOMER_COLUMNS};
use crate::{
    AttemptOutcome, ClaimRequest, ClaimedDelivery, Lease, Mutation, NextStep, Recorded, StoreError,
    WebhookSet,
};
use rusqlite::{params, Connection, OptionalExtension};
use verihook_core::id::random_token;
use verihook_core::{
    Customer, CustomerChange, CustomerId, Event, EventId, Organization, OrganizationId, Timestamp,
    WebhookSecret,
};

fn select_customer(
    conn: &Connection,
    organization: Option<&OrganizationId>,
    id: &CustomerId,
) -> Result<Option<Customer>, StoreError> {
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1 \
         AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2)"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut found = statement.query(params![
        id.as_str(),
        organization.map(OrganizationId::as_str)
    ])?;
    found.next()?.map(rows::customer).transpose()
}

/// Inserts the customer, or updates every column but its identity and order.
fn upsert_customer(conn: &Connection, c: &Customer) -> Result<(), StoreError> {
    let a = &c.address;
    let text =
        |t: &Option<verihook_core::customer::Text>| t.as_ref().map(|t| t.as_str().to_owned());
    conn.prepare_cached(crate::sql::UPSERT_CUSTOMER)?
        .execute(params![
            c.id.as_str(),
            c.organization_id.as_str(),
            c.customer_type.as_str(),
            c.status.as_str(),
            c.status_reason.as_deref(),
            c.email.as_str(),
            c.first_name.as_str(),
            c.last_name.as_str(),
            c.date_of_birth.map(verihook_core::customer::format_date),
            text(&a.line1),
            text(&a.line2),
            text(&a.city),
            text(&a.state),
            text(&a.postal_code),
            a.country.map(|c| c.as_str().to_owned()),
            c.created_at.unix_micros(),
            c.updated_at.unix_micros(),
        ])?;
    Ok(())
}

/// Stores events and their outbox entries, due at once.
fn insert_events(conn: &Connection, events: &[Event]) -> Result<(), StoreError> {
    let mut event = conn.prepare_cached(crate::sql::INSERT_EVENT)?;
    let mut delivery = conn.prepare_cached(crate::sql::INSERT_DELIVERY)?;
    for e in events {
        event.execute(params![
            e.id.as_str(),
            e.organization_id.as_str(),
            e.customer_id.as_str(),
            e.event_type.as_str(),
            e.occurred_at.unix_micros(),
            e.body,
        ])?;
        // The writer thread is the only one writing on this connection.
        delivery.execute(params![
            conn.last_insert_rowid(),
            e.organization_id.as_str(),
            e.occurred_at.unix_micros()
        ])?;
    }
    Ok(())
}

pub(super) async fn create_organization(
    writer: &SqliteWriter,
    org: Organization,
    api_key_digest: [u8; 32],
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            conn.prepare_cached(crate::sql::INSERT_ORGANIZATION)?
                .execute(params![
                    org.id.as_str(),
                    org.name,
                    org.mode.as_str(),
                    &api_key_digest[..],
                    org.created_at.unix_micros(),
                ])?;
            Ok(())
        })
        .await
}

pub(super) async fn set_webhook_url(
    writer: &SqliteWriter,
    id: OrganizationId,
    url: String,
    fresh_secret: WebhookSecret,
) -> Result<WebhookSet, StoreError> {
    writer
        .write(move |conn| {
            let (url, secret): (String, String) = conn
                .prepare_cached(crate::sql::SET_WEBHOOK_URL)?
                .query_row(params![url, fresh_secret.expose(), id.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?
                .ok_or(StoreError::NotFound)?;
            let secret = WebhookSecret::from_stored(secret);
            Ok(WebhookSet {
                url,
                secret_is_new: secret == fresh_secret,
                secret,
            })
        })
        .await
}

pub(super) async fn rotate_webhook_secret(
    writer: &SqliteWriter,
    id: OrganizationId,
    secret: WebhookSecret,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            let changed = conn
                .prepare_cached(crate::sql::ROTATE_SECRET)?
                .execute(params![secret.expose(), id.as_str()])?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
}

pub(super) async fn insert_customer(
    writer: &SqliteWriter,
    change: CustomerChange,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            upsert_customer(conn, &change.customer)?;
            insert_events(conn, &change.events)
        })
        .await
}

pub(super) async fn modify_customer(
    writer: &SqliteWriter,
    organization: Option<OrganizationId>,
    id: CustomerId,
    mutation: Mutation,
) -> Result<CustomerChange, StoreError> {
    writer
        .write(move |conn| {
            // The single writer makes this read-modify-write exclusive without a lock.
            let current =
                select_customer(conn, organization.as_ref(), &id)?.ok_or(StoreError::NotFound)?;
            let change = mutation(&current)?;
            if change.customer != current {
                upsert_customer(conn, &change.customer)?;
            }
            insert_events(conn, &change.events)?;
            Ok(change)
        })
        .await
}

pub(super) async fn claim(
    writer: &SqliteWriter,
    request: ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    writer.write(move |conn| claim_in(conn, &request)).await
}

/// Claims due deliveries: each organization's oldest first (an index seek per
/// organization, so a long backlog of one costs the others nothing), at most
/// `per_organization` of one minus those already in flight (`?2`, a JSON object of counts;
/// organizations at the limit are not even looked at), only where a webhook URL is set.
/// SQLite's LIMIT cannot depend on the row, so the candidates are ranked per organization
/// and cut at each one's headroom. (`?N` binds by number; SQLite numbers `$N` by first
/// appearance.)
const CLAIM: &str = "\
    WITH busy AS (SELECT key AS organization_id, value AS n FROM json_each(?2)), \
    candidates AS ( \
        SELECT d.event_seq, d.due_at, d.organization_id, ROW_NUMBER() OVER ( \
            PARTITION BY d.organization_id ORDER BY d.due_at) AS rank \
        FROM organizations o \
        JOIN deliveries d ON d.event_seq IN ( \
            SELECT d2.event_seq FROM deliveries d2 \
            WHERE d2.organization_id = o.id AND d2.due_at <= ?1 \
            ORDER BY d2.due_at LIMIT ?5) \
        WHERE o.webhook_url IS NOT NULL \
          AND o.id NOT IN (SELECT organization_id FROM busy WHERE n >= ?5) \
    ), \
    picked AS ( \
        SELECT c.event_seq FROM candidates c \
        LEFT JOIN busy b ON b.organization_id = c.organization_id \
        WHERE c.rank <= ?5 - COALESCE(b.n, 0) \
        ORDER BY c.due_at LIMIT ?6 \
    ) \
    UPDATE deliveries SET due_at = ?3, lease_token = ?4, requeued = FALSE \
    WHERE event_seq IN (SELECT event_seq FROM picked) \
    RETURNING event_seq, attempt, budget_used";

fn claim_in(conn: &Connection, request: &ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let token = random_token();
    let lease = i64::try_from(request.lease.as_micros()).unwrap_or(i64::MAX);
    let in_flight: serde_json::Map<String, serde_json::Value> = request
        .in_flight
        .iter()
        .map(|(org, n)| (org.to_string(), (*n).into()))
        .collect();
    let in_flight = serde_json::Value::Object(in_flight).to_string();
    let sql = CLAIM;
    let mut statement = conn.prepare_cached(sql)?;
    let claimed = statement
        .query_map(
            params![
                request.now.unix_micros(),
                in_flight,
                request.now.unix_micros().saturating_add(lease),
                token,
                i64::from(request.per_organization),
                i64::from(request.limit),
            ],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?
        .collect::<Result<Vec<(i64, i64, i64)>, _>>()?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<String> = claimed.iter().map(|c| c.0.to_string()).collect();
    let seqs = format!("[{}]", seqs.join(","));
    let sql = crate::sql::CLAIMED_DETAILS.replace("{ids}", "IN (SELECT value FROM json_each($1))");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut found = statement.query(params![seqs])?;
    let mut details = Vec::with_capacity(claimed.len());
    while let Some(row) = found.next()? {
        details.push(rows::claim_detail(row)?);
    }
    rows::claimed_deliveries(claimed, details, &token)
}

pub(super) async fn record(
    writer: &SqliteWriter,
    outcomes: Vec<AttemptOutcome>,
) -> Result<Vec<Recorded>, StoreError> {
    writer
        .write(move |conn| outcomes.iter().map(|o| record_in(conn, o)).collect())
        .await
}

fn record_in(conn: &Connection, o: &AttemptOutcome) -> Result<Recorded, StoreError> {
    let (seq, token) = (o.lease.delivery, &o.lease.token);
    let moved = match o.next {
        NextStep::RetryAt(due) => conn
            .prepare_cached(crate::sql::RESCHEDULE_DELIVERY)?
            .execute(params![due.unix_micros(), seq, token])?,
        NextStep::Delivered | NextStep::Failed => conn
            .prepare_cached(crate::sql::DELETE_DELIVERY)?
            .execute(params![seq, token])?,
    };
    let recorded = if moved > 0 {
        Recorded::Moved
    } else if conn
        .prepare_cached(crate::sql::REQUEUE_AFTER_ATTEMPT)?
        .execute(params![o.record.ended_at().unix_micros(), seq, token])?
        > 0
    {
        Recorded::Requeued
    } else {
        return Ok(Recorded::LeaseLost);
    };
    if recorded == Recorded::Moved && o.next == NextStep::Failed {
        conn.prepare_cached(crate::sql::MARK_FAILED)?
            .execute(params![seq])?;
    }
    let r = &o.record;
    conn.prepare_cached(crate::sql::INSERT_ATTEMPT)?
        .execute(params![
            seq,
            i64::from(r.attempt),
            r.started_at.unix_micros(),
            i64::try_from(r.duration_ms).unwrap_or(i64::MAX),
            r.status_code.map(i64::from),
            r.error_class.as_deref(),
            r.error.as_deref(),
            r.response_body.as_deref(),
        ])?;
    Ok(recorded)
}

pub(super) async fn release(
    writer: &SqliteWriter,
    leases: Vec<Lease>,
    now: Timestamp,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            let mut statement = conn.prepare_cached(crate::sql::RELEASE_DELIVERY)?;
            for lease in &leases {
                statement.execute(params![now.unix_micros(), lease.delivery, lease.token])?;
            }
            Ok(())
        })
        .await
}

pub(super) async fn redeliver(
    writer: &SqliteWriter,
    organization: Option<OrganizationId>,
    id: EventId,
    now: Timestamp,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            let (owner, seq): (String, i64) = conn
                .prepare_cached(crate::sql::EVENT_OWNER)?
                .query_row(
                    params![
                        id.as_str(),
                        organization.as_ref().map(OrganizationId::as_str)
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?
                .ok_or(StoreError::NotFound)?;
            conn.prepare_cached(crate::sql::REQUEUE_DELIVERY)?
                .execute(params![seq, owner, now.unix_micros()])?;
            conn.prepare_cached(crate::sql::UNMARK_FAILED)?
                .execute(params![seq])?;
            Ok(())
        })
        .await
}
