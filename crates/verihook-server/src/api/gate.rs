//! What every `/v1` request passes before its handler (CONTRACT §8): who is calling, their
//! rate limit (with the `RateLimit-*` headers on every answer), and, for a `POST` or
//! `PATCH` with an `Idempotency-Key`, the replay of an earlier answer.
//!
//! Idempotency: the key is taken in the database before the handler runs (so a duplicate
//! on any node sees it), and the answer stored when it ends. An event-producing change
//! stores its answer in its own transaction ([`Idempotent::answer_with_change`]), so no
//! crash between the commit and the answer can make a replay run the change twice.

use super::error::ApiError;
use super::extract::bearer;
use super::rate_limit::Decision;
use super::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use verihook_core::{ApiKey, CustomerChange, Organization, Timestamp};
use verihook_store::{AnswerWithChange, Begun, IdempotencyKey, StoredAnswer};

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long a running request holds its key; past it, the key of a request whose node
/// died is taken over. Longer than any request may run.
const HOLD: Duration = Duration::from_secs(60);
/// How long an answer is kept for replay.
pub const KEEP_ANSWERS: Duration = Duration::from_secs(24 * 3600);

/// Who sent the request, as its `Authorization` header says.
#[derive(Clone)]
pub enum Caller {
    Admin,
    Organization(Organization),
    /// No credentials, or ones that match nothing: the handler answers 401.
    Unknown,
}

impl Caller {
    async fn of(headers: &HeaderMap, state: &AppState) -> Self {
        let Ok(token) = bearer(headers) else {
            return Self::Unknown;
        };
        if state.auth.matches_admin(token) {
            return Self::Admin;
        }
        let digest = ApiKey::digest(token);
        match state
            .auth
            .organization(&*state.store.organizations, digest)
            .await
        {
            Ok(Some(org)) => Self::Organization(org),
            // A database that cannot answer is the handler's to report.
            Ok(None) | Err(_) => Self::Unknown,
        }
    }

    /// The scope of its rate limit and idempotency keys.
    fn scope(&self) -> Option<&str> {
        match self {
            Self::Admin => Some("admin"),
            Self::Organization(org) => Some(org.id.as_str()),
            Self::Unknown => None,
        }
    }
}

pub async fn gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let caller = Caller::of(request.headers(), &state).await;
    let decision = match &caller {
        Caller::Admin => state.admin_rate_limit.check("admin"),
        Caller::Organization(org) => state.rate_limit.check(org.id.as_str()),
        Caller::Unknown => state.rate_limit.untouched(),
    };
    let mut response = if decision.is_some_and(|d| !d.allowed) {
        refused(decision)
    } else {
        let scope = caller.scope().map(str::to_owned);
        request.extensions_mut().insert(caller);
        match scope {
            Some(scope) if is_idempotent_kind(&request) => {
                idempotent(&state, scope, request, next).await
            }
            _ => next.run(request).await,
        }
    };
    if let Some(d) = decision {
        rate_limit_headers(response.headers_mut(), d);
    }
    response
}

fn refused(decision: Option<Decision>) -> Response {
    let retry_after = decision.map_or(1, |d| d.retry_after);
    ApiError::rate_limited("too many requests; retry after the Retry-After seconds")
        .retrying_after(retry_after)
        .into_response()
}

