//! The OpenAPI 3.1 document, generated from the handlers' own annotations (utoipa): every
//! route is registered through `utoipa_axum::routes!`, which adds it to the router and to
//! the document together, so the two cannot drift apart.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "verihook",
        description = "Customers and their verification status, and the signed webhooks \
            each change sends (see the README and CONTRACT for the webhook format). \
            Errors answer `{\"error\":{\"code\",\"message\",\"field\"?}}`. \
            Rate limiting (429) is not enforced yet.",
    ),
    modifiers(&BearerSchemes),
    tags(
        (name = "customers", description = "An organization's customers and their data"),
        (name = "sandbox", description = "Sandbox organizations force statuses"),
        (name = "events", description = "The event log: bodies as sent, delivery status, attempts"),
        (name = "webhook", description = "The organization's webhook URL (its default endpoint), and test events"),
        (name = "endpoints", description = "Several URLs per organization, each with its event-type filter, secret, signature scheme and retry schedule"),
        (name = "admin", description = "The account manager and the verification team"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "organizationKey",
            bearer("The organization's API key (`vhk_…`)"),
        );
        components.add_security_scheme(
            "adminToken",
            bearer("The admin token given to `verihook serve --admin-token`"),
        );
    }
}

/// The document, rendered once at start (cheap to clone into each response).
#[derive(Clone)]
pub struct Rendered(pub Bytes);

impl Rendered {
    pub fn of(doc: &utoipa::openapi::OpenApi) -> Self {
        let json = doc.to_pretty_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "rendering the OpenAPI document failed");
            "{}".to_owned()
        });
        Self(Bytes::from(json))
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json(Extension(doc): Extension<Rendered>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.0).into_response()
}
