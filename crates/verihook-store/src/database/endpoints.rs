//! [`Endpoints`], written once for every backend.

use super::adoption::{self, Adoption};
use super::{Backend, Database};
use crate::conn::Conn;
use crate::repository::{EndpointRef, Endpoints};
use crate::rows::{self, Value};
use crate::sql::{self, Query};
use crate::writer::Lane;
use crate::StoreError;
use async_trait::async_trait;
use verihook_core::endpoint::MAX_ENDPOINTS;
use verihook_core::{
    Endpoint, EndpointId, EndpointPatch, OrganizationId, Timestamp, WebhookSecret,
};

/// Inserts `endpoint` unless its organization is missing (`NotFound`) or has as many as it
/// may (`LimitReached`). The organization's row is locked first (PostgreSQL), so that
/// concurrent creations on several nodes count one after the other. Answers how many
/// parked deliveries it adopted (see [`super::adoption`]): they are due.
pub(super) async fn insert_endpoint<B: Backend>(
    conn: &mut B::Conn,
    endpoint: &Endpoint,
) -> Result<u64, StoreError> {
    let organization = [Value::text(endpoint.organization_id.as_str())];
    let exists = format!("{}{}", sql::ORGANIZATION_EXISTS, B::LOCK_FOR_UPDATE);
    if conn.query(&exists, &organization).await?.is_empty() {
        return Err(StoreError::NotFound);
    }
    let live = conn.query(sql::LIVE_ENDPOINTS, &organization).await?;
    let live = live.first().map(|r| r.int("n")).transpose()?.unwrap_or(0);
    if live >= i64::from(MAX_ENDPOINTS) {
        return Err(StoreError::LimitReached(MAX_ENDPOINTS));
    }
    conn.execute(sql::INSERT_ENDPOINT, &rows::endpoint_params(endpoint))
        .await?;
    if live > 0 {
        return Ok(0);
    }
    // The organization's first endpoint: it adopts the parked deliveries, the first
    // slice now, the rest in transactions of their own.
    let id = [Value::text(endpoint.id.as_str())];
    let seq = conn.query(sql::ENDPOINT_SEQ_BY_ID, &id).await?;
    let seq = seq.first().ok_or(StoreError::NotFound)?.int("seq")?;
    adoption::round(conn, &[Adoption::starting(seq, endpoint)]).await
}

/// `sql` with its `{which}` naming the endpoint (its id bound last in `params`).
fn which(sql: &str, endpoint: EndpointRef<'_>, params: &mut Vec<Value<'static>>) -> String {
    match endpoint {
        EndpointRef::Default => sql.replace("{which}", "is_default"),
        EndpointRef::Id(id) => {
            params.push(Value::text(id.as_str()).into_owned());
            sql.replace("{which}", &format!("id = ${}", params.len()))
        }
    }
}

impl<B: Backend> Database<B> {
    /// Runs a change of one endpoint; `NotFound` when it changed no row.
    async fn write_endpoint(
        &self,
        sql: String,
        params: Vec<Value<'static>>,
    ) -> Result<(), StoreError> {
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                match conn.execute(&sql, &params).await? {
                    0 => Err(StoreError::NotFound),
                    _ => Ok(()),
                }
            })
        })
        .await
    }
}

fn select_endpoints(organization: &OrganizationId) -> Query {
    let mut q = Query::new(format!(
        "SELECT {} FROM endpoints WHERE deleted_at IS NULL AND organization_id = ",
        sql::ENDPOINT_COLUMNS
    ));
    q.bind(Value::text(organization.as_str()).into_owned());
    q
}

