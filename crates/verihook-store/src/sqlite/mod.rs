//! The embedded SQLite store: a file, WAL mode, `synchronous=FULL` (a commit is on disk
//! before anyone is told it happened), one batching [`writer`] and a small pool of readers
//! that WAL lets run beside it.

mod outbox;
mod rows;
mod writer;

use crate::{
    AttemptOutcome, AttemptRecord, ClaimRequest, ClaimedDelivery, EventFilter, EventRecord,
    EventSummary, Mutation, Page, PageRequest, Scope, Store, StoreError, WebhookEndpoint,
    WebhookSet,
};
use async_trait::async_trait;
use rows::{CUSTOMER_COLUMNS, EVENT_COLUMNS};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, QueryBuilder, Row, Sqlite, SqliteConnection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use verihook_core::customer::format_date;
use verihook_core::{
    Customer, CustomerChange, CustomerId, CustomerStatus, Event, EventId, Organization,
    OrganizationId, Timestamp, WebhookSecret, WebhookUrl,
};
use writer::Writer;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const READERS: u32 = 4;

pub struct SqliteStore {
    readers: SqlitePool,
    writer: Writer,
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
            .connect_with(options)
            .await?;
        Ok(Self {
            readers,
            writer: Writer::spawn(write_connection),
            work: Arc::new(Notify::new()),
        })
    }
}

async fn select_customer(
    conn: &mut SqliteConnection,
    organization: Option<&OrganizationId>,
    id: &CustomerId,
) -> Result<Option<Customer>, StoreError> {
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1 \
         AND (?2 IS NULL OR organization_id = ?2)"
    );
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .bind(organization.map(OrganizationId::as_str))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(rows::customer).transpose()
}

