//! The SQLite writes whose SQL is SQLite's own, run on the writer thread, each in its own
//! savepoint of the batch transaction.

use super::conn::{execute, query};
use crate::database::claimed_deliveries;
use crate::outbox::{AttemptOutcome, ClaimRequest, ClaimedDelivery, NextStep, Recorded};
use crate::rows::{self, Value};
use crate::{sql, StoreError};
use rusqlite::{params, Connection};
use verihook_core::id::random_token;
use verihook_core::{Customer, Event, Timestamp};

/// The delivery of the event just inserted (the writer thread is the only one writing on
/// this connection, so `last_insert_rowid()` is that event's `seq`).
const INSERT_DELIVERY: &str = "\
    INSERT INTO deliveries (event_seq, organization_id, due_at) \
    VALUES (last_insert_rowid(), $1, $2)";

/// The customer, then each event and its outbox entry, due at once.
pub(super) fn save_change(
    conn: &Connection,
    customer: &Customer,
    events: &[Event],
) -> Result<(), StoreError> {
    execute(conn, sql::UPSERT_CUSTOMER, &rows::customer_params(customer))?;
    for e in events {
        let event = [
            Value::text(e.id.as_str()),
            Value::text(e.organization_id.as_str()),
            Value::text(e.customer_id.as_str()),
            Value::text(e.event_type.as_str()),
            Value::time(e.occurred_at),
            Value::text(&e.body),
        ];
        execute(conn, sql::INSERT_EVENT, &event)?;
        let delivery = [
            Value::text(e.organization_id.as_str()),
            Value::time(e.occurred_at),
        ];
        execute(conn, INSERT_DELIVERY, &delivery)?;
    }
    Ok(())
}

/// Claims due deliveries: each organization's oldest first (an index seek per
/// organization, so a long backlog of one costs the others nothing), at most
/// `per_organization` of one minus those already in flight (`?2`, a JSON object of counts;
/// organizations at the limit are not even looked at), only where a webhook URL is set.
/// SQLite's LIMIT cannot depend on the row, so the candidates are ranked per organization
/// and cut at each one's headroom. (`?N` binds by number.)
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

/// One process is all there is: its clock is the clock.
pub(super) fn claim(
    conn: &Connection,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let token = random_token();
    let now = Timestamp::now().unix_micros();
    let lease = i64::try_from(request.lease.as_micros()).unwrap_or(i64::MAX);
    let in_flight: serde_json::Map<String, serde_json::Value> = request
        .in_flight
        .iter()
        .map(|(org, n)| (org.to_string(), (*n).into()))
        .collect();
    let in_flight = serde_json::Value::Object(in_flight).to_string();
    let claimed = conn
        .prepare_cached(CLAIM)?
        .query_map(
            params![
                now,
                in_flight,
                now.saturating_add(lease),
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
    let details = sql::CLAIMED_DETAILS.replace("{seqs}", "IN (SELECT value FROM json_each($1))");
    let details = query(conn, &details, &[Value::text(&seqs)])?;
    claimed_deliveries(claimed, &details, &token)
}

/// Moves the delivery on under its lease; if the lease holds but a redelivery was asked
/// for meanwhile, requeues it instead. Logs the attempt unless the lease was lost.
pub(super) fn record(conn: &Connection, o: &AttemptOutcome) -> Result<Recorded, StoreError> {
    let lease = [Value::int(o.lease.delivery), Value::text(&o.lease.token)];
    let moved = match o.next {
        NextStep::RetryAt(due) => {
            let [seq, token] = lease.clone();
            execute(
                conn,
                sql::RESCHEDULE_DELIVERY,
                &[Value::time(due), seq, token],
            )?
        }
        NextStep::Delivered | NextStep::Failed => execute(conn, sql::DELETE_DELIVERY, &lease)?,
    };
    let recorded = if moved > 0 {
        Recorded::Moved
    } else {
        let [seq, token] = lease.clone();
        let due = Value::time(o.record.ended_at());
        match execute(conn, sql::REQUEUE_AFTER_ATTEMPT, &[due, seq, token])? {
            0 => return Ok(Recorded::LeaseLost),
            _ => Recorded::Requeued,
        }
    };
    if recorded == Recorded::Moved && o.next == NextStep::Failed {
        execute(conn, sql::MARK_FAILED, &[Value::int(o.lease.delivery)])?;
    }
    let mut attempt = vec![Value::int(o.lease.delivery)];
    attempt.extend(rows::attempt_params(&o.record));
    execute(conn, sql::INSERT_ATTEMPT, &attempt)?;
    Ok(recorded)
}
