//! [`Outbox`], written once for every backend; claiming and recording are the backend's
//! own (`Backend::claim`, `Backend::record`).

use super::adoption::{self, Adoption};
use super::{announce, Backend, Database};
use crate::conn::Conn;
use crate::outbox::{
    AttemptOutcome, ClaimRequest, ClaimedDelivery, Lease, NextStep, Outbox, Recorded, Ridden,
};
use crate::repository::Scope;
use crate::rows::Value;
use crate::sql::{self, Query};
use crate::writer::{Lane, WRITE_DEADLINE};
use crate::StoreError;
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use verihook_core::{EndpointId, EventId, EventType, EventTypes, OrganizationId, Timestamp};

/// A claim of due deliveries as the writer runs it.
fn claim_job<B: Backend>(
    request: ClaimRequest,
) -> impl for<'c> FnOnce(&'c mut B::Conn) -> BoxFuture<'c, Result<Vec<ClaimedDelivery>, StoreError>>
       + Send
       + 'static {
    move |conn| Box::pin(async move { B::claim(conn, &request).await })
}

/// A waiting claim's answer (`Err`: it was dropped unrun, taken back), as `ran` says it
/// ran.
type Answer = Result<Result<Vec<ClaimedDelivery>, StoreError>, oneshot::error::RecvError>;

impl<B: Backend> Database<B> {
    fn ridden(
        &self,
        answered: Answer,
        ran: fn(Result<Vec<ClaimedDelivery>, StoreError>) -> Ridden,
    ) -> Ridden {
        match answered {
            Ok(claimed) => ran(claimed.and_then(|c| self.secrets_opened(c))),
            Err(_) => Ridden::Stopped,
        }
    }
}

