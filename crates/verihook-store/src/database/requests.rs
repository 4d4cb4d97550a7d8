//! [`ApiKeys`] and [`Idempotency`], written once for every backend.

use super::{Backend, Database};
use crate::conn::Conn;
use crate::requests::{
    ApiKeyRecord, ApiKeys, Begun, Idempotency, IdempotencyKey, NewApiKey, StoredAnswer,
};
use crate::rows::{Row, Value};
use crate::sql;
use crate::writer::Lane;
use crate::StoreError;
use async_trait::async_trait;
use verihook_core::{ApiKeyId, CustomerId, OrganizationId, Timestamp};

/// Stores `key` as one of `organization`'s; `NotFound` without the organization.
pub(super) async fn insert_api_key<B: Backend>(
    conn: &mut B::Conn,
    organization: &OrganizationId,
    key: &NewApiKey,
) -> Result<(), StoreError> {
    let params = [
        Value::text(key.id.as_str()),
        Value::Bytes(key.digest[..].into()),
        Value::text(&key.prefix),
        Value::time(key.created_at),
        Value::text(organization.as_str()),
    ];
    match conn.execute(sql::INSERT_API_KEY, &params).await? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

fn api_key(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: ApiKeyId::parse(row.str("id")?).map_err(|e| StoreError::corrupt(e.to_string()))?,
        prefix: row.string("prefix")?,
        created_at: row.time("created_at")?,
        last_used_at: row
            .opt_int("last_used_at")?
            .map(Timestamp::from_unix_micros),
    })
}

#[async_trait]
impl<B: Backend> ApiKeys for Database<B> {
    async fn create_api_key(
        &self,
        organization: &OrganizationId,
        key: &NewApiKey,
    ) -> Result<(), StoreError> {
        let (organization, key) = (organization.clone(), key.clone());
        self.write(Lane::Api, move |conn| {
            Box::pin(async move { insert_api_key::<B>(conn, &organization, &key).await })
        })
        .await
    }

    async fn api_keys(
        &self,
        organization: &OrganizationId,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let params = vec![Value::text(organization.as_str())];
        if self
            .read_one(sql::ORGANIZATION, params.clone(), |_| Ok(()))
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound);
        }
        let rows = self
            .backend
            .read(sql::API_KEYS.into(), crate::rows::owned(params));
        rows.await?.iter().map(api_key).collect()
    }

    async fn revoke_api_key(
        &self,
        organization: &OrganizationId,
        id: &ApiKeyId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (organization, id) = (organization.clone(), id.clone());
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let params = [
                    Value::time(now),
                    Value::text(id.as_str()),
                    Value::text(organization.as_str()),
                ];
                match conn.execute(sql::REVOKE_API_KEY, &params).await? {
                    0 => Err(StoreError::NotFound),
                    _ => Ok(()),
                }
            })
        })
        .await
    }

    async fn revoked_since(&self, since: Timestamp) -> Result<Vec<[u8; 32]>, StoreError> {
        let rows = self
            .backend
            .read(sql::REVOKED_SINCE.into(), vec![Value::time(since)])
            .await?;
        rows.iter().map(|r| r.digest("digest")).collect()
    }

    async fn record_key_use(&self, uses: Vec<([u8; 32], Timestamp)>) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                for (digest, at) in &uses {
                    let params = [Value::time(*at), Value::Bytes(digest[..].into())];
                    conn.execute(sql::RECORD_KEY_USE, &params).await?;
                }
                Ok(())
            })
        })
        .await
    }
}

#[async_trait]
impl<B: Backend> Idempotency for Database<B> {
    async fn begin(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: Timestamp,
        held_until: Timestamp,
        expired_before: Timestamp,
    ) -> Result<Begun, StoreError> {
        let (key, fingerprint) = (key.clone(), fingerprint.to_owned());
        let begun = self
            .write(Lane::Api, move |conn| {
                Box::pin(async move {
                    let params = [
                        Value::text(&key.scope),
                        Value::text(&key.key),
                        Value::text(&fingerprint),
                        Value::time(now),
                        Value::time(held_until),
                        Value::time(expired_before),
                    ];
                    if !conn.query(sql::BEGIN_IDEMPOTENT, &params).await?.is_empty() {
                        return Ok(Begun::Started);
                    }
                    let rows = conn.query(sql::IDEMPOTENT, &params[..2]).await?;
                    let row = rows.first().ok_or(StoreError::NotFound)?;
                    if row.string("fingerprint")? != fingerprint {
                        return Ok(Begun::Reused);
                    }
                    match (row.opt_int("status")?, row.opt_string("response")?) {
                        (Some(status), Some(body)) => Ok(Begun::Replay(StoredAnswer {
                            status: u16::try_from(status)
                                .map_err(|_| StoreError::corrupt("status out of range"))?,
                            body,
                        })),
                        _ => Ok(Begun::InUse),
                    }
                })
            })
            .await?;
        match begun {
            Begun::Replay(answer) => Ok(Begun::Replay(StoredAnswer {
                body: self.sealer.open_answer(answer.body)?,
                ..answer
            })),
            other => Ok(other),
        }
    }

    async fn finish(&self, key: &IdempotencyKey, answer: StoredAnswer) -> Result<(), StoreError> {
        let key = key.clone();
        let sealed = StoredAnswer {
            body: self.sealer.seal_answer(&answer.body)?,
            ..answer
        };
        self.write(Lane::Api, move |conn| {
            Box::pin(async move { store_answer::<B>(conn, &key, &sealed, None).await })
        })
        .await
    }

    async fn abandon(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let params = [Value::text(&key.scope), Value::text(&key.key)];
                conn.execute(sql::ABANDON_IDEMPOTENT, &params).await?;
                Ok(())
            })
        })
        .await
    }

    async fn purge(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let params = [Value::time(before), Value::int(i64::from(limit))];
                conn.execute(sql::PURGE_IDEMPOTENT, &params).await
            })
        })
        .await
    }
}

/// Stores the answer of the request holding `key` (in whatever transaction `conn` runs).
pub(super) async fn store_answer<B: Backend>(
    conn: &mut B::Conn,
    key: &IdempotencyKey,
    answer: &StoredAnswer,
    customer: Option<&CustomerId>,
) -> Result<(), StoreError> {
    let params = [
        Value::int(i64::from(answer.status)),
        Value::text(&answer.body),
        Value::text(&key.scope),
        Value::text(&key.key),
        Value::opt_text(customer.map(CustomerId::as_str)),
    ];
    conn.execute(sql::FINISH_IDEMPOTENT, &params).await?;
    Ok(())
}
