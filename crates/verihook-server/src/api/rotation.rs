//! Rotating an endpoint's secret without a failed verification: the new secret is
//! answered at once, and for an overlap (default 24 h) the previous one keeps signing
//! `X-Webhook-Signature` while the new one signs `X-Webhook-Signature-Next`. Shared by
//! the organization's calls (its default endpoint and each endpoint) and the admin's.

use super::error::ApiError;
use super::AppState;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;
use verihook_core::delivery::parse_duration;
use verihook_core::{OrganizationId, Timestamp, WebhookSecret};
use verihook_store::EndpointRef;

const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3_600);
const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3_600);

/// How long the previous secret keeps signing beside the new one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateInput {
    /// `24h` by default, at most `720h`; `0s` switches at once.
    #[schema(example = "24h")]
    overlap: Option<String>,
}

/// The new secret, and when the previous one stops signing.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RotationView {
    /// `whsec_…`: shown only here.
    secret: String,
    #[schema(value_type = String, format = DateTime)]
    previous_secret_expires_at: Timestamp,
}

/// When the previous secret stopped signing.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CompletionView {
    #[schema(value_type = String, format = DateTime)]
    previous_secret_expires_at: Timestamp,
}

fn overlap(input: Option<RotateInput>) -> Result<Duration, ApiError> {
    let Some(raw) = input.and_then(|i| i.overlap) else {
        return Ok(DEFAULT_OVERLAP);
    };
    let overlap = parse_duration(&raw).map_err(|e| ApiError::invalid("overlap", e))?;
    if overlap > MAX_OVERLAP {
        return Err(ApiError::invalid("overlap", "must be at most 720h"));
    }
    Ok(overlap)
}

pub(super) async fn rotate(
    state: &AppState,
    organization: &OrganizationId,
    endpoint: EndpointRef<'_>,
    input: Option<RotateInput>,
    what: &str,
) -> Result<RotationView, ApiError> {
    let overlap = overlap(input)?;
    let secret = WebhookSecret::generate();
    let now = Timestamp::now();
    let micros = i64::try_from(overlap.as_micros()).unwrap_or(i64::MAX);
    let until = Timestamp::from_unix_micros(now.unix_micros().saturating_add(micros));
    state
        .store
        .endpoints
        .rotate_secret(organization, endpoint, secret.clone(), now, until)
        .await
        .map_err(|e| ApiError::from_store(e, what))?;
    tracing::info!(organization_id = %organization, overlap_secs = overlap.as_secs(), "webhook secret rotated");
    Ok(RotationView {
        secret: secret.expose().to_owned(),
        previous_secret_expires_at: until,
    })
}

pub(super) async fn complete(
    state: &AppState,
    organization: &OrganizationId,
    endpoint: EndpointRef<'_>,
    what: &str,
) -> Result<CompletionView, ApiError> {
    state
        .store
        .endpoints
        .complete_rotation(organization, endpoint)
        .await
        .map_err(|e| ApiError::from_store(e, what))?;
    tracing::info!(organization_id = %organization, "webhook secret rotation completed");
    Ok(CompletionView {
        previous_secret_expires_at: Timestamp::now(),
    })
}
