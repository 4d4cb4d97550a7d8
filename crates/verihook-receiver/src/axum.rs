//! axum integration: [`VerifiedEvent`] verifies the request it is extracted from and hands
//! the handler a typed event; anything unverified is answered 401 (400 for a verified body
//! that is not an event) before the handler runs.
//!
//! The [`Verifier`] comes from the router's state through `FromRef`:
//!
//! ```no_run
//! use axum::{extract::FromRef, http::StatusCode, routing::post, Router};
//! use verihook_receiver::{axum::VerifiedEvent, Verifier};
//!
//! #[derive(Clone)]
//! struct AppState { verifier: Verifier }
//!
//! impl FromRef<AppState> for Verifier {
//!     fn from_ref(state: &AppState) -> Verifier { state.verifier.clone() }
//! }
//!
//! async fn webhook(VerifiedEvent(event): VerifiedEvent) -> StatusCode {
//!     println!("{} {:?}", event.event_type(), event.event_id());
//!     StatusCode::OK
//! }
//!
//! let app: Router = Router::new()
//!     .route("/webhooks/verification", post(webhook))
//!     .with_state(AppState { verifier: Verifier::new("whsec_...") });
//! ```

use crate::verifier::now_unix;
use crate::{Event, Verifier, VerifyError};
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// A request whose signature and timestamp were verified, as its typed event.
#[derive(Debug, Clone)]
pub struct VerifiedEvent(pub Event);

/// The request's `X-Webhook-Sequence` (`None` when absent or not a number): take it
/// beside [`VerifiedEvent`] and ask [`crate::sequence`] whether the event is the latest.
#[derive(Debug, Clone, Copy)]
pub struct Sequence(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for Sequence {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = header(&parts.headers, crate::headers::SEQUENCE);
        Ok(Sequence(value.and_then(crate::sequence::parse)))
    }
}

/// Why a request was refused.
#[derive(Debug)]
pub struct Rejection(pub VerifyError);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = match self.0 {
            VerifyError::BadJson(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        let body = serde_json::json!({ "error": self.0.to_string() });
        (status, Json(body)).into_response()
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl<S> FromRequest<S> for VerifiedEvent
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let verifier = Verifier::from_ref(state);
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        // The verifier's scheme says which headers carry the signature.
        verifier
            .verify_request_at(now_unix(), |name| header(&headers, name), &body)
            .map(VerifiedEvent)
            .map_err(|e| Rejection(e).into_response())
    }
}
