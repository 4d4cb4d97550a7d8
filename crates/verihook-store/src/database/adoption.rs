//! An organization's first endpoint adopts the deliveries parked while it had none (see
//! [`sql::PARKED`]), a slice of the organization's events at a time. A million parked
//! deliveries adopted at once held the one writer for seconds (and every organization's
//! changes behind it); a slice holds it for tens of milliseconds. The first slice runs
//! in the endpoint's own transaction, so a small backlog is adopted with it; the rest is
//! taken by [`crate::outbox::Outbox::adopt_parked`], on every node until none is left.
//! Where an adoption stands is the endpoint's `adopt_from`, so a restart carries on.
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

    /// The next adoption under way, its endpoint's row locked; `None`: none is.
    pub(super) async fn next<B: Backend>(conn: &mut B::Conn) -> Result<Option<Self>, StoreError> {
        let adopting = format!("{}{}", sql::ADOPTING_ENDPOINT, B::LOCK_FOR_UPDATE);
        let rows = conn.query(&adopting, &[]).await?;
        rows.first().map(Self::of_row).transpose()
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

    /// Adopts the parked deliveries of the next slice of events (drops those the filter
    /// refuses, or all if the endpoint is disabled) and moves the mark past it, or clears
    /// it when this was the last slice. Answers how many deliveries the endpoint took:
    /// they are due.
    pub(super) async fn slice<C: Conn>(&self, conn: &mut C) -> Result<u64, StoreError> {
        let organization = Value::text(&self.organization);
        let slice = [
            organization.clone(),
            Value::int(self.from),
            Value::int(SLICE),
        ];
        let found = conn.query(sql::ADOPTION_SLICE, &slice).await?;
        let found = found.first();
        let events = found.map(|r| r.int("n")).transpose()?.unwrap_or(0);
        let last = found.map(|r| r.opt_int("last")).transpose()?.flatten();
        let mut adopted = 0;
        if let Some(last) = last {
            let (from, last) = (Value::int(self.from), Value::int(last));
            if !self.disabled {
                let params = [
                    Value::int(self.endpoint),
                    organization.clone(),
                    Value::text(&self.filter),
                    from.clone(),
                    last.clone(),
                ];
                adopted = conn.execute(sql::ADOPT_PARKED, &params).await?;
            }
            // An endpoint that takes every type has adopted them all.
            if self.disabled || !self.filter.is_empty() {
                conn.execute(sql::DROP_PARKED, &[organization, from, last])
                    .await?;
            }
        }
        // A slice short of full was the last: the organization's later events (stored
        // since the endpoint was) went to its endpoints.
        let endpoint = Value::int(self.endpoint);
        match last {
            Some(last) if events >= SLICE => {
                let next = Value::int(last + 1);
                conn.execute(sql::ADOPTED_UP_TO, &[next, endpoint]).await?
            }
            _ => conn.execute(sql::ADOPTED_ALL, &[endpoint]).await?,
        };
        Ok(adopted)
    }
}

/// Drops the parked deliveries an endpoint deleted during its adoption had yet to reach
/// (`from` on): they were its own, as if it had adopted them all at once.
pub(super) async fn abandon<C: Conn>(
    conn: &mut C,
    organization: &str,
    from: i64,
) -> Result<(), StoreError> {
    let params = [
        Value::text(organization),
        Value::int(from),
        Value::int(i64::MAX),
    ];
    conn.execute(sql::DROP_PARKED, &params).await?;
    Ok(())
}
