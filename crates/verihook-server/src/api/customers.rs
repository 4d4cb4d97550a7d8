//! Customers: create, read, list, update; and status decisions by the verification team
//! (admin, following the workflow) and by sandbox organizations (forced).

use super::error::ApiError;
use super::extract::{parse_limit, parse_param, AdminAuth, JsonBody, OrgAuth, QueryParams};
use super::views::{CustomerView, PageView};
use super::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use verihook_core::customer::{parse_reason, CustomerPatchInput, NewCustomerInput};
use verihook_core::{
    Customer, CustomerId, CustomerPatch, CustomerStatus, Mode, NewCustomer, Timestamp,
    TransitionPolicy,
};
use verihook_store::{Mutation, PageRequest, Scope};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", post(create).get(list))
        .route("/v1/customers/{id}", get(show).patch(update))
        .route("/v1/sandbox/customers/{id}/status", post(sandbox_status))
        .route("/v1/admin/customers/{id}/status", post(admin_status))
}

fn customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(raw).map_err(|_| ApiError::not_found("customer"))
}

fn respond(status: StatusCode, customer: &Customer) -> Response {
    (status, Json(CustomerView::of(customer))).into_response()
}

/// `POST /v1/customers` → 201, with `customer.created` in the same transaction.
async fn create(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<NewCustomerInput>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    let new = NewCustomer::parse(&input, now.date())
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    let change = Customer::create(org.id, new, now);
    let customer = change.customer.clone();
    state.store.insert_customer(change).await?;
    Ok(respond(StatusCode::CREATED, &customer))
}

async fn show(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&id)?;
    let customer = state
        .store
        .customer(Scope::Organization(&org.id), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(respond(StatusCode::OK, &customer))
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// `GET /v1/customers?status=&limit=&after=`: newest first, in cursor pages.
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
        .list_customers(&org.id, status, PageRequest { limit, after })
        .await?;
    let view = PageView::of(&page, CustomerView::of, |c| c.id.to_string());
    Ok(Json(view).into_response())
}

/// `PATCH /v1/customers/{id}`: a partial update (`customer.updated`); completing
/// dateOfBirth and address moves a customer awaiting data to UNDER_REVIEW.
async fn update(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<CustomerPatchInput>,
) -> Result<Response, ApiError> {
    let id = customer_id(&id)?;
    let now = Timestamp::now();
    let patch = CustomerPatch::parse(&input, now.date())
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    let mutation: Mutation = Box::new(move |c: &Customer| c.apply_patch(&patch, now));
    let change = state
        .store
        .modify_customer(Scope::Organization(&org.id), &id, mutation)
        .await
        .map_err(|e| ApiError::from_store(e, "customer"))?;
    Ok(respond(StatusCode::OK, &change.customer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusInput {
    status: Option<String>,
    reason: Option<String>,
}

/// Applies a status decision under `policy`; 409 and nothing written if it is refused.
async fn decide(
    state: &AppState,
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
    let now = Timestamp::now();
    let mutation: Mutation = Box::new(move |c: &Customer| c.change_status(to, reason, policy, now));
    let change = state
        .store
        .modify_customer(scope, &id, mutation)
        .await
        .map_err(|e| ApiError::from_store(e, "customer"))?;
    Ok(respond(StatusCode::OK, &change.customer))
}

/// `POST /v1/sandbox/customers/{id}/status`: sandbox organizations force any status.
async fn sandbox_status(
    OrgAuth(org): OrgAuth,
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
        Scope::Organization(&org.id),
        &id,
        input,
        TransitionPolicy::Sandbox,
    )
    .await
}

/// `POST /v1/admin/customers/{id}/status`: the verification team's decision on any
/// organization's customer, following the workflow.
async fn admin_status(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<StatusInput>,
) -> Result<Response, ApiError> {
    decide(&state, Scope::All, &id, input, TransitionPolicy::Workflow).await
}
