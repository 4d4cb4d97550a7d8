//! Bulk recovery in the store (CONTRACT §9).

use super::health::default_endpoint;
use super::{
    attempt_next, claim, claim_when_due, customer, outcome, with_webhook, Backend, RecordOne,
};
use verihook_core::{EndpointId, OrganizationId, RecoveryId, Timestamp};
use verihook_store::{ClaimedDelivery, NextStep, RecoveryRequest, StoreError};

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
        .start_recovery(&request(&org.id))
        .await
        .expect("started");
    assert_eq!((first.total, first.pending, first.delivered), (5, 5, 0));
    assert!(!first.is_completed());
    let overlapping = store
        .recoveries
        .start_recovery(&request(&org.id))
        .await
        .expect("started");
    assert_eq!(overlapping.total, 0, "the first recovery holds them all");
    assert!(overlapping.is_completed());
    assert_eq!(release(&store).await, 5, "let out at the pace");

    let sent = claim_due(&store, 5).await;
    assert!(
        sent.iter().all(|d| d.budget_used == 0 && d.attempt == 2),
        "fresh budgets"
    );
    record_all(&store, &sent, |i| i >= 3).await;
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
    let refused = store.recoveries.start_recovery(&foreign).await;
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

/// At least `n` deliveries, claimed as they fall due.
async fn claim_due(store: &verihook_store::Storage, n: usize) -> Vec<ClaimedDelivery> {
    let mut sent = Vec::new();
    while sent.len() < n {
        sent.extend(claim_when_due(store, claim(100)).await);
    }
    sent
}

/// Records an outcome for each of `sent`: failed for the `i`-th where `fails(i)`,
/// delivered for the others.
async fn record_all(
    store: &verihook_store::Storage,
    sent: &[ClaimedDelivery],
    fails: impl Fn(usize) -> bool,
) {
    for (i, d) in sent.iter().enumerate() {
        let next = if fails(i) {
            NextStep::Failed
        } else {
            NextStep::Delivered
        };
        assert!(store
            .outbox
            .record_one(outcome(d, next, Some(200)))
            .await
            .expect("recorded"));
    }
}

async fn release(store: &verihook_store::Storage) -> u64 {
    store.outbox.release_paced().await.expect("let out")
}

/// A recovery's deliveries wait held and are let out at the endpoint's pace, decided once
/// a tick: ten first, a step more after successes, halved after a failure, none while a
/// share still waits unsent.
pub async fn a_recovery_is_let_out_at_its_endpoint_s_pace<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    for _ in 0..45 {
        customer(&store, &org).await;
        attempt_next(&store, NextStep::Failed, 500).await;
    }
    store
        .recoveries
        .start_recovery(&request(&org.id))
        .await
        .expect("started");
    // As if a tick had passed: the last decision a tick ago, the share let out then due.
    let b = &b;
    let a_tick_later = || {
        let then = Timestamp::now().unix_micros() - 1_000_000;
        async move {
            b.run_sql(&format!(
                "UPDATE endpoints SET paced_at = {then} WHERE paced_at IS NOT NULL"
            ))
            .await;
            b.run_sql(
                "UPDATE deliveries SET due_at = due_at - 1000000 \
                 WHERE due_at < 4611686018427387904 AND lease_token IS NULL",
            )
            .await;
        }
    };
    let send = |n: usize, failing: usize| {
        let store = &store;
        async move {
            let sent = claim_due(store, n).await;
            record_all(store, &sent, |i| i < failing).await;
        }
    };
    assert!(
        store
            .outbox
            .claim(claim(100))
            .await
            .expect("claim")
            .is_empty(),
        "held"
    );
    assert_eq!(release(&store).await, 10, "a modest start");
    assert_eq!(release(&store).await, 0, "once a tick");
    send(10, 0).await;
    a_tick_later().await;
    let stepped = release(&store).await;
    assert!(
        (20..=21).contains(&stepped),
        "a step up after successes: {stepped}"
    );
    send(usize::try_from(stepped).expect("small"), 1).await;
    a_tick_later().await;
    assert!(
        (10..=11).contains(&release(&store).await),
        "halved after a failure"
    );
    a_tick_later().await;
    assert_eq!(
        release(&store).await,
        0,
        "the last share still waits unsent"
    );
}

/// `autoRecover`: the first success after an incident (here a new event) puts every event
/// failed at the endpoint back in the outbox, as one automatic recovery.
pub async fn the_first_success_after_an_incident_recovers_its_failed_events<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    for _ in 0..3 {
        customer(&store, &org).await;
        attempt_next(&store, NextStep::Failed, 503).await;
    }
    assert_eq!(default_endpoint(&store, &org).await.health.failed_events, 3);
    customer(&store, &org).await;
    attempt_next(&store, NextStep::Delivered, 200).await;
    assert!(!default_endpoint(&store, &org).await.health.is_failing());
    let recoveries = store
        .recoveries
        .recoveries(&org.id, 10)
        .await
        .expect("listed");
    assert_eq!(recoveries.len(), 1);
    assert!(recoveries[0].automatic);
    assert_eq!((recoveries[0].total, recoveries[0].pending), (3, 3));
}

/// A failing endpoint is probed with its newest failed event, one attempt at a time: a
/// failed probe counts no new failed event; a successful one ends the incident and
/// recovers the others (the probed event is not sent again).
pub async fn a_probe_retries_the_newest_failed_event_and_its_success_recovers_the_rest<
    B: Backend,
>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    let mut failed = Vec::new();
    for _ in 0..2 {
        customer(&store, &org).await;
        failed.push(attempt_next(&store, NextStep::Failed, 503).await);
    }
    let lease = std::time::Duration::from_secs(30);
    assert!(
        store
            .outbox
            .claim_probes(lease, 16)
            .await
            .expect("claimed")
            .is_empty(),
        "not due yet"
    );
    b.run_sql("UPDATE endpoints SET probe_at = 0 WHERE probe_at IS NOT NULL")
        .await;
    let probe = store
        .outbox
        .claim_probes(lease, 16)
        .await
        .expect("claimed")
        .remove(0);
    assert_eq!(probe.event.id, failed[1], "the newest failed event");
    assert!(
        store
            .outbox
            .claim_probes(lease, 16)
            .await
            .expect("claimed")
            .is_empty(),
        "one at a time"
    );
    assert!(store
        .outbox
        .record_one(outcome(&probe, NextStep::Failed, Some(503)))
        .await
        .expect("recorded"));
    let health = default_endpoint(&store, &org).await.health;
    assert_eq!(
        (health.is_failing(), health.failed_events),
        (true, 2),
        "no new failed event"
    );

    b.run_sql("UPDATE endpoints SET probe_at = 0 WHERE probe_at IS NOT NULL")
        .await;
    let probe = store
        .outbox
        .claim_probes(lease, 16)
        .await
        .expect("claimed")
        .remove(0);
    assert!(store
        .outbox
        .record_one(outcome(&probe, NextStep::Delivered, Some(200)))
        .await
        .expect("recorded"));
    assert!(!default_endpoint(&store, &org).await.health.is_failing());
    let recovery = store
        .recoveries
        .recoveries(&org.id, 10)
        .await
        .expect("listed")
        .remove(0);
    assert_eq!(
        (recovery.total, recovery.pending),
        (1, 1),
        "the other one only"
    );
    release(&store).await;
    let again = claim_when_due(&store, claim(10)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event.id, failed[0]);
}
