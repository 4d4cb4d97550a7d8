//! An organization's first endpoint adopts the deliveries parked while it had none (see
//! [`sql::PARKED`]), a slice of the organization's events at a time. A million parked
//! deliveries adopted at once held the one writer for seconds (and every organization's
//! changes behind it); a slice holds it for tens of milliseconds. The first slice runs
//! in the endpoint's own transaction, so a small backlog is adopted with it; the rest is
//! taken by [`crate::outbox::Outbox::adopt_parked`], on every node until none is left, in
//! rounds that several adoptions share (see [`round`]). Where an adoption stands is the
//! endpoint's `adopt_from`, so a restart carries on.
//!
//! While its first endpoint lives, an organization's new events go to its endpoints and
//! none is parked: every parked delivery of an organization with a live endpoint is one
//! its adoption has yet to reach.

use super::Backend;
use crate::conn::Conn;
use crate::outbox::ADOPTION_SLICE as SLICE;
use crate::rows::{Row, Value};
use crate::sql;
use crate::StoreError;
use verihook_core::Endpoint;

/// At most this many adoptions share a round.
const ROUND: i64 = 16;

/// An adoption under way: the endpoint taking the parked deliveries, and the `seq` of its
/// organization's next event to look at.
pub(super) struct Adoption {
    endpoint: i64,
    organization: String,
    /// The endpoint's stored filter (`''`: every type).
    filter: String,
    /// A disabled endpoint takes nothing: the parked deliveries are dropped.
    disabled: bool,
    from: i64,
}

impl Adoption {
    /// The adoption of a new endpoint (`seq` its key), from the organization's first event.
    pub(super) fn starting(seq: i64, endpoint: &Endpoint) -> Self {
        Self {
            endpoint: seq,
            organization: endpoint.organization_id.as_str().to_owned(),
            filter: endpoint.event_types.to_stored(),
            disabled: endpoint.disabled,
            from: 0,
        }
    }

    /// The adoptions under way, those furthest behind first (at most [`ROUND`]), their
    /// endpoints' rows locked (PostgreSQL) so that nodes take rounds one after the other.
    pub(super) async fn under_way<B: Backend>(conn: &mut B::Conn) -> Result<Vec<Self>, StoreError> {
        let adopting = format!("{}{}", sql::ADOPTING_ENDPOINTS, B::LOCK_FOR_UPDATE);
        let rows = conn.query(&adopting, &[Value::int(ROUND)]).await?;
        rows.iter().map(Self::of_row).collect()
    }

    fn of_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            endpoint: row.int("seq")?,
            organization: row.string("organization_id")?,
            filter: row.string("event_types")?,
            disabled: row.int("disabled")? != 0,
            from: row.int("adopt_from")?,
        })
    }

    /// The `seq` of the last of the organization's next `share` events, and whether there
    /// were that many.
    async fn reach<C: Conn>(&self, conn: &mut C, share: i64) -> Result<Reach, StoreError> {
        let params = [
            Value::text(&self.organization),
            Value::int(self.from),
            Value::int(share),
        ];
        let found = conn.query(sql::ADOPTION_REACH, &params).await?;
        let found = found.first();
        let events = found.map(|r| r.int("n")).transpose()?.unwrap_or(0);
        let last = found.map(|r| r.opt_int("last")).transpose()?.flatten();
        Ok(Reach {
            last,
            full: events >= share,
        })
    }

    /// Adopts the parked deliveries of the events from `from` to `to` (drops those the
    /// filter refuses, or all if the endpoint is disabled); answers how many it took.
    async fn take<C: Conn>(&self, conn: &mut C, to: i64) -> Result<u64, StoreError> {
        let organization = Value::text(&self.organization);
        let (from, to) = (Value::int(self.from), Value::int(to));
        let mut adopted = 0;
        if !self.disabled {
            let params = [
                Value::int(self.endpoint),
                organization.clone(),
                Value::text(&self.filter),
                from.clone(),
                to.clone(),
            ];
            adopted = conn.execute(sql::ADOPT_PARKED, &params).await?;
        }
        // An endpoint that takes every type has adopted them all.
        if self.disabled || !self.filter.is_empty() {
            drop_parked(conn, organization, from, to).await?;
        }
        Ok(adopted)
    }

    /// Where the adoption stands: the next event to look at, or `None`: done.
    async fn mark<C: Conn>(&self, conn: &mut C, next: Option<i64>) -> Result<(), StoreError> {
        let endpoint = Value::int(self.endpoint);
        match next {
            Some(next) => {
                let params = [Value::int(next), endpoint];
                conn.execute(sql::ADOPTED_UP_TO, &params).await?
            }
            None => conn.execute(sql::ADOPTED_ALL, &[endpoint]).await?,
        };
        Ok(())
    }
}

/// Where an adoption's share of a round reaches.
struct Reach {
    /// The `seq` of its last event; `None`: none is left.
    last: Option<i64>,
    /// It has a full share: more may follow.
    full: bool,
}

/// One round of the `adoptions` (one transaction): each takes its organization's events up
/// to a `seq` common to all, the last of the first share to end, so that none takes more
/// than its share of a [`SLICE`]. Adoptions of organizations whose events interleave then
/// rewrite each page of the outbox once a round rather than once each: ten organizations'
/// backlogs adopted at once cost ~4.3 s of the writer in rounds, ~6.8 s one by one (a
/// million events; Python's `sqlite3` on this schema). Answers how many deliveries were
/// adopted: they are due.
pub(super) async fn round<C: Conn>(
    conn: &mut C,
    adoptions: &[Adoption],
) -> Result<u64, StoreError> {
    let share = (SLICE / i64::try_from(adoptions.len()).unwrap_or(SLICE)).max(1);
    let mut reaches = Vec::with_capacity(adoptions.len());
    for adoption in adoptions {
        reaches.push(adoption.reach(conn, share).await?);
    }
    let end = reaches
        .iter()
        .filter(|r| r.full)
        .filter_map(|r| r.last)
        .min()
        .unwrap_or(i64::MAX);
    let mut adopted = 0;
    for (adoption, reach) in adoptions.iter().zip(&reaches) {
        let next = match reach.last {
            // Ahead of the round's end: its turn comes in a later round.
            _ if adoption.from > end => continue,
            // Its organization's later events (stored since the endpoint was) went to its
            // endpoints: none of them is parked.
            None => None,
            Some(last) => {
                let to = last.min(end);
                adopted += adoption.take(conn, to).await?;
                (reach.full || last > end).then_some(to + 1)
            }
        };
        adoption.mark(conn, next).await?;
    }
    Ok(adopted)
}

/// Drops the parked deliveries an endpoint deleted during its adoption had yet to reach
/// (`from` on): they were its own, as if it had adopted them all at once.
pub(super) async fn abandon<C: Conn>(
    conn: &mut C,
    organization: &str,
    from: i64,
) -> Result<(), StoreError> {
    let (organization, from) = (Value::text(organization), Value::int(from));
    drop_parked(conn, organization, from, Value::int(i64::MAX)).await
}

/// Drops the organization's parked deliveries of the events from `from` to `to`.
async fn drop_parked<C: Conn>(
    conn: &mut C,
    organization: Value<'_>,
    from: Value<'_>,
    to: Value<'_>,
) -> Result<(), StoreError> {
    conn.execute(sql::DROP_PARKED, &[organization, from, to])
        .await?;
    Ok(())
}
