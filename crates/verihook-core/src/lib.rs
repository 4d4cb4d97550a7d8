//! # verihook-core
//!
//! The domain of verihook, free of I/O: what a customer is, how its verification status may
//! change, which webhook events each change produces and how their bodies are rendered and
//! signed. Everything here parses its input once and is trusted afterwards; the storage and
//! HTTP layers only move these types around.
//!
//! ## Layout
//! - [`id`]: prefixed, unguessable identifiers (`org_`, `cus_`, `evt_`) and API keys.
//! - [`timestamp`]: UTC instants and their RFC 3339 wire form.
//! - [`status`]: the six verification statuses and the workflow between them.
//! - [`customer`]: customer data, each value parsed once.
//! - [`change`]: what creation, an update and a status decision do to a customer, and the
//!   events each emits.
//! - [`event`]: the five webhook event types, rendered once to compact JSON bytes.
//! - [`signature`]: HMAC-SHA256 signing and verification, re-exported from
//!   `verihook-receiver` so that sender and receivers share one implementation (and, as
//!   [`headers`], the names of the headers it is sent in).
//! - [`webhook`]: webhook URLs and secrets.
//! - [`organization`]: organizations and their mode (sandbox or live).
//! - [`delivery`]: delivery statuses, attempt error classes and the retry policy.

pub mod change;
pub mod country;
pub mod customer;
pub mod delivery;
pub mod endpoint;
pub mod erasure;
pub mod error;
pub mod event;
pub mod id;
pub mod organization;
pub mod status;
pub mod timestamp;
pub mod webhook;

pub use verihook_receiver::{headers, signature, standard_webhooks};

pub use change::CustomerChange;
pub use customer::{Address, AddressPatch, Customer, CustomerPatch, CustomerType, NewCustomer};
pub use delivery::{DeliveryStatus, ErrorClass, RetryPolicy};
pub use endpoint::{Endpoint, EndpointHealth, EndpointPatch, EventTypes, SignatureScheme};
pub use error::{DomainError, ValidationError};
pub use event::{Event, EventType};
pub use id::{ApiKey, ApiKeyId, CustomerId, EndpointId, EventId, OrganizationId, RecoveryId};
pub use organization::{Mode, Organization};
pub use status::{CustomerStatus, TransitionError, TransitionPolicy};
pub use timestamp::Timestamp;
pub use webhook::{WebhookSecret, WebhookUrl};
