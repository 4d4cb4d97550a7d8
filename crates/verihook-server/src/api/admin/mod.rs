//! The operator's API under `/v1/admin`, every route behind the admin token: the account
//! manager's organizations and their webhook, events across organizations, and the
//! verification team's status decisions.

mod api_keys;
mod customers;
mod events;
mod organizations;

use super::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(organizations::router())
        .merge(api_keys::router())
        .merge(events::router())
        .merge(customers::router())
}
