//! The store, written once for every backend: [`Database`] implements the repositories
//! and the outbox on top of what a [`Backend`] provides — reads on its reader pool, a
//! batching writer over its [`Conn`], and the few writes whose SQL differs by dialect.

use crate::conn::Conn;
use crate::outbox::{
    AttemptOutcome, ClaimRequest, ClaimedDelivery, Lease, NextStep, Outbox, Recorded,
};
use crate::repository::{
    AttemptSample, Customers, EventFilter, EventLog, EventRecord, EventSummary, Health, Mutation,
    Organizations, Page, PageRequest, Scope, WebhookEndpoint, WebhookSet,
};
use crate::rows::{self, Row, Value};
use crate::sql::{self, Query};
use crate::writer::Writer;
use crate::StoreError;
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Notify;
use verihook_core::{
    Customer, CustomerChange, CustomerId, CustomerStatus, Event, EventId, Organization,
    OrganizationId, Timestamp, WebhookSecret, WebhookUrl,
};

/// What a database backend provides. Everything else is [`Database`]'s, written once.
pub(crate) trait Backend: Send + Sync + 'static {
    type Conn: Conn;

    /// Appended to the read of a customer about to change: PostgreSQL locks the row against
    /// other nodes' writers; SQLite's single writer needs nothing.
    const LOCK_FOR_UPDATE: &'static str;
    /// A statement that tells every node, at commit, that deliveries fell due (PostgreSQL's
    /// NOTIFY); `None` where one process is all there is.
    const ANNOUNCE: Option<&'static str>;

    /// How many migrations this build embeds.
    fn migrations(&self) -> usize;
    /// Runs a read on the reader pool.
    fn read(
        &self,
        sql: String,
        params: Vec<Value<'static>>,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;
    fn writer(&self) -> &Writer<Self::Conn>;

    /// Stores a customer (inserted, or updated in every column but its identity and
    /// order), its events and their outbox entries.
    fn save_change<'c>(
        conn: &'c mut Self::Conn,
        customer: &'c Customer,
        events: &'c [Event],
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

/// The repositories and the outbox over one backend.
pub(crate) struct Database<B> {
    backend: B,
    /// The outbox's wake-up: notified after this process enqueues or moves deliveries
    /// sooner, and (PostgreSQL) when another node announces that it did.
    work: Arc<Notify>,
}

impl<B: Backend> Database<B> {
    pub(crate) fn new(backend: B, work: Arc<Notify>) -> Self {
        Self { backend, work }
    }

    async fn read_one<T>(
        &self,
        sql: impl Into<String>,
        params: Vec<Value<'_>>,
        map: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let rows = self.backend.read(sql.into(), rows::owned(params)).await?;
        rows.first().map(map).transpose()
    }

    async fn read_all<T>(
        &self,
        query: Query,
        map: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self.backend.read(query.sql, query.params).await?;
        rows.iter().map(map).collect()
    }

    /// The `seq` of a listing's cursor item, which must lie in `organization`'s scope.
    async fn cursor_seq(
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

    /// Runs `op` in the writer's next batch.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut B::Conn) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.backend.writer().write(op).await
    }

    /// Deliveries may be due now: wake this process's sender.
    fn wake(&self) {
        self.work.notify_one();
    }
}

type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;

/// [`Backend::record`], boxed as the writer calls it for a batch's merged outcomes.
pub(crate) fn record_boxed<'c, B: Backend>(
    conn: &'c mut B::Conn,
    outcomes: &'c [AttemptOutcome],
) -> BoxFuture<'c, Result<Vec<Recorded>, StoreError>> {
    Box::pin(B::record(conn, outcomes))
}

/// Tells the other nodes, at commit, that deliveries fell due.
async fn announce<B: Backend>(conn: &mut B::Conn) -> Result<(), StoreError> {
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
        Ok(())
    }
}

