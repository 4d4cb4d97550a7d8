//! `POST /v1/endpoints/{id}/check` (CONTRACT §10): the receiver check run from the server
//! against one of the organization's endpoints, under the same SSRF guard as deliveries,
//! and bounded like test sends (each check makes a dozen outbound requests on demand).

use super::error::{ApiError, ErrorBody};
use super::extract::OrgAuth;
use super::AppState;
use crate::check::{self, Report, Target};
use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(check_endpoint))
}

/// `POST /v1/endpoints/{endpointId}/check`: grades the endpoint's receiver against the
/// testing checklist (each event type signed and answered 2xx within 10 s, an unknown type
/// and a duplicate taken, a wrong signature, a tampered body, an old timestamp and a
/// missing signature refused, HTTPS) and answers the report.
#[utoipa::path(post, path = "/v1/endpoints/{endpoint_id}/check", tag = "endpoints",
    security(("organizationKey" = [])),
    params(("endpoint_id" = String, Path, description = "An endpoint id (`ep_…`)")),
    responses(
        (status = 200, description = "The report: one line per check, PASS, FAIL or WARN; `passed` when none failed", body = Report),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
        (status = 429, description = "Three checks or test events of this organization are running already", body = ErrorBody),
    ))]
async fn check_endpoint(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Report>, ApiError> {
    let endpoint = super::endpoints::find(&state, &org.id, &id).await?;
    let _running = state.test_sends.start(&org.id)?;
    // The current secret alone: during a rotation's overlap the check tells a receiver
    // that has only the old one to take the new one.
    let target = Target {
        url: &endpoint.url,
        secret: &endpoint.secret,
        previous: None,
        scheme: endpoint.scheme,
        organization: &org.id,
    };
    let report = check::run(&state.sender, &target).await?;
    tracing::info!(
        organization_id = %org.id,
        endpoint_id = %endpoint.id,
        passed = report.passed,
        failed = report.fail,
        "receiver check run"
    );
    Ok(Json(report))
}
