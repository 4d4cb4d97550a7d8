//! An organization's endpoints: several URLs, each with its own event-type filter,
//! secret, signature scheme and retry schedule. The URL of `PUT /v1/webhook` is the
//! default endpoint, listed here with `"default": true`.

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, OptionalJsonBody, OrgAuth};
use super::rotation::{self, CompletionView, RotateInput, RotationView};
use super::views::HealthView;
use super::{schemas, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::endpoint::MAX_DESCRIPTION_CHARS;
use verihook_core::{
    Endpoint, EndpointId, EndpointPatch, EventTypes, OrganizationId, RetryPolicy, SignatureScheme,
    Timestamp, WebhookSecret, WebhookUrl,
};
use verihook_store::EndpointRef;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(complete_rotation))
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An endpoint's settable fields. On creation `url` is required; on change every absent
/// field stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct EndpointInput {
    /// `https://…` (plain `http://` only where the server allows it).
    #[schema(
        example = "https://example.com/webhooks/verification",
        pattern = "^https?://"
    )]
    url: Option<String>,
    /// For people, at most 500 characters.
    #[schema(max_length = 500)]
    description: Option<String>,
    /// The event types sent here; empty or absent: every type.
    #[schema(schema_with = schemas::event_types)]
    event_types: Option<Vec<String>>,
    /// `verihook` (default) or `standard-webhooks`.
    #[schema(schema_with = schemas::signature_scheme)]
    signature_scheme: Option<String>,
    /// Waits before each retry, as `--retry-schedule` (`1s,2s,4s`): at most 20 waits, each
    /// at most 24h; `null`: the server's schedule.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, example = "10s,1m,10m,1h")]
    retry_schedule: Option<Option<String>>,
    /// Recover the endpoint's failed events by itself when it is back (default true).
    auto_recover: Option<bool>,
    /// A disabled endpoint gets nothing: no event is queued for it.
    disabled: Option<bool>,
}

/// An endpoint. The secret is shown only when it is generated.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct EndpointView {
    #[schema(example = "ep_0123456789abcdefghjkmnpq")]
    id: String,
    url: String,
    description: String,
    /// Empty: every type.
    #[schema(schema_with = schemas::event_types)]
    event_types: Vec<&'static str>,
    #[schema(schema_with = schemas::signature_scheme)]
    signature_scheme: &'static str,
    /// `null`: the server's `--retry-schedule`.
    retry_schedule: Option<String>,
    auto_recover: bool,
    /// The endpoint of `PUT /v1/webhook`.
    default: bool,
    disabled: bool,
    /// `whsec_…`: shown on creation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    health: HealthView,
}

impl EndpointView {
    fn of(e: &Endpoint, show_secret: bool) -> Self {
        Self {
            id: e.id.to_string(),
            url: e.url.as_str().to_owned(),
            description: e.description.clone(),
            event_types: e.event_types.types().iter().map(|t| t.as_str()).collect(),
            signature_scheme: e.scheme.as_str(),
            retry_schedule: e.retry_schedule.as_ref().map(RetryPolicy::to_string),
            auto_recover: e.auto_recover,
            default: e.is_default,
            disabled: e.disabled,
            secret: show_secret.then(|| e.secret.expose().to_owned()),
            created_at: e.created_at,
            health: HealthView::of(&e.health),
        }
    }
}

#[derive(Serialize, ToSchema)]
struct EndpointList {
    data: Vec<EndpointView>,
}

