//! The partitions of `events` and `attempts` (migration 0018): ranges of the event's
//! `seq`, the same for both tables, named `events_<from>_<to>` and `attempts_<from>_<to>`.
//!
//! Each retention round, one node (an advisory lock) keeps them:
//! - the range after the one taking new events exists, so inserts never fall to the
//!   default partition;
//! - once the range taking new events holds one from before `cut_before` (the start of the
//!   week, UTC, so a range holds one week), the sequence jumps to the next range. The jump holds a lock
//!   that new inserts wait on for its few statements, so the sequence only ever moves
//!   forward;
//! - a range below the current one whose newest event occurred before the retention's
//!   cut-off and none of whose events is still in the outbox is dropped whole, with its
//!   failure records. Dropping a partition locks its parent briefly: the lock is asked for
//!   with a short timeout, and a busy round leaves it to the next.

use crate::lifecycle::Purged;
use crate::StoreError;
use sqlx::{Executor, PgConnection, PgPool, Row};
use verihook_core::Timestamp;

/// The width of a range: more than a week's events at most rates; a range that fills up
/// before its week ends hands over to the next on its own.
const WIDTH: i64 = 1 << 32;
/// Serializes maintenance across nodes: the others skip the round.
const ADVISORY_LOCK: i64 = 0x7665_7269_686f_6f6b;

/// A range of `seq`, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    from: i64,
    to: i64,
}

impl Range {
    fn parse(name: &str) -> Option<Self> {
        let (from, to) = name.strip_prefix("events_")?.split_once('_')?;
        Some(Self {
            from: from.parse().ok()?,
            to: to.parse().ok()?,
        })
    }

    fn table(self, base: &str) -> String {
        format!("{base}_{}_{}", self.from, self.to)
    }
}

/// One round: the ranges ahead, then each expired range dropped, each step a short
/// transaction of its own (a jump or a drop holds a lock that others wait on until it
/// commits); what it dropped.
pub(super) async fn maintain(
    pool: &PgPool,
    before: Timestamp,
    cut_before: Timestamp,
) -> Result<Purged, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut dropped = Purged::default();
    if !begin(&mut conn).await? {
        return Ok(dropped);
    }
    let prepared = prepare(&mut conn, cut_before).await;
    end(&mut conn, prepared.is_ok()).await?;
    prepared?;
    while begin(&mut conn).await? {
        let one = drop_one_expired(&mut conn, before).await;
        end(&mut conn, one.is_ok()).await?;
        let Some(purged) = one? else { break };
        dropped.events += purged.events;
        dropped.attempts += purged.attempts;
    }
    Ok(dropped)
}

/// Opens a transaction and takes the maintenance lock in it; `false` (and nothing open)
/// when another node holds the lock.
async fn begin(conn: &mut PgConnection) -> Result<bool, StoreError> {
    Executor::execute(&mut *conn, "BEGIN; SET LOCAL lock_timeout = '100ms'").await?;
    let ours: Result<bool, sqlx::Error> =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(ADVISORY_LOCK)
            .fetch_one(&mut *conn)
            .await;
    if !matches!(ours, Ok(true)) {
        Executor::execute(&mut *conn, "ROLLBACK").await?;
    }
    Ok(ours?)
}

async fn end(conn: &mut PgConnection, commit: bool) -> Result<(), StoreError> {
    let end = if commit { "COMMIT" } else { "ROLLBACK" };
    Executor::execute(&mut *conn, end).await?;
    Ok(())
}

/// Makes sure the range taking new events has one after it, and moves new events on to it
/// once the current range holds one from before `cut_before`.
async fn prepare(conn: &mut PgConnection, cut_before: Timestamp) -> Result<(), StoreError> {
    let ranges = ranges(conn).await?;
    let current = current(conn, &ranges).await?;
    if !ranges.iter().any(|r| r.from == current.to) {
        create(conn, current.to).await?;
    }
    if holds_older_than(conn, current, cut_before).await? {
        jump(conn, current.to).await?;
    }
    Ok(())
}

/// The range new events go to, opened (and the sequence moved to it) when there is none.
async fn current(conn: &mut PgConnection, ranges: &[Range]) -> Result<Range, StoreError> {
    let next = next_seq(conn).await?;
    if let Some(current) = ranges.iter().find(|r| r.from <= next && next < r.to) {
        return Ok(*current);
    }
    let from = ranges.last().map_or(next, |r| r.to.max(next));
    let opened = create(conn, from).await?;
    jump(conn, opened.from).await?;
    Ok(opened)
}

