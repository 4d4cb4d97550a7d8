//! The outbox, as the delivery engine sees it. Entries are enqueued by the customer writes
//! themselves (in the change's transaction); the engine claims due deliveries under a
//! lease, sends them with no transaction open, and records each outcome under that lease.
//!
//! Semantics every implementation keeps (the shared suite checks them on each backend):
//! - an event is queued, in its change's transaction, for every live, enabled endpoint of
//!   its organization whose filter takes its type: one delivery per (event, endpoint),
//!   each with its own attempts, budget and lease;
//! - a claim takes each endpoint's oldest due deliveries, at most its headroom
//!   (`per_endpoint` minus what this sender already runs of it), of endpoints that are
//!   neither disabled nor deleted;
//! - a lease that runs out makes the delivery due again; an outcome or release under a
//!   lost lease changes nothing;
//! - a requeue (redelivery) asked for while an attempt runs is not swallowed by that
//!   attempt: whatever its outcome, the delivery is due again with a fresh budget;
//! - on PostgreSQL, lease expiry is judged by the database's clock, so nodes whose clocks
//!   disagree never hold one delivery at once.

use crate::{AttemptRecord, Scope, StoreError};
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use verihook_core::{
    EndpointId, Event, EventId, RetryPolicy, SignatureScheme, Timestamp, WebhookSecret, WebhookUrl,
};

/// What a sender asks of the outbox.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// How long the claim is exclusive; after it, the delivery falls due again.
    pub lease: Duration,
    /// At most this many deliveries in all.
    pub limit: u32,
    /// At most this many of one endpoint in flight, so one slow endpoint cannot take every
    /// slot.
    pub per_endpoint: u32,
    /// The attempts of each endpoint this sender already has running: the claim takes at
    /// most `per_endpoint` minus that many more of it (none at the limit).
    pub in_flight: Vec<(EndpointId, u32)>,
}

/// A delivery claimed under a lease: the event, where it goes, and how it is signed.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub event: Event,
    pub endpoint: EndpointId,
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
    /// The secret a rotation replaced, while its overlap runs: it signs
    /// `X-Webhook-Signature`, the new one `X-Webhook-Signature-Next`.
    pub previous_secret: Option<WebhookSecret>,
    pub scheme: SignatureScheme,
    /// The endpoint's own schedule; `None`: the server's.
    pub retry_schedule: Option<RetryPolicy>,
    /// The number of this attempt of the event at this endpoint (1, 2, …; it keeps
    /// counting across redeliveries).
    pub attempt: u32,
    /// Attempts already made in the current budget.
    pub budget_used: u32,
    pub lease: Lease,
}

/// Which outbox row a claim holds, and the token that proves the claim is still this
/// sender's: an outcome or release under a lease that has since run out (and been claimed
/// again) changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The event's `seq`: the outbox and the attempt log are keyed by it rather than by the
    /// random event id, so that their index pages fill in order instead of at random.
    pub(crate) event: i64,
    /// The endpoint's `seq`.
    pub(crate) endpoint: i64,
    pub(crate) token: String,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(Timestamp),
    Failed,
}

/// An attempt's result, recorded under the lease it was claimed with.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub lease: Lease,
    pub record: AttemptRecord,
    pub next: NextStep,
}

/// What recording one outcome did to its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Delivered, failed or rescheduled, as the outcome said.
    Moved,
    /// Due again at once with a fresh budget: a redelivery was asked for meanwhile.
    Requeued,
    /// The lease had run out and the delivery was claimed again: nothing was written.
    LeaseLost,
}

/// How many events one slice (or round) of an adoption of parked deliveries looks at:
/// tens of milliseconds of the writer.
pub const ADOPTION_SLICE: i64 = 5_000;

