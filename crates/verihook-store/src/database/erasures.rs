//! [`Erasures`], written once for every backend: a customer's erasure in one write (see
//! [`crate::lifecycle`] for what it does).

use super::customers::{locked_customer, retry_conflicts};
use super::{Backend, Database};
use crate::conn::Conn;
use crate::lifecycle::{Eraser, Erasure, ErasureRecord, Erasures};
use crate::repository::{Page, PageRequest, Scope};
use crate::rows::{Row, Value};
use crate::sql::Query;
use crate::writer::Lane;
use crate::StoreError;
use async_trait::async_trait;
use verihook_core::erasure::erase_body;
use verihook_core::{Customer, CustomerId, Event, OrganizationId};

/// The customer row without its personal data, marked deleted (`$2`).
const ERASE_CUSTOMER: &str = "\
    UPDATE customers SET email = NULL, first_name = NULL, last_name = NULL, \
    status_reason = NULL, date_of_birth = NULL, address_line1 = NULL, address_line2 = NULL, \
    address_city = NULL, address_state = NULL, address_postal_code = NULL, \
    address_country = NULL, deleted_at = $2 WHERE id = $1";

const BODIES_OF_CUSTOMER: &str = "SELECT seq, body FROM events WHERE customer_id = $1";

const SET_BODY: &str = "UPDATE events SET body = $2 WHERE seq = $1";

/// A receiver's answer may echo what it was sent.
const DROP_EXCERPTS: &str = "\
    UPDATE attempts SET response_body = NULL WHERE response_body IS NOT NULL \
    AND event_seq IN (SELECT seq FROM events WHERE customer_id = $1)";

const REPLACE_ANSWERS: &str = "\
    UPDATE idempotency_keys SET status = $2, response = $3 \
    WHERE customer_id = $1 AND status IS NOT NULL";

const KEY_ID: &str = "SELECT id FROM api_keys WHERE digest = $1";

const INSERT_ERASURE: &str = "\
    INSERT INTO erasures (customer_id, organization_id, erased_by, erased_at) \
    VALUES ($1, $2, $3, $4)";

const ERASURE_COLUMNS: &str = "customer_id, organization_id, erased_by, erased_at";

#[async_trait]
impl<B: Backend> Erasures for Database<B> {
    async fn erase_customer(
        &self,
        scope: Scope<'_>,
        id: &CustomerId,
        erasure: Erasure,
    ) -> Result<Event, StoreError> {
        let organization = scope.organization().cloned();
        let deleted =
            retry_conflicts(|| self.erase_once(organization.clone(), id.clone(), erasure.clone()))
                .await?;
        self.deliveries_due();
        Ok(deleted)
    }

    async fn erasures(
        &self,
        page: PageRequest<CustomerId>,
    ) -> Result<Page<ErasureRecord>, StoreError> {
        let mut q = Query::new(format!(
            "SELECT {ERASURE_COLUMNS} FROM erasures WHERE 1 = 1"
        ));
        if let Some(after) = &page.after {
            let params = vec![Value::text(after.as_str())];
            let seq = self
                .read_one(
                    "SELECT seq FROM erasures WHERE customer_id = $1",
                    params,
                    |r| r.int("seq"),
                )
                .await?
                .ok_or(StoreError::UnknownCursor)?;
            q.push(" AND seq < ").bind(Value::int(seq));
        }
        q.push(" ORDER BY seq DESC LIMIT ")
            .bind(Value::int(i64::from(page.limit) + 1));
        let items = self.read_all(q, erasure_record).await?;
        Ok(Page::of(items, page.limit))
    }
}

impl<B: Backend> Database<B> {
    async fn erase_once(
        &self,
        organization: Option<OrganizationId>,
        id: CustomerId,
        erasure: Erasure,
    ) -> Result<Event, StoreError> {
        let sealer = self.sealer.clone();
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let current = locked_customer::<B>(conn, &id, organization.as_ref()).await?;
                let deleted = store_deletion::<B>(conn, &current, &erasure).await?;
                erase_stored::<B>(conn, &id, &erasure).await?;
                let replay = &erasure.replay_answer;
                let answer = [
                    Value::text(id.as_str()),
                    Value::int(i64::from(replay.status)),
                    Value::owned_text(Some(sealer.seal_answer(&replay.body)?)),
                ];
                conn.execute(REPLACE_ANSWERS, &answer).await?;
                audit::<B>(conn, &current, &erasure).await?;
                Ok(deleted)
            })
        })
        .await
    }
}

/// `customer.deleted`, numbered after the customer's last event and queued as any event
/// is (the customer's row written with it is erased right after).
async fn store_deletion<B: Backend>(
    conn: &mut B::Conn,
    current: &Customer,
    erasure: &Erasure,
) -> Result<Event, StoreError> {
    let deleted = Event::customer_deleted(current, erasure.at)?;
    let next = Customer {
        last_sequence: deleted.sequence,
        updated_at: erasure.at,
        ..current.clone()
    };
    B::save_changes(conn, &[(&next, std::slice::from_ref(&deleted))]).await?;
    Ok(deleted)
}

/// The personal data out of the customer row, its events' bodies and their attempts'
/// response excerpts.
async fn erase_stored<B: Backend>(
    conn: &mut B::Conn,
    id: &CustomerId,
    erasure: &Erasure,
) -> Result<(), StoreError> {
    let customer = [Value::text(id.as_str())];
    let erased = [Value::text(id.as_str()), Value::time(erasure.at)];
    conn.execute(ERASE_CUSTOMER, &erased).await?;
    for row in conn.query(BODIES_OF_CUSTOMER, &customer).await? {
        let body = row.string("body")?;
        let erased = erase_body(&body)?;
        if erased != body {
            let params = [Value::int(row.int("seq")?), Value::owned_text(Some(erased))];
            conn.execute(SET_BODY, &params).await?;
        }
    }
    conn.execute(DROP_EXCERPTS, &customer).await?;
    Ok(())
}

/// Who (the API key's id, or `admin`), when, which customer.
async fn audit<B: Backend>(
    conn: &mut B::Conn,
    current: &Customer,
    erasure: &Erasure,
) -> Result<(), StoreError> {
    let erased_by = match &erasure.by {
        Eraser::Admin => "admin".to_owned(),
        Eraser::ApiKey(digest) => {
            let rows = conn
                .query(KEY_ID, &[Value::Bytes(digest[..].into())])
                .await?;
            match rows.first() {
                Some(row) => row.string("id")?,
                None => "apiKey".to_owned(),
            }
        }
    };
    let params = [
        Value::text(current.id.as_str()),
        Value::text(current.organization_id.as_str()),
        Value::owned_text(Some(erased_by)),
        Value::time(erasure.at),
    ];
    conn.execute(INSERT_ERASURE, &params).await?;
    Ok(())
}

fn erasure_record(row: &Row) -> Result<ErasureRecord, StoreError> {
    Ok(ErasureRecord {
        customer_id: CustomerId::parse(row.str("customer_id")?).map_err(StoreError::corrupt)?,
        organization_id: OrganizationId::parse(row.str("organization_id")?)
            .map_err(StoreError::corrupt)?,
        erased_by: row.string("erased_by")?,
        erased_at: row.time("erased_at")?,
    })
}
