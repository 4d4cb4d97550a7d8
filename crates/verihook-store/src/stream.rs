//! The event stream's reads (CONTRACT §10, `GET /v1/events/stream`): an organization's
//! events in the order they became visible to every reader, from a position that a
//! client can resume from (the last event it got), and a signal that new ones may exist.
//!
//! On PostgreSQL, `seq` order is not commit order: a transaction that took a lower `seq`
//! may commit after one that took a higher. A reader that moved past the higher would
//! skip the lower for good. So each event also records its transaction's id, and a read
//! takes only events of transactions older than every transaction still running
//! (`pg_snapshot_xmin`), in (transaction, `seq`) order: whatever comes later has a
//! higher transaction id. SQLite commits one transaction at a time, in `seq` order.
//!
//! The oldest running transaction is the whole cluster's: one left open anywhere on the
//! PostgreSQL server (another database's included) holds every stream back until it ends,
//! as it holds back vacuum. A stream opened now starts before the events of transactions
//! still running, and skips those already committed among them.

use crate::StoreError;
use async_trait::async_trait;
use tokio::sync::watch;
use verihook_core::{Event, EventId, OrganizationId};

/// A place in an organization's stream: after the event it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamPosition {
    pub(crate) txid: i64,
    pub(crate) seq: i64,
}

#[async_trait]
pub trait EventStream: Send + Sync + 'static {
    /// Where a stream of the organization opened now starts: after every event already
    /// settled; and the ids of the events it will come to that were committed already
    /// (it skips them).
    async fn stream_start(
        &self,
        organization: &OrganizationId,
    ) -> Result<(StreamPosition, Vec<EventId>), StoreError>;
    /// Just after the organization's event `id`; `None` when it has no such event.
    async fn stream_position(
        &self,
        organization: &OrganizationId,
        id: &EventId,
    ) -> Result<Option<StreamPosition>, StoreError>;
    /// The organization's settled events after `after`, in stream order, at most `limit`,
    /// each with the position just after it.
    async fn stream_events(
        &self,
        organization: &OrganizationId,
        after: StreamPosition,
        limit: u32,
    ) -> Result<Vec<(StreamPosition, Event)>, StoreError>;
    /// Changes whenever events may have been stored: by this process, and on PostgreSQL
    /// by any node. A stream waits on it between reads.
    fn stored_signal(&self) -> watch::Receiver<u64>;
}