/// How often a node looks for adoptions of parked deliveries left to take (after a restart
/// or another node's): each new endpoint's own start with it.
pub const ADOPT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Claims due deliveries of live endpoints, oldest first.
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// The probes due (CONTRACT §9, `autoRecover`): for each failing endpoint whose next
    /// probe is due, its newest failed event for one attempt, leased for `lease`. Its
    /// success ends the incident and recovers the rest; its failure counts no new event.
    async fn claim_probes(
        &self,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// Decides the recovery pace of each endpoint holding recovered deliveries whose tick
    /// has come, and lets out its share of them ([`crate::recoveries::Pace`]); answers how
    /// many were let out. Called about once a [`crate::recoveries::PACE_TICK`] by every
    /// node: each endpoint is decided by one. Wakes no sender: what was let out falls due
    /// over the tick, so the caller must forget any next due time it knew, then wake its
    /// sender.
    async fn release_paced(&self) -> Result<u64, StoreError>;
    /// Takes the next round of the parked deliveries that organizations' first endpoints
    /// adopt, in a transaction of its own: at most [`ADOPTION_SLICE`] events, shared by
    /// the adoptions under way (each endpoint's first slice came with it; a larger
    /// backlog takes more, so that no one transaction holds the writer for long). What
    /// it adopts is due at once. Answers whether an adoption was under way. Called by
    /// every node, again at once while it answers `true`, then once an [`ADOPT_EVERY`].
    async fn adopt_parked(&self) -> Result<bool, StoreError>;
    /// Logs the attempts and moves their deliveries on, all in one transaction; answers,
    /// in order, what became of each.
    async fn record(&self, outcomes: Vec<AttemptOutcome>) -> Result<Vec<Recorded>, StoreError>;
    /// Makes leased deliveries due at once (a sender stopping before it could send them).
    async fn release(&self, leases: Vec<Lease>, now: Timestamp) -> Result<(), StoreError>;
    /// Queues the event again with a fresh attempt budget (same id, same body) for
    /// `endpoint`, or for every live endpoint it was queued for (when it was queued for
    /// none, every enabled endpoint whose filter takes it now). `NotFound` outside `scope`,
    /// or when `endpoint` is not one of the event's organization.
    async fn requeue(
        &self,
        scope: Scope<'_>,
        id: &EventId,
        endpoint: Option<&EndpointId>,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// When the next delivery falls due, if any is waiting, among endpoints other than
    /// `excluding` (the sender's endpoints at their limit: their due deliveries wait on
    /// their own slots, and counting them would have a sender that cannot claim them wake
    /// again at once, over and over).
    async fn next_due(&self, excluding: &[EndpointId]) -> Result<Option<Timestamp>, StoreError>;
    /// How many events wait in the outbox (due, scheduled for a retry, or in flight).
    async fn size(&self) -> Result<u64, StoreError>;
    /// How far delivery lags: the age of the oldest due delivery among endpoints with
    /// fewer than `per_endpoint` attempts in flight (zero when none waits). One that holds
    /// all its slots waits on its receiver, not on the server, so it is left out: a slow
    /// receiver must not make the server refuse everyone's changes.
    async fn lag(&self, per_endpoint: u32) -> Result<Duration, StoreError>;
    /// Notified whenever deliveries may have fallen due (events enqueued, requeued,
    /// rescheduled sooner; on PostgreSQL, by any node), so a sender waits on it instead of
    /// polling.
    fn work_signal(&self) -> Arc<Notify>;
    /// Claims as [`Outbox::claim`] does, once deliveries may have fallen due: the claim
    /// waits in the writer and runs after the next writes (a new customer's events, an
    /// outcome recorded, an endpoint's backlog let out, …), in their transaction. A new
    /// event is then leased at the commit that stores it, with no wake-up and no commit
    /// of its own in between. `stop` ends the wait (time, a freed slot, shutdown): with a
    /// fresh request, which is claimed at once in the waiting claim's place (see
    /// [`Ridden::Renewed`]), or with none, and the claim is taken back. `None` where the
    /// store cannot see every write after the claim (several writers); the sender then
    /// waits on [`Outbox::work_signal`].
    async fn claim_after_writes(
        &self,
        request: ClaimRequest,
        stop: BoxFuture<'_, Option<ClaimRequest>>,
    ) -> Option<Ridden> {
        let _ = (request, stop);
        None
    }
}

/// How a claim waiting for the next writes ended.
#[derive(Debug)]
pub enum Ridden {
    /// It ran: what it claimed, perhaps nothing.
    Ran(Result<Vec<ClaimedDelivery>, StoreError>),
    /// `stop` came first with a fresh request, which ran in its place, in one batch with
    /// the writes waiting then: what that one claimed.
    Renewed(Result<Vec<ClaimedDelivery>, StoreError>),
    /// `stop` came first without one, and it was taken back unrun.
    Stopped,
}
