//! Liveness and readiness.

use super::error::ErrorBody;
use super::{ApiError, AppState};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process runs", body = Object, example = json!({"status": "ok"}))))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 only when the database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The database answers, every migration applied", body = Object),
        (status = 503, description = "Not ready", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store.health.ready().await {
        Ok(()) => Ok(Json(json!({ "status": "ready", "database": "ok" }))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            // The cause is in the log; the answer, open to anyone, does not name it.
            Err(ApiError::unavailable("the database is not ready"))
        }
    }
}
