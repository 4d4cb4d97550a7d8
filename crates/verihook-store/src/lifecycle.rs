//! The lifecycle of personal data (CONTRACT §11): a customer's erasure, and the expiry of
//! events past the retention period.
//!
//! Erasure semantics every implementation keeps (the shared suite checks them):
//! - in one transaction: the customer row loses its personal data (NULL) and is marked
//!   deleted (every read leaves it out: 404); every stored body of its events has its
//!   personal fields set to `null` ([`verihook_core::erasure`]); the response excerpts of
//!   their attempts are dropped (a receiver may echo what it got); a kept idempotent
//!   answer showing the customer is replaced by the caller's; `customer.deleted` is
//!   stored, numbered after the customer's last event, and queued like any event; an
//!   audit record names who, when and which customer;
//! - deliveries still pending read the erased bodies when they are next claimed;
//! - a customer erased once is not found again.
//!
//! Retention semantics:
//! - an event whose `occurred_at` is before the cut-off is deleted with its attempts and
//!   failure records, in batches of at most the asked size, each its own short write;
//! - an event with a delivery still in the outbox (pending, or waiting for an endpoint)
//!   is kept until that delivery ends.

use crate::{Page, PageRequest, Scope, StoreError, StoredAnswer};
use async_trait::async_trait;
use verihook_core::{CustomerId, Event, OrganizationId, Timestamp};

/// Who asked for an erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eraser {
    /// An organization, through the API key with this digest (recorded as the key's id).
    ApiKey([u8; 32]),
    /// The account manager's admin token.
    Admin,
}

/// An erasure as asked.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub by: Eraser,
    pub at: Timestamp,
    /// What a replay of an idempotent request that showed the customer answers from now
    /// on (it can no longer show them).
    pub replay_answer: StoredAnswer,
}

/// The audit record of an erasure: no personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRecord {
    pub customer_id: CustomerId,
    pub organization_id: OrganizationId,
    /// `key_…` (the API key used) or `admin`.
    pub erased_by: String,
    pub erased_at: Timestamp,
}

#[async_trait]
pub trait Erasures: Send + Sync + 'static {
    /// Erases the customer (see the module's semantics) and returns its `customer.deleted`
    /// event. `NotFound` outside `scope` or when erased already.
    async fn erase_customer(
        &self,
        scope: Scope<'_>,
        id: &CustomerId,
        erasure: Erasure,
    ) -> Result<Event, StoreError>;
    /// The audit trail, newest first; `after` is the customer of the previous page's last.
    async fn erasures(
        &self,
        page: PageRequest<CustomerId>,
    ) -> Result<Page<ErasureRecord>, StoreError>;
}

/// What one purge batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub events: u64,
    pub attempts: u64,
}

#[async_trait]
pub trait Retention: Send + Sync + 'static {
    /// Deletes at most `batch` expired events (occurred before `before`, none with a
    /// delivery still in the outbox) with their attempts and failure records.
    async fn purge_expired(&self, before: Timestamp, batch: u32) -> Result<Purged, StoreError>;
    /// Where the event tables are partitioned (PostgreSQL, by ranges of events of one
    /// week): keeps a range ready for new events, moves new events on to it once the
    /// current range holds one that occurred before `cut_before` (the server passes
    /// the start of the week, Monday 00:00 UTC), and drops every range whose events all occurred before `before`
    /// and none of which is still in the outbox. What it dropped; nothing elsewhere.
    async fn maintain(
        &self,
        before: Timestamp,
        cut_before: Timestamp,
    ) -> Result<Purged, StoreError>;
    /// Gives the space of purged rows back where the backend needs telling (SQLite's
    /// incremental vacuum, at most `pages` pages); nothing elsewhere.
    async fn reclaim_space(&self, pages: u32) -> Result<(), StoreError>;
}
