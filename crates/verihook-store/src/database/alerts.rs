//! [`Alerts`], written once for every backend.

use super::health::insert_alert;
use super::{Backend, Database};
use crate::alerts::{Alerts, PendingAlert};
use crate::conn::Conn;
use crate::rows::Value;
use crate::sql;
use crate::writer::Lane;
use crate::StoreError;
use async_trait::async_trait;
use serde_json::json;
use verihook_core::Timestamp;

#[async_trait]
impl<B: Backend> Alerts for Database<B> {
    async fn claim_alerts(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingAlert>, StoreError> {
        self.write(Lane::Delivery, move |conn| {
            Box::pin(async move {
                let params = [
                    Value::time(lease_until),
                    Value::time(now),
                    Value::int(i64::from(limit)),
                ];
                let rows = conn.query(sql::CLAIM_ALERTS, &params).await?;
                rows.iter()
                    .map(|r| {
                        Ok(PendingAlert {
                            seq: r.int("seq")?,
                            kind: r.string("kind")?,
                            body: r.string("body")?,
                            attempts: u32::try_from(r.int("attempts")?).unwrap_or(u32::MAX),
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn alert_sent(&self, seq: i64) -> Result<(), StoreError> {
        self.write(Lane::Delivery, move |conn| {
            Box::pin(async move {
                conn.execute(sql::DELETE_ALERT, &[Value::int(seq)]).await?;
                Ok(())
            })
        })
        .await
    }

    async fn alert_failed(&self, seq: i64, retry_at: Timestamp) -> Result<(), StoreError> {
        self.write(Lane::Delivery, move |conn| {
            Box::pin(async move {
                let params = [Value::time(retry_at), Value::int(seq)];
                conn.execute(sql::RETRY_ALERT, &params).await?;
                Ok(())
            })
        })
        .await
    }

    async fn write_reminders(
        &self,
        now: Timestamp,
        alerted_before: Timestamp,
    ) -> Result<usize, StoreError> {
        self.write(Lane::Delivery, move |conn| {
            Box::pin(async move {
                let due = conn
                    .query(sql::REMINDERS_DUE, &[Value::time(alerted_before)])
                    .await?;
                for row in &due {
                    let seq = row.int("seq")?;
                    let body = json!({
                        "alert": "webhook.endpoint_failing",
                        "reminder": true,
                        "organizationId": row.string("organization_id")?,
                        "endpointId": row.string("id")?,
                        "url": row.string("url")?,
                        "eventId": row.opt_string("event_id")?,
                        "type": row.opt_string("event_type")?,
                        "failingSince": row.opt_int("failing_since")?
                            .map(|t| Timestamp::from_unix_micros(t).to_rfc3339()),
                        "failedEvents": row.int("failed_events")?,
                    });
                    insert_alert::<B>(conn, seq, "reminder", &body.to_string(), now).await?;
                    conn.execute(sql::REMINDED, &[Value::time(now), Value::int(seq)])
                        .await?;
                }
                Ok(due.len())
            })
        })
        .await
    }
}