/// The input as a change, each field parsed once; errors name the field.
fn patch_of(state: &AppState, input: EndpointInput) -> Result<EndpointPatch, ApiError> {
    let url = input
        .url
        .map(|u| {
            // The contract answers 400 (not 422) for a URL it will not send to.
            WebhookUrl::parse(&u, state.allow_http)
                .map_err(|e| ApiError::malformed(format!("url {e}")).with_field("url"))
        })
        .transpose()?;
    if let Some(d) = &input.description {
        if d.chars().count() > MAX_DESCRIPTION_CHARS || d.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "description",
                "must be at most 500 characters, without control characters",
            ));
        }
    }
    let event_types = input
        .event_types
        .map(|names| {
            EventTypes::parse(names.iter().map(String::as_str)).map_err(|unknown| {
                ApiError::invalid("eventTypes", format!("unknown event type `{unknown}`"))
            })
        })
        .transpose()?;
    let scheme = input
        .signature_scheme
        .map(|s| {
            SignatureScheme::parse(&s).ok_or_else(|| {
                ApiError::invalid(
                    "signatureScheme",
                    "must be `verihook` or `standard-webhooks`",
                )
            })
        })
        .transpose()?;
    let retry_schedule = input
        .retry_schedule
        .map(|s| {
            s.map(|s| {
                RetryPolicy::parse_for_endpoint(&s)
                    .map_err(|e| ApiError::invalid("retrySchedule", e))
            })
            .transpose()
        })
        .transpose()?;
    Ok(EndpointPatch {
        url,
        description: input.description,
        event_types,
        scheme,
        retry_schedule,
        auto_recover: input.auto_recover,
        disabled: input.disabled,
    })
}

fn endpoint_id(id: &str) -> Result<EndpointId, ApiError> {
    EndpointId::parse(id).map_err(|_| ApiError::not_found("endpoint"))
}

/// `GET /v1/endpoints`: every endpoint, the default one included, oldest first.
#[utoipa::path(get, path = "/v1/endpoints", tag = "endpoints",
    security(("organizationKey" = [])),
    responses(
        (status = 200, description = "Every endpoint, without secrets", body = EndpointList),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
    ))]
async fn list(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
) -> Result<Json<EndpointList>, ApiError> {
    let endpoints = state.store.endpoints.endpoints(&org.id).await?;
    let data = endpoints
        .iter()
        .map(|e| EndpointView::of(e, false))
        .collect();
    Ok(Json(EndpointList { data }))
}

/// `POST /v1/endpoints` → 201: a new endpoint with a new secret (shown only here).
#[utoipa::path(post, path = "/v1/endpoints", tag = "endpoints",
    security(("organizationKey" = [])),
    request_body = EndpointInput,
    responses(
        (status = 201, description = "Created; the secret is shown only now", body = EndpointView),
        (status = 400, description = "Malformed JSON, a missing URL or one that is not HTTPS", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 409, description = "The organization has 50 endpoints already", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "An unknown event type or scheme, a bad retry schedule or description", body = ErrorBody),
    ))]
