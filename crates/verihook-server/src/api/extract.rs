//! Request extractors: JSON bodies with precise errors, bearer authentication, and the
//! page parameters shared by every listing.

use super::error::ApiError;
use super::gate::Caller;
use super::AppState;
use crate::admission::Permit;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use verihook_core::{ApiKey, Organization};

/// A JSON body: 415 without `Content-Type: application/json`, 413 over the body limit,
/// 400 naming the field when the JSON is malformed or a value has the wrong type.
pub struct JsonBody<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .rsplit_once('+')
            .is_some_and(|(ty, suffix)| ty.starts_with("application/") && suffix == "json")
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        parse_json(&read_body(req, state).await?).map(JsonBody)
    }
}

/// The whole body: 413 over the body limit.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::malformed(rejection.body_text())
        }
    })
}

/// A JSON body that may be left out: `None` for an empty body (with any content type),
/// else as [`JsonBody`].
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        if !json {
            return Err(ApiError::unsupported_media_type());
        }
        parse_json(&bytes).map(|v| Self(Some(v)))
    }
}

/// Deserializes `bytes`, naming the path of the value that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // The path names the failing value, an unknown field included; `.` and `?` are
        // the document itself.
        let path = e.path().to_string();
        let field = if path == "." || path == "?" {
            String::new()
        } else {
            path
        };
        let inner = e.into_inner();
        let message = inner.to_string();
        let message = if inner.is_eof() && bytes.iter().all(u8::is_ascii_whitespace) {
            "request body must be a JSON object".to_owned()
        } else {
            message
        };
        ApiError::malformed(message).with_field(field)
    })?;
    de.end()
        .map_err(|_| ApiError::malformed("unexpected data after the JSON value"))?;
    Ok(value)
}

/// The token of an `Authorization: Bearer <token>` header (the gate reads it too).
pub(super) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token> header"))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "Authorization header must be `Bearer <token>`",
        )),
    }
}

/// The organization whose API key authenticated the request.
pub struct OrgAuth(pub Organization);

impl FromRequestParts<AppState> for OrgAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(Caller::Organization(org)) = parts.extensions.get::<Caller>() {
            return Ok(OrgAuth(org.clone()));
        }
        let digest = ApiKey::digest(bearer(&parts.headers)?);
        state
            .auth
            .organization(&*state.store.organizations, digest)
            .await?
            .map(OrgAuth)
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))
    }
}

/// A change that adds events, let in: slowed while deliveries fall behind, refused with
/// 503 and `Retry-After` while they lag beyond `--max-lag` (see [`crate::admission`]),
/// before anything is read or written. Held by the handler until it answers: it is the
/// change's place under the pacing limit.
pub struct Admitted {
    _permit: Option<Permit>,
}

impl FromRequestParts<AppState> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .admission
            .admit()
            .await
            .map(|p| Admitted { _permit: p })
            .map_err(|o| {
                ApiError::overloaded(format!(
                    "deliveries are {} ms behind (the limit is {} ms); nothing was written, retry \
                 after the Retry-After seconds",
                    o.lag.as_millis(),
                    o.max_lag.as_millis()
                ))
            })
    }
}

/// The account manager, authenticated by the admin token.
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(Caller::Admin) = parts.extensions.get::<Caller>() {
            return Ok(AdminAuth);
        }
        let token = bearer(&parts.headers)?;
        if state.auth.is_admin(token)? {
            Ok(AdminAuth)
        } else {
            Err(ApiError::unauthorized("invalid admin token"))
        }
    }
}

/// `limit` (1 to 100, default 20) of a listing.
pub fn parse_limit(value: Option<&str>) -> Result<u32, ApiError> {
    let Some(value) = value else {
        return Ok(20);
    };
    let limit: u32 = value
        .parse()
        .map_err(|_| ApiError::malformed("limit must be a whole number").with_field("limit"))?;
    if (1..=100).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid("limit", "must be between 1 and 100"))
    }
}

/// Parses an optional query value, or reports it as invalid under `field`.
pub fn parse_param<T, E>(
    value: Option<&str>,
    field: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
    message: &str,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| parse(v).map_err(|_| ApiError::invalid(field, message)))
        .transpose()
}

/// Query parameters; a malformed query string answers 400 in the contract's error body.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(params)| QueryParams(params))
            .map_err(|rejection| ApiError::malformed(rejection.body_text()))
    }
}
