//! The PostgreSQL writes whose SQL is PostgreSQL's own: each is one statement (one round
//! trip), since on a server round trips are what a batch costs.

use super::channel;
use super::conn::{bind, rows};
use crate::database::claimed_deliveries;
use crate::outbox::{AttemptOutcome, ClaimRequest, ClaimedDelivery, NextStep, Recorded};
use crate::rows::customer_params;
use crate::{sql, StoreError};
use sqlx::PgConnection;
use std::collections::HashMap;
use std::sync::LazyLock;
use verihook_core::id::random_token;
use verihook_core::{Customer, ErrorClass, Event};

/// The customer (inserted, or updated in every column but its identity and order), its
/// events and their outbox entries, and the wake-up of every node, in one statement
/// (data-modifying CTEs). `$1`–`$17` are the customer, `$18`–`$23` the events' columns.
static SAVE_CHANGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH customer AS ({}), \
         event AS (INSERT INTO events (id, organization_id, customer_id, event_type, \
            occurred_at, body) \
            SELECT * FROM UNNEST($18::text[], $19::text[], $20::text[], $21::text[], \
            $22::bigint[], $23::text[]) RETURNING seq, organization_id, occurred_at), \
         delivery AS (INSERT INTO deliveries (event_seq, organization_id, due_at) \
            SELECT seq, organization_id, occurred_at FROM event) \
         SELECT pg_notify('{}', current_setting('application_name')) \
         WHERE cardinality($18::text[]) > 0",
        sql::UPSERT_CUSTOMER,
        channel!()
    )
});

