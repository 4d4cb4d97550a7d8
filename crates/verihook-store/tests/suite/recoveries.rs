//! Bulk recovery in the store (CONTRACT §9).

use super::{
    attempt_next, claim, claim_when_due, customer, outcome, with_webhook, Backend, RecordOne,
};
use verihook_core::{EndpointId, OrganizationId, RecoveryId, Timestamp};
use verihook_store::{NextStep, RecoveryRequest, StoreError};

fn request(org: &OrganizationId) -> RecoveryRequest {
    RecoveryRequest {
        id: RecoveryId::generate(),
        organization: org.clone(),
        since: Timestamp::from_unix_micros(0),
        until: Timestamp::now(),
        endpoint: None,
        event_type: None,
        automatic: false,
        created_at: Timestamp::now(),
    }
}

/// Each failed event of the window goes back to the outbox once, with a fresh budget; a
/// second recovery overlapping the first takes none of them; progress follows the
/// outcomes, and the recovery completes when none is pending.
pub async fn a_recovery_redelivers_each_failed_event_once_and_reports_progress<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    for _ in 0..5 {
        customer(&store, &org).await;
        attempt_next(&store, NextStep::Failed, 500).await;
    }
    let first = store
        .recoveries
        .start_recovery(&request(&org.id), 1_000)
        .await
        .expect("started");
    assert_eq!((first.total, first.pending, first.delivered), (5, 5, 0));
    assert!(!first.is_completed());
    let overlapping = store
        .recoveries
        .start_recovery(&request(&org.id), 1_000)
        .await
        .expect("started");
    assert_eq!(overlapping.total, 0, "the first recovery holds them all");
    assert!(overlapping.is_completed());

    let mut sent = Vec::new();
    while sent.len() < 5 {
        sent.extend(claim_when_due(&store, claim(10)).await);
    }
    assert!(
        sent.iter().all(|d| d.budget_used == 0 && d.attempt == 2),
        "fresh budgets"
    );
    for (i, d) in sent.iter().enumerate() {
        let next = if i < 3 {
            NextStep::Delivered
        } else {
            NextStep::Failed
        };
        assert!(store
            .outbox
            .record_one(outcome(d, next, Some(200)))
            .await
            .expect("recorded"));
    }
    let done = store
        .recoveries
        .recovery(&org.id, &first.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (done.total, done.delivered, done.failed, done.pending),
        (5, 3, 2, 0)
    );
    assert!(done.is_completed());
    let listed = store
        .recoveries
        .recoveries(&org.id, 10)
        .await
        .expect("listed");
    let ids: Vec<_> = listed.iter().map(|r| &r.id).collect();
    assert_eq!(ids, [&overlapping.id, &first.id], "newest first");

    let mut foreign = request(&org.id);
    foreign.endpoint = Some(EndpointId::generate());
    let refused = store.recoveries.start_recovery(&foreign, 1_000).await;
    assert!(matches!(refused, Err(StoreError::NotFound)));
    let other = OrganizationId::generate();
    assert_eq!(
        store
            .recoveries
            .recovery(&other, &first.id)
            .await
            .expect("read"),
        None
    );
}

/// A recovery's items fall due paced per endpoint, not all at once.
pub async fn a_recovery_is_paced_per_endpoint<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    for _ in 0..4 {
        customer(&store, &org).await;
        attempt_next(&store, NextStep::Failed, 500).await;
    }
    store
        .recoveries
        .start_recovery(&request(&org.id), 1)
        .await
        .expect("started");
    let due_now = store.outbox.claim(claim(10)).await.expect("claimed");
    assert_eq!(due_now.len(), 1, "one a second at this pace");
}
