//! The PostgreSQL store, for several `verihook serve` nodes sharing one database, through
//! one driver (sqlx).
//!
//! Each node has its own batching writer (group commit, with several batches in flight
//! on separate connections) and reader pool. What SQLite gets from its single writer,
//! PostgreSQL gets from row locks: a customer about to change is read `FOR UPDATE`, and
//! deliveries are claimed `FOR UPDATE SKIP LOCKED`, so two nodes never claim the same one.
//! Every transaction that makes deliveries due sends `NOTIFY` on [`CHANNEL`]; each node
//! LISTENs and wakes its sender, with polling as the fallback.

mod conn;
mod hosts;
mod ops;
mod partitions;

use crate::database::{merged, Backend, Database};
use crate::rows::{Row, Value};
use crate::secrets::{seal_stored, Sealer, SecretKey};
use crate::writer::{Connect, Shape, Writer};
use crate::{ClaimRequest, ClaimedDelivery, Storage, StoreError};
use hosts::Hosts;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::PgConnection;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use verihook_core::id::random_token;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

const READERS: u32 = 8;
/// How long a read may wait for its answer: a server cut off by the network never says
/// no, and the caller is better answered 503 than kept waiting.
const READ_DEADLINE: Duration = Duration::from_secs(10);
/// Batches in flight at once, each on its own connection: one runs while the other's
/// commit waits for the disk. More split the same writes into smaller batches, each with
/// its own commit and statements for the database to run (measured: two instead of four
/// took a fifth off the database's CPU per event, with the same throughput or more).
const WRITERS: usize = 2;

/// The channel nodes wake each other on (a macro, so that SQL text can include it).
macro_rules! channel {
    () => {
        "verihook_work"
    };
}
pub(crate) use channel;
pub const CHANNEL: &str = channel!();

