//! `GET /metrics`, and the layer that counts and times every API request.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use utoipa_axum::{router::OpenApiRouter, routes};

/// What Prometheus asks for and gets: OpenMetrics text.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus metrics of this process (no auth; no label carries an organization).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "OpenMetrics text", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
    ))]
async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(bytes) = state.store.health.memory_in_process() {
        state.metrics.set_database_memory(bytes);
    }
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// Counts and times a request under its route template; requests no route matched count
/// as `unmatched`, so arbitrary paths cannot grow the label set.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .request(route, method, response.status().as_u16(), started.elapsed());
    response
}

/// The standard methods by name; anything else as `other` (bounded label values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
