//! The account manager's organizations.

use super::error::{ApiError, ErrorBody};
use super::extract::{AdminAuth, JsonBody};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::{ApiKey, Mode, Organization, Timestamp};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_organization))
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
    let (org, key) = create(&state, name, mode).await?;
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

/// Creates an organization with a fresh API key.
pub async fn create(
    state: &AppState,
    name: &str,
    mode: Mode,
) -> Result<(Organization, ApiKey), ApiError> {
    let org = Organization::new(name, mode, Timestamp::now())
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    let key = ApiKey::generate();
    state
        .store
        .organizations
        .create_organization(&org, ApiKey::digest(key.expose()))
        .await?;
    Ok((org, key))
}
