//! [`EventLog`], written once for every backend: reads only.

use super::{Backend, Database};
use crate::repository::{
    AttemptSample, EndpointDelivery, EventFilter, EventLog, EventRecord, EventSummary, Page,
    PageRequest, Scope,
};
use crate::rows::{self, Value};
use crate::sql::{self, Query};
use crate::StoreError;
use async_trait::async_trait;
use verihook_core::{DeliveryStatus, EndpointId, EventId, OrganizationId, Timestamp};

impl<B: Backend> Database<B> {
    /// The `seq` of an endpoint within a scope, deleted ones included (the log keeps their
    /// history).
    async fn endpoint_seq(
        &self,
        endpoint: &EndpointId,
        scope: Scope<'_>,
    ) -> Result<Option<i64>, StoreError> {
        let params = vec![
            Value::text(endpoint.as_str()),
            Value::opt_text(scope.organization().map(OrganizationId::as_str)),
        ];
        self.read_one(sql::cursor_seq("endpoints"), params, |r| r.int("seq"))
            .await
    }
}

/// The attempts an event's record shows at most: its newest.
pub const ATTEMPTS_SHOWN: u32 = 100;

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
        let of_event = |sql: &str| Query {
            sql: sql.into(),
            params: vec![Value::int(seq)],
        };
        // Statuses before attempts: the reads are separate, and commits only add
        // attempts, so a status read as settled is never shown with its last attempt
        // missing (the other way round, a client sees one attempt more and polls again).
        let deliveries = self
            .read_all(of_event(sql::DELIVERIES_OF_EVENT), |row| {
                Ok(EndpointDelivery {
                    endpoint_id: EndpointId::parse(row.str("endpoint_id")?)
                        .map_err(StoreError::corrupt)?,
                    status: DeliveryStatus::parse(row.str("delivery_status")?)
                        .ok_or_else(|| StoreError::corrupt("delivery status"))?,
                })
            })
            .await?;
        let newest = Query {
            sql: sql::ATTEMPTS_OF_EVENT.into(),
            params: vec![Value::int(seq), Value::int(i64::from(ATTEMPTS_SHOWN) + 1)],
        };
        let mut attempts = self.read_all(newest, rows::attempt).await?;
        let attempts_truncated = attempts.len() > ATTEMPTS_SHOWN as usize;
        if attempts_truncated {
            attempts.remove(0);
        }
        Ok(Some(EventRecord {
            event: summary.event,
            delivery_status: summary.delivery_status,
            deliveries,
            attempts,
            attempts_truncated,
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
        if let Some(endpoint) = &filter.endpoint_id {
            let Some(seq) = self.endpoint_seq(endpoint, scope).await? else {
                return Ok(Page::of(Vec::new(), page.limit));
            };
            q.bind_in(sql::ENDPOINT_FILTER, "{endpoint}", Value::int(seq));
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

    async fn recent_events(
        &self,
        organization: &OrganizationId,
        since: Timestamp,
        recent: u32,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let q = Query {
            sql: sql::RECENT_EVENTS.into(),
            params: rows::owned(vec![
                Value::text(organization.as_str()),
                Value::int(i64::from(recent)),
                Value::time(since),
            ]),
        };
        self.read_all(q, |row| {
            Ok(Timestamp::from_unix_micros(row.int("occurred_at")?))
        })
        .await
    }
}
