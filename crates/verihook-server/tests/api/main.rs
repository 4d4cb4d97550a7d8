//! API integration tests: the real server, a fresh SQLite file, HTTP on loopback.

mod admin;
mod customers;
mod dashboard;
mod delivery;
mod endpoints;
mod errors;
mod events;
mod helpers;
mod isolation;
mod openapi;
mod operations;
mod statuses;
mod webhook;
