//! # verihook-store
//!
//! Persistence, behind traits shaped by who calls them, so that neither the API nor the
//! delivery engine knows which database it runs on:
//!
//! - for the HTTP API, one repository per resource ([`repository`]): [`Organizations`]
//!   (and their keys and webhook endpoint), [`Customers`] (whose writes enqueue their
//!   events in the same transaction: the outbox), [`EventLog`] (events, statuses,
//!   attempts), and [`Health`];
//! - for the delivery engine, the [`Outbox`] ([`outbox`]): claim under lease, record
//!   outcomes, release, requeue, next due time, size, and its own wake-up signal. A test
//!   fake or a queue-backed outbox can implement it alone.
//!
//! One implementation serves every backend (`database`): the reads and the writes whose
//! SQL is shared are written once, over a small connection trait (`conn`) and a batching
//! writer (`writer`, group commit); each backend (`sqlite`, `postgres`) adds its driver,
//! its migrations, and the three writes whose SQL is its own (saving a change, claiming,
//! recording). [`connect`] opens the one a database URL names, as a [`Storage`].

pub mod alerts;
mod conn;
mod database;
pub mod error;
pub mod lifecycle;
pub mod outbox;
pub mod postgres;
pub mod recoveries;
pub mod repository;
pub mod requests;
mod rows;
pub mod secrets;
mod sql;
pub mod sqlite;
pub mod stream;
mod writer;

use std::sync::Arc;

pub use alerts::{Alerts, PendingAlert};
pub use error::StoreError;
pub use lifecycle::{Eraser, Erasure, ErasureRecord, Erasures, Purged, Retention};
pub use outbox::{
    AttemptOutcome, ClaimRequest, ClaimedDelivery, Lease, NextStep, Outbox, Recorded, Ridden,
};
pub use recoveries::{Recoveries, Recovery, RecoveryRequest};
pub use repository::{
    AttemptRecord, AttemptSample, Customers, EndpointDelivery, EndpointRef, Endpoints, EventFilter,
    EventLog, EventRecord, EventSummary, Health, Mutation, Organizations, Page, PageRequest, Scope,
    WebhookEndpoint, WebhookSet,
};
pub use requests::{
    AnswerWithChange, ApiKeyRecord, ApiKeys, Begun, Idempotency, IdempotencyKey, NewApiKey,
    StoredAnswer,
};
pub use stream::{EventStream, StreamPosition};

/// The store's traits over one open database, each a handle on the same connections.
#[derive(Clone)]
pub struct Storage {
    pub health: Arc<dyn Health>,
    pub organizations: Arc<dyn Organizations>,
    pub endpoints: Arc<dyn Endpoints>,
    pub customers: Arc<dyn Customers>,
    pub events: Arc<dyn EventLog>,
    pub outbox: Arc<dyn Outbox>,
    pub api_keys: Arc<dyn ApiKeys>,
    pub idempotency: Arc<dyn Idempotency>,
    pub alerts: Arc<dyn Alerts>,
    pub recoveries: Arc<dyn Recoveries>,
    pub stream: Arc<dyn EventStream>,
    pub erasures: Arc<dyn Erasures>,
    pub retention: Arc<dyn Retention>,
}

impl Storage {
    /// Every trait from one implementation.
    pub fn over<T>(store: T) -> Self
    where
        T: Health
            + Organizations
            + Endpoints
            + Customers
            + EventLog
            + Outbox
            + ApiKeys
            + Idempotency
            + Alerts
            + Recoveries
            + EventStream
            + Erasures
            + Retention,
    {
        let store = Arc::new(store);
        Self {
            health: store.clone(),
            organizations: store.clone(),
            endpoints: store.clone(),
            customers: store.clone(),
            events: store.clone(),
            outbox: store.clone(),
            api_keys: store.clone(),
            idempotency: store.clone(),
            alerts: store.clone(),
            recoveries: store.clone(),
            stream: store.clone(),
            erasures: store.clone(),
            retention: store,
        }
    }
}

/// Opens the store a database URL names: `sqlite://PATH` (created if missing) or
/// `postgres://…`, applying pending migrations.
pub async fn connect(database_url: &str) -> Result<Storage, StoreError> {
    connect_with(database_url, None).await
}

/// [`connect`], sealing webhook secrets with `key` (see [`secrets`]).
pub async fn connect_with(
    database_url: &str,
    key: Option<&secrets::SecretKey>,
) -> Result<Storage, StoreError> {
    if database_url.starts_with("sqlite:") {
        sqlite::open_with(database_url, key).await
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        postgres::open_with(database_url, key).await
    } else {
        Err(StoreError::Config(
            "database URL must start with sqlite:// or postgres://".into(),
        ))
    }
}
