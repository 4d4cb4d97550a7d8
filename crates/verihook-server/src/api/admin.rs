//! The account manager's organizations.

use super::error::ApiError;
use super::extract::{AdminAuth, JsonBody};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use verihook_core::{ApiKey, Mode, Organization, Timestamp};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/organizations", post(create_organization))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrganizationInput {
    name: Option<String>,
    mode: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrganizationCreated {
    id: String,
    name: String,
    mode: &'static str,
    /// Shown once: only its digest is stored.
    api_key: String,
    created_at: Timestamp,
}

/// `POST /v1/admin/organizations` → 201 with the organization's API key, shown only here.
/// `mode` defaults to `sandbox`, the safe choice for a new integration.
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
        .create_organization(&org, ApiKey::digest(key.expose()))
        .await?;
    Ok((org, key))
}
