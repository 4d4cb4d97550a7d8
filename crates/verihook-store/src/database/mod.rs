//! The store, written once for every backend: [`Database`] implements the repositories
//! and the outbox on top of what a [`Backend`] provides — reads on its reader pool, a
//! batching writer over its [`Conn`], and the few writes whose SQL differs by dialect.
//! One file per trait: `organizations`, `customers`, `events`, `outbox`; this one holds
//! what they share.

mod adoption;
mod alerts;
mod customers;
mod endpoints;
mod erasures;
mod events;
mod health;
mod organizations;
mod outbox;
mod pacing;
mod probes;
mod recoveries;
mod requests;
mod retention;
mod stream;

use crate::conn::Conn;
use crate::outbox::{AttemptOutcome, ClaimRequest, ClaimedDelivery, Lease, Recorded};
use crate::repository::Health;
use crate::rows::{self, Row, Value};
use crate::secrets::Sealer;
use crate::sql::{self, Query};
use crate::writer::{Lane, Merged, Shape, Writer};
use crate::StoreError;
use async_trait::async_trait;
use std::collections::hash_map::{Entry, HashMap};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use verihook_core::{
    Customer, CustomerChange, EndpointId, Event, OrganizationId, RetryPolicy, SignatureScheme,
    Timestamp, WebhookSecret, WebhookUrl,
};

/// What a database backend provides. Everything else is [`Database`]'s, written once.
pub(crate) trait Backend: Send + Sync + 'static {
    type Conn: Conn;

    /// Appended to the read of a row about to change (a customer; the endpoints whose
    /// health a batch of outcomes moves): PostgreSQL locks it against other writers (other
    /// nodes', and this node's other connections); SQLite's single writer needs nothing.
    const LOCK_FOR_UPDATE: &'static str;
    /// Locks the rows read, or fails at once if another transaction holds one (never
    /// waits: a batch of several nodes' writes waiting on each other's rows would
    /// deadlock). Empty where one writer is all there is.
    const LOCK_OR_FAIL: &'static str;
    /// Appended to a read of rows to delete: PostgreSQL locks them and passes over rows
    /// another node has locked (two nodes' purges take different rows).
    const LOCK_SKIP_LOCKED: &'static str;
    /// Gives freed pages back to the file system, `(n)` pages at most (SQLite's
    /// incremental vacuum); `None` where the database does it itself (autovacuum).
    const RECLAIM_SPACE: Option<&'static str>;
    /// Keeps the partitions of the event tables where the backend has them (PostgreSQL:
    /// see `postgres::partitions`), dropping the wholly expired; nothing elsewhere.
    fn maintain_partitions(
        &self,
        before: Timestamp,
        cut_before: Timestamp,
    ) -> impl Future<Output = Result<crate::lifecycle::Purged, StoreError>> + Send {
        let _ = (before, cut_before);
        std::future::ready(Ok(crate::lifecycle::Purged::default()))
    }
    /// A statement that tells every node, at commit, that deliveries fell due (PostgreSQL's
    /// NOTIFY); `None` where one process is all there is.
    const ANNOUNCE: Option<&'static str>;
    /// Whether [`Backend::save_changes`] is one statement (PostgreSQL's data-modifying
    /// CTEs), so that, run alone, it needs no transaction. (Recording outcomes always takes
    /// one: the endpoints' health is written with them.)
    const SAVE_CHANGE: Shape;
    /// The event stream (see [`crate::stream`]): where a stream of an organization (`$1`)
    /// opened now starts (`txid`, `seq`, on every row) with the `id`s of the events past it
    /// committed already (none: one row with a NULL `id`), the position after an
    /// organization's event (`$1` its id, `$2` the organization), and the settled events
    /// after a position (`$1` the organization, `$2`/`$3` the position, `$4` how many), each
    /// with `txid` and `seq`.
    const STREAM_START: &'static str;
    const STREAM_POSITION: &'static str;
    const STREAM_EVENTS: &'static str;
    /// What a claim needs alone in a batch: PostgreSQL's commits without waiting for the
    /// disk (a lost lease only sends its deliveries again, at least once as after any
    /// crash, and the attempt's durable record flushes it anyway).
    const CLAIM: Shape;
    /// One runner takes every batch (SQLite's writer thread), so a claim parked behind
    /// the next batch sees every write made before it ran (see `Writer::park`).
    const ONE_WRITER: bool;

    /// How many migrations this build embeds.
    fn migrations(&self) -> usize;
    /// Bytes the database holds in this process's memory (an embedded database's page
    /// caches and statements); `None` where it runs in processes of its own.
    fn memory_in_process(&self) -> Option<u64> {
        None
    }
    /// Runs a read on the reader pool.
    fn read(
        &self,
        sql: String,
        params: Vec<Value<'static>>,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;
    fn writer(&self) -> &Writer<Self::Conn>;

    /// Stores customers (each inserted, or updated in every column but its identity and
    /// order), their events and the events' outbox entries. The writer hands it every new
    /// customer of a batch at once (see [`crate::writer`]): no customer appears twice.
    fn save_changes<'c>(
        conn: &'c mut Self::Conn,
        changes: &'c [Change<'c>],
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'c;
    /// Claims due deliveries under a new lease (see [`Outbox::claim`]).
    fn claim<'c>(
        conn: &'c mut Self::Conn,
        request: &'c ClaimRequest,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send + 'c;
    /// Logs the attempts and moves their deliveries on (see [`Outbox::record`]).
    fn record<'c>(
        conn: &'c mut Self::Conn,
        outcomes: &'c [AttemptOutcome],
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send + 'c;
}

