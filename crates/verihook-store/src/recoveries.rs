//! Bulk recovery (CONTRACT §9): every event that failed in a window (at one endpoint, or
//! any; of one type, or any) redelivered once with a fresh budget, paced per endpoint, with
//! its progress readable from any node.

use crate::StoreError;
use async_trait::async_trait;
use verihook_core::{EndpointId, EventType, OrganizationId, RecoveryId, Timestamp};

/// Deliveries of a recovery falling due each second at each endpoint.
pub const PACE_PER_ENDPOINT: u32 = 50;

/// What to recover: the organization's events that occurred in `since..=until` and are
/// failed now.
#[derive(Debug, Clone)]
pub struct RecoveryRequest {
    pub id: RecoveryId,
    pub organization: OrganizationId,
    pub since: Timestamp,
    pub until: Timestamp,
    pub endpoint: Option<EndpointId>,
    pub event_type: Option<EventType>,
    /// Started by the engine for an endpoint that came back (`autoRecover`).
    pub automatic: bool,
    pub created_at: Timestamp,
}

/// A recovery with its progress: `pending` items are in the outbox, `failed` ones failed
/// again, the rest were delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub id: RecoveryId,
    pub since: Timestamp,
    pub until: Timestamp,
    pub endpoint: Option<EndpointId>,
    pub event_type: Option<EventType>,
    pub automatic: bool,
    pub created_at: Timestamp,
    pub total: u64,
    pub delivered: u64,
    pub failed: u64,
    pub pending: u64,
}

impl Recovery {
    pub fn is_completed(&self) -> bool {
        self.pending == 0
    }
}

#[async_trait]
pub trait Recoveries: Send + Sync + 'static {
    /// Takes the failed events of the request and puts each back in the outbox, at most
    /// `per_second` falling due each second at each endpoint. `NotFound` when the endpoint
    /// named is not the organization's.
    async fn start_recovery(
        &self,
        request: &RecoveryRequest,
        per_second: u32,
    ) -> Result<Recovery, StoreError>;
    async fn recovery(
        &self,
        organization: &OrganizationId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError>;
    /// The organization's newest `limit` recoveries, newest first.
    async fn recoveries(
        &self,
        organization: &OrganizationId,
        limit: u32,
    ) -> Result<Vec<Recovery>, StoreError>;
}