pub(crate) struct Postgres {
    readers: PgPool,
    writer: Writer<PgConnection>,
    listener: JoinHandle<()>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Connects to `url` (`postgres://…`) and applies pending migrations (several nodes
/// starting at once take turns: sqlx holds an advisory lock while migrating).
pub async fn open(url: &str) -> Result<Storage, StoreError> {
    open_with(url, None).await
}

/// [`open`], sealing webhook secrets with `key` (see [`crate::secrets`]).
pub async fn open_with(url: &str, key: Option<&SecretKey>) -> Result<Storage, StoreError> {
    // Every connection of this node carries its name: the wake-ups it sends say who sent
    // them (see `relay_notifications`), and operators see which node a backend serves.
    let node = format!("verihook-{}", &random_token()[..12]);
    let hosts = Hosts::parse(url)?.map(|o| o.application_name(&node));
    // Every write is a lookup by key. A prepared statement's generic plan is made once,
    // often while the outbox is a few pages, and a sequential scan of it planned then
    // stays while the churn's dead rows make it long: measured, a claim's cost drifted
    // from 0.06 to 0.2 ms within a run. The writers' connections rule scans out.
    // A node cut off from the database mid-batch leaves its transaction open, and its row
    // locks would hold other nodes' writes until TCP gives up (many minutes): the server
    // ends a writer's transaction that waits on its client longer than a batch may take.
    let writing = |o: PgConnectOptions| {
        o.options([
            ("enable_seqscan", "off"),
            ("idle_in_transaction_session_timeout", "10s"),
        ])
    };
    // The first writer chooses the host (the first that takes writes); the readers and
    // the other writers go where it went.
    let (first, chosen) = hosts.connect_with(writing).await?;
    let readers = PgPoolOptions::new()
        .max_connections(READERS)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(chosen)
        .await?;
    MIGRATOR.run(&readers).await?;
    let mut write_connections: Vec<PgConnection> = Vec::with_capacity(WRITERS);
    write_connections.push(first);
    for _ in 1..WRITERS {
        write_connections.push(hosts.connect_with(writing).await?.0);
    }
    let sealer = Sealer::new(key);
    if let Some(conn) = write_connections.first_mut() {
        let sealed = seal_stored(conn, &sealer).await?;
        if sealed > 0 {
            tracing::info!(sealed, "webhook secrets sealed with the secret key");
        }
    }
    let connect = reconnect_to_primary(hosts, readers.clone(), writing);
    let work = Arc::new(Notify::new());
    let stored = Arc::new(tokio::sync::watch::Sender::new(0));
    let mut listener = PgListener::connect_with(&readers).await?;
    listener.listen(CHANNEL).await?;
    let backend = Postgres {
        readers,
        writer: Writer::spawn_tasks(write_connections, connect, merged::<Postgres>()),
        listener: tokio::spawn(relay_notifications(
            listener,
            node,
            work.clone(),
            stored.clone(),
        )),
    };
    Ok(Storage::over(Database::new(backend, work, stored, sealer)))
}

/// How a writer reconnects: to the first host that takes writes now. When that is not
/// the host the readers use (a failover), their pool follows: its new connections go
/// there, and those to the old host fail and are dropped.
fn reconnect_to_primary(
    hosts: Hosts,
    readers: PgPool,
    writing: fn(PgConnectOptions) -> PgConnectOptions,
) -> Connect<PgConnection> {
    Arc::new(move || {
        let (hosts, readers) = (hosts.clone(), readers.clone());
        Box::pin(async move {
            let (conn, chosen) = hosts.connect_with(writing).await?;
            let current = readers.connect_options();
            if (current.get_host(), current.get_port()) != (chosen.get_host(), chosen.get_port()) {
                tracing::warn!(
                    host = chosen.get_host(),
                    port = chosen.get_port(),
                    "the database's primary moved; reads follow"
                );
                readers.set_connect_options(chosen);
            }
            Ok(conn)
        })
    })
}

/// Turns `NOTIFY` from other nodes into a wake-up of this node's sender and event
/// streams. This node's own writes wake them directly, at once; hearing them again would
/// cost a second, empty claim for each.
async fn relay_notifications(
    mut listener: PgListener,
    node: String,
    work: Arc<Notify>,
    stored: Arc<tokio::sync::watch::Sender<u64>>,
) {
    loop {
        match listener.recv().await {
            Ok(notification) if notification.payload() == node => {}
            Ok(_) => {
                work.notify_one();
                crate::database::events_stored(&stored);
            }
            Err(e) => {
                // The listener reconnects on the next recv; polling covers the gap.
                tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                work.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

impl Backend for Postgres {
    type Conn = PgConnection;
    /// Another node's writer may change the same customer: lock it until this batch
    /// commits.
    const LOCK_FOR_UPDATE: &'static str = " FOR UPDATE";
    const LOCK_OR_FAIL: &'static str = " FOR UPDATE NOWAIT";
    const LOCK_SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const RECLAIM_SPACE: Option<&'static str> = None;
    /// Delivered to every listening node when the transaction commits (PostgreSQL folds
    /// repeats within one transaction into one), signed with the sending node's name.
    const ANNOUNCE: Option<&'static str> = Some(concat!(
        "SELECT pg_notify('",
        channel!(),
        "', current_setting('application_name'))"
    ));
    const SAVE_CHANGE: Shape = Shape::OneStatement;
    // Settled: written by a transaction older than every one still running.
    const STREAM_START: &'static str = "\
        SELECT x.xmin - 1 AS txid, 9223372036854775807 AS seq, e.id FROM \
        (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin) x \
        LEFT JOIN events e ON e.organization_id = $1 AND e.txid >= x.xmin";
    const STREAM_POSITION: &'static str =
        "SELECT txid, seq FROM events WHERE id = $1 AND organization_id = $2";
    const STREAM_EVENTS: &'static str = "\
        SELECT txid, seq, id, organization_id, customer_id, event_type, occurred_at, sequence, \
        body \
        FROM events WHERE organization_id = $1 AND (txid, seq) > ($2, $3) \
        AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
        ORDER BY txid, seq LIMIT $4";
    const CLAIM: Shape = Shape::Relaxed;
    // Two connections: a claim could ride one batch while the other commits new events.
    const ONE_WRITER: bool = false;

    fn migrations(&self) -> usize {
        MIGRATOR.iter().count()
    }

    async fn read(&self, sql: String, params: Vec<Value<'static>>) -> Result<Vec<Row>, StoreError> {
        let rows = tokio::time::timeout(
            READ_DEADLINE,
            conn::bind(&sql, &params).fetch_all(&self.readers),
        )
        .await
        .map_err(|_| StoreError::Timeout(READ_DEADLINE))??;
        conn::rows(&rows)
    }

    fn writer(&self) -> &Writer<PgConnection> {
        &self.writer
    }

    async fn maintain_partitions(
        &self,
        before: verihook_core::Timestamp,
        cut_before: verihook_core::Timestamp,
    ) -> Result<crate::lifecycle::Purged, StoreError> {
        partitions::maintain(&self.readers, before, cut_before).await
    }

    fn save_changes<'c>(
        conn: &'c mut PgConnection,
        changes: &'c [crate::database::Change<'c>],
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'c {
        ops::save_changes(conn, changes)
    }

    fn claim<'c>(
        conn: &'c mut PgConnection,
        request: &'c ClaimRequest,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send + 'c {
        ops::claim(conn, request)
    }

    fn record<'c>(
        conn: &'c mut PgConnection,
        outcomes: &'c [crate::AttemptOutcome],
    ) -> impl Future<Output = Result<Vec<crate::Recorded>, StoreError>> + Send + 'c {
        ops::record(conn, outcomes)
    }
}
