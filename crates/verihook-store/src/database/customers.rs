//! [`Customers`], written once for every backend: each write stores the customer with its
//! events and their outbox entries (the backend's `save_changes`).

use super::{Backend, Database};
use crate::conn::Conn;
use crate::repository::{Customers, Mutation, Page, PageRequest, Scope};
use crate::rows::{self, Value};
use crate::secrets::Sealer;
use crate::sql::{self, Query};
use crate::writer::Lane;
use crate::StoreError;
use crate::{AnswerWithChange, StoredAnswer};
use async_trait::async_trait;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use verihook_core::{Customer, CustomerChange, CustomerId, CustomerStatus, OrganizationId};

#[async_trait]
impl<B: Backend> Customers for Database<B> {
    async fn insert_customer_answering(
        &self,
        change: CustomerChange,
        answer: Option<AnswerWithChange>,
    ) -> Result<(), StoreError> {
        match answer {
            // Merged with the batch's other new customers.
            None => self.backend.writer().save(change).await?,
            Some(answer) => {
                let sealer = self.sealer.clone();
                self.write(Lane::Api, move |conn| {
                    Box::pin(async move {
                        B::save_changes(conn, &[(&change.customer, &change.events)]).await?;
                        store_answer_with::<B>(conn, Some(answer), &change, &sealer).await
                    })
                })
                .await?;
            }
        }
        self.deliveries_due();
        Ok(())
    }

    async fn modify_customer_answering(
        &self,
        scope: Scope<'_>,
        id: &CustomerId,
        mutation: Mutation,
        answer: Option<AnswerWithChange>,
    ) -> Result<CustomerChange, StoreError> {
        let organization = scope.organization().cloned();
        let pending = Arc::new(Mutex::new(Some((mutation, answer))));
        let change =
            retry_conflicts(|| self.modify_once(organization.clone(), id.clone(), pending.clone()))
                .await?;
        if !change.events.is_empty() {
            self.deliveries_due();
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
            "SELECT {} FROM customers WHERE deleted_at IS NULL AND organization_id = ",
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

/// A mutation and the answer to store with it, taken by the one run of the job that holds
/// the customer's row (an earlier run that found the row locked leaves them in place).
type Pending = Arc<Mutex<Option<(Mutation, Option<AnswerWithChange>)>>>;

impl<B: Backend> Database<B> {
    /// Locks the customer's row (failing at once when another node holds it), applies the
    /// mutation, and stores the change with its numbered events and the answer.
    async fn modify_once(
        &self,
        organization: Option<OrganizationId>,
        id: CustomerId,
        pending: Pending,
    ) -> Result<CustomerChange, StoreError> {
        let sealer = self.sealer.clone();
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let current = locked_customer::<B>(conn, &id, organization.as_ref()).await?;
                let taken = pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                let (mutation, answer) = taken.ok_or(StoreError::WriterStopped)?;
                let change = mutation(&current)?;
                if change.customer != current || !change.events.is_empty() {
                    B::save_changes(conn, &[(&change.customer, &change.events)]).await?;
                }
                store_answer_with::<B>(conn, answer, &change, &sealer).await?;
                Ok(change)
            })
        })
        .await
    }
}

/// The customer, its row locked for this transaction (or `StoreError::is_conflict` at once
/// while another node holds it); `NotFound` outside `organization` or when erased.
pub(super) async fn locked_customer<B: Backend>(
    conn: &mut B::Conn,
    id: &CustomerId,
    organization: Option<&OrganizationId>,
) -> Result<Customer, StoreError> {
    let params = [
        Value::text(id.as_str()),
        Value::opt_text(organization.map(OrganizationId::as_str)),
    ];
    let select = sql::select_customer(B::LOCK_OR_FAIL);
    let rows = conn.query(&select, &params).await?;
    let current = rows.first().map(rows::customer).transpose()?;
    current.ok_or(StoreError::NotFound)
}

/// Runs `write` again while it fails on another transaction's lock, with a growing,
/// jittered wait, for up to [`CONFLICT_PATIENCE`]: a row another node is changing is free
/// again within that node's next commit.
pub(super) async fn retry_conflicts<T, F, Fut>(mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + CONFLICT_PATIENCE;
    let mut wait = Duration::from_millis(1);
    loop {
        match write().await {
            Err(e) if e.is_conflict() && Instant::now() + wait < deadline => {
                // Up to as much again, at random, so that two nodes retrying do not meet.
                let jitter = RandomState::new().hash_one(()) % 1_000;
                let jitter = wait * u32::try_from(jitter).unwrap_or(0) / 1_000;
                tokio::time::sleep(wait + jitter).await;
                wait = (wait * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// How long a write waits, in all, for rows other nodes hold.
const CONFLICT_PATIENCE: Duration = Duration::from_secs(5);

/// Stores an idempotent request's answer, rendered from the change, beside the change.
async fn store_answer_with<B: Backend>(
    conn: &mut B::Conn,
    answer: Option<AnswerWithChange>,
    change: &CustomerChange,
    sealer: &Sealer,
) -> Result<(), StoreError> {
    let Some(answer) = answer else {
        return Ok(());
    };
    let stored = StoredAnswer {
        status: answer.status,
        body: sealer.seal_answer(&(answer.render)(change))?,
    };
    let customer = Some(&change.customer.id);
    super::requests::store_answer::<B>(conn, &answer.key, &stored, customer).await
}