#[async_trait]
impl<B: Backend> Organizations for Database<B> {
    async fn create_organization(
        &self,
        organization: &Organization,
        api_key_digest: [u8; 32],
    ) -> Result<(), StoreError> {
        let org = organization.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let params = [
                    Value::text(org.id.as_str()),
                    Value::text(&org.name),
                    Value::text(org.mode.as_str()),
                    Value::Bytes(api_key_digest[..].into()),
                    Value::time(org.created_at),
                ];
                conn.execute(sql::INSERT_ORGANIZATION, &params).await?;
                Ok(())
            })
        })
        .await
    }

    async fn organization_by_key(
        &self,
        api_key_digest: [u8; 32],
    ) -> Result<Option<Organization>, StoreError> {
        let params = vec![Value::Bytes(api_key_digest[..].into())];
        self.read_one(sql::ORGANIZATION_BY_KEY, params, rows::organization)
            .await
    }

    async fn organization(&self, id: &OrganizationId) -> Result<Option<Organization>, StoreError> {
        let params = vec![Value::text(id.as_str())];
        self.read_one(sql::ORGANIZATION, params, rows::organization)
            .await
    }

    async fn webhook(&self, id: &OrganizationId) -> Result<Option<WebhookEndpoint>, StoreError> {
        let params = vec![Value::text(id.as_str())];
        self.read_one(sql::WEBHOOK, params, |row| {
            Ok(WebhookEndpoint {
                url: row
                    .opt_string("webhook_url")?
                    .map(|u| stored_url(&u))
                    .transpose()?,
                secret: row
                    .opt_string("webhook_secret")?
                    .map(WebhookSecret::from_stored),
            })
        })
        .await
    }

    async fn set_webhook_url(
        &self,
        id: &OrganizationId,
        url: &WebhookUrl,
        fresh_secret: WebhookSecret,
    ) -> Result<WebhookSet, StoreError> {
        let (id, url) = (id.clone(), url.clone());
        let set = self
            .write(move |conn| {
                Box::pin(async move {
                    let params = [
                        Value::text(url.as_str()),
                        Value::text(fresh_secret.expose()),
                        Value::text(id.as_str()),
                    ];
                    let rows = conn.query(sql::SET_WEBHOOK_URL, &params).await?;
                    let row = rows.first().ok_or(StoreError::NotFound)?;
                    // The organization's queued events may be claimed now.
                    announce::<B>(conn).await?;
                    let secret = WebhookSecret::from_stored(row.string("webhook_secret")?);
                    Ok(WebhookSet {
                        url: stored_url(&row.string("webhook_url")?)?,
                        secret_is_new: secret == fresh_secret,
                        secret,
                    })
                })
            })
            .await?;
        self.wake();
        Ok(set)
    }

    async fn rotate_webhook_secret(
        &self,
        id: &OrganizationId,
        secret: WebhookSecret,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let params = [Value::text(secret.expose()), Value::text(id.as_str())];
                match conn.execute(sql::ROTATE_SECRET, &params).await? {
                    0 => Err(StoreError::NotFound),
                    _ => Ok(()),
                }
            })
        })
        .await
    }
}