#[async_trait]
impl<B: Backend> Outbox for Database<B> {
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let claimed = self
            .backend
            .writer()
            .claim(B::CLAIM, claim_job::<B>(request))
            .await?;
        self.secrets_opened(claimed)
    }

    async fn claim_after_writes(
        &self,
        request: ClaimRequest,
        stop: BoxFuture<'_, Option<ClaimRequest>>,
    ) -> Option<Ridden> {
        if !B::ONE_WRITER {
            return None;
        }
        let writer = self.backend.writer();
        let parked = writer.park(B::CLAIM, claim_job::<B>(request));
        let mut answer = match parked.await {
            Ok(answer) => answer,
            Err(e) => return Some(Ridden::Ran(Err(e))),
        };
        let renewed = tokio::select! {
            answered = &mut answer => return Some(self.ridden(answered, Ridden::Ran)),
            fresh = stop => match fresh {
                Some(request) => writer.renew(B::CLAIM, claim_job::<B>(request)).await.map(Some),
                None => writer.unpark().await.map(|()| None),
            },
        };
        let renewed = match renewed {
            Ok(renewed) => renewed,
            Err(e) => return Some(Ridden::Ran(Err(e))),
        };
        // Answered at once if it ran (its commit came first) or was taken back.
        let Ok(answered) = tokio::time::timeout(WRITE_DEADLINE, answer).await else {
            return Some(Ridden::Ran(Err(StoreError::Timeout(WRITE_DEADLINE))));
        };
        match (answered, renewed) {
            (Ok(claimed), _) => Some(self.ridden(Ok(claimed), Ridden::Ran)),
            (Err(_), None) => Some(Ridden::Stopped),
            // Taken back: the fresh claim runs in its place.
            (Err(_), Some(fresh)) => {
                let answered = tokio::time::timeout(WRITE_DEADLINE, fresh).await;
                let answered = answered.unwrap_or(Ok(Err(StoreError::Timeout(WRITE_DEADLINE))));
                Some(self.ridden(answered, Ridden::Renewed))
            }
        }
    }

    async fn claim_probes(
        &self,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.probes(lease, limit).await
    }

    async fn release_paced(&self) -> Result<u64, StoreError> {
        Database::release_paced(self).await
    }

    async fn adopt_parked(&self) -> Result<bool, StoreError> {
        // Looked for on a reader first: an idle node costs the writer nothing.
        let any = self.read_one(sql::ANY_ADOPTION, Vec::new(), |_| Ok(()));
        if any.await?.is_none() {
            return Ok(false);
        }
        let sliced = self
            .write(Lane::Delivery, move |conn| {
                Box::pin(async move {
                    let adoptions = Adoption::under_way::<B>(conn).await?;
                    if adoptions.is_empty() {
                        return Ok(None);
                    }
                    adoption::round(conn, &adoptions).await.map(Some)
                })
            })
            .await?;
        let Some(adopted) = sliced else {
            return Ok(false);
        };
        if adopted > 0 {
            self.deliveries_due();
        }
        // Another endpoint's adoption may be under way: look again at once.
        Ok(true)
    }

    async fn record(&self, outcomes: Vec<AttemptOutcome>) -> Result<Vec<Recorded>, StoreError> {
        let retry = outcomes
            .iter()
            .any(|o| matches!(o.next, NextStep::RetryAt(_)));
        let recorded = self.backend.writer().record(outcomes).await?;
        if retry || recorded.contains(&Recorded::Requeued) {
            // The sender sleeps until the earliest due time; a retry may be earlier, and a
            // requeued delivery is due now.
            self.deliveries_due();
        }
        Ok(recorded)
    }

    async fn release(&self, leases: Vec<Lease>, now: Timestamp) -> Result<(), StoreError> {
        self.write(Lane::Delivery, move |conn| {
            Box::pin(async move {
                for lease in &leases {
                    let params = [
                        Value::time(now),
                        Value::int(lease.event),
                        Value::int(lease.endpoint),
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
        endpoint: Option<&EndpointId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let organization = scope.organization().cloned();
        let (id, endpoint) = (id.clone(), endpoint.cloned());
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let params = [
                    Value::text(id.as_str()),
                    Value::opt_text(organization.as_ref().map(OrganizationId::as_str)),
                ];
                let rows = conn.query(sql::EVENT_OWNER, &params).await?;
                let row = rows.first().ok_or(StoreError::NotFound)?;
                let (owner, seq) = (row.string("organization_id")?, row.int("seq")?);
                let event_type = row.string("event_type")?;
                let targets = match &endpoint {
                    Some(endpoint) => vec![endpoint_seq(conn, endpoint, &owner).await?],
                    None => requeue_targets(conn, seq, &owner, &event_type).await?,
                };
                for target in targets {
                    let params = [Value::int(seq), Value::int(target), Value::time(now)];
                    conn.execute(sql::REQUEUE_DELIVERY, &params).await?;
                    let params = [Value::int(seq), Value::int(target)];
                    conn.execute(sql::UNMARK_FAILED, &params).await?;
                }
                announce::<B>(conn).await
            })
        })
        .await?;
        self.deliveries_due();
        Ok(())
    }

    async fn next_due(&self, excluding: &[EndpointId]) -> Result<Option<Timestamp>, StoreError> {
        let mut q = Query::new(sql::NEXT_DUE);
        if let Some((first, rest)) = excluding.split_first() {
            q.push(" AND en.id NOT IN (")
                .bind(Value::text(first.as_str()).into_owned());
            for id in rest {
                q.push(", ").bind(Value::text(id.as_str()).into_owned());
            }
            q.push(")");
        }
        let due = self.read_all(q, |r| r.opt_int("due")).await?;
        Ok(due
            .into_iter()
            .next()
            .flatten()
            .map(Timestamp::from_unix_micros))
    }

    async fn size(&self) -> Result<u64, StoreError> {
        let n = self
            .read_one(sql::OUTBOX_SIZE, Vec::new(), |r| r.int("n"))
            .await?
            .unwrap_or(0);
        u64::try_from(n).map_err(StoreError::corrupt)
    }

    async fn lag(&self, per_endpoint: u32) -> Result<Duration, StoreError> {
        let now = Timestamp::now();
        let params = vec![Value::time(now), Value::int(i64::from(per_endpoint))];
        let oldest = self
            .read_one(sql::OLDEST_DUE, params, |r| r.opt_int("oldest"))
            .await?
            .flatten();
        let behind = oldest.map_or(0, |oldest| now.unix_micros().saturating_sub(oldest));
        Ok(Duration::from_micros(u64::try_from(behind).unwrap_or(0)))
    }

    fn work_signal(&self) -> Arc<Notify> {
        self.work.clone()
    }
}

/// The `seq` of a live endpoint of `organization`; `NotFound` for any other.
async fn endpoint_seq<C: Conn>(
    conn: &mut C,
    endpoint: &EndpointId,
    organization: &str,
) -> Result<i64, StoreError> {
    let params = [Value::text(endpoint.as_str()), Value::text(organization)];
    let rows = conn.query(sql::ENDPOINT_SEQ, &params).await?;
    rows.first().ok_or(StoreError::NotFound)?.int("seq")
}

/// Where a redelivery for every endpoint goes: the live endpoints the event was queued
/// for; when it was queued for none (stored before its organization had an endpoint),
/// the enabled endpoints whose filter takes it now, or, while the organization has no
/// endpoint at all, parked for its first.
async fn requeue_targets<C: Conn>(
    conn: &mut C,
    event: i64,
    organization: &str,
    event_type: &str,
) -> Result<Vec<i64>, StoreError> {
    let queued = conn
        .query(sql::ENDPOINTS_OF_EVENT, &[Value::int(event)])
        .await?;
    if !queued.is_empty() {
        return queued.iter().map(|r| r.int("seq")).collect();
    }
    let event_type =
        EventType::parse(event_type).ok_or_else(|| StoreError::corrupt("events.event_type"))?;
    let enabled = conn
        .query(sql::ENABLED_ENDPOINTS, &[Value::text(organization)])
        .await?;
    let mut targets = Vec::new();
    for row in &enabled {
        let filter = EventTypes::from_stored(row.str("event_types")?)
            .map_err(|t| StoreError::corrupt(format!("endpoints.event_types: {t}")))?;
        if filter.matches(event_type) {
            targets.push(row.int("seq")?);
        }
    }
    if targets.is_empty() && enabled.is_empty() {
        let params = [Value::text(organization)];
        let live = conn.query(sql::LIVE_ENDPOINTS, &params).await?;
        if live.first().map(|r| r.int("n")).transpose()?.unwrap_or(0) == 0 {
            targets.push(sql::PARKED);
        }
    }
    Ok(targets)
}
