//! The account manager's organizations: creation, and their webhook URL and secret.

use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{AdminAuth, JsonBody};
use crate::api::webhook::{parse_url, WebhookInput, WebhookView};
use crate::api::{service, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::{Mode, OrganizationId, Timestamp, WebhookSecret};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_organization))
        .routes(routes!(set_webhook))
        .routes(routes!(rotate_secret))
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

#[derive(Serialize, ToSchema)]
struct SecretView {
    secret: String,
}

fn organization_id(raw: &str) -> Result<OrganizationId, ApiError> {
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
    }))
}

/// `POST /v1/admin/organizations/{orgId}/webhook/rotate-secret`.
#[utoipa::path(post, path = "/v1/admin/organizations/{org_id}/webhook/rotate-secret", tag = "admin",
    security(("adminToken" = [])),
    params(("org_id" = String, Path, description = "An organization id (`org_…`)")),
    responses(
        (status = 200, description = "The new secret; the old one no longer signs", body = SecretView),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    ))]
async fn rotate_secret(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    let id = organization_id(&org_id)?;
    let secret = WebhookSecret::generate();
    state
        .store
        .organizations
        .rotate_webhook_secret(&id, secret.clone())
        .await
        .map_err(|e| ApiError::from_store(e, "organization"))?;
    tracing::info!(organization_id = %id, "webhook secret rotated");
    Ok(Json(SecretView {
        secret: secret.expose().to_owned(),
    }))
}
