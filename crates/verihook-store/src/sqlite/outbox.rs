//! The outbox on SQLite: claiming due deliveries under a lease, recording attempts, and
//! redelivery. Every write runs in the batching writer, so claims and outcomes from many
//! senders share commits.

use super::rows;
use super::writer::Writer;
use crate::{AttemptOutcome, ClaimRequest, ClaimedDelivery, NextStep, Scope, StoreError};
use sqlx::{Row, SqliteConnection};
use verihook_core::id::random_token;
use verihook_core::{EventId, OrganizationId, Timestamp, WebhookSecret};

/// How far past `limit` the claim looks for due rows, so that the per-organization cap
/// can skip over one organization's backlog and still fill the batch with others'.
const SCAN_FACTOR: u32 = 4;

fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(super) async fn claim(
    writer: &Writer,
    request: ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    writer
        .write(move |conn| Box::pin(async move { claim_in(conn, &request).await }))
        .await
}

async fn claim_in(
    conn: &mut SqliteConnection,
    request: &ClaimRequest,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let token = random_token();
    let lease_end = request
        .now
        .unix_micros()
        .saturating_add(micros(request.lease));
    let exclude = json_list(request.exclude.iter().map(OrganizationId::as_str));
    let claimed: Vec<(String, i64, i64)> = sqlx::query_as(
        "WITH due AS ( \
            SELECT d.event_id, d.organization_id, d.due_at FROM deliveries d \
            JOIN organizations o ON o.id = d.organization_id AND o.webhook_url IS NOT NULL \
            WHERE d.due_at <= ?1 \
              AND d.organization_id NOT IN (SELECT value FROM json_each(?2)) \
            ORDER BY d.due_at LIMIT ?3 \
         ), ranked AS ( \
            SELECT event_id, ROW_NUMBER() OVER ( \
                PARTITION BY organization_id ORDER BY due_at) AS rank FROM due \
         ) \
         UPDATE deliveries SET due_at = ?4, lease_token = ?5 \
         WHERE event_id IN (SELECT event_id FROM ranked WHERE rank <= ?6 LIMIT ?7) \
         RETURNING event_id, attempt, budget_used",
    )
    .bind(request.now.unix_micros())
    .bind(exclude)
    .bind(i64::from(request.limit.saturating_mul(SCAN_FACTOR)))
    .bind(lease_end)
    .bind(&token)
    .bind(i64::from(request.per_organization))
    .bind(i64::from(request.limit))
    .fetch_all(&mut *conn)
    .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let ids = json_list(claimed.iter().map(|(id, _, _)| id.as_str()));
    let details = sqlx::query(&format!(
        "SELECT {columns}, o.webhook_url, o.webhook_secret FROM events e \
         JOIN organizations o ON o.id = e.organization_id \
         WHERE e.id IN (SELECT value FROM json_each(?))",
        columns = rows::EVENT_COLUMNS_OF_E
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_id = std::collections::HashMap::with_capacity(details.len());
    for row in &details {
        let summary = rows::event_summary(row)?;
        let url: Option<String> = row.try_get("webhook_url")?;
        let secret: Option<String> = row.try_get("webhook_secret")?;
        by_id.insert(
            summary.event.id.as_str().to_owned(),
            (summary.event, url, secret),
        );
    }
    claimed
        .into_iter()
        .map(|(id, attempt, budget_used)| {
            let (event, url, secret) = by_id
                .remove(&id)
                .ok_or_else(|| StoreError::corrupt("delivery without its event"))?;
            Ok(ClaimedDelivery {
                event,
                url: url.ok_or_else(|| StoreError::corrupt("claimed without a URL"))?,
                secret: WebhookSecret::from_stored(
                    secret.ok_or_else(|| StoreError::corrupt("webhook URL without a secret"))?,
                ),
                attempt: u32::try_from(attempt).map_err(StoreError::corrupt)?,
                budget_used: u32::try_from(budget_used).map_err(StoreError::corrupt)?,
                lease_token: token.clone(),
            })
        })
        .collect()
}

pub(super) async fn record(writer: &Writer, outcome: AttemptOutcome) -> Result<bool, StoreError> {
    writer
        .write(move |conn| Box::pin(async move { record_in(conn, &outcome).await }))
        .await
}

async fn record_in(conn: &mut SqliteConnection, o: &AttemptOutcome) -> Result<bool, StoreError> {
    let id = o.event_id.as_str();
    let moved = match o.next {
        NextStep::RetryAt(due) => {
            sqlx::query(
                "UPDATE deliveries SET due_at = ?, attempt = attempt + 1, \
                 budget_used = budget_used + 1, lease_token = NULL \
                 WHERE event_id = ? AND lease_token = ?",
            )
            .bind(due.unix_micros())
            .bind(id)
            .bind(&o.lease_token)
            .execute(&mut *conn)
            .await?
        }
        NextStep::Delivered | NextStep::Failed => {
            sqlx::query("DELETE FROM deliveries WHERE event_id = ? AND lease_token = ?")
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
        sqlx::query("UPDATE events SET delivery_status = ? WHERE id = ?")
            .bind(status)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    let r = &o.record;
    sqlx::query(
        "INSERT INTO attempts (event_id, attempt, started_at, duration_ms, status_code, \
         error_class, error, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
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
    Ok(true)
}

pub(super) async fn release(
    writer: &Writer,
    leases: Vec<(EventId, String)>,
    now: Timestamp,
) -> Result<(), StoreError> {
    writer
        .write(move |conn| {
            Box::pin(async move {
                for (id, token) in &leases {
                    sqlx::query(
                        "UPDATE deliveries SET due_at = ?, lease_token = NULL \
                         WHERE event_id = ? AND lease_token = ?",
                    )
                    .bind(now.unix_micros())
                    .bind(id.as_str())
                    .bind(token)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            })
        })
        .await
}

pub(super) async fn redeliver(
    writer: &Writer,
    scope: Scope<'_>,
    id: &EventId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (organization, id) = (scope.organization().cloned(), id.clone());
    writer
        .write(move |conn| {
            Box::pin(async move {
                let owner: Option<String> = sqlx::query_scalar(
                    "SELECT organization_id FROM events WHERE id = ?1 \
                     AND (?2 IS NULL OR organization_id = ?2)",
                )
                .bind(id.as_str())
                .bind(organization.as_ref().map(OrganizationId::as_str))
                .fetch_optional(&mut *conn)
                .await?;
                let owner = owner.ok_or(StoreError::NotFound)?;
                // A delivery already queued keeps its place and attempt number but gets a
                // fresh budget; one in flight (leased) is left to finish its attempt.
                sqlx::query(
                    "INSERT INTO deliveries (event_id, organization_id, due_at, attempt, budget_used) \
                     VALUES (?1, ?2, ?3, \
                        (SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE event_id = ?1), 0) \
                     ON CONFLICT (event_id) DO UPDATE SET budget_used = 0, \
                        due_at = CASE WHEN lease_token IS NULL \
                                 THEN MIN(due_at, excluded.due_at) ELSE due_at END",
                )
                .bind(id.as_str())
                .bind(&owner)
                .bind(now.unix_micros())
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE events SET delivery_status = 'pending' WHERE id = ?")
                    .bind(id.as_str())
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
}
