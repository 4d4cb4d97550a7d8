//! The event log: an organization's events (and the account manager's view across
//! organizations), each with its delivery status and attempts.

use super::error::{ApiError, ErrorBody};
use super::extract::{parse_limit, parse_param, Admitted, OptionalJsonBody, OrgAuth, QueryParams};
use super::views::{EventListItem, EventView, PageView};
use super::{schemas, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::DeliveryStatus;
use verihook_core::{CustomerId, EndpointId, EventId, EventType, Timestamp};
use verihook_store::{EventFilter, PageRequest, Scope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(redeliver))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = schemas::event_type)]
    event_type: Option<String>,
    /// Only this customer's events.
    #[param(pattern = "^cus_[0-9a-z]{24}$")]
    customer_id: Option<String>,
    /// Only events in this delivery status (the aggregate over their endpoints).
    #[param(schema_with = schemas::delivery_status)]
    delivery_status: Option<String>,
    /// Only events queued for this endpoint.
    #[param(pattern = "^ep_[0-9a-z]{24}$")]
    endpoint_id: Option<String>,
    /// 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `nextCursor` of the previous page: an event of this listing.
    #[param(pattern = "^evt_[0-9a-z]{24}$")]
    after: Option<String>,
}

/// Which endpoint to redeliver to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RedeliveryInput {
    /// One endpoint (`ep_…`); absent: every endpoint the event was queued for.
    #[schema(pattern = "^ep_[0-9a-z]{24}$")]
    endpoint_id: Option<String>,
}

/// The answer to a redelivery request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Redelivery<'a> {
    event_id: &'a str,
    /// Always `pending`: the event waits for its next attempt.
    #[schema(schema_with = schemas::delivery_status)]
    delivery_status: &'static str,
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
        endpoint_id: parse_param(
            params.endpoint_id.as_deref(),
            "endpointId",
            EndpointId::parse,
            "not an endpoint id",
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

pub(super) async fn list_in(
    state: &AppState,
    scope: Scope<'_>,
    params: &ListParams,
) -> Result<Response, ApiError> {
    let (filter, page) = filter(params)?;
    let page = state.store.events.list_events(scope, &filter, page).await?;
    let view = PageView::of(&page, EventListItem::of, |e| e.event.id.to_string());
    Ok(Json(view).into_response())
}

/// `GET /v1/events?type=&customerId=&deliveryStatus=&limit=&after=`: newest first.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    security(("organizationKey" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "Newest first", body = PageView<EventListItem>),
        (status = 400, description = "A malformed query string", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 422, description = "An unknown filter value, a bad limit or cursor", body = ErrorBody),
    ))]
async fn list(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Response, ApiError> {
    list_in(&state, Scope::Organization(&org.id), &params).await
}

/// `GET /v1/events/{eventId}`: the exact webhook body, delivery status and attempts.
#[utoipa::path(get, path = "/v1/events/{event_id}", tag = "events",
    security(("organizationKey" = [])),
    params(("event_id" = String, Path, description = "An event id (`evt_…`)")),
    responses(
        (status = 200, description = "The event as sent, its delivery status and every attempt", body = EventView),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such event in this organization", body = ErrorBody),
    ))]
async fn show(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = EventId::parse(&event_id).map_err(|_| ApiError::not_found("event"))?;
    let record = state
        .store
        .events
        .event(Scope::Organization(&org.id), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    Ok(Json(EventView::of(&record)).into_response())
}

/// `POST /v1/events/{eventId}/redeliver` → 202: the same event (same id, same body) is
/// queued again with a fresh attempt budget, whether it was delivered or failed: for the
/// endpoint given, or every endpoint it was queued for. The body may be left out.
#[utoipa::path(post, path = "/v1/events/{event_id}/redeliver", tag = "events",
    security(("organizationKey" = [])),
    params(("event_id" = String, Path, description = "An event id (`evt_…`)")),
    request_body(content = Option<RedeliveryInput>, description = "Optional: one endpoint"),
    responses(
        (status = 202, description = "Queued: the same id and body, signed afresh, a fresh attempt budget", body = Redelivery),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such event, or no such endpoint, in this organization", body = ErrorBody),
        (status = 415, description = "A body that is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded: deliveries lag beyond `--max-lag`; nothing was written, retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn redeliver(
    OrgAuth(org): OrgAuth,
    _admitted: Admitted,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    OptionalJsonBody(input): OptionalJsonBody<RedeliveryInput>,
) -> Result<Response, ApiError> {
    let id = EventId::parse(&event_id).map_err(|_| ApiError::not_found("event"))?;
    let endpoint = input
        .and_then(|i| i.endpoint_id)
        .map(|e| EndpointId::parse(&e).map_err(|_| ApiError::not_found("endpoint")))
        .transpose()?;
    state
        .store
        .outbox
        .requeue(
            Scope::Organization(&org.id),
            &id,
            endpoint.as_ref(),
            Timestamp::now(),
        )
        .await
        .map_err(|e| ApiError::from_store(e, "event or endpoint"))?;
    tracing::info!(event_id = %id, organization_id = %org.id, "redelivery requested");
    let body = Redelivery {
        event_id: id.as_str(),
        delivery_status: "pending",
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
