//! The operator's alerts (CONTRACT §9): one per incident, written with the outcome that
//! opened or closed it (see `database/health.rs`), sent by each node's alert sender.

use crate::StoreError;
use async_trait::async_trait;
use verihook_core::Timestamp;

/// An alert to send: its body is the JSON the operator's URL receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAlert {
    pub seq: i64,
    /// `webhook.endpoint_failing` or `webhook.endpoint_recovered`.
    pub kind: String,
    pub body: String,
    /// Counting this one.
    pub attempts: u32,
}

#[async_trait]
pub trait Alerts: Send + Sync + 'static {
    /// Up to `limit` alerts due at `now`, leased until `lease_until`.
    async fn claim_alerts(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingAlert>, StoreError>;
    /// The operator's URL took it.
    async fn alert_sent(&self, seq: i64) -> Result<(), StoreError>;
    /// Try again at `retry_at`.
    async fn alert_failed(&self, seq: i64, retry_at: Timestamp) -> Result<(), StoreError>;
    /// A reminder for each endpoint still failing whose last alert is older than
    /// `alerted_before`, with the count so far; answers how many.
    async fn write_reminders(
        &self,
        now: Timestamp,
        alerted_before: Timestamp,
    ) -> Result<usize, StoreError>;
}