/// A customer as it is to be stored, with the events its change made.
pub(crate) type Change<'a> = (&'a Customer, &'a [Event]);

/// The repositories and the outbox over one backend.
pub(crate) struct Database<B> {
    pub(super) backend: B,
    /// The outbox's wake-up: notified after this process enqueues or moves deliveries
    /// sooner, and (PostgreSQL) when another node announces that it did.
    pub(super) work: Arc<Notify>,
    /// Seals webhook secrets on the way in, opens them on the way out.
    pub(super) sealer: Sealer,
    /// Bumped whenever events may have been stored (see [`crate::stream`]).
    pub(super) stored: Arc<watch::Sender<u64>>,
}

impl<B: Backend> Database<B> {
    pub(crate) fn new(
        backend: B,
        work: Arc<Notify>,
        stored: Arc<watch::Sender<u64>>,
        sealer: Sealer,
    ) -> Self {
        Self {
            backend,
            work,
            sealer,
            stored,
        }
    }

    pub(super) async fn read_one<T>(
        &self,
        sql: impl Into<String>,
        params: Vec<Value<'_>>,
        map: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let rows = self.backend.read(sql.into(), rows::owned(params)).await?;
        rows.first().map(map).transpose()
    }

    pub(super) async fn read_all<T>(
        &self,
        query: Query,
        map: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self.backend.read(query.sql, query.params).await?;
        rows.iter().map(map).collect()
    }

    /// The `seq` of a listing's cursor item, which must lie in `organization`'s scope.
    pub(super) async fn cursor_seq(
        &self,
        table: &str,
        id: &str,
        organization: Option<&OrganizationId>,
    ) -> Result<i64, StoreError> {
        let params = vec![
            Value::text(id),
            Value::opt_text(organization.map(OrganizationId::as_str)),
        ];
        self.read_one(sql::cursor_seq(table), params, |r| r.int("seq"))
            .await?
            .ok_or(StoreError::UnknownCursor)
    }

    /// Runs `op` in the writer's next batch that takes it from `lane`.
    pub(super) async fn write<T, F>(&self, lane: Lane, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut B::Conn) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.write_shaped(lane, Shape::Several, op).await
    }

    /// [`Database::write`] for an `op` of the given shape.
    pub(super) async fn write_shaped<T, F>(
        &self,
        lane: Lane,
        shape: Shape,
        op: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut B::Conn) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.backend.writer().write(lane, shape, op).await
    }

    /// Claimed deliveries with their secrets opened (see [`crate::secrets`]).
    pub(super) fn secrets_opened(
        &self,
        claimed: Vec<ClaimedDelivery>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        claimed
            .into_iter()
            .map(|mut d| {
                d.secret = self.sealer.open(d.secret)?;
                d.previous_secret = self.sealer.open_opt(d.previous_secret)?;
                Ok(d)
            })
            .collect()
    }

    /// Deliveries were enqueued or fell due sooner: wake this process's sender (the
    /// outbox's signal; customer writes call it because enqueueing is part of them).
    /// Called after events were stored or deliveries moved sooner: wakes the sender and
    /// every event stream.
    pub(super) fn deliveries_due(&self) {
        self.work.notify_one();
        events_stored(&self.stored);
    }
}

type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;

/// The writes the writer merges across callers, as this backend runs them: a batch's
/// attempt outcomes ([`Backend::record`]) and its new customers ([`Backend::save_changes`]).
pub(crate) fn merged<B: Backend>() -> Merged<B::Conn> {
    fn record<'c, B: Backend>(
        conn: &'c mut B::Conn,
        outcomes: &'c [AttemptOutcome],
    ) -> BoxFuture<'c, Result<Vec<Recorded>, StoreError>> {
        Box::pin(async move {
            let recorded = B::record(conn, outcomes).await?;
            // Health is the outcomes' summary: a failure to write it must not report the
            // outcomes (recorded, or in a transaction the commit will refuse) as lost.
            // They commit together: a reader never sees an event failed while its
            // endpoint still reads healthy.
            if let Err(e) = health::record::<B>(conn, outcomes, &recorded).await {
                tracing::warn!(error = %e, "endpoint health not updated");
            }
            Ok(recorded)
        })
    }
    fn save<'c, B: Backend>(
        conn: &'c mut B::Conn,
        changes: &'c [CustomerChange],
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        let changes: Vec<Change<'c>> = changes
            .iter()
            .map(|c| (&c.customer, c.events.as_slice()))
            .collect();
        Box::pin(async move { B::save_changes(conn, &changes).await })
    }
    Merged {
        record: record::<B>,
        save: save::<B>,
        save_alone: B::SAVE_CHANGE,
    }
}

