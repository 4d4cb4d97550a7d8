//! The delivery engine: turns the outbox into signed HTTP requests.
//!
//! - [`engine`]: claims due deliveries in batches under a lease, runs each attempt as its
//!   own task (bounded overall and per organization), and records the outcome: delivered,
//!   retry after the schedule's wait, or failed.
//! - [`alerts`]: the operator's alerts, one per incident, sent from their durable queue.
//! - [`sender`]: one attempt over HTTP(S): signing, timeout, classification of failures.
//! - [`guard`]: the SSRF guard on the addresses a delivery may connect to.

pub mod alerts;
pub mod engine;
pub mod guard;
pub mod sender;

pub use engine::{DeliveryEngine, Limits};
pub use sender::{Sender, SenderError};
