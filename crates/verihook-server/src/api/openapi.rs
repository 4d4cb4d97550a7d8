//! The OpenAPI 3.1 document, generated from the handlers' own annotations (utoipa): every
//! route is registered through `utoipa_axum::routes!`, which adds it to the router and to
//! the document together, so the two cannot drift apart.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "verihook",
        description = "Customers and their verification status, and the signed webhooks \
            each change sends (see the README and CONTRACT for the webhook format). \
            Errors answer `{\"error\":{\"code\",\"message\",\"field\"?}}`. \
            Every `/v1` call is rate limited per organization (429 with `Retry-After`; \
            `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` on every answer); \
            every `POST` and `PATCH` takes an `Idempotency-Key`.",
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

/// What the gate in front of every `/v1` operation may answer (see [`super::gate`]): 429
/// on any, and on `POST`/`PATCH` the `Idempotency-Key` header with its 400, 409 and 422.
/// Applied to the document once every route is in it ([`super::documented_routes`]).
pub struct CallerAnswers;

impl Modify for CallerAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in [&mut item.get, &mut item.put, &mut item.delete]
                .into_iter()
                .flatten()
            {
                add_answer(
                    op,
                    "429",
                    "Over the rate limit; retry after `Retry-After` seconds",
                );
            }
            for op in [&mut item.post, &mut item.patch].into_iter().flatten() {
                add_answer(
                    op,
                    "429",
                    "Over the rate limit; retry after `Retry-After` seconds",
                );
                add_answer(
                    op,
                    "400",
                    "Malformed request, or a malformed `Idempotency-Key`",
                );
                add_answer(
                    op,
                    "409",
                    "A request with this `Idempotency-Key` is running",
                );
                add_answer(
                    op,
                    "422",
                    "This `Idempotency-Key` was used with another request",
                );
                op.parameters
                    .get_or_insert_with(Vec::new)
                    .push(RefOr::T(idempotency_key()));
            }
        }
    }
}

fn add_answer(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", body)
                    .build(),
            )
        });
}

fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "1–255 visible ASCII characters: a repeat within 24 h answers the first answer \
             again, with `Idempotent-Replayed: true`",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[\\x21-\\x7e]+$")),
        ))
        .build()
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
