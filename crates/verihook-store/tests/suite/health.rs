//! Endpoint health (CONTRACT §9), kept with the recorded attempts.

use super::{attempt_next, customer, with_webhook, Backend};
use verihook_core::{Endpoint, Organization, Timestamp};
use verihook_store::{NextStep, Storage};

pub(crate) async fn default_endpoint(store: &Storage, org: &Organization) -> Endpoint {
    store
        .endpoints
        .endpoints(&org.id)
        .await
        .expect("listed")
        .remove(0)
}

async fn attempt(store: &Storage, next: NextStep, status: u16) {
    attempt_next(store, next, status).await;
}

/// Failing from the first final failure, counting the events failed since; a retry is a
/// failed attempt but no failed event; the next success ends the incident.
pub async fn an_endpoint_fails_with_its_first_failed_event_and_heals_with_a_success<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    assert_eq!(
        default_endpoint(&store, &org).await.health,
        Default::default()
    );

    customer(&store, &org).await;
    let before = Timestamp::now();
    attempt(&store, NextStep::Failed, 500).await;
    let health = default_endpoint(&store, &org).await.health;
    assert!(
        health.failing_since.is_some_and(|t| t >= before),
        "{health:?}"
    );
    assert_eq!(health.failed_events, 1);
    assert!(health.last_failure_at.is_some() && health.last_success_at.is_none());
    let since = health.failing_since;

    customer(&store, &org).await;
    attempt(
        &store,
        NextStep::RetryAt(Timestamp::from_unix_micros(0)),
        503,
    )
    .await;
    let health = default_endpoint(&store, &org).await.health;
    assert_eq!((health.failing_since, health.failed_events), (since, 1));
    attempt(&store, NextStep::Failed, 503).await;
    let health = default_endpoint(&store, &org).await.health;
    assert_eq!((health.failing_since, health.failed_events), (since, 2));

    customer(&store, &org).await;
    attempt(&store, NextStep::Delivered, 200).await;
    let health = default_endpoint(&store, &org).await.health;
    assert!(!health.is_failing(), "{health:?}");
    assert_eq!(health.failed_events, 0);
    assert!(health.last_success_at.is_some());
    let webhook = store
        .organizations
        .webhook(&org.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(webhook.health, Some(health));
}
