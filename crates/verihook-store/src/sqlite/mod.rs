//! The embedded SQLite store: a file, WAL mode, `synchronous=FULL` (a commit is on disk
//! before anyone is told it happened). Writes run on one writer thread (see [`writer`]);
//! reads run on a small sqlx pool beside it, which WAL allows. The single writer
//! serializes every change, so no row locks are needed. The shared code is in
//! `crate::shared`.

mod writer;
mod writes;

use crate::rows::{self, CUSTOMER_COLUMNS, EVENT_COLUMNS};
use crate::shared::backend_common;
use crate::{
    AttemptOutcome, AttemptRecord, AttemptSample, ClaimRequest, ClaimedDelivery, EventFilter,
    EventRecord, EventSummary, Lease, Mutation, NextStep, Page, PageRequest, Recorded, Scope,
    Store, StoreError, WebhookEndpoint, WebhookSet,
};
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, QueryBuilder, Sqlite, SqliteConnection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use verihook_core::{
    Customer, CustomerChange, CustomerId, CustomerStatus, EventId, Organization, OrganizationId,
    Timestamp, WebhookSecret, WebhookUrl,
};
use writer::SqliteWriter;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const READERS: u32 = 4;
/// Behind the single writer, a read in the write transaction is already exclusive.
const LOCK_CLAUSE: &str = "";

pub struct SqliteStore {
    readers: SqlitePool,
    writer: SqliteWriter,
    work: Arc<Notify>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`) and applies
    /// pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            // The writer and the readers are separate connections: each would get its
            // own empty in-memory database.
            return Err(StoreError::Config(
                "in-memory SQLite is not supported; give a file path (sqlite://PATH)".into(),
            ));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let mut migrating = options.connect().await?;
        MIGRATOR.run(&mut migrating).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.clone())
            .await?;
        let writer = SqliteWriter::spawn(write_connection(options.get_filename())?)?;
        Ok(Self {
            readers,
            writer,
            work: Arc::new(Notify::new()),
        })
    }
}

/// The writer thread's connection, with the same durability settings as the readers.
fn write_connection(path: &std::path::Path) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // The writer touches index pages all over the tables (ids are random): a 32 MiB page
    // cache instead of the default 2 MiB keeps them in memory rather than re-reading them.
    conn.pragma_update(None, "cache_size", -32_768)?;
    // Every job runs in a savepoint, so the pages it changes are first copied to a
    // statement journal: in memory rather than in a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

backend_common!(SqliteStore, SqliteConnection, SqlitePool, Sqlite);
