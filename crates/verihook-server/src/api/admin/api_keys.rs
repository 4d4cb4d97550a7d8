//! An organization's API keys (CONTRACT §8): several at once, so a key is replaced by
//! creating the next, moving clients to it, and revoking the old one. A key is shown only
//! when it is created; a revoked key answers 401 on every node within a second (see
//! [`crate::api::auth`]).

use super::organizations::organization_id;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::AdminAuth;
use crate::api::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::{ApiKey, ApiKeyId, Timestamp};
use verihook_store::{ApiKeyRecord, NewApiKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct KeyCreated {
    #[schema(example = "key_0a1b2c3d4e5f6g7h8j9k0m1n")]
    id: String,
    /// Shown once: only its digest is stored.
    api_key: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct KeyView {
    id: String,
    /// The key's first characters, to tell keys apart.
    #[schema(example = "vhk_3f9a")]
    prefix: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// When a request last used it (recorded every few seconds, not per request).
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<Timestamp>,
}

impl KeyView {
    fn of(k: ApiKeyRecord) -> Self {
        Self {
            id: k.id.to_string(),
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct KeyList {
    data: Vec<KeyView>,
}

/// `POST /v1/admin/organizations/{orgId}/api-keys` → 201 with a new key, shown only here.
#[utoipa::path(post, path = "/v1/admin/organizations/{org_id}/api-keys", tag = "admin",
    security(("adminToken" = [])),
    params(("org_id" = String, Path, description = "An organization id (`org_…`)")),
    responses(
        (status = 201, description = "Created; the key is shown only here", body = KeyCreated),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    ))]
async fn create_key(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    let id = organization_id(&org_id)?;
    let key = ApiKey::generate();
    let new = NewApiKey::of(&key, Timestamp::now());
    state
        .store
        .api_keys
        .create_api_key(&id, &new)
        .await
        .map_err(|e| ApiError::from_store(e, "organization"))?;
    tracing::info!(organization_id = %id, key_id = %new.id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            id: new.id.to_string(),
            api_key: key.expose().to_owned(),
            created_at: new.created_at,
        }),
    ))
}

/// `GET /v1/admin/organizations/{orgId}/api-keys`: the live keys, oldest first.
#[utoipa::path(get, path = "/v1/admin/organizations/{org_id}/api-keys", tag = "admin",
    security(("adminToken" = [])),
    params(("org_id" = String, Path, description = "An organization id (`org_…`)")),
    responses(
        (status = 200, body = KeyList),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    ))]
async fn list_keys(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
) -> Result<Json<KeyList>, ApiError> {
    let id = organization_id(&org_id)?;
    let keys = state
        .store
        .api_keys
        .api_keys(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "organization"))?;
    Ok(Json(KeyList {
        data: keys.into_iter().map(KeyView::of).collect(),
    }))
}

/// `DELETE /v1/admin/organizations/{orgId}/api-keys/{keyId}` → 204: the key is refused
/// from now on, on every node within a second.
#[utoipa::path(delete, path = "/v1/admin/organizations/{org_id}/api-keys/{key_id}", tag = "admin",
    security(("adminToken" = [])),
    params(
        ("org_id" = String, Path, description = "An organization id (`org_…`)"),
        ("key_id" = String, Path, description = "A key id (`key_…`)"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such organization or live key", body = ErrorBody),
    ))]
async fn revoke_key(
    _: AdminAuth,
    State(state): State<AppState>,
    Path((org_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = organization_id(&org_id)?;
    let key = ApiKeyId::parse(&key_id).map_err(|_| ApiError::not_found("API key"))?;
    state
        .store
        .api_keys
        .revoke_api_key(&id, &key, Timestamp::now())
        .await
        .map_err(|e| ApiError::from_store(e, "API key"))?;
    tracing::info!(organization_id = %id, key_id = %key, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
