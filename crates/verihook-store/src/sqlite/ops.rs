//! The SQLite writes whose SQL is SQLite's own, run on the writer thread in its batch's
//! transaction (in a savepoint unless first in it: see `writer`).

use super::conn::{execute, query_each};
use crate::database::{claimed_deliveries, Claimed};
use crate::outbox::{AttemptOutcome, ClaimRequest, ClaimedDelivery, NextStep, Recorded};
use crate::rows::{self, Value};
use crate::{sql, StoreError};
use rusqlite::{params, Connection};
use std::collections::HashMap;
use verihook_core::id::random_token;
use verihook_core::{Customer, Event, Timestamp};

/// The deliveries of event `$1` (due `$2`): one per live, enabled endpoint of its
/// organization (`$3`) whose filter takes its type (`$4`); or, when the organization has
/// no endpoint at all, one parked for the endpoint it will have (see
/// [`sql::PARKED`]).
const INSERT_DELIVERIES: &str = "\
    INSERT INTO deliveries (event_seq, endpoint_seq, due_at) \
    SELECT $1, en.seq, $2 FROM endpoints en WHERE en.organization_id = $3 \
    AND en.deleted_at IS NULL AND NOT en.disabled \
    AND (en.event_types = '' OR instr(en.event_types, ',' || $4 || ',') > 0) \
    UNION ALL SELECT $1, 0, $2 WHERE NOT EXISTS (SELECT 1 FROM endpoints \
        WHERE organization_id = $3 AND deleted_at IS NULL)";

/// The customer, then each event and its outbox entries, due at once.
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
            Value::int(rows::sequence(e.sequence)),
            Value::text(&e.body),
        ];
        execute(conn, sql::INSERT_EVENT, &event)?;
        // The writer thread is the only one writing on this connection: the last rowid
        // is this event's `seq`.
        let delivery = [
            Value::int(conn.last_insert_rowid()),
            Value::time(e.occurred_at),
            Value::text(e.organization_id.as_str()),
            Value::text(e.event_type.as_str()),
        ];
        execute(conn, INSERT_DELIVERIES, &delivery)?;
    }
    Ok(())
}

/// The endpoints a claim looks at: live and enabled, with the id the sender's in-flight
/// counts name them by, those with nothing due (`?1`: now) left out. The earliest due
/// time is one descent of `deliveries_due_per_endpoint` within this statement, where a
/// seek of its own costs a statement run: most endpoints of many have nothing due.
const CLAIMABLE_ENDPOINTS: &str = "\
    SELECT seq, id FROM endpoints en WHERE deleted_at IS NULL AND NOT disabled \
    AND (SELECT MIN(d.due_at) FROM deliveries d WHERE d.endpoint_seq = en.seq) <= ?1";

/// One endpoint's oldest due deliveries: an index seek (`deliveries_due_per_endpoint`), so
/// a long backlog of one endpoint costs the others nothing. (`?N` binds by number.)
const DUE_AT_ENDPOINT: &str = "\
    SELECT event_seq, due_at, attempt, budget_used FROM deliveries \
    WHERE endpoint_seq = ?1 AND due_at <= ?2 ORDER BY due_at LIMIT ?3";

/// Leases one delivery by its key. Without `RETURNING` (the columns it would return were
/// read by the seek, in this transaction): SQLite runs `RETURNING` as a trigger, and a
/// statement with a trigger copies each page it changes to a statement journal first.
const LEASE: &str = "\
    UPDATE deliveries SET due_at = ?1, lease_token = ?2, requeued = FALSE \
    WHERE event_seq = ?3 AND endpoint_seq = ?4";

/// Claims due deliveries, oldest first: of each endpoint at most `per_endpoint` minus
/// those already in flight (endpoints at the limit are not even looked at), of live
/// endpoints only. The writer thread is the only one writing, in this transaction, so the
/// claim is a few keyed statements run from here rather than one statement that ranks
/// the candidates: that one (a window function over a subquery per endpoint, the
/// in-flight counts read from JSON, the picked keys matched by `IN`) cost ~500,000
/// instructions a claim, whatever it found. One process is all there is: its clock is
/// the clock.
pub(super) fn claim(
    conn: &Connection,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let now = Timestamp::now().unix_micros();
    let due = due_deliveries(conn, request, now)?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let token = random_token();
    let lease = i64::try_from(request.lease.as_micros()).unwrap_or(i64::MAX);
    let until = now.saturating_add(lease);
    let mut leasing = conn.prepare_cached(LEASE)?;
    let claimed = due
        .into_iter()
        .map(|claimed| {
            leasing.execute(params![until, token, claimed.0, claimed.1])?;
            Ok(claimed)
        })
        .collect::<Result<Vec<Claimed>, StoreError>>()?;
    // Each delivery's details by its key, one run of one statement each: cheaper than
    // one run that joins the keys passed as JSON (`json_each`), 18,000 instructions a row.
    let pairs = claimed.iter().map(|c| [Value::int(c.0), Value::int(c.1)]);
    let details = query_each(conn, &sql::ONE_CLAIMED_DETAILS, pairs)?;
    claimed_deliveries(claimed, details, &token)
}

