//! Probes of failing endpoints (CONTRACT §9, `autoRecover`), claimed like deliveries.

use super::health::{micros, FIRST_PROBE, LAST_PROBE, PROBE_TOKEN};
use super::{claimed_deliveries, Backend, Database};
use crate::conn::Conn;
use crate::outbox::ClaimedDelivery;
use crate::rows::Value;
use crate::sql;
use crate::writer::Lane;
use crate::StoreError;
use std::time::Duration;
use verihook_core::id::random_token;
use verihook_core::Timestamp;

/// A probe's budget: past any schedule's last wait, so its one attempt is its last.
const PROBE_BUDGET: i64 = 1_000_000;

impl<B: Backend> Database<B> {
    pub(super) async fn probes(
        &self,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // Every node asks every few seconds and nearly always finds no probe due: a reader
        // answers that, and only a yes takes a write.
        let due = self
            .read_one(sql::PROBES_DUE, probes_params(Timestamp::now(), 1), |_| {
                Ok(())
            })
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let probes = self
            .write(Lane::Delivery, move |conn| {
                Box::pin(async move { claim_probes::<B>(conn, lease, limit).await })
            })
            .await?;
        self.secrets_opened(probes)
    }
}

/// [`sql::PROBES_DUE`]'s parameters: due at `now`, at most `limit`.
fn probes_params(now: Timestamp, limit: u32) -> Vec<Value<'static>> {
    vec![Value::time(now), Value::int(i64::from(limit))]
}

async fn claim_probes<B: Backend>(
    conn: &mut B::Conn,
    lease: Duration,
    limit: u32,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let now = Timestamp::now();
    let due = conn
        .query(sql::PROBES_DUE, &probes_params(now, limit))
        .await?;
    let token = format!("{PROBE_TOKEN}{}", random_token());
    let mut claimed = Vec::new();
    for row in &due {
        let (endpoint, Some(event)) = (row.int("seq")?, row.opt_int("event_seq")?) else {
            continue;
        };
        let every = row.opt_int("probe_every")?.unwrap_or(micros(FIRST_PROBE));
        let next = [
            Value::int(now.unix_micros().saturating_add(every.saturating_mul(2))),
            Value::int(every.saturating_mul(2).min(micros(LAST_PROBE))),
            Value::int(endpoint),
            Value::time(now),
        ];
        if conn.execute(sql::NEXT_PROBE, &next).await? == 0 {
            continue; // another node probes it
        }
        let params = [
            Value::int(event),
            Value::int(endpoint),
            Value::int(PROBE_BUDGET),
            Value::time(now.saturating_add(lease)),
            Value::text(&token),
        ];
        let inserted = conn.query(sql::INSERT_PROBE, &params).await?;
        let Some(attempt) = inserted.first().map(|r| r.int("attempt")).transpose()? else {
            continue; // already back in the outbox
        };
        let rows = conn
            .query(
                &sql::ONE_CLAIMED_DETAILS,
                &[Value::int(event), Value::int(endpoint)],
            )
            .await?;
        claimed.extend(claimed_deliveries(
            vec![(event, endpoint, attempt, PROBE_BUDGET)],
            rows,
            &token,
        )?);
    }
    Ok(claimed)
}
