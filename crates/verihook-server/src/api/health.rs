//! Liveness and readiness.

use super::{ApiError, AppState};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// 200 while the process runs.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 only when the database answers and every migration is applied.
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store.ready().await {
        Ok(()) => Ok(Json(json!({ "status": "ready", "database": "ok" }))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            Err(ApiError::unavailable(format!("database not ready: {e}")))
        }
    }
}
