//! Credentials: the admin token and organizations' API keys.
//!
//! The admin token is compared in constant time, as SHA-256 digests (equal lengths, so the
//! comparison leaks neither content nor length). API keys are looked up by digest and the
//! organization found is cached by digest, so a request costs no database read. A revoked
//! key must stop working on every node within a second: [`watch_keys`] reads the keys
//! revoked lately (on any node) four times a second and drops them from the cache, and a
//! cached key is read again after [`RECHECK`] whatever happens. Uses are counted in memory
//! and written as `lastUsedAt` in one batch every [`USE_FLUSH`], not once per request.

use super::error::ApiError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use verihook_core::{Organization, Timestamp};
use verihook_store::{ApiKeys, Organizations};

/// How often revocations are read.
const REVOCATION_POLL: Duration = Duration::from_millis(250);
/// How far back each read of revocations looks: beyond the poll interval, a margin for
/// nodes whose clocks (which stamp `revoked_at`) differ.
const REVOCATION_WINDOW: Duration = Duration::from_secs(30);
/// A cached key is checked again in the database after this long, a backstop for a
/// revocation missed by the window (a node clock off by more than it).
const RECHECK: Duration = Duration::from_secs(60);
/// How often `lastUsedAt` is written.
const USE_FLUSH: Duration = Duration::from_secs(10);

pub struct Auth {
    admin_digest: Option<[u8; 32]>,
    organizations: RwLock<HashMap<[u8; 32], Cached>>,
    uses: Mutex<HashMap<[u8; 32], Timestamp>>,
}

#[derive(Clone)]
struct Cached {
    organization: Organization,
    read_at: Instant,
}

impl Auth {
    pub fn new(admin_token: Option<&str>) -> Self {
        Self {
            admin_digest: admin_token.map(|t| Sha256::digest(t.as_bytes()).into()),
            organizations: RwLock::default(),
            uses: Mutex::default(),
        }
    }

    pub fn is_admin(&self, token: &str) -> Result<bool, ApiError> {
        if self.admin_digest.is_none() {
            return Err(ApiError::unauthorized(
                "the admin API is disabled (no admin token set)",
            ));
        }
        Ok(self.matches_admin(token))
    }

    /// Whether `token` is the admin token (false when there is none).
    pub fn matches_admin(&self, token: &str) -> bool {
        let Some(expected) = self.admin_digest else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        bool::from(presented.ct_eq(&expected))
    }

    /// The organization whose live key has `key_digest`, and notes the key's use.
    pub async fn organization(
        &self,
        organizations: &dyn Organizations,
        key_digest: [u8; 32],
    ) -> Result<Option<Organization>, ApiError> {
        let found = match self.cached(&key_digest) {
            Some(org) => Some(org),
            None => {
                let found = organizations.organization_by_key(key_digest).await?;
                if let Some(org) = &found {
                    self.cache(key_digest, org.clone());
                }
                found
            }
        };
        if found.is_some() {
            self.uses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key_digest, Timestamp::now());
        }
        Ok(found)
    }

    fn cached(&self, key_digest: &[u8; 32]) -> Option<Organization> {
        let cache = self
            .organizations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        cache
            .get(key_digest)
            .filter(|c| c.read_at.elapsed() < RECHECK)
            .map(|c| c.organization.clone())
    }

    fn cache(&self, key_digest: [u8; 32], organization: Organization) {
        let cached = Cached {
            organization,
            read_at: Instant::now(),
        };
        self.organizations
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key_digest, cached);
    }

    /// Drops revoked keys from the cache: their next request reads the database.
    pub fn forget(&self, digests: &[[u8; 32]]) {
        if digests.is_empty() {
            return;
        }
        let mut cache = self
            .organizations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for digest in digests {
            cache.remove(digest);
        }
    }

    fn take_uses(&self) -> Vec<([u8; 32], Timestamp)> {
        let mut uses = self.uses.lock().unwrap_or_else(PoisonError::into_inner);
        uses.drain().collect()
    }
}

/// Keeps the key cache honest until `stop`: drops keys revoked on any node, and writes the
/// keys' `lastUsedAt` (a last time on the way out).
pub async fn watch_keys(
    auth: std::sync::Arc<Auth>,
    keys: std::sync::Arc<dyn ApiKeys>,
    stop: CancellationToken,
) {
    let mut poll = tokio::time::interval(REVOCATION_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_flush = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = poll.tick() => {}
        }
        let since = Timestamp::now().saturating_sub(REVOCATION_WINDOW);
        match keys.revoked_since(since).await {
            Ok(revoked) => auth.forget(&revoked),
            Err(e) => tracing::warn!(error = %e, "could not read revoked API keys"),
        }
        if last_flush.elapsed() >= USE_FLUSH {
            last_flush = Instant::now();
            flush_uses(&auth, &*keys).await;
        }
    }
    flush_uses(&auth, &*keys).await;
}

async fn flush_uses(auth: &Auth, keys: &dyn ApiKeys) {
    if let Err(e) = keys.record_key_use(auth.take_uses()).await {
        tracing::warn!(error = %e, "could not record API key use");
    }
}
