//! Customers: create, read, list, update; and status decisions by the verification team
//! (admin, following the workflow) and by sandbox organizations (forced).

use super::error::{ApiError, ErrorBody};
use super::extract::{bearer, parse_limit, parse_param, Admitted, JsonBody, OrgAuth, QueryParams};
use super::gate::Idempotent;
use super::input::{customer_patch, new_customer, CustomerInput};
use super::views::{CustomerView, PageView};
use super::{schemas, service, AppState};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::borrow::Cow;
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::customer::parse_reason;
use verihook_core::{
    ApiKey, Customer, CustomerId, CustomerStatus, Mode, Timestamp, TransitionPolicy,
};
use verihook_store::{AnswerWithChange, Eraser, Erasure, Mutation, PageRequest, Scope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, erase))
        .routes(routes!(sandbox_status))
}

/// `POST /v1/customers`'s body as documented: [`CustomerInput`] with the fields a new
/// customer needs marked required. The body is parsed as `CustomerInput` (everything
/// optional) so that a missing field answers 422 naming it.
struct NewCustomerBody;

impl utoipa::PartialSchema for NewCustomerBody {
    fn schema() -> RefOr<Schema> {
        let mut schema = CustomerInput::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.required = ["type", "email", "firstName", "lastName"]
                .map(String::from)
                .into();
        }
        schema
    }
}

impl ToSchema for NewCustomerBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NewCustomer")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <CustomerInput as ToSchema>::schemas(schemas);
    }
}

pub(super) fn customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(raw).map_err(|_| ApiError::not_found("customer"))
}

fn respond(status: StatusCode, customer: &Customer) -> Response {
    (status, Json(CustomerView::of(customer))).into_response()
}

/// The answer of a change to `status` with the customer, as an idempotent request stores
/// it in the change's transaction (byte for byte what [`respond`] sends).
fn answer(idempotent: &Idempotent, status: StatusCode) -> Option<AnswerWithChange> {
    idempotent.answer_with_change(status, |change| {
        serde_json::to_string(&CustomerView::of(&change.customer)).unwrap_or_default()
    })
}

/// `POST /v1/customers` → 201, with `customer.created` in the same transaction.
#[utoipa::path(post, path = "/v1/customers", tag = "customers",
    security(("organizationKey" = [])),
    request_body = NewCustomerBody,
    responses(
        (status = 201, description = "Created in status CREATED; emits customer.created", body = CustomerView),
        (status = 400, description = "Malformed JSON, a wrong type or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A value is missing or not acceptable; `field` names it", body = ErrorBody),
        (status = 503, description = "Overloaded: deliveries lag beyond `--max-lag`; nothing was written, retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn create(
    OrgAuth(org): OrgAuth,
    _admitted: Admitted,
    idempotent: Idempotent,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<CustomerInput>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    let new =
        new_customer(&input, now.date()).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let change = Customer::create(org.id, new, now)?;
    let (customer, events) = (change.customer.clone(), change.events.len());
    let answer = answer(&idempotent, StatusCode::CREATED);
    state
        .store
        .customers
        .insert_customer_answering(change, answer)
        .await?;
    state.metrics.accepted(events);
    Ok(respond(StatusCode::CREATED, &customer))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    security(("organizationKey" = [])),
    params(("id" = String, Path, description = "A customer id (`cus_…`)")),
    responses(
        (status = 200, body = CustomerView),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such customer in this organization", body = ErrorBody),
    ))]
async fn show(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&id)?;
    let customer = state
        .store
        .customers
        .customer(Scope::Organization(&org.id), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(respond(StatusCode::OK, &customer))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Only customers in this status.
    #[param(schema_with = schemas::customer_status)]
    status: Option<String>,
    /// 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `nextCursor` of the previous page: a customer of this organization.
    #[param(pattern = "^cus_[0-9a-z]{24}$")]
    after: Option<String>,
}

/// `GET /v1/customers?status=&limit=&after=`: newest first, in cursor pages.
#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    security(("organizationKey" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "Newest first", body = PageView<CustomerView>),
        (status = 400, description = "A malformed query string", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 422, description = "An unknown status, a bad limit or cursor", body = ErrorBody),
    ))]