/// Drops the oldest range below the current one that has wholly expired; what it held,
/// or `None` when there is none.
async fn drop_one_expired(
    conn: &mut PgConnection,
    before: Timestamp,
) -> Result<Option<Purged>, StoreError> {
    let ranges = ranges(conn).await?;
    let current = current(conn, &ranges).await?;
    let below: Vec<Range> = ranges
        .into_iter()
        .filter(|r| r.to <= current.from)
        .collect();
    for range in below {
        if droppable(conn, range, before).await? {
            return drop_range(conn, range).await.map(Some);
        }
    }
    Ok(None)
}

/// The ranges there are, in order.
async fn ranges(conn: &mut PgConnection) -> Result<Vec<Range>, StoreError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'events'::regclass",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut ranges: Vec<Range> = names.iter().filter_map(|n| Range::parse(n)).collect();
    ranges.sort_by_key(|r| r.from);
    Ok(ranges)
}

/// The `seq` the next event will take.
async fn next_seq(conn: &mut PgConnection) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT last_value, is_called FROM events_seq_seq")
        .fetch_one(&mut *conn)
        .await?;
    let (last, called): (i64, bool) = (row.try_get(0)?, row.try_get(1)?);
    Ok(if called { last + 1 } else { last })
}

/// Creates the range from `from` in both tables.
async fn create(conn: &mut PgConnection, from: i64) -> Result<Range, StoreError> {
    let range = Range {
        from,
        to: from.saturating_add(WIDTH),
    };
    for base in ["events", "attempts"] {
        let statement = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF {base} FOR VALUES FROM ({}) TO ({})",
            range.table(base),
            range.from,
            range.to
        );
        Executor::execute(&mut *conn, statement.as_str()).await?;
    }
    tracing::info!(from = range.from, to = range.to, "event partition created");
    Ok(range)
}

/// Moves the sequence on to `to` (never back): new inserts wait on the lock while it
/// reads and sets, so none takes a value in between.
async fn jump(conn: &mut PgConnection, to: i64) -> Result<(), StoreError> {
    Executor::execute(&mut *conn, "LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE").await?;
    if next_seq(conn).await? < to {
        sqlx::query("SELECT setval('events_seq_seq', $1, false)")
            .bind(to)
            .execute(&mut *conn)
            .await?;
        tracing::info!(next = to, "new events go to the next partition");
    }
    Ok(())
}

/// Whether `range` holds an event that occurred before `cut_before`.
async fn holds_older_than(
    conn: &mut PgConnection,
    range: Range,
    cut_before: Timestamp,
) -> Result<bool, StoreError> {
    let query = format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE occurred_at < $1)",
        range.table("events")
    );
    Ok(sqlx::query_scalar(&query)
        .bind(cut_before.unix_micros())
        .fetch_one(&mut *conn)
        .await?)
}

/// Whether every event of `range` occurred before `before` and none is in the outbox.
async fn droppable(
    conn: &mut PgConnection,
    range: Range,
    before: Timestamp,
) -> Result<bool, StoreError> {
    let query = format!(
        "SELECT COALESCE((SELECT MAX(occurred_at) FROM {}) < $1, TRUE) \
         AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_seq >= $2 AND event_seq < $3)",
        range.table("events")
    );
    Ok(sqlx::query_scalar(&query)
        .bind(before.unix_micros())
        .bind(range.from)
        .bind(range.to)
        .fetch_one(&mut *conn)
        .await?)
}

/// Drops the range in both tables, and its failure records; what it held.
async fn drop_range(conn: &mut PgConnection, range: Range) -> Result<Purged, StoreError> {
    let count = |base: &str| format!("SELECT count(*) FROM {}", range.table(base));
    let events: i64 = sqlx::query_scalar(&count("events"))
        .fetch_one(&mut *conn)
        .await?;
    let attempts: i64 = sqlx::query_scalar(&count("attempts"))
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM failed_events WHERE event_seq >= $1 AND event_seq < $2")
        .bind(range.from)
        .bind(range.to)
        .execute(&mut *conn)
        .await?;
    let statement = format!(
        "DROP TABLE {}; DROP TABLE {}",
        range.table("attempts"),
        range.table("events")
    );
    Executor::execute(&mut *conn, statement.as_str()).await?;
    tracing::info!(
        from = range.from,
        to = range.to,
        events,
        "expired event partition dropped"
    );
    Ok(Purged {
        events: u64::try_from(events).unwrap_or(0),
        attempts: u64::try_from(attempts).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_names_round_trip() {
        let range = Range {
            from: 1,
            to: 134_217_729,
        };
        assert_eq!(Range::parse(&range.table("events")), Some(range));
        assert_eq!(Range::parse("events_default"), None);
        assert_eq!(Range::parse("events_0_x"), None);
    }
}