#[async_trait]
impl<B: Backend> Customers for Database<B> {
    async fn insert_customer(&self, change: CustomerChange) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move { B::save_change(conn, &change.customer, &change.events).await })
        })
        .await?;
        self.wake();
        Ok(())
    }

    async fn modify_customer(
        &self,
        scope: Scope<'_>,
        id: &CustomerId,
        mutation: Mutation,
    ) -> Result<CustomerChange, StoreError> {
        let organization = scope.organization().cloned();
        let id = id.clone();
        let change = self
            .write(move |conn| {
                Box::pin(async move {
                    let params = [
                        Value::text(id.as_str()),
                        Value::opt_text(organization.as_ref().map(OrganizationId::as_str)),
                    ];
                    let select = sql::select_customer(B::LOCK_FOR_UPDATE);
                    let rows = conn.query(&select, &params).await?;
                    let current = rows
                        .first()
                        .map(rows::customer)
                        .transpose()?
                        .ok_or(StoreError::NotFound)?;
                    let change = mutation(&current)?;
                    if change.customer != current || !change.events.is_empty() {
                        B::save_change(conn, &change.customer, &change.events).await?;
                    }
                    Ok(change)
                })
            })
            .await?;
        if !change.events.is_empty() {
            self.wake();
        }
        Ok(change)
    }

    async fn customer(
        &self,
        scope: Scope<'_>,
        id: &CustomerId,
    ) -> Result<Option<Customer>, StoreError> {
        let params = vec![
            Value::text(id.as_str()),
            Value::opt_text(scope.organization().map(OrganizationId::as_str)),
        ];
        self.read_one(sql::select_customer(""), params, rows::customer)
            .await
    }

    async fn list_customers(
        &self,
        organization: &OrganizationId,
        status: Option<CustomerStatus>,
        page: PageRequest<CustomerId>,
    ) -> Result<Page<Customer>, StoreError> {
        let mut q = Query::new(format!(
            "SELECT {} FROM customers WHERE organization_id = ",
            rows::CUSTOMER_COLUMNS
        ));
        q.bind(Value::text(organization.as_str()).into_owned());
        if let Some(status) = status {
            q.push(" AND status = ")
                .bind(Value::text(status.as_str()).into_owned());
        }
        if let Some(after) = &page.after {
            let seq = self
                .cursor_seq("customers", after.as_str(), Some(organization))
                .await?;
            q.push(" AND seq < ").bind(Value::int(seq));
        }
        q.push(" ORDER BY seq DESC LIMIT ")
            .bind(Value::int(i64::from(page.limit) + 1));
        let items = self.read_all(q, rows::customer).await?;
        Ok(Page::of(items, page.limit))
    }
}

#[async_trait]
impl<B: Backend> EventLog for Database<B> {
    async fn event(
        &self,
        scope: Scope<'_>,
        id: &EventId,
    ) -> Result<Option<EventRecord>, StoreError> {
        let params = vec![
            Value::text(id.as_str()),
            Value::opt_text(scope.organization().map(OrganizationId::as_str)),
        ];
        let found = self
            .read_one(sql::select_event(), params, |row| {
                Ok((row.int("seq")?, rows::event_summary(row)?))
            })
            .await?;
        let Some((seq, summary)) = found else {
            return Ok(None);
        };
        let attempts = self
            .read_all(
                Query {
                    sql: sql::ATTEMPTS_OF_EVENT.into(),
                    params: vec![Value::int(seq)],
                },
                rows::attempt,
            )
            .await?;
        Ok(Some(EventRecord {
            event: summary.event,
            delivery_status: summary.delivery_status,
            attempts,
        }))
    }

    async fn list_events(
        &self,
        scope: Scope<'_>,
        filter: &EventFilter,
        page: PageRequest<EventId>,
    ) -> Result<Page<EventSummary>, StoreError> {
        let mut q = Query::new(format!(
            "SELECT {} FROM events WHERE 1 = 1",
            rows::EVENT_COLUMNS
        ));
        if let Some(organization) = scope.organization() {
            q.push(" AND organization_id = ")
                .bind(Value::text(organization.as_str()).into_owned());
        }
        if let Some(t) = filter.event_type {
            q.push(" AND event_type = ").bind(Value::text(t.as_str()));
        }
        if let Some(c) = &filter.customer_id {
            q.push(" AND customer_id = ")
                .bind(Value::text(c.as_str()).into_owned());
        }
        if let Some(d) = filter.delivery_status {
            q.push(sql::delivery_status_filter(d));
        }
        if let Some(after) = &page.after {
            let seq = self
                .cursor_seq("events", after.as_str(), scope.organization())
                .await?;
            q.push(" AND seq < ").bind(Value::int(seq));
        }
        q.push(" ORDER BY seq DESC LIMIT ")
            .bind(Value::int(i64::from(page.limit) + 1));
        let items = self.read_all(q, rows::event_summary).await?;
        Ok(Page::of(items, page.limit))
    }

    async fn recent_attempts(
        &self,
        organization: &OrganizationId,
        since: Timestamp,
        recent: u32,
    ) -> Result<Vec<AttemptSample>, StoreError> {
        let q = Query {
            sql: sql::RECENT_ATTEMPTS.into(),
            params: rows::owned(vec![
                Value::text(organization.as_str()),
                Value::int(i64::from(recent)),
                Value::time(since),
            ]),
        };
        self.read_all(q, rows::attempt_sample).await
    }
}