pub(super) async fn save_change(
    conn: &mut PgConnection,
    customer: &Customer,
    events: &[Event],
) -> Result<(), StoreError> {
    let column = |f: fn(&Event) -> &str| events.iter().map(f).collect::<Vec<&str>>();
    let params = customer_params(customer);
    bind(&SAVE_CHANGE, &params)
        .bind(column(|e| e.id.as_str()))
        .bind(column(|e| e.organization_id.as_str()))
        .bind(column(|e| e.customer_id.as_str()))
        .bind(column(|e| e.event_type.as_str()))
        .bind(
            events
                .iter()
                .map(|e| e.occurred_at.unix_micros())
                .collect::<Vec<i64>>(),
        )
        .bind(column(|e| e.body.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}

/// Claims due deliveries: each organization's oldest first (an index seek per
/// organization, so a long backlog of one costs the others nothing), at most
/// `per_organization` of one minus those this sender has in flight (`$1`, `$2`;
/// organizations at the limit are not looked at), only where a webhook URL is set, and
/// none another node has locked. Due and lease times are the database's clock
/// (`clock`), so nodes whose clocks disagree never hold one delivery at once.
const CLAIM: &str = "\
    WITH clock AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint AS now), \
    busy AS (SELECT * FROM UNNEST($1::text[], $2::bigint[]) AS b(organization_id, n)), \
    picked AS ( \
        SELECT d.event_seq, d.due_at FROM organizations o \
        LEFT JOIN busy b ON b.organization_id = o.id \
        CROSS JOIN LATERAL ( \
            SELECT d2.event_seq, d2.due_at FROM deliveries d2 \
            WHERE d2.organization_id = o.id AND d2.due_at <= (SELECT now FROM clock) \
            ORDER BY d2.due_at LIMIT GREATEST($4 - COALESCE(b.n, 0), 0) \
            FOR UPDATE SKIP LOCKED) d \
        WHERE o.webhook_url IS NOT NULL AND COALESCE(b.n, 0) < $4 \
        ORDER BY d.due_at LIMIT $5 \
    ) \
    UPDATE deliveries SET due_at = (SELECT now FROM clock) + $3, lease_token = $6, \
    requeued = FALSE WHERE event_seq IN (SELECT event_seq FROM picked) \
    RETURNING event_seq, attempt, budget_used";

pub(super) async fn claim(
    conn: &mut PgConnection,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let token = random_token();
    let lease = i64::try_from(request.lease.as_micros()).unwrap_or(i64::MAX);
    let (busy, running): (Vec<&str>, Vec<i64>) = request
        .in_flight
        .iter()
        .map(|(org, n)| (org.as_str(), i64::from(*n)))
        .unzip();
    let claimed: Vec<(i64, i64, i64)> = sqlx::query_as(CLAIM)
        .bind(&busy)
        .bind(&running)
        .bind(lease)
        .bind(i64::from(request.per_organization))
        .bind(i64::from(request.limit))
        .bind(&token)
        .fetch_all(&mut *conn)
        .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = claimed.iter().map(|c| c.0).collect();
    let details = sql::CLAIMED_DETAILS.replace("{seqs}", "= ANY($1)");
    let details = sqlx::query(&details)
        .bind(&seqs)
        .fetch_all(&mut *conn)
        .await?;
    claimed_deliveries(claimed, &rows(&details)?, &token)
}

/// Attempts' outcomes in one statement: move each delivery on under its lease (delete it,
/// or reschedule it where a due time is given; make it due at once with a fresh budget
/// where a redelivery was asked for meanwhile), mark finally failed events, log the
/// attempts. Answers the leases whose deliveries moved, and whether each was requeued; a
/// lost lease moves and logs nothing, even beside the outcome of the lease that replaced
/// it in the same batch.
const RECORD: &str = "\
    WITH input AS (SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bool[], \
        $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], \
        $11::text[]) AS i(event_seq, lease_token, due_at, failed, attempt, started_at, \
        duration_ms, status_code, error_class, error, response_body)), \
    finished AS (DELETE FROM deliveries d USING input i \
        WHERE d.event_seq = i.event_seq AND d.lease_token = i.lease_token AND i.due_at IS NULL \
        AND NOT d.requeued RETURNING d.event_seq, i.lease_token), \
    rescheduled AS (UPDATE deliveries d SET due_at = i.due_at, attempt = d.attempt + 1, \
        budget_used = d.budget_used + 1, lease_token = NULL FROM input i \
        WHERE d.event_seq = i.event_seq AND d.lease_token = i.lease_token \
        AND i.due_at IS NOT NULL AND NOT d.requeued RETURNING d.event_seq, i.lease_token), \
    requeued AS (UPDATE deliveries d SET due_at = i.started_at + i.duration_ms * 1000, \
        attempt = d.attempt + 1, budget_used = 0, lease_token = NULL, requeued = FALSE \
        FROM input i WHERE d.event_seq = i.event_seq AND d.lease_token = i.lease_token \
        AND d.requeued RETURNING d.event_seq, i.lease_token), \
    moved AS (SELECT event_seq, lease_token, FALSE AS requeued FROM finished \
        UNION ALL SELECT event_seq, lease_token, FALSE FROM rescheduled \
        UNION ALL SELECT event_seq, lease_token, TRUE FROM requeued), \
    failed AS (INSERT INTO failed_events (event_seq, organization_id) \
        SELECT e.seq, e.organization_id FROM events e JOIN finished f ON f.event_seq = e.seq \
        JOIN input i ON i.event_seq = f.event_seq AND i.lease_token = f.lease_token \
        WHERE i.failed ON CONFLICT (event_seq) DO NOTHING), \
    logged AS (INSERT INTO attempts (event_seq, attempt, started_at, duration_ms, status_code, \
        error_class, error, response_body) \
        SELECT i.event_seq, i.attempt, i.started_at, i.duration_ms, i.status_code, \
        i.error_class, i.error, i.response_body FROM input i \
        JOIN moved m ON m.event_seq = i.event_seq AND m.lease_token = i.lease_token) \
    SELECT event_seq, lease_token, requeued FROM moved";

pub(super) async fn record(
    conn: &mut PgConnection,
    outcomes: &[AttemptOutcome],
) -> Result<Vec<Recorded>, StoreError> {
    fn column<'a, T>(
        outcomes: &'a [AttemptOutcome],
        f: impl Fn(&'a AttemptOutcome) -> T,
    ) -> Vec<T> {
        outcomes.iter().map(f).collect()
    }
    let due = |o: &AttemptOutcome| match o.next {
        NextStep::RetryAt(due) => Some(due.unix_micros()),
        NextStep::Delivered | NextStep::Failed => None,
    };
    let moved: Vec<(i64, String, bool)> = sqlx::query_as(RECORD)
        .bind(column(outcomes, |o| o.lease.delivery))
        .bind(column(outcomes, |o| o.lease.token.as_str()))
        .bind(column(outcomes, due))
        .bind(column(outcomes, |o| o.next == NextStep::Failed))
        .bind(column(outcomes, |o| i64::from(o.record.attempt)))
        .bind(column(outcomes, |o| o.record.started_at.unix_micros()))
        .bind(column(outcomes, |o| {
            i64::try_from(o.record.duration_ms).unwrap_or(i64::MAX)
        }))
        .bind(column(outcomes, |o| o.record.status_code.map(i64::from)))
        .bind(column(outcomes, |o| {
            o.record.error_class.map(ErrorClass::as_str)
        }))
        .bind(column(outcomes, |o| o.record.error.as_deref()))
        .bind(column(outcomes, |o| o.record.response_body.as_deref()))
        .fetch_all(conn)
        .await?;
    let moved: HashMap<(i64, String), bool> = moved
        .into_iter()
        .map(|(seq, token, requeued)| ((seq, token), requeued))
        .collect();
    Ok(outcomes
        .iter()
        .map(
            |o| match moved.get(&(o.lease.delivery, o.lease.token.clone())) {
                Some(true) => Recorded::Requeued,
                Some(false) => Recorded::Moved,
                None => Recorded::LeaseLost,
            },
        )
        .collect())
}
