//! What the SQLite and PostgreSQL stores have in common, written once.
//!
//! Both speak the same SQL for everything but claiming (PostgreSQL locks with `FOR UPDATE
//! SKIP LOCKED`, SQLite needs no lock behind its single writer) and for passing lists. sqlx
//! makes code generic over databases awkward (its executor traits do not compose with
//! `async` closures), so this macro stamps the shared code out on each backend's concrete
//! types instead. A backend module invoking it provides:
//!
//! - `struct $store { readers: $pool, writer: Writer<$conn>, work: Arc<Notify> }`;
//! - `MIGRATOR`, the backend's embedded migrations;
//! - `LOCK_CLAUSE`, appended to the read of a customer about to change;
//! - `claim_in(conn, &ClaimRequest)`, the backend's claim;
//! - `announce_work(conn)`, called in every transaction that makes deliveries due (a no-op
//!   in-process; PostgreSQL also notifies other nodes).
//!
//! Placeholders are `$1, $2, …`, which SQLite accepts too.

macro_rules! backend_common {
    ($store:ident, $conn:ty, $pool:ty, $db:ty) => {
        async fn select_customer(
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

        /// Inserts the customer, or updates every column but its identity and order.
        async fn upsert_customer(conn: &mut $conn, c: &Customer) -> Result<(), StoreError> {
            let a = &c.address;
            let text = |t: &Option<verihook_core::customer::Text>| {
                t.as_ref().map(|t| t.as_str().to_owned())
            };
            sqlx::query(crate::sql::UPSERT_CUSTOMER)
                .bind(c.id.as_str())
                .bind(c.organization_id.as_str())
                .bind(c.customer_type.as_str())
                .bind(c.status.as_str())
                .bind(c.status_reason.as_deref())
                .bind(c.email.as_str())
                .bind(c.first_name.as_str())
                .bind(c.last_name.as_str())
                .bind(c.date_of_birth.map(verihook_core::customer::format_date))
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
        async fn insert_events(conn: &mut $conn, events: &[Event]) -> Result<(), StoreError> {
            for e in events {
                sqlx::query(crate::sql::INSERT_EVENT)
                    .bind(e.id.as_str())
                    .bind(e.organization_id.as_str())
                    .bind(e.customer_id.as_str())
                    .bind(e.event_type.as_str())
                    .bind(e.occurred_at.unix_micros())
                    .bind(&e.body)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(crate::sql::INSERT_DELIVERY)
                    .bind(e.id.as_str())
                    .bind(e.organization_id.as_str())
                    .bind(e.occurred_at.unix_micros())
                    .execute(&mut *conn)
                    .await?;
            }
            if !events.is_empty() {
                announce_work(conn).await?;
            }
            Ok(())
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

        async fn record_in(conn: &mut $conn, o: &AttemptOutcome) -> Result<bool, StoreError> {
            let id = o.event_id.as_str();
            let moved = match o.next {
                NextStep::RetryAt(due) => {
                    sqlx::query(crate::sql::RESCHEDULE_DELIVERY)
                        .bind(due.unix_micros())
                        .bind(id)
                        .bind(&o.lease_token)
                        .execute(&mut *conn)
                        .await?
                }
                NextStep::Delivered | NextStep::Failed => {
                    sqlx::query(crate::sql::DELETE_DELIVERY)
                        .bind(id)
                        .bind(&o.lease_token)
                        .execute(&mut *conn)
                        .await?
                }
            };
            if moved.rows_affected() == 0 {
                return Ok(false);
            }
            let final_status = match o.next {
                NextStep::Delivered => Some("delivered"),
                NextStep::Failed => Some("failed"),
                NextStep::RetryAt(_) => None,
            };
            if let Some(status) = final_status {
                sqlx::query("UPDATE events SET delivery_status = $1 WHERE id = $2")
                    .bind(status)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            let r = &o.record;
            sqlx::query(crate::sql::INSERT_ATTEMPT)
                .bind(id)
                .bind(i64::from(r.attempt))
                .bind(r.started_at.unix_micros())
                .bind(i64::try_from(r.duration_ms).unwrap_or(i64::MAX))
                .bind(r.status_code.map(i64::from))
                .bind(r.error_class.as_deref())
                .bind(r.error.as_deref())
                .bind(r.response_body.as_deref())
                .execute(&mut *conn)
                .await?;
            if matches!(o.next, NextStep::RetryAt(_)) {
                announce_work(conn).await?;
            }
            Ok(true)
        }

        async fn redeliver_in(
            conn: &mut $conn,
            organization: Option<&OrganizationId>,
            id: &EventId,
            now: Timestamp,
        ) -> Result<(), StoreError> {
            let owner: Option<String> = sqlx::query_scalar(
                "SELECT organization_id FROM events WHERE id = $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR organization_id = $2)",
            )
            .bind(id.as_str())
            .bind(organization.map(OrganizationId::as_str))
            .fetch_optional(&mut *conn)
            .await?;
            let owner = owner.ok_or(StoreError::NotFound)?;
            sqlx::query(crate::sql::REQUEUE_DELIVERY)
                .bind(id.as_str())
                .bind(&owner)
                .bind(now.unix_micros())
                .execute(&mut *conn)
                .await?;
            sqlx::query("UPDATE events SET delivery_status = 'pending' WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *conn)
                .await?;
            announce_work(conn).await
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
                let org = organization.clone();
                self.writer
                    .write(move |conn| {
                        Box::pin(async move {
                            sqlx::query(
                                "INSERT INTO organizations \
                                 (id, name, mode, api_key_digest, created_at) \
                                 VALUES ($1, $2, $3, $4, $5)",
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
                let (id, url) = (id.clone(), url.as_str().to_owned());
                let set = self
                    .writer
                    .write(move |conn| {
                        Box::pin(async move {
                            let row = sqlx::query(
                                "UPDATE organizations SET webhook_url = $1, \
                                 webhook_secret = COALESCE(webhook_secret, $2) WHERE id = $3 \
                                 RETURNING webhook_url, webhook_secret",
                            )
                            .bind(&url)
                            .bind(fresh_secret.expose())
                            .bind(id.as_str())
                            .fetch_optional(&mut *conn)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                            // Events waiting for a URL are due now.
                            announce_work(conn).await?;
                            let secret = WebhookSecret::from_stored(rows::Get::string(
                                &row,
                                "webhook_secret",
                            )?);
                            Ok(WebhookSet {
                                url: rows::Get::string(&row, "webhook_url")?,
                                secret_is_new: secret == fresh_secret,
                                secret,
                            })
                        })
                    })
                    .await?;
                self.work.notify_one();
                Ok(set)
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
                            let done = sqlx::query(
                                "UPDATE organizations SET webhook_secret = $1 WHERE id = $2",
                            )
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
                let change = self
                    .writer
                    .write(move |conn| {
                        Box::pin(async move {
                            let current =
                                select_customer(&mut *conn, organization.as_ref(), &id, true)
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
                    let seq =
                        cursor_seq(&self.readers, "customers", after.as_str(), Some(organization))
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
                     response_body FROM attempts WHERE event_id = $1 ORDER BY attempt",
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
                    q.push(" AND delivery_status = ").push_bind(d.as_str());
                }
                if let Some(after) = &page.after {
                    let seq =
                        cursor_seq(&self.readers, "events", after.as_str(), scope.organization())
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
                self.writer
                    .write(move |conn| Box::pin(async move { claim_in(conn, &request).await }))
                    .await
            }

            async fn record_attempt(&self, outcome: AttemptOutcome) -> Result<bool, StoreError> {
                let retry = matches!(outcome.next, NextStep::RetryAt(_));
                let applied = self
                    .writer
                    .write(move |conn| Box::pin(async move { record_in(conn, &outcome).await }))
                    .await?;
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
                self.writer
                    .write(move |conn| {
                        Box::pin(async move {
                            for (id, token) in &leases {
                                sqlx::query(crate::sql::RELEASE_DELIVERY)
                                    .bind(now.unix_micros())
                                    .bind(id.as_str())
                                    .bind(token)
                                    .execute(&mut *conn)
                                    .await?;
                            }
                            announce_work(conn).await
                        })
                    })
                    .await
            }

            async fn redeliver(
                &self,
                scope: Scope<'_>,
                id: &EventId,
                now: Timestamp,
            ) -> Result<(), StoreError> {
                let (organization, id) = (scope.organization().cloned(), id.clone());
                self.writer
                    .write(move |conn| {
                        Box::pin(async move {
                            redeliver_in(conn, organization.as_ref(), &id, now).await
                        })
                    })
                    .await?;
                self.work.notify_one();
                Ok(())
            }

            async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
                let due: Option<i64> = sqlx::query_scalar(crate::sql::NEXT_DUE)
                    .fetch_one(&self.readers)
                    .await?;
                Ok(due.map(Timestamp::from_unix_micros))
            }

            fn work_signal(&self) -> Arc<Notify> {
                self.work.clone()
            }
        }
    };
}

pub(crate) use backend_common;
