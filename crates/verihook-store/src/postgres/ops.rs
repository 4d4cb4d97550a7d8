//! The PostgreSQL writes whose SQL is PostgreSQL's own: each is one statement (one round
//! trip), since on a server round trips are what a batch costs.

use super::channel;
use super::conn::{bind_columns, rows};
use crate::database::{claimed_deliveries, Change, Claimed};
use crate::outbox::{AttemptOutcome, ClaimRequest, ClaimedDelivery, NextStep, Recorded};
use crate::rows::{customer_params, sequence, Value};
use crate::{sql, StoreError};
use sqlx::PgConnection;
use std::collections::HashMap;
use std::sync::LazyLock;
use verihook_core::id::random_token;
use verihook_core::{ErrorClass, Event};

/// The customers (each inserted, or updated in every column but its identity and order),
/// their events and the events' outbox entries (one per live, enabled endpoint of the
/// organization whose filter takes the event's type, or one parked when it has no
/// endpoint: see `sql::PARKED`), and the wake-up of every node, in one statement
/// (data-modifying CTEs) however many customers a batch brings. `$1`–`$18` are the
/// customers' columns, `$19`–`$25` the events', each an array.
static SAVE_CHANGES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH customer AS ({} SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
            $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
            $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
            $16::bigint[], $17::bigint[], $18::bigint[]) {}), \
         event AS (INSERT INTO events (id, organization_id, customer_id, event_type, \
            occurred_at, sequence, body) \
            SELECT * FROM UNNEST($19::text[], $20::text[], $21::text[], $22::text[], \
            $23::bigint[], $24::bigint[], $25::text[]) RETURNING seq, organization_id, event_type, occurred_at), \
         delivery AS (INSERT INTO deliveries (event_seq, endpoint_seq, due_at) \
            SELECT ev.seq, en.seq, ev.occurred_at FROM event ev JOIN endpoints en \
            ON en.organization_id = ev.organization_id AND en.deleted_at IS NULL \
            AND NOT en.disabled AND (en.event_types = '' \
                OR strpos(en.event_types, ',' || ev.event_type || ',') > 0) \
            UNION ALL SELECT ev.seq, 0, ev.occurred_at FROM event ev WHERE NOT EXISTS ( \
                SELECT 1 FROM endpoints en WHERE en.organization_id = ev.organization_id \
                AND en.deleted_at IS NULL)) \
         SELECT pg_notify('{}', current_setting('application_name')) \
         WHERE cardinality($19::text[]) > 0",
        sql::customer_columns!(),
        sql::customer_upserted!(),
        channel!()
    )
});

