//! What the API keeps about its callers rather than about customers: API keys (several per
//! organization, revocable) and idempotency records (CONTRACT §8).

use crate::StoreError;
use async_trait::async_trait;
use verihook_core::{ApiKey, ApiKeyId, CustomerChange, OrganizationId, Timestamp};

/// A key about to be stored: its id, digest and listing prefix (never the key).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub digest: [u8; 32],
    pub prefix: String,
    pub created_at: Timestamp,
}

impl NewApiKey {
    pub fn of(key: &ApiKey, created_at: Timestamp) -> Self {
        Self {
            id: ApiKeyId::generate(),
            digest: ApiKey::digest(key.expose()),
            prefix: key.prefix().to_owned(),
            created_at,
        }
    }
}

/// A key as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// An organization's API keys. The organization's first key is stored with it
/// ([`crate::Organizations::create_organization`]).
#[async_trait]
pub trait ApiKeys: Send + Sync + 'static {
    /// `NotFound` when the organization does not exist.
    async fn create_api_key(
        &self,
        organization: &OrganizationId,
        key: &NewApiKey,
    ) -> Result<(), StoreError>;
    /// The organization's live keys, oldest first; `NotFound` when it does not exist.
    async fn api_keys(
        &self,
        organization: &OrganizationId,
    ) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// `NotFound` when the organization has no such live key.
    async fn revoke_api_key(
        &self,
        organization: &OrganizationId,
        id: &ApiKeyId,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The digests of keys revoked at or after `since` (by any node), for key caches.
    async fn revoked_since(&self, since: Timestamp) -> Result<Vec<[u8; 32]>, StoreError>;
    /// Moves `lastUsedAt` of each key (by digest) forward to the time given, in one write.
    async fn record_key_use(&self, uses: Vec<([u8; 32], Timestamp)>) -> Result<(), StoreError>;
}

/// One caller's use of one `Idempotency-Key`: `scope` is the organization's id, or
/// `admin` for the admin token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
}

/// An answer kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: String,
}

/// What [`Idempotency::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The key is this request's, held until it ends: run it.
    Started,
    /// A finished request with the same fingerprint: answer this again.
    Replay(StoredAnswer),
    /// The key was used for another method, path or body.
    Reused,
    /// A request with this key is running.
    InUse,
}

/// The answer of an event-producing change, stored with the change in its transaction:
/// once the change is committed, so is the answer a replay gives.
pub struct AnswerWithChange {
    pub key: IdempotencyKey,
    pub status: u16,
    pub render: Box<dyn FnOnce(&CustomerChange) -> String + Send>,
}

/// Idempotency records.
#[async_trait]
pub trait Idempotency: Send + Sync + 'static {
    /// Takes `key` for a request of `fingerprint` until `held_until`, unless a request
    /// with it finished (or still runs) since `expired_before`.
    async fn begin(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: Timestamp,
        held_until: Timestamp,
        expired_before: Timestamp,
    ) -> Result<Begun, StoreError>;
    /// Stores the answer of the request holding `key`.
    async fn finish(&self, key: &IdempotencyKey, answer: StoredAnswer) -> Result<(), StoreError>;
    /// Lets `key` go: its answer is not kept (a 5xx, 409 or 429).
    async fn abandon(&self, key: &IdempotencyKey) -> Result<(), StoreError>;
    /// Removes up to `limit` records created before `before`; answers how many went.
    async fn purge(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
}
