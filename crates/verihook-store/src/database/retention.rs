//! [`Retention`], written once for every backend: expired events go in small batches,
//! each one short write among the API's (see [`crate::lifecycle`]).

use super::{Backend, Database};
use crate::conn::Conn;
use crate::lifecycle::{Purged, Retention};
use crate::rows::Value;
use crate::writer::Lane;
use crate::StoreError;
use async_trait::async_trait;
use verihook_core::Timestamp;

/// The oldest expired events (`$1` the cut-off) with no delivery left in the outbox, at
/// most `$2`; the backend's lock clause may follow (two nodes' purges take different rows).
const EXPIRED: &str = "\
    SELECT e.seq FROM events e WHERE e.occurred_at < $1 \
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq) \
    ORDER BY e.occurred_at LIMIT $2";

#[async_trait]
impl<B: Backend> Retention for Database<B> {
    async fn purge_expired(&self, before: Timestamp, batch: u32) -> Result<Purged, StoreError> {
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let params = [Value::time(before), Value::int(i64::from(batch))];
                let select = format!("{EXPIRED}{}", B::LOCK_SKIP_LOCKED);
                let rows = conn.query(&select, &params).await?;
                let seqs = rows
                    .iter()
                    .map(|r| r.int("seq").map(|s| s.to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                if seqs.is_empty() {
                    return Ok(Purged::default());
                }
                // Integers the database gave: safe to write into the statement.
                let list = seqs.join(",");
                let attempts = conn
                    .execute(
                        &format!("DELETE FROM attempts WHERE event_seq IN ({list})"),
                        &[],
                    )
                    .await?;
                let failed = format!("DELETE FROM failed_events WHERE event_seq IN ({list})");
                conn.execute(&failed, &[]).await?;
                let events = conn
                    .execute(&format!("DELETE FROM events WHERE seq IN ({list})"), &[])
                    .await?;
                Ok(Purged { events, attempts })
            })
        })
        .await
    }

    async fn maintain(
        &self,
        before: Timestamp,
        cut_before: Timestamp,
    ) -> Result<Purged, StoreError> {
        self.backend.maintain_partitions(before, cut_before).await
    }

    async fn reclaim_space(&self, pages: u32) -> Result<(), StoreError> {
        let Some(reclaim) = B::RECLAIM_SPACE else {
            return Ok(());
        };
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                conn.query(&format!("{reclaim}({pages})"), &[]).await?;
                Ok(())
            })
        })
        .await
    }
}
