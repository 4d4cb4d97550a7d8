//! The embedded SQLite store: a file, WAL mode, `synchronous=FULL` (a commit is on disk
//! before anyone is told it happened), one batching writer and a small pool of readers that
//! WAL lets run beside it. The single writer serializes every change, so no row locks are
//! needed; the shared code is in [`crate::shared`].

use crate::rows::{self, CUSTOMER_COLUMNS, EVENT_COLUMNS};
use crate::shared::backend_common;
use crate::writer::{WriteConnection, Writer};
use crate::{
    AttemptOutcome, AttemptRecord, ClaimRequest, ClaimedDelivery, EventFilter, EventRecord,
    EventSummary, Mutation, NextStep, Page, PageRequest, Scope, Store, StoreError, WebhookEndpoint,
    WebhookSet,
};
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, QueryBuilder, Sqlite, SqliteConnection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use verihook_core::id::random_token;
use verihook_core::{
    Customer, CustomerChange, CustomerId, CustomerStatus, Event, EventId, Organization,
    OrganizationId, Timestamp, WebhookSecret, WebhookUrl,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const READERS: u32 = 4;
/// Behind the single writer, a read in the write transaction is already exclusive.
const LOCK_CLAUSE: &str = "";

impl WriteConnection for SqliteConnection {
    /// Takes the write lock at once, so a batch never fails half-way to upgrade it.
    const BEGIN: &'static str = "BEGIN IMMEDIATE";

    fn exec<'a>(&'a mut self, sql: &'static str) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move { sqlx::query(sql).execute(self).await.map(|_| ()) })
    }
}

pub struct SqliteStore {
    readers: SqlitePool,
    writer: Writer<SqliteConnection>,
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
        let mut write_connection = options.connect().await?;
        MIGRATOR.run(&mut write_connection).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.clone())
            .await?;
        let reconnect = Box::new(move || {
            let options = options.clone();
            Box::pin(async move { options.connect().await }) as BoxFuture<'static, _>
        });
        Ok(Self {
            readers,
            writer: Writer::spawn(write_connection, reconnect),
            work: Arc::new(Notify::new()),
        })
    }
}

/// In one process, the `work` signal the store methods raise after each commit suffices.
async fn announce_work(_: &mut SqliteConnection) -> Result<(), StoreError> {
    Ok(())
}

fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

/// Claims due deliveries: oldest first, at most `per_organization` of one organization,
/// none of the excluded ones, only where a webhook URL is set.
async fn claim_in(
    conn: &mut SqliteConnection,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let token = random_token();
    let lease = i64::try_from(request.lease.as_micros()).unwrap_or(i64::MAX);
    let exclude = json_list(request.exclude.iter().map(OrganizationId::as_str));
    let claimed: Vec<(String, i64, i64)> = sqlx::query_as(
        "WITH due AS ( \
            SELECT d.event_id, d.organization_id, d.due_at FROM deliveries d \
            JOIN organizations o ON o.id = d.organization_id AND o.webhook_url IS NOT NULL \
            WHERE d.due_at <= $1 \
              AND d.organization_id NOT IN (SELECT value FROM json_each($2)) \
            ORDER BY d.due_at LIMIT $3 \
         ), ranked AS ( \
            SELECT event_id, ROW_NUMBER() OVER ( \
                PARTITION BY organization_id ORDER BY due_at) AS rank FROM due \
         ) \
         UPDATE deliveries SET due_at = $4, lease_token = $5 \
         WHERE event_id IN (SELECT event_id FROM ranked WHERE rank <= $6 LIMIT $7) \
         RETURNING event_id, attempt, budget_used",
    )
    .bind(request.now.unix_micros())
    .bind(exclude)
    .bind(i64::from(
        request.limit.saturating_mul(crate::sql::SCAN_FACTOR),
    ))
    .bind(request.now.unix_micros().saturating_add(lease))
    .bind(&token)
    .bind(i64::from(request.per_organization))
    .bind(i64::from(request.limit))
    .fetch_all(&mut *conn)
    .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let ids = json_list(claimed.iter().map(|(id, _, _)| id.as_str()));
    let sql = crate::sql::CLAIMED_DETAILS.replace("{ids}", "IN (SELECT value FROM json_each($1))");
    let details = sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await?;
    rows::claimed_deliveries(claimed, &details, &token)
}

backend_common!(SqliteStore, SqliteConnection, SqlitePool, Sqlite);
