//! `/dashboard`: a plain page over the public API (log in with the organization's API key),
//! served from the binary. No build step, no third-party script; a strict Content Security
//! Policy allows only these files to run.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/dashboard",
            get(|| {
                file(
                    include_str!("dashboard/index.html"),
                    "text/html; charset=utf-8",
                )
            }),
        )
        .route(
            "/dashboard/app.js",
            get(|| {
                file(
                    include_str!("dashboard/app.js"),
                    "text/javascript; charset=utf-8",
                )
            }),
        )
        .route(
            "/dashboard/app.css",
            get(|| file(include_str!("dashboard/app.css"), "text/css; charset=utf-8")),
        )
}

async fn file(body: &'static str, kind: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
