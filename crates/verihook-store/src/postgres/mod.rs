//! The PostgreSQL store, for several `verihook serve` nodes sharing one database.
//!
//! Each node has its own batching writer (group commit, as on SQLite, with several batches
//! in flight on separate connections) and reader pool.
//! What SQLite gets from its single writer, PostgreSQL gets from row locks: a customer about
//! to change is read `FOR UPDATE`, and deliveries are claimed `FOR UPDATE SKIP LOCKED`, so
//! two nodes never claim the same one. Every transaction that makes deliveries due sends
//! `NOTIFY verihook_work`; each node LISTENs and wakes its dispatcher, with polling as the
//! fallback. The shared code is in `crate::shared`.

mod writes;

use crate::rows::{self, CUSTOMER_COLUMNS, EVENT_COLUMNS};
use crate::shared::backend_common;
use crate::writer::{WriteConnection, Writer};
use crate::{
    AttemptOutcome, AttemptRecord, AttemptSample, ClaimRequest, ClaimedDelivery, EventFilter,
    EventRecord, EventSummary, Lease, Mutation, NextStep, Page, PageRequest, Recorded, Scope,
    Store, StoreError, WebhookEndpoint, WebhookSet,
};
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection, Postgres, QueryBuilder};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use verihook_core::{
    Customer, CustomerChange, CustomerId, CustomerStatus, EventId, Organization, OrganizationId,
    Timestamp, WebhookSecret, WebhookUrl,
};

type PgWriter = Writer<PgConnection>;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

const READERS: u32 = 8;
/// Batches in flight at once, each on its own connection.
const WRITERS: usize = 4;
/// The channel nodes wake each other on.
const CHANNEL: &str = "verihook_work";
/// Another node's writer may change the same customer: lock it until this batch commits.
const LOCK_CLAUSE: &str = " FOR UPDATE";

impl WriteConnection for PgConnection {
    fn exec<'a>(&'a mut self, sql: &'static str) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        // A bare string without arguments goes by the simple query protocol: several
        // statements, one round trip.
        Box::pin(async move { sqlx::Executor::execute(self, sql).await.map(|_| ()) })
    }
}

pub struct PostgresStore {
    readers: PgPool,
    writer: PgWriter,
    work: Arc<Notify>,
    listener: JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and applies pending migrations (several nodes
    /// starting at once take turns: sqlx holds an advisory lock while migrating).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let readers = PgPoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&readers).await?;
        let mut write_connections = Vec::with_capacity(WRITERS);
        for _ in 0..WRITERS {
            write_connections.push(options.connect().await?);
        }
        let reconnect = Box::new(move || {
            let options = options.clone();
            Box::pin(async move { options.connect().await }) as BoxFuture<'static, _>
        });
        let work = Arc::new(Notify::new());
        let mut listener = PgListener::connect_with(&readers).await?;
        listener.listen(CHANNEL).await?;
        Ok(Self {
            readers,
            writer: Writer::spawn(write_connections, reconnect),
            listener: tokio::spawn(relay_notifications(listener, work.clone())),
            work,
        })
    }
}

/// Turns `NOTIFY verihook_work` from any node into a wake-up of this node's dispatcher.
async fn relay_notifications(mut listener: PgListener, work: Arc<Notify>) {
    loop {
        match listener.recv().await {
            Ok(_) => work.notify_one(),
            Err(e) => {
                // The listener reconnects on the next recv; polling covers the gap.
                tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                work.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Delivered to every listening node when the transaction commits (PostgreSQL folds
/// repeats within one transaction into one).
async fn announce_work(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

backend_common!(PostgresStore, PgConnection, PgPool, Postgres);
