//! [`Recoveries`], written once for every backend.

use super::{Backend, Database};
use crate::conn::Conn;
use crate::recoveries::{Recoveries, Recovery, RecoveryRequest};
use crate::rows::{Row, Value};
use crate::sql::{self, Query};
use crate::writer::Lane;
use crate::StoreError;
use async_trait::async_trait;
use verihook_core::{EndpointId, EventType, OrganizationId, RecoveryId};

fn recovery(row: &Row) -> Result<Recovery, StoreError> {
    let count = |column| Ok::<_, StoreError>(u64::try_from(row.int(column)?).unwrap_or(0));
    let (total, pending, failed) = (count("total")?, count("pending")?, count("failed")?);
    Ok(Recovery {
        id: RecoveryId::parse(row.str("id")?).map_err(StoreError::corrupt)?,
        since: row.time("since")?,
        until: row.time("until")?,
        endpoint: row
            .opt_string("endpoint_id")?
            .map(|e| EndpointId::parse(&e).map_err(StoreError::corrupt))
            .transpose()?,
        event_type: row
            .opt_string("event_type")?
            .map(|t| EventType::parse(&t).ok_or_else(|| StoreError::corrupt("event_type")))
            .transpose()?,
        automatic: row.int("automatic")? != 0,
        created_at: row.time("created_at")?,
        total,
        delivered: total.saturating_sub(pending + failed),
        failed,
        pending,
    })
}

impl<B: Backend> Database<B> {
    async fn read_recoveries(
        &self,
        organization: &OrganizationId,
        which: &str,
        extra: Vec<Value<'static>>,
    ) -> Result<Vec<Recovery>, StoreError> {
        let mut params = vec![Value::text(organization.as_str()).into_owned()];
        params.extend(extra);
        let query = Query {
            sql: sql::RECOVERIES.replace("{which}", which),
            params,
        };
        self.read_all(query, recovery).await
    }
}

#[async_trait]
impl<B: Backend> Recoveries for Database<B> {
    async fn start_recovery(&self, request: &RecoveryRequest) -> Result<Recovery, StoreError> {
        if let Some(endpoint) = &request.endpoint {
            let found = crate::Endpoints::endpoint(self, &request.organization, endpoint).await?;
            found.ok_or(StoreError::NotFound)?;
        }
        let r = request.clone();
        self.write(Lane::Api, move |conn| {
            Box::pin(async move { recover_in::<B>(conn, &r).await })
        })
        .await?;
        self.recovery(&request.organization, &request.id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn recovery(
        &self,
        organization: &OrganizationId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError> {
        let extra = vec![Value::text(id.as_str()).into_owned()];
        let found = self
            .read_recoveries(organization, "AND rc.id = $2", extra)
            .await?;
        Ok(found.into_iter().next())
    }

    async fn recoveries(
        &self,
        organization: &OrganizationId,
        limit: u32,
    ) -> Result<Vec<Recovery>, StoreError> {
        let extra = vec![Value::int(i64::from(limit))];
        self.read_recoveries(organization, "ORDER BY rc.seq DESC LIMIT $2", extra)
            .await
    }
}

/// Takes the request's failed events and puts them back in the outbox, held for the
/// pacing to let out, in the caller's transaction.
pub(super) async fn recover_in<B: Backend>(
    conn: &mut B::Conn,
    r: &RecoveryRequest,
) -> Result<(), StoreError> {
    let params = [
        Value::text(r.id.as_str()),
        Value::text(r.organization.as_str()),
        Value::opt_text(r.endpoint.as_ref().map(EndpointId::as_str)),
        Value::opt_text(r.event_type.map(EventType::as_str)),
        Value::time(r.since),
        Value::time(r.until),
        Value::int(i64::from(r.automatic)),
        Value::time(r.created_at),
    ];
    let inserted = conn.query(sql::INSERT_RECOVERY, &params).await?;
    let seq = inserted.first().ok_or(StoreError::NotFound)?.int("seq")?;
    let params = [
        Value::int(seq),
        Value::text(r.organization.as_str()),
        Value::time(r.since),
        Value::time(r.until),
        Value::opt_text(r.endpoint.as_ref().map(EndpointId::as_str)),
        Value::opt_text(r.event_type.map(EventType::as_str)),
    ];
    conn.execute(sql::TAKE_FAILED, &params).await?;
    conn.execute(sql::REQUEUE_RECOVERED, &[Value::int(seq)])
        .await?;
    conn.execute(sql::UNMARK_RECOVERED, &[Value::int(seq)])
        .await?;
    Ok(())
}
