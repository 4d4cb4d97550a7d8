//! The verification team's decisions on any organization's customer, following the
//! workflow; erasures asked of the account manager, and the audit trail of every erasure.

use crate::api::customers::{customer_id, decide, erase_customer, StatusInput};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{parse_limit, parse_param, AdminAuth, Admitted, JsonBody, QueryParams};
use crate::api::gate::Idempotent;
use crate::api::views::{CustomerView, ErasureView, PageView};
use crate::api::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::{CustomerId, TransitionPolicy};
use verihook_store::{Eraser, PageRequest, Scope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(decide_status))
        .routes(routes!(erase))
        .routes(routes!(erasures))
}

/// `DELETE /v1/admin/customers/{id}` → 204: an erasure asked of the account manager.
#[utoipa::path(delete, path = "/v1/admin/customers/{id}", tag = "admin",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "A customer id (`cus_…`)")),
    responses(
        (status = 204, description = "Erased, as `DELETE /v1/customers/{id}`; the audit trail says `admin`"),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such customer (or erased already)", body = ErrorBody),
        (status = 503, description = "Overloaded: deliveries lag beyond `--max-lag`; nothing was written, retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn erase(
    _: AdminAuth,
    _admitted: Admitted,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&id)?;
    erase_customer(&state, Scope::All, &id, Eraser::Admin).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ErasureParams {
    /// 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `nextCursor` of the previous page: an erased customer's id.
    #[param(pattern = "^cus_[0-9a-z]{24}$")]
    after: Option<String>,
}

/// `GET /v1/admin/erasures`: who erased which customer, when; newest first. It holds no
/// personal data.
#[utoipa::path(get, path = "/v1/admin/erasures", tag = "admin",
    security(("adminToken" = [])),
    params(ErasureParams),
    responses(
        (status = 200, description = "Newest first", body = PageView<ErasureView>),
        (status = 400, description = "A malformed query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 422, description = "A bad limit or cursor", body = ErrorBody),
    ))]
async fn erasures(
    _: AdminAuth,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ErasureParams>,
) -> Result<Response, ApiError> {
    let after = parse_param(
        params.after.as_deref(),
        "after",
        CustomerId::parse,
        "not a customer id",
    )?;
    let limit = parse_limit(params.limit.as_deref())?;
    let page = state
        .store
        .erasures
        .erasures(PageRequest { limit, after })
        .await?;
    let view = PageView::of(&page, ErasureView::of, |e| e.customer_id.to_string());
    Ok(Json(view).into_response())
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
