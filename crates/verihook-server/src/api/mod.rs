//! The HTTP API of CONTRACT §2: JSON, camelCase, under `/v1`. Each module owns the routes
//! of one resource; [`router`] merges them and adds the shared layers.

mod admin;
pub mod at_once;
pub mod auth;
mod check;
mod customers;
mod dashboard;
mod endpoints;
mod error;
mod events;
mod extract;
pub mod gate;
mod health;
pub mod input;
mod metrics;
mod openapi;
pub mod rate_limit;
mod recoveries;
mod rotation;
mod schemas;
pub mod service;
mod stats;
mod stream;
mod views;
mod webhook;

pub use auth::Auth;
pub use error::ApiError;

use crate::admission::Admission;
use crate::delivery::Sender;
use crate::metrics::Metrics;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::{middleware, Extension, Router};
use std::sync::Arc;
use std::time::Duration;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_store::Storage;

/// Request bodies above this answer 413.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler shares, behind one `Arc`: axum clones the state for each request and
/// for each middleware layer it passes, and cloning the dozen `Arc`s inside one by one
/// (two dozen atomic increments and decrements per clone, their cache lines bouncing
/// between cores) took ~4 % of the server's CPU in a profile.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Storage,
    pub auth: Arc<Auth>,
    /// Accept `http://` webhook URLs.
    pub allow_http: bool,
    pub metrics: Arc<Metrics>,
    /// Sends test events for `POST /v1/webhook/test`.
    pub sender: Arc<Sender>,
    /// Lets changes in while deliveries keep pace.
    pub admission: Arc<Admission>,
    /// Bounds each organization's test sends running at once.
    pub test_sends: Arc<at_once::AtOnce>,
    /// Bounds each organization's event streams open at once.
    pub streams: Arc<at_once::AtOnce>,
    /// Cancelled when the server starts to stop: event streams end then, rather than hold
    /// the shutdown for its whole timeout.
    pub stopping: tokio_util::sync::CancellationToken,
    /// `--rate-limit`, per organization.
    pub rate_limit: Arc<rate_limit::RateLimiter>,
    /// `--admin-rate-limit`, for the admin token.
    pub admin_rate_limit: Arc<rate_limit::RateLimiter>,
}

/// Only `/healthz`, `/readyz` and `/metrics`: what a worker node serves.
pub fn health_router(state: AppState) -> Router {
    let (routes, _) = OpenApiRouter::new()
        .merge(health::router())
        .merge(metrics::router())
        .split_for_parts();
    routes
        .fallback(|| async { ApiError::not_found("route (this node runs --role worker)") })
        .with_state(state)
}

/// Every route, and the OpenAPI document of exactly those routes.
pub fn documented_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(metrics::router())
        .routes(routes!(openapi::openapi_json))
        .merge(admin::router())
        .merge(webhook::router())
        .merge(endpoints::router())
        .merge(customers::router())
        .merge(events::router())
        .merge(recoveries::router())
        .merge(stream::router())
        .merge(check::router())
        .merge(stats::router())
        .split_for_parts();
    utoipa::Modify::modify(&openapi::CallerAnswers, &mut doc);
    (routes, doc)
}

pub fn router(state: AppState) -> Router {
    let (routes, doc) = documented_routes();
    routes
        .layer(Extension(openapi::Rendered::of(&doc)))
        // The user interface, not part of the API document.
        .merge(dashboard::router())
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), gate::gate))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `app` with a time limit on reading each request's body (`body`) and on each request as
/// a whole (`request`: past it, 503 in the error body; the work it started may finish).
pub fn with_timeouts(app: Router, body: Duration, request: Duration) -> Router {
    app.layer(RequestBodyTimeoutLayer::new(body))
        .layer(middleware::from_fn(
            move |req: Request, next: Next| async move {
                match tokio::time::timeout(request, next.run(req)).await {
                    Ok(response) => response,
                    Err(_) => ApiError::unavailable(format!(
                        "the request took longer than {} s; retry (with an Idempotency-Key, \
                     a change that did happen is not made twice)",
                        request.as_secs()
                    ))
                    .into_response(),
                }
            },
        ))
}
