//! [`Outbox`], written once for every backend; claiming and recording are the backend's
//! own (`Backend::claim`, `Backend::record`).

use super::{announce, Backend, Database};
use crate::conn::Conn;
use crate::outbox::{
    AttemptOutcome, ClaimRequest, ClaimedDelivery, Lease, NextStep, Outbox, Recorded,
};
use crate::repository::Scope;
use crate::rows::Value;
use crate::sql;
use crate::writer::Lane;
use crate::StoreError;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use verihook_core::{EventId, OrganizationId, Timestamp};

#[async_trait]
impl<B: Backend> Outbox for Database<B> {
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.write_shaped(Lane::Delivery, B::CLAIM, move |conn| {
            Box::pin(async move { B::claim(conn, &request).await })
        })
        .await
    }

    async fn record(&self, outcomes: Vec<AttemptOutcome>) -> Result<Vec<Recorded>, StoreError> {
        let retry = outcomes
            .iter()
            .any(|o| matches!(o.next, NextStep::RetryAt(_)));
        let recorded = self.backend.writer().record(outcomes).await?;
        if retry || recorded.contains(&Recorded::Requeued) {
            // The sender sleeps until the earliest due time; a retry may be earlier, and a
            // requeued delivery is due now.
            self.deliveries_due();
        }
        Ok(recorded)
    }

    async fn release(&self, leases: Vec<Lease>, now: Timestamp) -> Result<(), StoreError> {
        self.write(Lane::Delivery, move |conn| {
            Box::pin(async move {
                for lease in &leases {
                    let params = [
                        Value::time(now),
                        Value::int(lease.delivery),
                        Value::text(&lease.token),
                    ];
                    conn.execute(sql::RELEASE_DELIVERY, &params).await?;
                }
                announce::<B>(conn).await
            })
        })
        .await
    }

    async fn requeue(
        &self,
        scope: Scope<'_>,
        id: &EventId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let organization = scope.organization().cloned();
        let id = id.clone();
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let params = [
                    Value::text(id.as_str()),
                    Value::opt_text(organization.as_ref().map(OrganizationId::as_str)),
                ];
                let rows = conn.query(sql::EVENT_OWNER, &params).await?;
                let row = rows.first().ok_or(StoreError::NotFound)?;
                let (owner, seq) = (row.string("organization_id")?, row.int("seq")?);
                let params = [Value::int(seq), Value::text(&owner), Value::time(now)];
                conn.execute(sql::REQUEUE_DELIVERY, &params).await?;
                conn.execute(sql::UNMARK_FAILED, &[Value::int(seq)]).await?;
                announce::<B>(conn).await
            })
        })
        .await?;
        self.deliveries_due();
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let due = self
            .read_one(sql::NEXT_DUE, Vec::new(), |r| r.opt_int("due"))
            .await?;
        Ok(due.flatten().map(Timestamp::from_unix_micros))
    }

    async fn size(&self) -> Result<u64, StoreError> {
        let n = self
            .read_one(sql::OUTBOX_SIZE, Vec::new(), |r| r.int("n"))
            .await?
            .unwrap_or(0);
        u64::try_from(n).map_err(StoreError::corrupt)
    }

    async fn lag(&self, per_organization: u32) -> Result<Duration, StoreError> {
        let now = Timestamp::now();
        let params = vec![Value::time(now), Value::int(i64::from(per_organization))];
        let oldest = self
            .read_one(sql::OLDEST_DUE, params, |r| r.opt_int("oldest"))
            .await?
            .flatten();
        let behind = oldest.map_or(0, |oldest| now.unix_micros().saturating_sub(oldest));
        Ok(Duration::from_micros(u64::try_from(behind).unwrap_or(0)))
    }

    fn work_signal(&self) -> Arc<Notify> {
        self.work.clone()
    }
}
