//! Bulk recovery (CONTRACT §9): `POST /v1/events/recover` (and the admin counterpart,
//! the product document's "manual redelivery via support") redelivers every event that
//! failed in a window, once, with a fresh budget, paced per endpoint; `GET /v1/recoveries`
//! shows the progress, from any node.

use super::error::{ApiError, ErrorBody};
use super::extract::{AdminAuth, Admitted, JsonBody, OrgAuth};
use super::{schemas, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::{EndpointId, EventType, OrganizationId, RecoveryId, Timestamp};
use verihook_store::{Recovery, RecoveryRequest};

/// Recoveries a listing shows.
const LISTED: u32 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(recover))
        .routes(routes!(recover_for_organization))
        .routes(routes!(list))
        .routes(routes!(show))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RecoverInput {
    /// Events that occurred from this time on (RFC 3339).
    #[schema(example = "2025-11-05T10:00:00Z", required = true, nullable = false)]
    since: Option<String>,
    /// Up to this time (default: now).
    #[schema(example = "2025-11-05T11:00:00Z", nullable = false)]
    until: Option<String>,
    /// Only the events failed at this endpoint.
    #[schema(nullable = false)]
    endpoint_id: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[schema(schema_with = schemas::event_type)]
    event_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RecoveryView {
    #[schema(example = "rec_0123456789abcdefghjkmnpq")]
    id: String,
    /// `running` while any of its events is pending, then `completed`.
    #[schema(example = "running", pattern = "^(running|completed)$")]
    status: &'static str,
    total: u64,
    delivered: u64,
    /// Failed again (their budget spent).
    failed: u64,
    pending: u64,
    #[schema(value_type = String, format = DateTime)]
    since: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    until: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    event_type: Option<&'static str>,
    /// Started by the engine when a failing endpoint came back (`autoRecover`).
    automatic: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl RecoveryView {
    fn of(r: &Recovery) -> Self {
        Self {
            id: r.id.to_string(),
            status: if r.is_completed() {
                "completed"
            } else {
                "running"
            },
            total: r.total,
            delivered: r.delivered,
            failed: r.failed,
            pending: r.pending,
            since: r.since,
            until: r.until,
            endpoint_id: r.endpoint.as_ref().map(ToString::to_string),
            event_type: r.event_type.map(EventType::as_str),
            automatic: r.automatic,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct RecoveryList {
    data: Vec<RecoveryView>,
}

fn time_of(field: &str, value: &str) -> Result<Timestamp, ApiError> {
    let parsed = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 time"))?;
    let micros = parsed.unix_timestamp_nanos() / 1_000;
    Ok(Timestamp::from_unix_micros(
        i64::try_from(micros).map_err(|_| ApiError::invalid(field, "out of range"))?,
    ))
}

/// The request a body asks for, checked field by field.
fn request_of(
    organization: OrganizationId,
    input: RecoverInput,
) -> Result<RecoveryRequest, ApiError> {
    let now = Timestamp::now();
    let since = input
        .since
        .as_deref()
        .ok_or_else(|| ApiError::invalid("since", "is required"))
        .and_then(|s| time_of("since", s))?;
    let until = match input.until.as_deref() {
        Some(u) => time_of("until", u)?,
        None => now,
    };
    if until < since {
        return Err(ApiError::invalid("until", "must not be before since"));
    }
    let endpoint = input
        .endpoint_id
        .as_deref()
        .map(|e| {
            EndpointId::parse(e).map_err(|_| ApiError::invalid("endpointId", "not an endpoint id"))
        })
        .transpose()?;
    let event_type = input
        .event_type
        .as_deref()
        .map(|t| EventType::parse(t).ok_or_else(|| ApiError::invalid("type", "unknown event type")))
        .transpose()?;
    Ok(RecoveryRequest {
        id: RecoveryId::generate(),
        organization,
        since,
        until,
        endpoint,
        event_type,
        automatic: false,
        created_at: now,
    })
}

async fn start(
    state: &AppState,
    organization: OrganizationId,
    input: RecoverInput,
) -> Result<(StatusCode, Json<RecoveryView>), ApiError> {
    let request = request_of(organization, input)?;
    let recovery = state
        .store
        .recoveries
        .start_recovery(&request)
        .await
        .map_err(|e| ApiError::from_store(e, "endpoint"))?;
    tracing::info!(
        organization_id = %request.organization,
        recovery_id = %recovery.id,
        total = recovery.total,
        "recovery started"
    );
    Ok((StatusCode::ACCEPTED, Json(RecoveryView::of(&recovery))))
}

/// `POST /v1/events/recover` → 202: every event of the window that is failed now is
/// redelivered once, with a fresh budget, paced per endpoint.
#[utoipa::path(post, path = "/v1/events/recover", tag = "events",
    security(("organizationKey" = [])),
    request_body = RecoverInput,
    responses(
        (status = 202, description = "Started, with its progress so far", body = RecoveryView),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A bad time, endpoint id or type; `field` names it", body = ErrorBody),
        (status = 503, description = "Overloaded: deliveries lag beyond `--max-lag`; nothing was written, retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn recover(
    OrgAuth(org): OrgAuth,
    _admitted: Admitted,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<RecoverInput>,
) -> Result<(StatusCode, Json<RecoveryView>), ApiError> {
    start(&state, org.id, input).await
}

/// `POST /v1/admin/organizations/{orgId}/events/recover` → 202: the same, by support.
#[utoipa::path(post, path = "/v1/admin/organizations/{org_id}/events/recover", tag = "admin",
    security(("adminToken" = [])),
    params(("org_id" = String, Path, description = "An organization id (`org_…`)")),
    request_body = RecoverInput,
    responses(
        (status = 202, description = "Started, with its progress so far", body = RecoveryView),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such organization, or endpoint in it", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A bad time, endpoint id or type; `field` names it", body = ErrorBody),
        (status = 503, description = "Overloaded: deliveries lag beyond `--max-lag`; nothing was written, retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn recover_for_organization(
    _: AdminAuth,
    _admitted: Admitted,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
    JsonBody(input): JsonBody<RecoverInput>,
) -> Result<(StatusCode, Json<RecoveryView>), ApiError> {
    let id = OrganizationId::parse(&org_id).map_err(|_| ApiError::not_found("organization"))?;
    state
        .store
        .organizations
        .organization(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    start(&state, id, input).await
}

/// `GET /v1/recoveries`: the newest 100, newest first.
#[utoipa::path(get, path = "/v1/recoveries", tag = "events",
    security(("organizationKey" = [])),
    responses(
        (status = 200, body = RecoveryList),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
    ))]
async fn list(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
) -> Result<Json<RecoveryList>, ApiError> {
    let found = state.store.recoveries.recoveries(&org.id, LISTED).await?;
    Ok(Json(RecoveryList {
        data: found.iter().map(RecoveryView::of).collect(),
    }))
}

/// `GET /v1/recoveries/{id}`: one recovery and its progress.
#[utoipa::path(get, path = "/v1/recoveries/{recovery_id}", tag = "events",
    security(("organizationKey" = [])),
    params(("recovery_id" = String, Path, description = "A recovery id (`rec_…`)")),
    responses(
        (status = 200, body = RecoveryView),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such recovery in this organization", body = ErrorBody),
    ))]
async fn show(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(recovery_id): Path<String>,
) -> Result<Json<RecoveryView>, ApiError> {
    let id = RecoveryId::parse(&recovery_id).map_err(|_| ApiError::not_found("recovery"))?;
    let found = state
        .store
        .recoveries
        .recovery(&org.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("recovery"))?;
    Ok(Json(RecoveryView::of(&found)))
}
