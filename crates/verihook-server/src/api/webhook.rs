//! Webhook endpoints: the account manager's configuration and rotation, and the
//! organization's self-service view and change.

use super::error::ApiError;
use super::extract::{AdminAuth, JsonBody, OrgAuth};
use super::AppState;
use crate::delivery::sender::Outgoing;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use verihook_core::event::{TestEvent, TEST_EVENT_TYPE};
use verihook_core::{EventId, OrganizationId, Timestamp, WebhookSecret, WebhookUrl};
use verihook_store::WebhookSet;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/organizations/{org_id}/webhook", put(admin_set))
        .route(
            "/v1/admin/organizations/{org_id}/webhook/rotate-secret",
            post(admin_rotate),
        )
        .route("/v1/webhook", get(show).put(set))
        .route("/v1/webhook/test", post(send_test))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookInput {
    url: Option<String>,
}

#[derive(Serialize)]
struct WebhookView {
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[derive(Serialize)]
struct SecretView {
    secret: String,
}

fn parse_url(state: &AppState, input: &WebhookInput) -> Result<WebhookUrl, ApiError> {
    let url = input
        .url
        .as_deref()
        .ok_or_else(|| ApiError::malformed("url is required").with_field("url"))?;
    // The contract answers 400 (not 422) for a URL it will not send to.
    WebhookUrl::parse(url, state.allow_http)
        .map_err(|e| ApiError::malformed(format!("url {e}")).with_field("url"))
}

fn organization_id(raw: &str) -> Result<OrganizationId, ApiError> {
    OrganizationId::parse(raw).map_err(|_| ApiError::not_found("organization"))
}

async fn store_url(
    state: &AppState,
    id: &OrganizationId,
    url: &WebhookUrl,
) -> Result<WebhookSet, ApiError> {
    state
        .store
        .set_webhook_url(id, url, WebhookSecret::generate())
        .await
        .map_err(|e| ApiError::from_store(e, "organization"))
}

/// `PUT /v1/admin/organizations/{orgId}/webhook`: sets the URL and returns it with the
/// secret (generated on first configuration, unchanged afterwards).
async fn admin_set(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
    JsonBody(input): JsonBody<WebhookInput>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = organization_id(&org_id)?;
    let url = parse_url(&state, &input)?;
    let set = store_url(&state, &id, &url).await?;
    tracing::info!(organization_id = %id, "webhook URL set by account manager");
    Ok(Json(WebhookView {
        url: Some(set.url),
        secret: Some(set.secret.expose().to_owned()),
    }))
}

/// `POST /v1/admin/organizations/{orgId}/webhook/rotate-secret`.
async fn admin_rotate(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    let id = organization_id(&org_id)?;
    let secret = WebhookSecret::generate();
    state
        .store
        .rotate_webhook_secret(&id, secret.clone())
        .await
        .map_err(|e| ApiError::from_store(e, "organization"))?;
    tracing::info!(organization_id = %id, "webhook secret rotated");
    Ok(Json(SecretView {
        secret: secret.expose().to_owned(),
    }))
}

/// `GET /v1/webhook`: the URL only; the secret is shown on configuration and rotation.
async fn show(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
) -> Result<Json<WebhookView>, ApiError> {
    let endpoint = state
        .store
        .webhook(&org.id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(Json(WebhookView {
        url: endpoint.url,
        secret: None,
    }))
}

/// `PUT /v1/webhook`: the organization changes its URL. The secret is returned only when
/// this call generated it (the first configuration).
async fn set(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<WebhookInput>,
) -> Result<Json<WebhookView>, ApiError> {
    let url = parse_url(&state, &input)?;
    let set = store_url(&state, &org.id, &url).await?;
    tracing::info!(organization_id = %org.id, "webhook URL set by organization");
    Ok(Json(WebhookView {
        url: Some(set.url),
        secret: set.secret_is_new.then(|| set.secret.expose().to_owned()),
    }))
}

/// What came of a test event: the one attempt, as the delivery log would show it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TestOutcome {
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
async fn send_test(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
) -> Result<Json<TestOutcome>, ApiError> {
    let endpoint = state
        .store
        .webhook(&org.id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let (Some(url), Some(secret)) = (endpoint.url, endpoint.secret) else {
        return Err(ApiError::conflict(
            "webhook_not_configured",
            "no webhook URL is set; set one with PUT /v1/webhook first",
        ));
    };
    let event = TestEvent::new(&org.id, Timestamp::now());
    let result = state
        .sender
        .send_webhook(Outgoing {
            event_id: event.id.as_str(),
            event_type: TEST_EVENT_TYPE,
            body: &event.body,
            url: &url,
            secret: &secret,
            attempt: 1,
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
        url,
        delivered: error.is_none(),
        status_code: result.status_code,
        duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
        error_class,
        error,
        response_body: result.response_excerpt,
    }))
}