/// Tells the other nodes, at commit, that deliveries fell due.
pub(super) async fn announce<B: Backend>(conn: &mut B::Conn) -> Result<(), StoreError> {
    if let Some(statement) = B::ANNOUNCE {
        conn.execute(statement, &[]).await?;
    }
    Ok(())
}

#[async_trait]
impl<B: Backend> Health for Database<B> {
    async fn ready(&self) -> Result<(), StoreError> {
        let applied = self
            .read_one(sql::MIGRATIONS_APPLIED, Vec::new(), |r| r.int("n"))
            .await?
            .unwrap_or(0);
        let embedded = self.backend.migrations();
        if usize::try_from(applied).unwrap_or(0) < embedded {
            return Err(StoreError::Config(format!(
                "{applied} of {embedded} migrations applied"
            )));
        }
        // A reader answering proves little if the writer is gone (SQLite's writer thread
        // dead, say): a job that writes nothing proves it takes and runs work.
        self.write_shaped(Lane::Api, Shape::OneStatement, |_| {
            Box::pin(async { Ok(()) })
        })
        .await
    }

    fn memory_in_process(&self) -> Option<u64> {
        self.backend.memory_in_process()
    }
}

/// A webhook URL as stored: it was validated when it was set.
pub(crate) fn stored_url(s: &str) -> Result<WebhookUrl, StoreError> {
    WebhookUrl::from_stored(s).map_err(|e| StoreError::corrupt(format!("webhook_url: {e}")))
}

/// A claimed outbox row: `(event_seq, endpoint_seq, attempt, budget_used)`.
pub(crate) type Claimed = (i64, i64, i64, i64);

/// Claimed rows joined with their details (rows of [`sql::CLAIMED_DETAILS`], one per
/// claimed row: each is consumed, its event's body moved rather than copied), in claim
/// order. Each endpoint's columns are decoded once per claim, not once per delivery: a
/// claim is mostly one endpoint's backlog, and parsing its URL again for every row was a
/// third of the decoding.
pub(crate) fn claimed_deliveries(
    claimed: Vec<Claimed>,
    details: Vec<Row>,
    lease_token: &str,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let now = Timestamp::now();
    let mut by_key = HashMap::with_capacity(details.len());
    for row in details {
        by_key.insert((row.int("seq")?, row.int("endpoint_seq")?), row);
    }
    let mut targets = HashMap::new();
    claimed
        .into_iter()
        .map(|(event, endpoint, attempt, budget_used)| {
            let row = by_key
                .remove(&(event, endpoint))
                .ok_or_else(|| StoreError::corrupt("delivery without its event or endpoint"))?;
            let target = match targets.entry(endpoint) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => new.insert(Target::decode(&row, now)?),
            };
            Ok(ClaimedDelivery {
                endpoint: target.endpoint.clone(),
                url: target.url.clone(),
                secret: target.secret.clone(),
                previous_secret: target.previous_secret.clone(),
                scheme: target.scheme,
                retry_schedule: target.retry_schedule.clone(),
                attempt: u32::try_from(attempt).map_err(StoreError::corrupt)?,
                budget_used: u32::try_from(budget_used).map_err(StoreError::corrupt)?,
                lease: Lease {
                    event,
                    endpoint,
                    token: lease_token.to_owned(),
                },
                event: rows::owned_event(row)?,
            })
        })
        .collect()
}

/// Where a claimed delivery goes and how it is signed: its endpoint's columns, decoded.
struct Target {
    endpoint: EndpointId,
    url: WebhookUrl,
    secret: WebhookSecret,
    previous_secret: Option<WebhookSecret>,
    scheme: SignatureScheme,
    retry_schedule: Option<RetryPolicy>,
}

impl Target {
    fn decode(row: &Row, now: Timestamp) -> Result<Self, StoreError> {
        Ok(Self {
            endpoint: EndpointId::parse(row.str("endpoint_id")?).map_err(StoreError::corrupt)?,
            url: stored_url(row.str("url")?)?,
            secret: WebhookSecret::from_stored(row.string("secret")?),
            previous_secret: rows::previous_secret(row, now)?,
            scheme: rows::scheme_of(row.str("signature_scheme")?)?,
            retry_schedule: rows::retry_schedule(row)?,
        })
    }
}

/// Tells every event stream that events may have been stored.
pub(crate) fn events_stored(stored: &watch::Sender<u64>) {
    stored.send_modify(|n| *n = n.wrapping_add(1));
}
