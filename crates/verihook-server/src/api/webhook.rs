//! The organization's webhook endpoint: its view and change, and a test send. (The
//! account manager's configuration and rotation are in `admin`.)

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, OptionalJsonBody, OrgAuth};
use super::rotation::{self, CompletionView, RotateInput, RotationView};
use super::views::HealthView;
use super::{service, AppState};
use crate::delivery::sender::Outgoing;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::event::{TestEvent, TEST_EVENT_TYPE};
use verihook_core::{EventId, Timestamp, WebhookUrl};
use verihook_store::EndpointRef;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, set))
        .routes(routes!(send_test))
        .routes(routes!(rotate_secret))
        .routes(routes!(complete_rotation))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookInput {
    /// `https://…` (plain `http://` only where the server allows it).
    #[schema(
        example = "https://example.com/webhooks/verification",
        required = true,
        nullable = false,
        pattern = "^https?://"
    )]
    url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct WebhookView {
    pub(super) url: Option<String>,
    /// The signing secret (`whsec_…`): shown when it is generated, never by GET.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) secret: Option<String>,
    /// The default endpoint's health (by GET, once a URL is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) health: Option<HealthView>,
}

pub(super) fn parse_url(state: &AppState, input: &WebhookInput) -> Result<WebhookUrl, ApiError> {
    let url = input
        .url
        .as_deref()
        .ok_or_else(|| ApiError::malformed("url is required").with_field("url"))?;
    // The contract answers 400 (not 422) for a URL it will not send to.
    WebhookUrl::parse(url, state.allow_http)
        .map_err(|e| ApiError::malformed(format!("url {e}")).with_field("url"))
}

/// `GET /v1/webhook`: the URL only; the secret is shown on configuration and rotation.
#[utoipa::path(get, path = "/v1/webhook", tag = "webhook",
    security(("organizationKey" = [])),
    responses(
        (status = 200, description = "The URL (null when none is set)", body = WebhookView),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
    ))]
async fn show(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
) -> Result<Json<WebhookView>, ApiError> {
    let endpoint = state
        .store
        .organizations
        .webhook(&org.id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(Json(WebhookView {
        url: endpoint.url.map(|u| u.as_str().to_owned()),
        secret: None,
        health: endpoint.health.as_ref().map(HealthView::of),
    }))
}

/// `PUT /v1/webhook`: the organization changes its URL. The secret is returned only when
/// this call generated it (the first configuration).
#[utoipa::path(put, path = "/v1/webhook", tag = "webhook",
    security(("organizationKey" = [])),
    request_body = WebhookInput,
    responses(
        (status = 200, description = "The URL, and the secret if this call generated it", body = WebhookView),
        (status = 400, description = "Malformed JSON, or a URL that is not HTTPS", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
    ))]
async fn set(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<WebhookInput>,
) -> Result<Json<WebhookView>, ApiError> {
    let url = parse_url(&state, &input)?;
    let set = service::set_webhook_url(&state.store, &org.id, &url).await?;
    tracing::info!(organization_id = %org.id, "webhook URL set by organization");
    Ok(Json(WebhookView {
        url: Some(set.url.as_str().to_owned()),
        secret: set.secret_is_new.then(|| set.secret.expose().to_owned()),
        health: None,
    }))
}

/// What came of a test event: the one attempt, as the delivery log would show it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TestOutcome {
    #[schema(value_type = String)]
    event_id: EventId,
    url: String,
    delivered: bool,
    status_code: Option<u16>,
    duration_ms: u64,
    error_class: Option<&'static str>,
    error: Option<String>,
    response_body: Option<String>,
}

/// `POST /v1/webhook/test`: signs and sends a `webhook.test` event to the organization's
/// URL now (one attempt, no retry, nothing stored) and answers with what happened, so an
/// integrator can check an endpoint in one call.
#[utoipa::path(post, path = "/v1/webhook/test", tag = "webhook",
    security(("organizationKey" = [])),
    responses(
        (status = 200, description = "The attempt's outcome (`delivered` false when the endpoint failed)", body = TestOutcome),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 409, description = "No webhook URL is set", body = ErrorBody),
        (status = 429, description = "Three test events of this organization are running already; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn send_test(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
) -> Result<Json<TestOutcome>, ApiError> {
    let _running = state.test_sends.start(&org.id)?;
    let endpoint = state
        .store
        .organizations
        .webhook(&org.id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let (Some(url), Some(secret)) = (endpoint.url, endpoint.secret) else {
        return Err(ApiError::conflict(
            "webhook_not_configured",
            "no webhook URL is set; set one with PUT /v1/webhook first",
        ));
    };
    let event = TestEvent::new(&org.id, Timestamp::now())?;
    let result = state
        .sender
        .send_webhook(Outgoing {
            event_id: event.id.as_str(),
            event_type: TEST_EVENT_TYPE,
            body: &event.body,
            url: &url,
            secret: &secret,
            previous: endpoint.previous_secret.as_ref(),
            scheme: endpoint.scheme,
            attempt: 1,
            sequence: 0,
        })
        .await;
    let (error_class, error) = match result.failure {
        Some((class, message)) => (Some(class.as_str()), Some(message)),
        None => (None, None),
    };
    tracing::info!(
        organization_id = %org.id,
        event_id = %event.id,
        delivered = error.is_none(),
        status = result.status_code,
        error_class,
        "test webhook sent"
    );
    Ok(Json(TestOutcome {
        event_id: event.id,
        url: url.as_str().to_owned(),
        delivered: error.is_none(),
        status_code: result.status_code,
        duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
        error_class,
        error,
        response_body: result.response_excerpt,
    }))
}

/// `POST /v1/webhook/rotate-secret` `{"overlap"?}`: a new secret for the default endpoint;
/// the previous one keeps signing beside it for the overlap (default 24h; `0s` switches at
/// once).
#[utoipa::path(post, path = "/v1/webhook/rotate-secret", tag = "webhook",
    security(("organizationKey" = [])),
    request_body(content = Option<RotateInput>, description = "Optional: the overlap"),
    responses(
        (status = 200, description = "The new secret, and when the previous one stops signing", body = RotationView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No webhook URL is set", body = ErrorBody),
        (status = 415, description = "A body that is not application/json", body = ErrorBody),
        (status = 422, description = "A bad overlap", body = ErrorBody),
    ))]
async fn rotate_secret(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    OptionalJsonBody(input): OptionalJsonBody<RotateInput>,
) -> Result<Json<RotationView>, ApiError> {
    let view = rotation::rotate(&state, &org.id, EndpointRef::Default, input, "webhook").await?;
    Ok(Json(view))
}

/// `POST /v1/webhook/rotate-secret/complete`: only the new secret signs from now on.
#[utoipa::path(post, path = "/v1/webhook/rotate-secret/complete", tag = "webhook",
    security(("organizationKey" = [])),
    responses(
        (status = 200, description = "The overlap ended now", body = CompletionView),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No webhook URL is set", body = ErrorBody),
    ))]
async fn complete_rotation(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
) -> Result<Json<CompletionView>, ApiError> {
    let view = rotation::complete(&state, &org.id, EndpointRef::Default, "webhook").await?;
    Ok(Json(view))
}
