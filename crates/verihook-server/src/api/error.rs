//! The API's one error type, rendered as the contract's body:
//! `{"error":{"code":"…","message":"…","field":"…"}}`. Every failure of a lower layer is
//! mapped to a status here, once; internal details are logged, never returned.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use verihook_core::{DomainError, TransitionError};
use verihook_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into()).filter(|f: &String| !f.is_empty());
        self
    }

    /// Malformed JSON or a value of the wrong type.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }

    /// Well-formed, but a value is not acceptable.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with_field(field)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than 1 MiB",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request body must be sent with Content-Type: application/json",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this path does not accept that method",
        )
    }

    /// The request is valid but the resource is not in a state to serve it.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// Too many requests of one kind at once: retry in a second.
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    /// With `Retry-After: seconds`.
    pub fn retrying_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// An `Idempotency-Key` sent again with another method, path or body.
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with another method, path or body",
        )
        .with_field("Idempotency-Key")
    }

    /// An `Idempotency-Key` whose first request is still running.
    pub fn idempotency_key_in_use() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still being processed; retry shortly",
        )
        .with_field("Idempotency-Key")
    }

    /// Deliveries lag behind what the API accepted: retry in a second.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
        }
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }

    /// A store error, where a missing record is a `what`.
    pub fn from_store(error: StoreError, what: &str) -> Self {
        match error {
            StoreError::NotFound => Self::not_found(what),
            other => other.into(),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Validation(v) => Self::invalid(v.field, v.message),
            DomainError::Transition(t) => {
                let code = match t {
                    TransitionError::Unchanged(_) => "status_unchanged",
                    TransitionError::NotAllowed { .. } => "invalid_transition",
                    TransitionError::DataIncomplete => "data_incomplete",
                };
                Self::new(StatusCode::CONFLICT, code, t.to_string()).with_field("status")
            }
            DomainError::Render(message) => {
                tracing::error!(error = %message, "rendering an event body failed");
                Self::internal()
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::not_found("resource"),
            StoreError::UnknownCursor => Self::invalid("after", error.to_string()),
            StoreError::LimitReached(_) => {
                Self::conflict("endpoint_limit_reached", error.to_string())
            }
            StoreError::Domain(e) => e.into(),
            StoreError::WriterStopped => {
                Self::unavailable("the database is unavailable; nothing was written, retry")
            }
            e if e.is_storage_full() => {
                tracing::error!(error = %e, "the database's disk is full");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_full",
                    "the database's disk is full: nothing was written; retry after \
                     Retry-After seconds (the operator has been told in the log)"
                        .to_owned(),
                )
                .retrying_after(5)
            }
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                Self::unavailable(
                    "the database did not answer in time; retry (with the same \
                     Idempotency-Key, a change that did happen is not made twice)",
                )
                .retrying_after(1)
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::internal()
            }
        }
    }
}

/// Every error answer: `{"error":{"code","message","field"?}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable, machine-readable: `validation_failed`, `invalid_transition`, `not_found`, …
    #[schema(example = "validation_failed")]
    code: &'a str,
    /// For people; may change.
    message: &'a str,
    /// The request field that is wrong, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "email")]
    field: Option<&'a str>,
}

impl ApiError {
    fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        }
    }

    /// The answer's status and body, as an idempotent request keeps an answer.
    pub fn stored(&self) -> verihook_store::StoredAnswer {
        verihook_store::StoredAnswer {
            status: self.status.as_u16(),
            body: serde_json::to_string(&self.body()).unwrap_or_default(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