async fn create(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<EndpointInput>,
) -> Result<Response, ApiError> {
    let patch = patch_of(&state, input)?;
    let url = patch
        .url
        .clone()
        .ok_or_else(|| ApiError::malformed("url is required").with_field("url"))?;
    let secret = WebhookSecret::generate();
    let mut endpoint = Endpoint::new(org.id.clone(), url, secret, false, Timestamp::now());
    patch.apply(&mut endpoint);
    state.store.endpoints.create_endpoint(&endpoint).await?;
    tracing::info!(organization_id = %org.id, endpoint_id = %endpoint.id, "endpoint created");
    let view = EndpointView::of(&endpoint, true);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /v1/endpoints/{endpointId}`.
#[utoipa::path(get, path = "/v1/endpoints/{endpoint_id}", tag = "endpoints",
    security(("organizationKey" = [])),
    params(("endpoint_id" = String, Path, description = "An endpoint id (`ep_…`)")),
    responses(
        (status = 200, description = "The endpoint, without its secret", body = EndpointView),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ))]
async fn show(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    let endpoint = find(&state, &org.id, &id).await?;
    Ok(Json(EndpointView::of(&endpoint, false)))
}

/// The organization's endpoint of the path's id, or 404.
pub(super) async fn find(
    state: &AppState,
    organization: &OrganizationId,
    id: &str,
) -> Result<Endpoint, ApiError> {
    let id = endpoint_id(id)?;
    state
        .store
        .endpoints
        .endpoint(organization, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))
}

/// `PATCH /v1/endpoints/{endpointId}`: changes the fields given. Events already queued keep
/// their endpoints; a disabled endpoint gets nothing from now on.
#[utoipa::path(patch, path = "/v1/endpoints/{endpoint_id}", tag = "endpoints",
    security(("organizationKey" = [])),
    params(("endpoint_id" = String, Path, description = "An endpoint id (`ep_…`)")),
    request_body = EndpointInput,
    responses(
        (status = 200, description = "The endpoint as changed", body = EndpointView),
        (status = 400, description = "Malformed JSON, or a URL that is not HTTPS", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "An unknown event type or scheme, a bad retry schedule or description", body = ErrorBody),
    ))]
async fn update(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<EndpointInput>,
) -> Result<Json<EndpointView>, ApiError> {
    let id = endpoint_id(&id)?;
    let patch = patch_of(&state, input)?;
    let endpoint = state
        .store
        .endpoints
        .update_endpoint(&org.id, &id, patch)
        .await
        .map_err(|e| ApiError::from_store(e, "endpoint"))?;
    tracing::info!(organization_id = %org.id, endpoint_id = %id, "endpoint changed");
    Ok(Json(EndpointView::of(&endpoint, false)))
}

/// `DELETE /v1/endpoints/{endpointId}` → 204: its pending deliveries are dropped; its
/// history stays in the event log.
#[utoipa::path(delete, path = "/v1/endpoints/{endpoint_id}", tag = "endpoints",
    security(("organizationKey" = [])),
    params(("endpoint_id" = String, Path, description = "An endpoint id (`ep_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ))]
async fn delete(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = endpoint_id(&id)?;
    state
        .store
        .endpoints
        .delete_endpoint(&org.id, &id, Timestamp::now())
        .await
        .map_err(|e| ApiError::from_store(e, "endpoint"))?;
    tracing::info!(organization_id = %org.id, endpoint_id = %id, "endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/endpoints/{endpointId}/rotate-secret` `{"overlap"?}`: a new secret; the
/// previous one keeps signing beside it for the overlap (default 24h; `0s` switches at
/// once).
#[utoipa::path(post, path = "/v1/endpoints/{endpoint_id}/rotate-secret", tag = "endpoints",
    security(("organizationKey" = [])),
    params(("endpoint_id" = String, Path, description = "An endpoint id (`ep_…`)")),
    request_body(content = Option<RotateInput>, description = "Optional: the overlap"),
    responses(
        (status = 200, description = "The new secret, and when the previous one stops signing", body = RotationView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
        (status = 415, description = "A body that is not application/json", body = ErrorBody),
        (status = 422, description = "A bad overlap", body = ErrorBody),
    ))]
async fn rotate_secret(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJsonBody(input): OptionalJsonBody<RotateInput>,
) -> Result<Json<RotationView>, ApiError> {
    let id = endpoint_id(&id)?;
    let which = EndpointRef::Id(&id);
    let view = rotation::rotate(&state, &org.id, which, input, "endpoint").await?;
    Ok(Json(view))
}

/// `POST /v1/endpoints/{endpointId}/rotate-secret/complete`: only the new secret signs
/// from now on.
#[utoipa::path(post, path = "/v1/endpoints/{endpoint_id}/rotate-secret/complete", tag = "endpoints",
    security(("organizationKey" = [])),
    params(("endpoint_id" = String, Path, description = "An endpoint id (`ep_…`)")),
    responses(
        (status = 200, description = "The overlap ended now", body = CompletionView),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ))]
async fn complete_rotation(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CompletionView>, ApiError> {
    let id = endpoint_id(&id)?;
    let view = rotation::complete(&state, &org.id, EndpointRef::Id(&id), "endpoint").await?;
    Ok(Json(view))
}
