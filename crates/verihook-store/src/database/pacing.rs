//! Paced recovery (CONTRACT §9): once a tick, each endpoint holding recovered deliveries
//! has its pace decided on what it did since the last decision ([`Pace::next`]), and
//! that pace's share of its held deliveries let out, spread over the tick. The decision
//! is taken by one node: the endpoint's `paced_at` moves only where it has not moved
//! since the decision was read.

use super::{Backend, Database};
use crate::conn::Conn;
use crate::recoveries::{Pace, Since, PACE_TICK};
use crate::rows::{Row, Value};
use crate::sql;
use crate::writer::Lane;
use crate::StoreError;
use std::time::Duration;
use verihook_core::Timestamp;

/// A share is let out in this many slices over the tick, each due at once: smooth enough
/// for the receiver, and one claim a slice rather than one a delivery.
const SLICES: i64 = 10;
/// Waiting and coming deliveries are counted up to this (beyond it the pace is at its least anyway).
const WAITING_COUNTED: i64 = 10_000;

impl<B: Backend> Database<B> {
    /// Wakes no sender: the caller, the engine, forgets the next due time it knew first.
    /// Every node calls this each second and nearly always finds nothing to pace: the
    /// question is asked of a reader first, and only a yes takes a write.
    pub(super) async fn release_paced(&self) -> Result<u64, StoreError> {
        let due = self
            .read_one(sql::PACING_DUE, pacing_params(Timestamp::now()), |_| Ok(()))
            .await?;
        if due.is_none() {
            return Ok(0);
        }
        self.write(Lane::Delivery, move |conn| {
            Box::pin(async move { release_in::<B>(conn, Timestamp::now()).await })
        })
        .await
    }
}

/// An endpoint whose pace is to be decided, as read.
struct Pacing {
    seq: i64,
    pace: Pace,
    /// Since the last decision, or `None` when it is the first (or a stale one).
    elapsed: Option<Duration>,
    since: Since,
    /// Deliveries due by the end of the coming tick, retries among them: they take their
    /// part of the pace's share.
    coming: u32,
    /// When the last decision was taken, as read (the guard against a second node).
    paced_at: Option<i64>,
    /// Failures of attempts started up to this are already answered for.
    failure_mark: Option<i64>,
}

fn pacing(row: &Row, now: Timestamp) -> Result<Pacing, StoreError> {
    let paced_at = row.opt_int("paced_at")?;
    let elapsed = paced_at
        .map(|at| Duration::from_micros(u64::try_from(now.unix_micros() - at).unwrap_or(0)))
        .filter(|elapsed| *elapsed < Pace::STALE);
    let per_second = |column| -> Result<Option<u32>, StoreError> {
        Ok(row.opt_int(column)?.and_then(|n| u32::try_from(n).ok()))
    };
    let pace = match (elapsed, per_second("pace")?) {
        (Some(_), Some(pace)) => Pace {
            per_second: pace,
            ceiling: per_second("pace_ceiling")?,
        },
        _ => Pace::START,
    };
    let after = |column, mark: Option<i64>| -> Result<bool, StoreError> {
        let at = row.opt_int(column)?;
        Ok(elapsed.is_some() && at.is_some() && at > mark)
    };
    let (paced_failure, last_failure) = (
        row.opt_int("paced_failure")?,
        row.opt_int("last_failure_at")?,
    );
    let since = Since {
        failed: after("last_failure_at", paced_failure)?,
        succeeded: after("last_success_at", paced_at)?,
        waiting: u32::try_from(row.int("waiting")?).unwrap_or(u32::MAX),
    };
    Ok(Pacing {
        seq: row.int("seq")?,
        pace,
        elapsed,
        since,
        coming: u32::try_from(row.int("coming")?).unwrap_or(u32::MAX),
        paced_at,
        failure_mark: paced_failure.max(last_failure),
    })
}

/// [`sql::PACING_DUE`]'s parameters at `now`.
fn pacing_params(now: Timestamp) -> Vec<Value<'static>> {
    // A tenth of a tick early: a dispatcher a little ahead of its last tick still decides.
    let cut = now.unix_micros() - i64::try_from((PACE_TICK * 9 / 10).as_micros()).unwrap_or(0);
    vec![
        Value::int(cut),
        Value::time(now),
        Value::int(WAITING_COUNTED),
        Value::time(now.saturating_add(PACE_TICK)),
    ]
}

/// Decides the pace of each endpoint due for it and lets out its share; answers how many
/// deliveries were let out.
async fn release_in<B: Backend>(conn: &mut B::Conn, now: Timestamp) -> Result<u64, StoreError> {
    let rows = conn.query(sql::PACING_DUE, &pacing_params(now)).await?;
    let mut released = 0;
    for row in &rows {
        let endpoint = pacing(row, now)?;
        released += release_one::<B>(conn, &endpoint, now).await?;
    }
    Ok(released)
}

async fn release_one<B: Backend>(
    conn: &mut B::Conn,
    endpoint: &Pacing,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let pace = match endpoint.elapsed {
        Some(_) => endpoint.pace.next(endpoint.since),
        None => endpoint.pace,
    };
    // Attempts of the tick after a decrease were let out (or retried) at the pace before
    // it: their failures say nothing new, and must not halve the pace again, and again.
    let failure_mark = if pace.per_second < endpoint.pace.per_second {
        Some(now.saturating_add(PACE_TICK).unix_micros())
    } else {
        endpoint.failure_mark
    };
    let decided = [
        Value::int(i64::from(pace.per_second)),
        Value::time(now),
        Value::int(endpoint.seq),
        Value::int(endpoint.paced_at.unwrap_or(i64::MIN)),
        Value::Int(pace.ceiling.map(i64::from)),
        Value::Int(failure_mark),
    ];
    if conn.execute(sql::PACE_DECIDED, &decided).await? == 0 {
        return Ok(0); // another node decided it meanwhile
    }
    let share = pace.share(endpoint.elapsed.unwrap_or(PACE_TICK), endpoint.coming);
    if share == 0 {
        return Ok(0);
    }
    let slice = i64::try_from(PACE_TICK.as_micros()).unwrap_or(0) / SLICES;
    let params = [
        Value::int(endpoint.seq),
        Value::time(now),
        Value::int(slice),
        Value::int(i64::from(share)),
        Value::int(SLICES),
    ];
    conn.execute(sql::RELEASE_HELD, &params).await
}
