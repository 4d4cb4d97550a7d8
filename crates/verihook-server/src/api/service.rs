//! The operations the handlers and `serve --dev` share, written once: what creating an
//! organization, setting its webhook URL or deciding a customer's status takes beyond a
//! single store call. Handlers parse requests and render answers; this does the work.

use super::error::ApiError;
use verihook_core::{
    ApiKey, Customer, CustomerChange, CustomerId, CustomerStatus, Mode, Organization,
    OrganizationId, Timestamp, TransitionPolicy, WebhookSecret, WebhookUrl,
};
use verihook_store::{AnswerWithChange, Mutation, NewApiKey, Scope, Storage, WebhookSet};

/// Creates an organization with a fresh API key (shown once: only its digest is stored).
pub async fn create_organization(
    store: &Storage,
    name: &str,
    mode: Mode,
) -> Result<(Organization, ApiKey), ApiError> {
    let org = Organization::new(name, mode, Timestamp::now())
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    let key = ApiKey::generate();
    store
        .organizations
        .create_organization(&org, &NewApiKey::of(&key, org.created_at))
        .await?;
    Ok((org, key))
}

/// Sets the organization's webhook URL; its secret is generated on first configuration.
pub async fn set_webhook_url(
    store: &Storage,
    id: &OrganizationId,
    url: &WebhookUrl,
) -> Result<WebhookSet, ApiError> {
    store
        .organizations
        .set_webhook_url(id, url, WebhookSecret::generate())
        .await
        .map_err(|e| ApiError::from_store(e, "organization"))
}

/// A status decision: where to, why, under which rules.
pub struct Decision {
    pub to: CustomerStatus,
    pub reason: Option<String>,
    pub policy: TransitionPolicy,
}

/// Moves the customer as `decision` says if its policy allows it, storing its events (and
/// an idempotent request's `answer`) with it.
pub async fn change_status(
    store: &Storage,
    scope: Scope<'_>,
    id: &CustomerId,
    decision: Decision,
    answer: Option<AnswerWithChange>,
) -> Result<CustomerChange, ApiError> {
    let now = Timestamp::now();
    let Decision { to, reason, policy } = decision;
    let mutation: Mutation = Box::new(move |c: &Customer| c.change_status(to, reason, policy, now));
    store
        .customers
        .modify_customer_answering(scope, id, mutation, answer)
        .await
        .map_err(|e| ApiError::from_store(e, "customer"))
}