fn rate_limit_headers(headers: &mut HeaderMap, d: Decision) {
    for (name, value) in [
        ("ratelimit-limit", d.limit),
        ("ratelimit-remaining", d.remaining),
        ("ratelimit-reset", d.reset),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

fn is_idempotent_kind(request: &Request) -> bool {
    matches!(*request.method(), Method::POST | Method::PATCH)
        && request.headers().contains_key(IDEMPOTENCY_KEY)
}

/// 1 to 255 visible ASCII characters.
fn parse_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::malformed("Idempotency-Key must be 1 to 255 visible ASCII characters")
            .with_field("Idempotency-Key")
    };
    let value = headers.get(IDEMPOTENCY_KEY).ok_or_else(invalid)?.as_bytes();
    let visible = |b: &u8| (0x21..=0x7e).contains(b);
    if value.is_empty() || value.len() > 255 || !value.iter().all(visible) {
        return Err(invalid());
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

/// Method, path (with query) and body, hashed: what a replay must repeat exactly.
fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [method.as_str().as_bytes(), path.as_bytes(), body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

async fn idempotent(state: &AppState, scope: String, request: Request, next: Next) -> Response {
    match run_idempotent(state, scope, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run_idempotent(
    state: &AppState,
    scope: String,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let key = parse_key(request.headers()).map_err(IntoResponse::into_response)?;
    let key = IdempotencyKey { scope, key };
    let (mut parts, body) = request.into_parts();
    let body = to_bytes(body, super::BODY_LIMIT)
        .await
        .map_err(|_| ApiError::payload_too_large().into_response())?;
    let path = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let fingerprint = fingerprint(&parts.method, path, &body);
    let now = Timestamp::now();
    let begun = state
        .store
        .idempotency
        .begin(
            &key,
            &fingerprint,
            now,
            now.saturating_add(HOLD),
            now.saturating_sub(KEEP_ANSWERS),
        )
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    match begun {
        Begun::Replay(answer) => return Ok(replay(answer)),
        Begun::Reused => return Err(ApiError::idempotency_key_reused().into_response()),
        Begun::InUse => return Err(ApiError::idempotency_key_in_use().into_response()),
        Begun::Started => {}
    }
    let hold = Arc::new(Hold {
        key: key.clone(),
        offered: AtomicBool::new(false),
    });
    parts.extensions.insert(Idempotent(Some(hold.clone())));
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    Ok(conclude(state, &hold, response).await)
}

/// Stores the answer for replay, or lets the key go where the contract keeps none.
async fn conclude(state: &AppState, hold: &Hold, response: Response) -> Response {
    let status = response.status();
    if status.is_success() && hold.offered.load(Ordering::Acquire) {
        return response; // stored with the change
    }
    let kept = status.is_success()
        || (status.is_client_error()
            && status != StatusCode::CONFLICT
            && status != StatusCode::TOO_MANY_REQUESTS);
    if !kept {
        if let Err(e) = state.store.idempotency.abandon(&hold.key).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let answer = StoredAnswer {
        status: status.as_u16(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    if let Err(e) = state.store.idempotency.finish(&hold.key, answer).await {
        tracing::error!(error = %e, "could not store an idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body.clone()).into_response();
    let headers = response.headers_mut();
    if !answer.body.is_empty() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

struct Hold {
    key: IdempotencyKey,
    /// A handler passed the answer to its change's transaction.
    offered: AtomicBool,
}

/// A handler's hold on the request's `Idempotency-Key`, if it came with one.
#[derive(Clone, Default)]
pub struct Idempotent(Option<Arc<Hold>>);

impl Idempotent {
    /// The answer `status` with the body `render` makes of the change, to be stored in the
    /// change's transaction; `None` without a key. The handler must answer exactly that.
    pub fn answer_with_change(
        &self,
        status: StatusCode,
        render: impl FnOnce(&CustomerChange) -> String + Send + 'static,
    ) -> Option<AnswerWithChange> {
        let hold = self.0.as_ref()?;
        hold.offered.store(true, Ordering::Release);
        Some(AnswerWithChange {
            key: hold.key.clone(),
            status: status.as_u16(),
            render: Box::new(render),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Idempotent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}

/// Removes answers older than [`KEEP_ANSWERS`] until `stop`, a small batch at a time so
/// that the purge never holds the writer long.
pub async fn purge_answers(
    idempotency: Arc<dyn verihook_store::Idempotency>,
    stop: CancellationToken,
) {
    const EVERY: Duration = Duration::from_secs(300);
    const BATCH: u32 = 500;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        let before = Timestamp::now().saturating_sub(KEEP_ANSWERS);
        loop {
            match idempotency.purge(before, BATCH).await {
                Ok(n) if n == u64::from(BATCH) && !stop.is_cancelled() => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "could not purge expired idempotency records");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(IDEMPOTENCY_KEY, HeaderValue::from_str(v).expect("header"));
            parse_key(&h)
        };
        assert_eq!(with("order-42_a.b").ok().as_deref(), Some("order-42_a.b"));
        assert!(with(&"k".repeat(255)).is_ok());
        assert!(with(&"k".repeat(256)).is_err());
        assert!(with("has space").is_err());
        assert!(with("").is_err());
    }

    #[test]
    fn the_fingerprint_separates_its_parts() {
        let a = fingerprint(&Method::POST, "/v1/a", b"bc");
        let b = fingerprint(&Method::POST, "/v1/ab", b"c");
        assert_ne!(a, b);
        assert_eq!(a, fingerprint(&Method::POST, "/v1/a", b"bc"));
    }
}
