//! API integration tests: the real server, a fresh SQLite file, HTTP on loopback.

mod admin;
mod api_keys;
mod check;
mod customers;
mod dashboard;
mod delivery;
mod endpoints;
mod erasure;
mod errors;
mod events;
mod helpers;
mod idempotency;
mod isolation;
mod limits;
mod openapi;
mod operations;
mod rate_limits;
mod retention;
mod statuses;
mod stream;
mod webhook;