async fn list(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Response, ApiError> {
    let status = parse_param(
        params.status.as_deref(),
        "status",
        CustomerStatus::parse,
        "unknown status",
    )?;
    let after = parse_param(
        params.after.as_deref(),
        "after",
        CustomerId::parse,
        "not a customer id",
    )?;
    let limit = parse_limit(params.limit.as_deref())?;
    let page = state
        .store
        .customers
        .list_customers(&org.id, status, PageRequest { limit, after })
        .await?;
    let view = PageView::of(&page, CustomerView::of, |c| c.id.to_string());
    Ok(Json(view).into_response())
}

/// `DELETE /v1/customers/{id}` → 204: the right to erasure (CONTRACT §11).
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    security(("organizationKey" = [])),
    params(("id" = String, Path, description = "A customer id (`cus_…`)")),
    responses(
        (status = 204, description = "Erased: the customer's email, names, date of birth, address and status reason are gone from its record and from every stored body of its events (those fields are now null; pending deliveries send the erased bodies); emits customer.deleted; the customer answers 404 from now on"),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such customer in this organization (or erased already)", body = ErrorBody),
        (status = 503, description = "Overloaded: deliveries lag beyond `--max-lag`; nothing was written, retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn erase(
    OrgAuth(org): OrgAuth,
    _admitted: Admitted,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&id)?;
    let by = Eraser::ApiKey(ApiKey::digest(bearer(&headers)?));
    erase_customer(&state, Scope::Organization(&org.id), &id, by).await
}

/// Erases the customer in `scope`, recording `by` in the audit trail.
pub(super) async fn erase_customer(
    state: &AppState,
    scope: Scope<'_>,
    id: &CustomerId,
    by: Eraser,
) -> Result<Response, ApiError> {
    let erasure = Erasure {
        by,
        at: Timestamp::now(),
        // A replay of a request that showed the customer can no longer show them.
        replay_answer: ApiError::not_found("customer").stored(),
    };
    state
        .store
        .erasures
        .erase_customer(scope, id, erasure)
        .await?;
    state.metrics.accepted(1);
    state.metrics.erased();
    tracing::info!(customer_id = %id, "customer erased");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PATCH /v1/customers/{id}`: a partial update (`customer.updated`); completing
/// dateOfBirth and address moves a customer awaiting data to UNDER_REVIEW.
#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers",
    security(("organizationKey" = [])),
    params(("id" = String, Path, description = "A customer id (`cus_…`)")),
    request_body(content = CustomerInput,
        description = "Any of the fields; those given replace the stored ones (address parts merge). `type` cannot change."),
    responses(
        (status = 200, description = "Updated; emits customer.updated (and the status events of a move to UNDER_REVIEW)", body = CustomerView),
        (status = 400, description = "Malformed JSON, a wrong type or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such customer in this organization", body = ErrorBody),
        (status = 409, description = "The change is not allowed in the customer's status", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "A value is not acceptable; `field` names it", body = ErrorBody),
        (status = 503, description = "Overloaded: deliveries lag beyond `--max-lag`; nothing was written, retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn update(
    OrgAuth(org): OrgAuth,
    _admitted: Admitted,
    idempotent: Idempotent,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<CustomerInput>,
) -> Result<Response, ApiError> {
    let id = customer_id(&id)?;
    let now = Timestamp::now();
    let patch =
        customer_patch(&input, now.date()).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let mutation: Mutation = Box::new(move |c: &Customer| c.apply_patch(&patch, now));
    let change = state
        .store
        .customers
        .modify_customer_answering(
            Scope::Organization(&org.id),
            &id,
            mutation,
            answer(&idempotent, StatusCode::OK),
        )
        .await
        .map_err(|e| ApiError::from_store(e, "customer"))?;
    state.metrics.accepted(change.events.len());
    Ok(respond(StatusCode::OK, &change.customer))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusInput {
    /// The status to move to.
    #[schema(
        example = "ACTIVE",
        required = true,
        nullable = false,
        schema_with = schemas::customer_status
    )]
    status: Option<String>,
    /// Why; sent in `verification.rfi_required` for NEEDS_ADDITIONAL_INFORMATION.
    #[schema(nullable = false)]
    reason: Option<String>,
}

/// Applies a status decision under `policy`; 409 and nothing written if it is refused.
pub(super) async fn decide(
    state: &AppState,
    idempotent: &Idempotent,
    scope: Scope<'_>,
    id: &str,
    input: StatusInput,
    policy: TransitionPolicy,
) -> Result<Response, ApiError> {
    let id = customer_id(id)?;
    let raw_status = input
        .status
        .as_deref()
        .ok_or_else(|| ApiError::invalid("status", "is required"))?;
    let to = CustomerStatus::parse(raw_status)
        .map_err(|e| ApiError::invalid("status", e.to_string()))?;
    let reason =
        parse_reason(input.reason.as_deref()).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let decision = service::Decision { to, reason, policy };
    let answer = answer(idempotent, StatusCode::OK);
    let change = service::change_status(&state.store, scope, &id, decision, answer).await?;
    state.metrics.accepted(change.events.len());
    Ok(respond(StatusCode::OK, &change.customer))
}

/// `POST /v1/sandbox/customers/{id}/status`: sandbox organizations force any status.
#[utoipa::path(post, path = "/v1/sandbox/customers/{id}/status", tag = "sandbox",
    security(("organizationKey" = [])),
    params(("id" = String, Path, description = "A customer id (`cus_…`)")),
    request_body = StatusInput,
    responses(
        (status = 200, description = "Changed; emits the status events", body = CustomerView),
        (status = 400, description = "Malformed JSON, a wrong type or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 403, description = "A live organization", body = ErrorBody),
        (status = 404, description = "No such customer in this organization", body = ErrorBody),
        (status = 409, description = "Already in that status", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "An unknown status or a bad reason", body = ErrorBody),
        (status = 503, description = "Overloaded: deliveries lag beyond `--max-lag`; nothing was written, retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn sandbox_status(
    OrgAuth(org): OrgAuth,
    _admitted: Admitted,
    idempotent: Idempotent,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<StatusInput>,
) -> Result<Response, ApiError> {
    if org.mode != Mode::Sandbox {
        return Err(ApiError::forbidden(
            "statuses can be forced only by sandbox organizations",
        ));
    }
    decide(
        &state,
        &idempotent,
        Scope::Organization(&org.id),
        &id,
        input,
        TransitionPolicy::Sandbox,
    )
    .await
}
