//! The verification team's decisions on any organization's customer, following the
//! workflow.

use crate::api::customers::{decide, StatusInput};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{AdminAuth, Admitted, JsonBody};
use crate::api::gate::Idempotent;
use crate::api::views::CustomerView;
use crate::api::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::TransitionPolicy;
use verihook_store::Scope;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(decide_status))
}

/// `POST /v1/admin/customers/{id}/status`: the verification team's decision on any
/// organization's customer, following the workflow.
#[utoipa::path(post, path = "/v1/admin/customers/{id}/status", tag = "admin",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "A customer id (`cus_…`)")),
    request_body = StatusInput,
    responses(
        (status = 200, description = "Changed; emits the status events", body = CustomerView),
        (status = 400, description = "Malformed JSON, a wrong type or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 409, description = "A transition the workflow does not allow", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "An unknown status or a bad reason", body = ErrorBody),
        (status = 503, description = "Overloaded: deliveries lag beyond `--max-lag`; nothing was written, retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn decide_status(
    _: AdminAuth,
    _admitted: Admitted,
    idempotent: Idempotent,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<StatusInput>,
) -> Result<Response, ApiError> {
    let policy = TransitionPolicy::Workflow;
    decide(&state, &idempotent, Scope::All, &id, input, policy).await
}
