//! Events across organizations, for the account manager (`?deliveryStatus=failed` lists
//! what needs attention).

use crate::api::error::{ApiError, ErrorBody};
use crate::api::events::{list_in, ListParams};
use crate::api::extract::{AdminAuth, QueryParams};
use crate::api::views::{EventListItem, PageView};
use crate::api::AppState;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_store::Scope;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// `GET /v1/admin/events?deliveryStatus=failed`: across organizations.
#[utoipa::path(get, path = "/v1/admin/events", tag = "admin",
    security(("adminToken" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "Newest first, every organization", body = PageView<EventListItem>),
        (status = 400, description = "A malformed query string", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 422, description = "An unknown filter value, a bad limit or cursor", body = ErrorBody),
    ))]
async fn list(
    _: AdminAuth,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Response, ApiError> {
    list_in(&state, Scope::All, &params).await
}
