//! The account manager's organizations: creation, and their webhook URL and secret.

use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{AdminAuth, JsonBody, OptionalJsonBody};
use crate::api::rotation::{self, CompletionView, RotateInput, RotationView};
use crate::api::webhook::{parse_url, WebhookInput, WebhookView};
use crate::api::{service, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::{Mode, OrganizationId, Timestamp};
use verihook_store::EndpointRef;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_organization))
        .routes(routes!(set_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(complete_rotation))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOrganizationInput {
    #[schema(
        example = "Acme Lending",
        required = true,
        nullable = false,
        min_length = 1
    )]
    name: Option<String>,
    /// `sandbox` (the default) or `live`.
    #[schema(example = "sandbox", nullable = false, pattern = "^(sandbox|live)$")]
    mode: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct OrganizationCreated {
    id: String,
    name: String,
    mode: &'static str,
    /// Shown once: only its digest is stored.
    api_key: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

/// `POST /v1/admin/organizations` → 201 with the organization's API key, shown only here.
/// `mode` defaults to `sandbox`, the safe choice for a new integration.
#[utoipa::path(post, path = "/v1/admin/organizations", tag = "admin",
    security(("adminToken" = [])),
    request_body = NewOrganizationInput,
    responses(
        (status = 201, description = "Created; the API key is shown only here", body = OrganizationCreated),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A value is not acceptable", body = ErrorBody),
    ))]
async fn create_organization(
    _: AdminAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<NewOrganizationInput>,
) -> Result<(StatusCode, Json<OrganizationCreated>), ApiError> {
    let name = input
        .name
        .as_deref()
        .ok_or_else(|| ApiError::invalid("name", "is required"))?;
    let mode = match input.mode.as_deref() {
        None => Mode::Sandbox,
        Some(m) => {
            Mode::parse(m).ok_or_else(|| ApiError::invalid("mode", "must be sandbox or live"))?
        }
    };
    let (org, key) = service::create_organization(&state.store, name, mode).await?;
    tracing::info!(organization_id = %org.id, mode = mode.as_str(), "organization created");
    Ok((
        StatusCode::CREATED,
        Json(OrganizationCreated {
            id: org.id.to_string(),
            name: org.name,
            mode: org.mode.as_str(),
            api_key: key.expose().to_owned(),
            created_at: org.created_at,
        }),
    ))
}

pub(super) fn organization_id(raw: &str) -> Result<OrganizationId, ApiError> {
    OrganizationId::parse(raw).map_err(|_| ApiError::not_found("organization"))
}

/// `PUT /v1/admin/organizations/{orgId}/webhook`: sets the URL and returns it with the
/// secret (generated on first configuration, unchanged afterwards).
#[utoipa::path(put, path = "/v1/admin/organizations/{org_id}/webhook", tag = "admin",
    security(("adminToken" = [])),
    params(("org_id" = String, Path, description = "An organization id (`org_…`)")),
    request_body = WebhookInput,
    responses(
        (status = 200, description = "The URL and the secret", body = WebhookView),
        (status = 400, description = "Malformed JSON, or a URL that is not HTTPS", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
    ))]
async fn set_webhook(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
    JsonBody(input): JsonBody<WebhookInput>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = organization_id(&org_id)?;
    let url = parse_url(&state, &input)?;
    let set = service::set_webhook_url(&state.store, &id, &url).await?;
    tracing::info!(organization_id = %id, "webhook URL set by account manager");
    Ok(Json(WebhookView {
        url: Some(set.url.as_str().to_owned()),
        secret: Some(set.secret.expose().to_owned()),
        health: None,
    }))
}

/// `POST /v1/admin/organizations/{orgId}/webhook/rotate-secret` `{"overlap"?}`: a new
/// secret for the default endpoint; the previous one keeps signing beside it for the
/// overlap (default 24h; `0s` switches at once).
#[utoipa::path(post, path = "/v1/admin/organizations/{org_id}/webhook/rotate-secret", tag = "admin",
    security(("adminToken" = [])),
    params(("org_id" = String, Path, description = "An organization id (`org_…`)")),
    request_body(content = Option<RotateInput>, description = "Optional: the overlap"),
    responses(
        (status = 200, description = "The new secret, and when the previous one stops signing", body = RotationView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such organization, or no webhook URL set", body = ErrorBody),
        (status = 415, description = "A body that is not application/json", body = ErrorBody),
        (status = 422, description = "A bad overlap", body = ErrorBody),
    ))]
async fn rotate_secret(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
    OptionalJsonBody(input): OptionalJsonBody<RotateInput>,
) -> Result<Json<RotationView>, ApiError> {
    let id = organization_id(&org_id)?;
    let view = rotation::rotate(&state, &id, EndpointRef::Default, input, "webhook").await?;
    Ok(Json(view))
}

/// `POST /v1/admin/organizations/{orgId}/webhook/rotate-secret/complete`: only the new
/// secret signs from now on.
#[utoipa::path(post, path = "/v1/admin/organizations/{org_id}/webhook/rotate-secret/complete", tag = "admin",
    security(("adminToken" = [])),
    params(("org_id" = String, Path, description = "An organization id (`org_…`)")),
    responses(
        (status = 200, description = "The overlap ended now", body = CompletionView),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such organization, or no webhook URL set", body = ErrorBody),
    ))]
async fn complete_rotation(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
) -> Result<Json<CompletionView>, ApiError> {
    let id = organization_id(&org_id)?;
    let view = rotation::complete(&state, &id, EndpointRef::Default, "webhook").await?;
    Ok(Json(view))
}
