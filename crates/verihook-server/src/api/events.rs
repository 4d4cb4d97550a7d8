//! The event log: an organization's events (and the account manager's view across
//! organizations), each with its delivery status and attempts.

use super::error::ApiError;
use super::extract::{parse_limit, parse_param, AdminAuth, OrgAuth, QueryParams};
use super::views::{EventListItem, EventView, PageView};
use super::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use verihook_core::{CustomerId, EventId, EventType, Timestamp};
use verihook_store::{DeliveryStatus, EventFilter, PageRequest, Scope};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list))
        .route("/v1/events/{event_id}", get(show))
        .route("/v1/events/{event_id}/redeliver", post(redeliver))
        .route("/v1/admin/events", get(admin_list))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    #[serde(rename = "type")]
    event_type: Option<String>,
    customer_id: Option<String>,
    delivery_status: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

fn filter(params: &ListParams) -> Result<(EventFilter, PageRequest<EventId>), ApiError> {
    let filter = EventFilter {
        event_type: parse_param(
            params.event_type.as_deref(),
            "type",
            |t| EventType::parse(t).ok_or(()),
            "unknown event type",
        )?,
        customer_id: parse_param(
            params.customer_id.as_deref(),
            "customerId",
            CustomerId::parse,
            "not a customer id",
        )?,
        delivery_status: parse_param(
            params.delivery_status.as_deref(),
            "deliveryStatus",
            |d| DeliveryStatus::parse(d).ok_or(()),
            "must be pending, delivered or failed",
        )?,
    };
    let page = PageRequest {
        limit: parse_limit(params.limit.as_deref())?,
        after: parse_param(
            params.after.as_deref(),
            "after",
            EventId::parse,
            "not an event id",
        )?,
    };
    Ok((filter, page))
}

async fn list_in(
    state: &AppState,
    scope: Scope<'_>,
    params: &ListParams,
) -> Result<Response, ApiError> {
    let (filter, page) = filter(params)?;
    let page = state.store.list_events(scope, &filter, page).await?;
    let view = PageView::of(&page, EventListItem::of, |e| e.event.id.to_string());
    Ok(Json(view).into_response())
}

/// `GET /v1/events?type=&customerId=&deliveryStatus=&limit=&after=`: newest first.
async fn list(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Response, ApiError> {
    list_in(&state, Scope::Organization(&org.id), &params).await
}

/// `GET /v1/admin/events?deliveryStatus=failed`: across organizations.
async fn admin_list(
    _: AdminAuth,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Response, ApiError> {
    list_in(&state, Scope::All, &params).await
}

/// `GET /v1/events/{eventId}`: the exact webhook body, delivery status and attempts.
async fn show(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = EventId::parse(&event_id).map_err(|_| ApiError::not_found("event"))?;
    let record = state
        .store
        .event(Scope::Organization(&org.id), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    Ok(Json(EventView::of(&record)).into_response())
}

/// `POST /v1/events/{eventId}/redeliver` → 202: the same event (same id, same body) is
/// queued again with a fresh attempt budget, whether it was delivered or failed.
async fn redeliver(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = EventId::parse(&event_id).map_err(|_| ApiError::not_found("event"))?;
    state
        .store
        .redeliver(Scope::Organization(&org.id), &id, Timestamp::now())
        .await
        .map_err(|e| ApiError::from_store(e, "event"))?;
    tracing::info!(event_id = %id, organization_id = %org.id, "redelivery requested");
    let body = serde_json::json!({ "eventId": id.as_str(), "deliveryStatus": "pending" });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