#[async_trait]
impl<B: Backend> Outbox for Database<B> {
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.write(move |conn| Box::pin(async move { B::claim(conn, &request).await }))
            .await
    }

    async fn record(&self, outcomes: Vec<AttemptOutcome>) -> Result<Vec<Recorded>, StoreError> {
        let retry = outcomes
            .iter()
            .any(|o| matches!(o.next, NextStep::RetryAt(_)));
        let recorded = self.backend.writer().record(outcomes).await?;
        if retry || recorded.contains(&Recorded::Requeued) {
            // The sender sleeps until the earliest due time; a retry may be earlier, and a
            // requeued delivery is due now.
            self.wake();
        }
        Ok(recorded)
    }

    async fn release(&self, leases: Vec<Lease>, now: Timestamp) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                for lease in &leases {
                    let params = [
                        Value::time(now),
                        Value::int(lease.delivery),
                        Value::text(&lease.token),
                    ];
                    conn.execute(sql::RELEASE_DELIVERY, &params).await?;
                }
                announce::<B>(conn).await
            })
        })
        .await
    }

    async fn requeue(
        &self,
        scope: Scope<'_>,
        id: &EventId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let organization = scope.organization().cloned();
        let id = id.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let params = [
                    Value::text(id.as_str()),
                    Value::opt_text(organization.as_ref().map(OrganizationId::as_str)),
                ];
                let rows = conn.query(sql::EVENT_OWNER, &params).await?;
                let row = rows.first().ok_or(StoreError::NotFound)?;
                let (owner, seq) = (row.string("organization_id")?, row.int("seq")?);
                let params = [Value::int(seq), Value::text(&owner), Value::time(now)];
                conn.execute(sql::REQUEUE_DELIVERY, &params).await?;
                conn.execute(sql::UNMARK_FAILED, &[Value::int(seq)]).await?;
                announce::<B>(conn).await
            })
        })
        .await?;
        self.wake();
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let due = self
            .read_one(sql::NEXT_DUE, Vec::new(), |r| r.opt_int("due"))
            .await?;
        Ok(due.flatten().map(Timestamp::from_unix_micros))
    }

    async fn size(&self) -> Result<u64, StoreError> {
        let n = self
            .read_one(sql::OUTBOX_SIZE, Vec::new(), |r| r.int("n"))
            .await?
            .unwrap_or(0);
        u64::try_from(n).map_err(StoreError::corrupt)
    }

    fn work_signal(&self) -> Arc<Notify> {
        self.work.clone()
    }
}

/// A webhook URL as stored: it was validated when it was set.
pub(crate) fn stored_url(s: &str) -> Result<WebhookUrl, StoreError> {
    WebhookUrl::from_stored(s).map_err(|e| StoreError::corrupt(format!("webhook_url: {e}")))
}

/// Claimed rows `(event_seq, attempt, budget_used)` joined with their details (rows of
/// [`sql::CLAIMED_DETAILS`]), in claim order.
pub(crate) fn claimed_deliveries(
    claimed: Vec<(i64, i64, i64)>,
    details: &[Row],
    lease_token: &str,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let mut by_seq = std::collections::HashMap::with_capacity(details.len());
    for row in details {
        by_seq.insert(row.int("seq")?, row);
    }
    claimed
        .into_iter()
        .map(|(seq, attempt, budget_used)| {
            let row = by_seq
                .get(&seq)
                .ok_or_else(|| StoreError::corrupt("delivery without its event"))?;
            let url = row
                .opt_string("webhook_url")?
                .ok_or_else(|| StoreError::corrupt("claimed without a URL"))?;
            let secret = row
                .opt_string("webhook_secret")?
                .ok_or_else(|| StoreError::corrupt("webhook URL without a secret"))?;
            Ok(ClaimedDelivery {
                event: rows::event(row)?,
                url: stored_url(&url)?,
                secret: WebhookSecret::from_stored(secret),
                attempt: u32::try_from(attempt).map_err(StoreError::corrupt)?,
                budget_used: u32::try_from(budget_used).map_err(StoreError::corrupt)?,
                lease: Lease {
                    delivery: seq,
                    token: lease_token.to_owned(),
                },
            })
        })
        .collect()
}