/// The `limit` oldest due deliveries within each endpoint's headroom, oldest first.
fn due_deliveries(
    conn: &Connection,
    request: &ClaimRequest,
    now: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let mut seek = conn.prepare_cached(DUE_AT_ENDPOINT)?;
    let mut due: Vec<(Claimed, i64)> = Vec::new();
    for (endpoint, headroom) in with_headroom(conn, request, now)? {
        let found = seek.query_map(params![endpoint, now, headroom], |row| {
            Ok((
                (row.get(0)?, endpoint, row.get(2)?, row.get(3)?),
                row.get(1)?,
            ))
        })?;
        for delivery in found {
            due.push(delivery?);
        }
    }
    due.sort_unstable_by_key(|&((event, ..), due_at)| (due_at, event));
    due.truncate(usize::try_from(request.limit).unwrap_or(usize::MAX));
    Ok(due.into_iter().map(|(claimed, _)| claimed).collect())
}

/// The claimable endpoints with deliveries due and room for more attempts, by `seq`, each
/// with how many more the claim may take of it.
fn with_headroom(
    conn: &Connection,
    request: &ClaimRequest,
    now: i64,
) -> Result<Vec<(i64, u32)>, StoreError> {
    let busy: HashMap<&str, u32> = request
        .in_flight
        .iter()
        .map(|(endpoint, n)| (endpoint.as_str(), *n))
        .collect();
    let mut open = Vec::new();
    let mut endpoints = conn.prepare_cached(CLAIMABLE_ENDPOINTS)?;
    let mut rows = endpoints.query([now])?;
    while let Some(row) = rows.next()? {
        let id = row.get_ref(1)?.as_str().map_err(StoreError::corrupt)?;
        let running = busy.get(id).copied().unwrap_or(0);
        let headroom = request.per_endpoint.saturating_sub(running);
        if headroom > 0 {
            open.push((row.get(0)?, headroom.min(request.limit)));
        }
    }
    Ok(open)
}

/// Moves the delivery on under its lease; if the lease holds but a redelivery was asked
/// for meanwhile, requeues it instead. Logs the attempt unless the lease was lost.
pub(super) fn record(conn: &Connection, o: &AttemptOutcome) -> Result<Recorded, StoreError> {
    let lease = [
        Value::int(o.lease.event),
        Value::int(o.lease.endpoint),
        Value::text(&o.lease.token),
    ];
    let moved = match o.next {
        NextStep::RetryAt(due) => {
            let [event, endpoint, token] = lease.clone();
            execute(
                conn,
                sql::RESCHEDULE_DELIVERY,
                &[Value::time(due), event, endpoint, token],
            )?
        }
        NextStep::Delivered | NextStep::Failed => execute(conn, sql::DELETE_DELIVERY, &lease)?,
    };
    let recorded = if moved > 0 {
        Recorded::Moved
    } else {
        let [event, endpoint, token] = lease.clone();
        let due = Value::time(o.record.ended_at());
        match execute(
            conn,
            sql::REQUEUE_AFTER_ATTEMPT,
            &[due, event, endpoint, token],
        )? {
            0 => return Ok(Recorded::LeaseLost),
            _ => Recorded::Requeued,
        }
    };
    if recorded == Recorded::Moved && o.next == NextStep::Failed {
        let key = [Value::int(o.lease.endpoint), Value::int(o.lease.event)];
        execute(conn, sql::MARK_FAILED, &key)?;
    }
    let mut attempt = vec![Value::int(o.lease.event), Value::int(o.lease.endpoint)];
    attempt.extend(rows::attempt_params(&o.record));
    execute(conn, sql::INSERT_ATTEMPT, &attempt)?;
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of each of a claim's statements that reads the outbox: `(statement, step
    /// it must take)`.
    fn plans() -> Vec<(&'static str, &'static str)> {
        vec![
            (
                DUE_AT_ENDPOINT,
                "SEARCH deliveries USING INDEX deliveries_due_per_endpoint",
            ),
            (LEASE, "SEARCH deliveries USING PRIMARY KEY"),
            (
                CLAIMABLE_ENDPOINTS,
                "SEARCH d USING COVERING INDEX deliveries_due_per_endpoint",
            ),
            (
                &sql::ONE_CLAIMED_DETAILS,
                "SEARCH e USING INTEGER PRIMARY KEY",
            ),
            (
                &sql::ONE_CLAIMED_DETAILS,
                "SEARCH en USING INTEGER PRIMARY KEY",
            ),
        ]
    }

    /// A claim seeks each endpoint's due deliveries, and leases and reads each by its key:
    /// a scan of the outbox would cost every claim the whole backlog (seconds at a million
    /// waiting), one of the events every delivery all of them.
    #[test]
    fn a_claim_never_scans_the_outbox() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut conn = super::super::conn::open(&dir.path().join("plan.db")).expect("opened");
        super::super::migrate::run(&mut conn).expect("migrated");
        for (statement, step) in plans() {
            let mut plan = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
                .expect("planned");
            let zeros = vec![0; plan.parameter_count()];
            let steps: Vec<String> = plan
                .query_map(rusqlite::params_from_iter(zeros), |row| {
                    row.get::<_, String>("detail")
                })
                .expect("read")
                .collect::<Result<_, _>>()
                .expect("read");
            assert!(steps.iter().any(|s| s.starts_with(step)), "{steps:#?}");
            // The endpoints are each looked at by design; the outbox and the events never.
            let scans_a_big_table = |s: &String| {
                s.strip_prefix("SCAN ")
                    .and_then(|rest| rest.split(' ').next())
                    .is_some_and(|table| ["d", "deliveries", "e", "events"].contains(&table))
            };
            assert!(!steps.iter().any(scans_a_big_table), "{steps:#?}");
        }
    }
}