pub(super) async fn save_changes(
    conn: &mut PgConnection,
    changes: &[Change<'_>],
) -> Result<(), StoreError> {
    let customers: Vec<Vec<Value>> = changes.iter().map(|(c, _)| customer_params(c)).collect();
    let events: Vec<&Event> = changes.iter().flat_map(|(_, events)| *events).collect();
    let column = |f: fn(&Event) -> &str| events.iter().map(|e| f(e)).collect::<Vec<&str>>();
    bind_columns(sqlx::query(&SAVE_CHANGES), &customers)
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
        .bind(
            events
                .iter()
                .map(|e| sequence(e.sequence))
                .collect::<Vec<i64>>(),
        )
        .bind(column(|e| e.body.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}

/// Claims due deliveries: each endpoint's oldest first (an index seek per endpoint, so a
/// long backlog of one costs the others nothing), at most `per_endpoint` of one minus
/// those this sender has in flight (`$1`, `$2`; endpoints at the limit are not looked
/// at), of live endpoints only, and none another node has locked. Due and lease times are the database's clock
/// (`clock`), so nodes whose clocks disagree never hold one delivery at once.
const CLAIM: &str = "\
    WITH clock AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint AS now), \
    busy AS (SELECT * FROM UNNEST($1::text[], $2::bigint[]) AS b(endpoint_id, n)), \
    picked AS ( \
        SELECT d.event_seq, d.endpoint_seq, d.due_at FROM endpoints en \
        LEFT JOIN busy b ON b.endpoint_id = en.id \
        CROSS JOIN LATERAL ( \
            SELECT d2.event_seq, d2.endpoint_seq, d2.due_at FROM deliveries d2 \
            WHERE d2.endpoint_seq = en.seq AND d2.due_at <= (SELECT now FROM clock) \
            ORDER BY d2.due_at LIMIT GREATEST($4 - COALESCE(b.n, 0), 0) \
            FOR UPDATE SKIP LOCKED) d \
        WHERE en.deleted_at IS NULL AND NOT en.disabled AND COALESCE(b.n, 0) < $4 \
        ORDER BY d.due_at LIMIT $5 \
    ) \
    UPDATE deliveries d SET due_at = (SELECT now FROM clock) + $3, lease_token = $6, \
    requeued = FALSE FROM picked p \
    WHERE d.event_seq = p.event_seq AND d.endpoint_seq = p.endpoint_seq \
    RETURNING d.event_seq, d.endpoint_seq, d.attempt, d.budget_used";

pub(super) async fn claim(
    conn: &mut PgConnection,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let token = random_token();
    let lease = i64::try_from(request.lease.as_micros()).unwrap_or(i64::MAX);
    let (busy, running): (Vec<&str>, Vec<i64>) = request
        .in_flight
        .iter()
        .map(|(endpoint, n)| (endpoint.as_str(), i64::from(*n)))
        .unzip();
    let claimed: Vec<Claimed> = sqlx::query_as(CLAIM)
        .bind(&busy)
        .bind(&running)
        .bind(lease)
        .bind(i64::from(request.per_endpoint))
        .bind(i64::from(request.limit))
        .bind(&token)
        .fetch_all(&mut *conn)
        .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let (events, endpoints): (Vec<i64>, Vec<i64>) = claimed.iter().map(|c| (c.0, c.1)).unzip();
    // The `ANY` keeps the events' side an index lookup: a generic plan, made while the
    // table was small, otherwise joins the pairs to a scan of every event (measured: 0.38
    // against 0.013 ms a claim after a few thousand events).
    let details = format!(
        "{} WHERE e.seq = ANY($1)",
        sql::CLAIMED_DETAILS.replace(
            "{pairs}",
            "UNNEST($1::bigint[], $2::bigint[]) AS p(event_seq, endpoint_seq)",
        )
    );
    let details = sqlx::query(&details)
        .bind(&events)
        .bind(&endpoints)
        .fetch_all(&mut *conn)
        .await?;
    claimed_deliveries(claimed, rows(&details)?, &token)
}

/// Attempts' outcomes in one statement: move each delivery on under its lease (delete it,
/// or reschedule it where a due time is given; make it due at once with a fresh budget
/// where a redelivery was asked for meanwhile), mark finally failed events, log the
/// attempts. Answers the leases whose deliveries moved, and whether each was requeued; a
/// lost lease moves and logs nothing, even beside the outcome of the lease that replaced
/// it in the same batch. A failed event's organization is its endpoint's: reading it from
/// `events` would make this generic plan open every partition of that table, each time.
const RECORD: &str = "\
    WITH input AS (SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], \
        $5::bool[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], \
        $11::text[], $12::text[]) AS i(event_seq, endpoint_seq, lease_token, due_at, failed, \
        attempt, started_at, duration_ms, status_code, error_class, error, response_body)), \
    finished AS (DELETE FROM deliveries d USING input i \
        WHERE d.event_seq = i.event_seq AND d.endpoint_seq = i.endpoint_seq \
        AND d.lease_token = i.lease_token AND i.due_at IS NULL AND NOT d.requeued \
        RETURNING d.event_seq, d.endpoint_seq, i.lease_token), \
    rescheduled AS (UPDATE deliveries d SET due_at = i.due_at, attempt = d.attempt + 1, \
        budget_used = d.budget_used + 1, lease_token = NULL FROM input i \
        WHERE d.event_seq = i.event_seq AND d.endpoint_seq = i.endpoint_seq \
        AND d.lease_token = i.lease_token AND i.due_at IS NOT NULL AND NOT d.requeued \
        RETURNING d.event_seq, d.endpoint_seq, i.lease_token), \
    requeued AS (UPDATE deliveries d SET due_at = i.started_at + i.duration_ms * 1000, \
        attempt = d.attempt + 1, budget_used = 0, lease_token = NULL, requeued = FALSE \
        FROM input i WHERE d.event_seq = i.event_seq AND d.endpoint_seq = i.endpoint_seq \
        AND d.lease_token = i.lease_token AND d.requeued \
        RETURNING d.event_seq, d.endpoint_seq, i.lease_token), \
    moved AS (SELECT event_seq, endpoint_seq, lease_token, FALSE AS requeued FROM finished \
        UNION ALL SELECT event_seq, endpoint_seq, lease_token, FALSE FROM rescheduled \
        UNION ALL SELECT event_seq, endpoint_seq, lease_token, TRUE FROM requeued), \
    failed AS (INSERT INTO failed_events (event_seq, endpoint_seq, organization_id) \
        SELECT f.event_seq, f.endpoint_seq, en.organization_id FROM finished f \
        JOIN endpoints en ON en.seq = f.endpoint_seq \
        JOIN input i ON i.event_seq = f.event_seq AND i.endpoint_seq = f.endpoint_seq \
        AND i.lease_token = f.lease_token \
        WHERE i.failed ON CONFLICT (event_seq, endpoint_seq) DO NOTHING), \
    logged AS (INSERT INTO attempts (event_seq, endpoint_seq, attempt, started_at, duration_ms, \
        status_code, error_class, error, response_body) \
        SELECT i.event_seq, i.endpoint_seq, i.attempt, i.started_at, i.duration_ms, \
        i.status_code, i.error_class, i.error, i.response_body FROM input i \
        JOIN moved m ON m.event_seq = i.event_seq AND m.endpoint_seq = i.endpoint_seq \
        AND m.lease_token = i.lease_token) \
    SELECT event_seq, endpoint_seq, lease_token, requeued FROM moved";

/// Records the outcomes, then once more those whose lease seemed lost. A redelivery
/// asked for while [`RECORD`] ran commits `requeued` on a row the statement's snapshot saw
/// unflagged: the `finished`/`rescheduled` branches then skip the row on their re-check
/// (`NOT requeued`) and the `requeued` branch never saw it. A second statement takes a
/// fresh snapshot, so such a row is found by the `requeued` branch; a lease truly lost
/// stays lost. Rare, so it costs nothing on the hot path.
pub(super) async fn record(
    conn: &mut PgConnection,
    outcomes: &[AttemptOutcome],
) -> Result<Vec<Recorded>, StoreError> {
    let mut recorded = record_once(conn, outcomes).await?;
    let lost: Vec<usize> = (0..recorded.len())
        .filter(|&i| recorded[i] == Recorded::LeaseLost)
        .collect();
    if lost.is_empty() {
        return Ok(recorded);
    }
    let retry: Vec<AttemptOutcome> = lost.iter().map(|&i| outcomes[i].clone()).collect();
    for (i, again) in lost.into_iter().zip(record_once(conn, &retry).await?) {
        recorded[i] = again;
    }
    Ok(recorded)
}

async fn record_once(
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
    let moved: Vec<(i64, i64, String, bool)> = sqlx::query_as(RECORD)
        .bind(column(outcomes, |o| o.lease.event))
        .bind(column(outcomes, |o| o.lease.endpoint))
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
    let moved: HashMap<(i64, i64, String), bool> = moved
        .into_iter()
        .map(|(event, endpoint, token, requeued)| ((event, endpoint, token), requeued))
        .collect();
    Ok(outcomes
        .iter()
        .map(
            |o| match moved.get(&(o.lease.event, o.lease.endpoint, o.lease.token.clone())) {
                Some(true) => Recorded::Requeued,
                Some(false) => Recorded::Moved,
                None => Recorded::LeaseLost,
            },
        )
        .collect())
}
