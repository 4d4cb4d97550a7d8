//! What the SQLite and PostgreSQL stores have in common, written once: the reads (on an
//! sqlx pool, the same SQL on both) and the `Store` methods, which delegate each write to
//! the backend's `writes` module and wake the dispatcher after it.
//!
//! sqlx makes code generic over databases awkward (its executor traits do not compose with
//! `async` closures), so this macro stamps the shared code out on each backend's concrete
//! types. A backend module invoking it provides:
//!
//! - `struct $store { readers: $pool, writer: …, work: Arc<Notify> }`;
//! - `MIGRATOR`, the backend's embedded migrations;
//! - `LOCK_CLAUSE`, appended to the read of a customer about to change;
//! - a `writes` module with `create_organization`, `set_webhook_url`,
//!   `rotate_webhook_secret`, `insert_customer`, `modify_customer`, `claim`, `record`,
//!   `release` and `redeliver`.
//!
//! Placeholders are `$1, $2, …`, which SQLite accepts too.

macro_rules! backend_common {
    ($store:ident, $conn:ty, $pool:ty, $db:ty) => {
        /// One customer within a scope; `lock` holds it until the transaction ends.
        pub(super) async fn select_customer(
            conn: &mut $conn,
            organization: Option<&OrganizationId>,
            id: &CustomerId,
            lock: bool,
        ) -> Result<Option<Customer>, StoreError> {
            let sql = format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2){}",
                if lock { LOCK_CLAUSE } else { "" }
            );
            let row = sqlx::query(&sql)
                .bind(id.as_str())
                .bind(organization.map(OrganizationId::as_str))
                .fetch_optional(conn)
                .await?;
            row.as_ref().map(rows::customer).transpose()
        }

        /// The `seq` of the cursor item, which must belong to the listing's scope.
        async fn cursor_seq(
            pool: &$pool,
            table: &str,
            id: &str,
            organization: Option<&OrganizationId>,
        ) -> Result<i64, StoreError> {
            let sql = format!(
                "SELECT seq FROM {table} WHERE id = $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2)"
            );
            sqlx::query_scalar(&sql)
                .bind(id)
                .bind(organization.map(OrganizationId::as_str))
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::UnknownCursor)
        }

        #[async_trait]
        impl Store for $store {
            async fn ready(&self) -> Result<(), StoreError> {
                let applied: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE",
                )
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
                writes::create_organization(&self.writer, organization.clone(), api_key_digest)
                    .await
            }

            async fn organization_by_key(
                &self,
                api_key_digest: [u8; 32],
            ) -> Result<Option<Organization>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, name, mode, created_at FROM organizations \
                     WHERE api_key_digest = $1",
                )
                .bind(&api_key_digest[..])
                .fetch_optional(&self.readers)
                .await?;
                row.as_ref().map(rows::organization).transpose()
            }

            async fn organization(
                &self,
                id: &OrganizationId,
            ) -> Result<Option<Organization>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, name, mode, created_at FROM organizations WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.readers)
                .await?;
                row.as_ref().map(rows::organization).transpose()
            }

            async fn webhook(
                &self,
                id: &OrganizationId,
            ) -> Result<Option<WebhookEndpoint>, StoreError> {
                let row = sqlx::query(
                    "SELECT webhook_url, webhook_secret FROM organizations WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.readers)
                .await?;
                row.map(|row| {
                    Ok(WebhookEndpoint {
                        url: rows::Get::opt_string(&row, "webhook_url")?,
                        secret: rows::Get::opt_string(&row, "webhook_secret")?
                            .map(WebhookSecret::from_stored),
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
                let url = url.as_str().to_owned();
                let set =
                    writes::set_webhook_url(&self.writer, id.clone(), url, fresh_secret).await?;
                // Events waiting for a URL are due now.
                self.work.notify_one();
                Ok(set)
            }

            async fn rotate_webhook_secret(
                &self,
                id: &OrganizationId,
                secret: WebhookSecret,
            ) -> Result<(), StoreError> {
                writes::rotate_webhook_secret(&self.writer, id.clone(), secret).await
            }

            async fn insert_customer(&self, change: CustomerChange) -> Result<(), StoreError> {
                writes::insert_customer(&self.writer, change).await?;
                self.work.notify_one();
                Ok(())
            }

            async fn modify_customer(
                &self,
                scope: Scope<'_>,
                id: &CustomerId,
                mutation: Mutation,
            ) -> Result<CustomerChange, StoreError> {
                let organization = scope.organization().cloned();
                let change =
                    writes::modify_customer(&self.writer, organization, id.clone(), mutation)
                        .await?;
                if !change.events.is_empty() {
                    self.work.notify_one();
                }
                Ok(change)
            }

            async fn customer(
                &self,
                scope: Scope<'_>,
                id: &CustomerId,
            ) -> Result<Option<Customer>, StoreError> {
                let mut conn = self.readers.acquire().await?;
                select_customer(&mut conn, scope.organization(), id, false).await
            }
            async fn list_customers(
                &self,
                organization: &OrganizationId,
                status: Option<CustomerStatus>,
                page: PageRequest<CustomerId>,
            ) -> Result<Page<Customer>, StoreError> {
                let mut q = QueryBuilder::<$db>::new(format!(
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
                Ok(crate::page_of(items, page.limit))
            }

            async fn event(
                &self,
                scope: Scope<'_>,
                id: &EventId,
            ) -> Result<Option<EventRecord>, StoreError> {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE id = $1 \
                     AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2)"
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
                     response_body FROM attempts \
                     WHERE event_seq = (SELECT seq FROM events WHERE id = $1) ORDER BY attempt",
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
                let mut q = QueryBuilder::<$db>::new(format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE 1 = 1"
                ));
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
                    q.push(crate::sql::delivery_status_filter(d));
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
                Ok(crate::page_of(items, page.limit))
            }

            async fn claim_deliveries(
                &self,
                request: ClaimRequest,
            ) -> Result<Vec<ClaimedDelivery>, StoreError> {
                writes::claim(&self.writer, request).await
            }

            async fn record_attempts(
                &self,
                outcomes: Vec<AttemptOutcome>,
            ) -> Result<Vec<bool>, StoreError> {
                let retry = outcomes
                    .iter()
                    .any(|o| matches!(o.next, NextStep::RetryAt(_)));
                let recorded = writes::record(&self.writer, outcomes).await?;
                if retry || recorded.contains(&Recorded::Requeued) {
                    // The dispatcher sleeps until the earliest due time; a retry may be
                    // earlier, and a requeued delivery is due now.
                    self.work.notify_one();
                }
                Ok(recorded.iter().map(|r| *r != Recorded::LeaseLost).collect())
            }

            async fn release_deliveries(
                &self,
                leases: Vec<Lease>,
                now: Timestamp,
            ) -> Result<(), StoreError> {
                writes::release(&self.writer, leases, now).await
            }

            async fn redeliver(
                &self,
                scope: Scope<'_>,
                id: &EventId,
                now: Timestamp,
            ) -> Result<(), StoreError> {
                let organization = scope.organization().cloned();
                writes::redeliver(&self.writer, organization, id.clone(), now).await?;
                self.work.notify_one();
                Ok(())
            }

            async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
                let due: Option<i64> = sqlx::query_scalar(crate::sql::NEXT_DUE)
                    .fetch_one(&self.readers)
                    .await?;
                Ok(due.map(Timestamp::from_unix_micros))
            }

            async fn recent_attempts(
                &self,
                organization: &OrganizationId,
                since: Timestamp,
                recent: u32,
            ) -> Result<Vec<AttemptSample>, StoreError> {
                let rows: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT a.started_at, a.duration_ms, a.status_code FROM ( \
                     SELECT seq FROM events WHERE organization_id = $1 \
                     ORDER BY seq DESC LIMIT $2) recent \
                     JOIN attempts a ON a.event_seq = recent.seq \
                     WHERE a.started_at >= $3 ORDER BY a.started_at",
                )
                .bind(organization.as_str())
                .bind(i64::from(recent))
                .bind(since.unix_micros())
                .fetch_all(&self.readers)
                .await?;
                rows.into_iter()
                    .map(|(started_at, duration_ms, status_code)| {
                        Ok(AttemptSample {
                            started_at: Timestamp::from_unix_micros(started_at),
                            duration_ms: u64::try_from(duration_ms).map_err(StoreError::corrupt)?,
                            status_code: status_code
                                .map(u16::try_from)
                                .transpose()
                                .map_err(StoreError::corrupt)?,
                        })
                    })
                    .collect()
            }

            async fn outbox_size(&self) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
                    .fetch_one(&self.readers)
                    .await?;
                u64::try_from(n).map_err(StoreError::corrupt)
            }

            fn work_signal(&self) -> Arc<Notify> {
                self.work.clone()
            }
        }
    };
}

pub(crate) use backend_common;