/// Inserts the customer, or updates every column but its identity and order.
async fn upsert_customer(conn: &mut SqliteConnection, c: &Customer) -> Result<(), StoreError> {
    let a = &c.address;
    let text =
        |t: &Option<verihook_core::customer::Text>| t.as_ref().map(|t| t.as_str().to_owned());
    sqlx::query(
        "INSERT INTO customers (id, organization_id, customer_type, status, status_reason, \
         email, first_name, last_name, date_of_birth, address_line1, address_line2, \
         address_city, address_state, address_postal_code, address_country, created_at, \
         updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
         status_reason = excluded.status_reason, email = excluded.email, \
         first_name = excluded.first_name, last_name = excluded.last_name, \
         date_of_birth = excluded.date_of_birth, address_line1 = excluded.address_line1, \
         address_line2 = excluded.address_line2, address_city = excluded.address_city, \
         address_state = excluded.address_state, \
         address_postal_code = excluded.address_postal_code, \
         address_country = excluded.address_country, updated_at = excluded.updated_at",
    )
    .bind(c.id.as_str())
    .bind(c.organization_id.as_str())
    .bind(c.customer_type.as_str())
    .bind(c.status.as_str())
    .bind(c.status_reason.as_deref())
    .bind(c.email.as_str())
    .bind(c.first_name.as_str())
    .bind(c.last_name.as_str())
    .bind(c.date_of_birth.map(format_date))
    .bind(text(&a.line1))
    .bind(text(&a.line2))
    .bind(text(&a.city))
    .bind(text(&a.state))
    .bind(text(&a.postal_code))
    .bind(a.country.map(|c| c.as_str().to_owned()))
    .bind(c.created_at.unix_micros())
    .bind(c.updated_at.unix_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores events and their outbox entries, due at once.
async fn insert_events(conn: &mut SqliteConnection, events: &[Event]) -> Result<(), StoreError> {
    for e in events {
        sqlx::query(
            "INSERT INTO events (id, organization_id, customer_id, event_type, occurred_at, body) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(e.id.as_str())
        .bind(e.organization_id.as_str())
        .bind(e.customer_id.as_str())
        .bind(e.event_type.as_str())
        .bind(e.occurred_at.unix_micros())
        .bind(&e.body)
        .execute(&mut *conn)
        .await?;
        sqlx::query("INSERT INTO deliveries (event_id, organization_id, due_at) VALUES (?, ?, ?)")
            .bind(e.id.as_str())
            .bind(e.organization_id.as_str())
            .bind(e.occurred_at.unix_micros())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The `seq` of the cursor item, which must belong to the listing's scope.
async fn cursor_seq(
    pool: &SqlitePool,
    table: &str,
    id: &str,
    organization: Option<&OrganizationId>,
) -> Result<i64, StoreError> {
    let sql =
        format!("SELECT seq FROM {table} WHERE id = ?1 AND (?2 IS NULL OR organization_id = ?2)");
    sqlx::query_scalar(&sql)
        .bind(id)
        .bind(organization.map(OrganizationId::as_str))
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::UnknownCursor)
}

fn page_of<T>(mut items: Vec<T>, limit: u32) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = items.len() > limit;
    items.truncate(limit);
    Page { items, has_more }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> Result<(), StoreError> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.readers)
                .await?;
        let embedded = MIGRATOR.iter().count();
        if usize::try_from(applied).unwrap_or(0) < embedded {
            return Err(StoreError::Config(format!(
                "{applied} of {embedded} migrations applied"
            )));
        }
        Ok(())
    }

    async fn create_organization(
        &self,
        organization: &Organization,
        api_key_digest: [u8; 32],
    ) -> Result<(), StoreError> {
        let org = organization.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO organizations (id, name, mode, api_key_digest, created_at) \
                         VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(org.id.as_str())
                    .bind(&org.name)
                    .bind(org.mode.as_str())
                    .bind(&api_key_digest[..])
                    .bind(org.created_at.unix_micros())
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn organization_by_key(
        &self,
        api_key_digest: [u8; 32],
    ) -> Result<Option<Organization>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, mode, created_at FROM organizations WHERE api_key_digest = ?",
        )
        .bind(&api_key_digest[..])
        .fetch_optional(&self.readers)
        .await?;
        row.as_ref().map(rows::organization).transpose()
    }

    async fn organization(&self, id: &OrganizationId) -> Result<Option<Organization>, StoreError> {
        let row = sqlx::query("SELECT id, name, mode, created_at FROM organizations WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(rows::organization).transpose()
    }

    async fn webhook(&self, id: &OrganizationId) -> Result<Option<WebhookEndpoint>, StoreError> {
        let row = sqlx::query("SELECT webhook_url, webhook_secret FROM organizations WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.readers)
            .await?;
        row.map(|row| {
            let secret: Option<String> = row.try_get("webhook_secret")?;
            Ok(WebhookEndpoint {
                url: row.try_get("webhook_url")?,
                secret: secret.map(WebhookSecret::from_stored),
            })
        })
        .transpose()
    }

    async fn set_webhook_url(
        &self,
        id: &OrganizationId,
        url: &WebhookUrl,
        fresh_secret: WebhookSecret,
    ) -> Result<WebhookSet, StoreError> {
        let (id, url) = (id.clone(), url.as_str().to_owned());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "UPDATE organizations SET webhook_url = ?, \
                         webhook_secret = COALESCE(webhook_secret, ?) WHERE id = ? \
                         RETURNING webhook_url, webhook_secret",
                    )
                    .bind(&url)
                    .bind(fresh_secret.expose())
                    .bind(id.as_str())
                    .fetch_optional(conn)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                    let secret = WebhookSecret::from_stored(row.try_get("webhook_secret")?);
                    Ok(WebhookSet {
                        url: row.try_get("webhook_url")?,
                        secret_is_new: secret == fresh_secret,
                        secret,
                    })
                })
            })
            .await
            // Events waiting for a URL are due now.
            .inspect(|_| self.work.notify_one())
    }

    async fn rotate_webhook_secret(
        &self,
        id: &OrganizationId,
        secret: WebhookSecret,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done =
                        sqlx::query("UPDATE organizations SET webhook_secret = ? WHERE id = ?")
                            .bind(secret.expose())
                            .bind(id.as_str())
                            .execute(conn)
                            .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn insert_customer(&self, change: CustomerChange) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    upsert_customer(&mut *conn, &change.customer).await?;
                    insert_events(conn, &change.events).await
                })
            })
            .await?;
        self.work.notify_one();
        Ok(())
    }

    async fn modify_customer(
        &self,
        scope: Scope<'_>,
        id: &CustomerId,
        mutation: Mutation,
    ) -> Result<CustomerChange, StoreError> {
        let (organization, id) = (scope.organization().cloned(), id.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let current = select_customer(&mut *conn, organization.as_ref(), &id)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let change = mutation(&current)?;
                    if change.customer != current {
                        upsert_customer(&mut *conn, &change.customer).await?;
                    }
                    insert_events(conn, &change.events).await?;
                    Ok(change)
                })
            })
            .await
            .inspect(|change| {
                if !change.events.is_empty() {
                    self.work.notify_one();
                }
            })
    }

    async fn customer(
        &self,
        scope: Scope<'_>,
        id: &CustomerId,
    ) -> Result<Option<Customer>, StoreError> {
        let mut conn = self.readers.acquire().await?;
        select_customer(&mut conn, scope.organization(), id).await
    }

    async fn list_customers(
        &self,
        organization: &OrganizationId,
        status: Option<CustomerStatus>,
        page: PageRequest<CustomerId>,
    ) -> Result<Page<Customer>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE organization_id = "
        ));
        q.push_bind(organization.as_str());
        if let Some(status) = status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(after) = &page.after {
            let seq = cursor_seq(
                &self.readers,
                "customers",
                after.as_str(),
                Some(organization),
            )
            .await?;
            q.push(" AND seq < ").push_bind(seq);
        }
        q.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(i64::from(page.limit) + 1);
        let rows = q.build().fetch_all(&self.readers).await?;
        let items = rows.iter().map(rows::customer).collect::<Result<_, _>>()?;
        Ok(page_of(items, page.limit))
    }

    async fn event(
        &self,
        scope: Scope<'_>,
        id: &EventId,
    ) -> Result<Option<EventRecord>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1 \
             AND (?2 IS NULL OR organization_id = ?2)"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(scope.organization().map(OrganizationId::as_str))
            .fetch_optional(&self.readers)
            .await?;
        let Some(EventSummary {
            event,
            delivery_status,
        }) = row.as_ref().map(rows::event_summary).transpose()?
        else {
            return Ok(None);
        };
        let attempts = sqlx::query(
            "SELECT attempt, started_at, duration_ms, status_code, error_class, error, \
             response_body FROM attempts WHERE event_id = ? ORDER BY attempt",
        )
        .bind(id.as_str())
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(rows::attempt)
        .collect::<Result<Vec<AttemptRecord>, _>>()?;
        Ok(Some(EventRecord {
            event,
            delivery_status,
            attempts,
        }))
    }

    async fn list_events(
        &self,
        scope: Scope<'_>,
        filter: &EventFilter,
        page: PageRequest<EventId>,
    ) -> Result<Page<EventSummary>, StoreError> {
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("SELECT {EVENT_COLUMNS} FROM events WHERE 1 = 1"));
        if let Some(organization) = scope.organization() {
            q.push(" AND organization_id = ")
                .push_bind(organization.as_str());
        }
        if let Some(t) = filter.event_type {
            q.push(" AND event_type = ").push_bind(t.as_str());
        }
        if let Some(c) = &filter.customer_id {
            q.push(" AND customer_id = ").push_bind(c.as_str());
        }
        if let Some(d) = filter.delivery_status {
            q.push(" AND delivery_status = ").push_bind(d.as_str());
        }
        if let Some(after) = &page.after {
            let seq = cursor_seq(
                &self.readers,
                "events",
                after.as_str(),
                scope.organization(),
            )
            .await?;
            q.push(" AND seq < ").push_bind(seq);
        }
        q.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(i64::from(page.limit) + 1);
        let rows = q.build().fetch_all(&self.readers).await?;
        let items = rows
            .iter()
            .map(rows::event_summary)
            .collect::<Result<_, _>>()?;
        Ok(page_of(items, page.limit))
    }

    async fn claim_deliveries(
        &self,
        request: ClaimRequest,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        outbox::claim(&self.writer, request).await
    }

    async fn record_attempt(&self, outcome: AttemptOutcome) -> Result<bool, StoreError> {
        let retry = matches!(outcome.next, crate::NextStep::RetryAt(_));
        let applied = outbox::record(&self.writer, outcome).await?;
        if applied && retry {
            // The sender sleeps until the earliest due time; a new one may be earlier.
            self.work.notify_one();
        }
        Ok(applied)
    }

    async fn release_deliveries(
        &self,
        leases: Vec<(EventId, String)>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        outbox::release(&self.writer, leases, now).await
    }

    async fn redeliver(
        &self,
        scope: Scope<'_>,
        id: &EventId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        outbox::redeliver(&self.writer, scope, id, now).await?;
        self.work.notify_one();
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(d.due_at) FROM deliveries d \
             JOIN organizations o ON o.id = d.organization_id AND o.webhook_url IS NOT NULL",
        )
        .fetch_one(&self.readers)
        .await?;
        Ok(due.map(Timestamp::from_unix_micros))
    }

    fn work_signal(&self) -> Arc<Notify> {
        self.work.clone()
    }
}
