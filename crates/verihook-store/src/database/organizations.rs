//! [`Organizations`], written once for every backend.

use super::endpoints::insert_endpoint;
use super::requests::insert_api_key;
use super::{stored_url, Backend, Database};
use crate::conn::Conn;
use crate::repository::{Organizations, WebhookEndpoint, WebhookSet};
use crate::requests::NewApiKey;
use crate::rows::{self, Value};
use crate::sql;
use crate::writer::Lane;
use crate::StoreError;
use async_trait::async_trait;
use verihook_core::{Endpoint, Organization, OrganizationId, Timestamp, WebhookSecret, WebhookUrl};

#[async_trait]
impl<B: Backend> Organizations for Database<B> {
    async fn create_organization(
        &self,
        organization: &Organization,
        first_key: &NewApiKey,
    ) -> Result<(), StoreError> {
        let (org, key) = (organization.clone(), first_key.clone());
        self.write(Lane::Api, move |conn| {
            Box::pin(async move {
                let params = [
                    Value::text(org.id.as_str()),
                    Value::text(&org.name),
                    Value::text(org.mode.as_str()),
                    Value::Bytes(key.digest[..].into()),
                    Value::time(org.created_at),
                ];
                conn.execute(sql::INSERT_ORGANIZATION, &params).await?;
                insert_api_key::<B>(conn, &org.id, &key).await
            })
        })
        .await
    }

    async fn organization_by_key(
        &self,
        api_key_digest: [u8; 32],
    ) -> Result<Option<Organization>, StoreError> {
        let params = vec![Value::Bytes(api_key_digest[..].into())];
        self.read_one(sql::ORGANIZATION_BY_KEY, params, rows::organization)
            .await
    }

    async fn organization(&self, id: &OrganizationId) -> Result<Option<Organization>, StoreError> {
        let params = vec![Value::text(id.as_str())];
        self.read_one(sql::ORGANIZATION, params, rows::organization)
            .await
    }

    async fn webhook(&self, id: &OrganizationId) -> Result<Option<WebhookEndpoint>, StoreError> {
        let params = vec![Value::text(id.as_str())];
        self.read_one(sql::WEBHOOK, params, |row| {
            Ok(WebhookEndpoint {
                url: row.opt_string("url")?.map(|u| stored_url(&u)).transpose()?,
                secret: row.opt_string("secret")?.map(WebhookSecret::from_stored),
                scheme: row
                    .opt_string("signature_scheme")?
                    .map(|s| rows::scheme_of(&s))
                    .transpose()?
                    .unwrap_or_default(),
                previous_secret: rows::previous_secret(row, Timestamp::now())?,
                health: match row.opt_string("url")? {
                    Some(_) => Some(rows::health(row)?),
                    None => None,
                },
            })
        })
        .await?
        .map(|mut w| {
            w.secret = self.sealer.open_opt(w.secret)?;
            w.previous_secret = self.sealer.open_opt(w.previous_secret)?;
            Ok(w)
        })
        .transpose()
    }

    async fn set_webhook_url(
        &self,
        id: &OrganizationId,
        url: &WebhookUrl,
        fresh_secret: WebhookSecret,
    ) -> Result<WebhookSet, StoreError> {
        let (id, url) = (id.clone(), url.clone());
        let fresh = Endpoint::new(
            id.clone(),
            url.clone(),
            fresh_secret,
            true,
            Timestamp::now(),
        );
        let stored = self.sealed(&fresh)?;
        let (set, adopted) = self
            .write(Lane::Api, move |conn| {
                Box::pin(async move {
                    let params = [Value::text(url.as_str()), Value::text(id.as_str())];
                    if let Some(row) = conn.query(sql::SET_DEFAULT_URL, &params).await?.first() {
                        let set = WebhookSet {
                            url: stored_url(row.str("url")?)?,
                            secret: WebhookSecret::from_stored(row.string("secret")?),
                            secret_is_new: false,
                        };
                        return Ok((set, 0));
                    }
                    let adopted = insert_endpoint::<B>(conn, &stored).await?;
                    let set = WebhookSet {
                        url: fresh.url,
                        secret: fresh.secret,
                        secret_is_new: true,
                    };
                    Ok((set, adopted))
                })
            })
            .await?;
        if adopted > 0 {
            self.deliveries_due();
        }
        Ok(WebhookSet {
            secret: self.sealer.open(set.secret)?,
            ..set
        })
    }
}