#[async_trait]
impl<B: Backend> Endpoints for Database<B> {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let endpoint = self.sealed(endpoint)?;
        let adopted = self
            .write(Lane::Api, move |conn| {
                Box::pin(async move { insert_endpoint::<B>(conn, &endpoint).await })
            })
            .await?;
        if adopted > 0 {
            self.deliveries_due();
        }
        Ok(())
    }

    async fn endpoints(&self, organization: &OrganizationId) -> Result<Vec<Endpoint>, StoreError> {
        let mut q = select_endpoints(organization);
        q.push(" ORDER BY seq");
        let found = self.read_all(q, rows::endpoint).await?;
        found.into_iter().map(|e| self.opened(e)).collect()
    }

    async fn endpoint(
        &self,
        organization: &OrganizationId,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError> {
        let mut q = select_endpoints(organization);
        q.push(" AND id = ")
            .bind(Value::text(id.as_str()).into_owned());
        let found = self.read_all(q, rows::endpoint).await?.into_iter().next();
        found.map(|e| self.opened(e)).transpose()
    }

    async fn update_endpoint(
        &self,
        organization: &OrganizationId,
        id: &EndpointId,
        patch: EndpointPatch,
    ) -> Result<Endpoint, StoreError> {
        let mut q = select_endpoints(organization);
        q.push(" AND id = ")
            .bind(Value::text(id.as_str()).into_owned());
        q.push(B::LOCK_FOR_UPDATE);
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let found = conn.query(&q.sql, &q.params).await?;
                let mut endpoint = found
                    .first()
                    .map(rows::endpoint)
                    .transpose()?
                    .ok_or(StoreError::NotFound)?;
                patch.apply(&mut endpoint);
                let params = rows::endpoint_update_params(&endpoint);
                conn.execute(sql::UPDATE_ENDPOINT, &params).await?;
                Ok(endpoint)
            })
        })
        .await
        .and_then(|e| self.opened(e))
    }

    async fn rotate_secret(
        &self,
        organization: &OrganizationId,
        endpoint: EndpointRef<'_>,
        secret: WebhookSecret,
        now: Timestamp,
        overlap_until: Timestamp,
    ) -> Result<(), StoreError> {
        let mut params = vec![
            Value::owned_text(Some(self.sealer.seal(&secret)?)),
            Value::time(overlap_until),
            Value::time(now),
            Value::text(organization.as_str()).into_owned(),
        ];
        let sql = which(sql::ROTATE_SECRET, endpoint, &mut params);
        self.write_endpoint(sql, params).await
    }

    async fn complete_rotation(
        &self,
        organization: &OrganizationId,
        endpoint: EndpointRef<'_>,
    ) -> Result<(), StoreError> {
        let mut params = vec![Value::text(organization.as_str()).into_owned()];
        let sql = which(sql::COMPLETE_ROTATION, endpoint, &mut params);
        self.write_endpoint(sql, params).await
    }

    async fn delete_endpoint(
        &self,
        organization: &OrganizationId,
        id: &EndpointId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let params = [
            Value::time(now),
            Value::text(id.as_str()).into_owned(),
            Value::text(organization.as_str()).into_owned(),
        ];
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let deleted = conn.query(sql::DELETE_ENDPOINT, &params).await?;
                let deleted = deleted.first().ok_or(StoreError::NotFound)?;
                let seq = deleted.int("seq")?;
                conn.execute(sql::DROP_PENDING_OF_ENDPOINT, &[Value::int(seq)])
                    .await?;
                if let Some(from) = deleted.opt_int("adopt_from")? {
                    let organization = deleted.str("organization_id")?;
                    adoption::abandon(conn, organization, from).await?;
                }
                Ok(())
            })
        })
        .await
    }
}

impl<B: Backend> Database<B> {
    /// `endpoint` as stored: its secret sealed.
    pub(super) fn sealed(&self, endpoint: &Endpoint) -> Result<Endpoint, StoreError> {
        let mut stored = endpoint.clone();
        stored.secret = WebhookSecret::from_stored(self.sealer.seal(&endpoint.secret)?);
        Ok(stored)
    }

    /// `endpoint` as read: its secret opened.
    fn opened(&self, mut endpoint: Endpoint) -> Result<Endpoint, StoreError> {
        endpoint.secret = self.sealer.open(endpoint.secret)?;
        Ok(endpoint)
    }
}
