//! Credentials: the admin token and organizations' API keys.
//!
//! The admin token is compared in constant time, as SHA-256 digests (equal lengths, so the
//! comparison leaks neither content nor length). API keys are looked up by digest; an
//! organization, once found, is cached, since organizations and their keys never change.

use super::error::ApiError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use subtle::ConstantTimeEq;
use verihook_core::Organization;
use verihook_store::Organizations;

pub struct Auth {
    admin_digest: Option<[u8; 32]>,
    organizations: RwLock<HashMap<[u8; 32], Organization>>,
}

impl Auth {
    pub fn new(admin_token: Option<&str>) -> Self {
        Self {
            admin_digest: admin_token.map(|t| Sha256::digest(t.as_bytes()).into()),
            organizations: RwLock::default(),
        }
    }

    pub fn is_admin(&self, token: &str) -> Result<bool, ApiError> {
        let expected = self.admin_digest.ok_or_else(|| {
            ApiError::unauthorized("the admin API is disabled (no admin token set)")
        })?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        Ok(bool::from(presented.ct_eq(&expected)))
    }

    pub async fn organization(
        &self,
        organizations: &dyn Organizations,
        key_digest: [u8; 32],
    ) -> Result<Option<Organization>, ApiError> {
        if let Some(org) = self.cached(&key_digest) {
            return Ok(Some(org));
        }
        let found = organizations.organization_by_key(key_digest).await?;
        if let (Some(org), Ok(mut cache)) = (&found, self.organizations.write()) {
            cache.insert(key_digest, org.clone());
        }
        Ok(found)
    }

    fn cached(&self, key_digest: &[u8; 32]) -> Option<Organization> {
        self.organizations
            .read()
            .ok()
            .and_then(|cache| cache.get(key_digest).cloned())
    }
}
