//! The lifecycle of a customer's data: sequence numbers, retention, erasure (CONTRACT §11).

use super::{
    assert_no_orphans, attempt_next, claim, claim_when_due, customer, events_of, later,
    organization, outcome, with_webhook, Backend, RecordOne,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use verihook_core::customer::{Email, Text};
use verihook_core::{
    ApiKey, Customer, CustomerId, CustomerPatch, CustomerStatus, CustomerType, EventType,
    NewCustomer, Timestamp, TransitionPolicy,
};
use verihook_store::{
    AnswerWithChange, Begun, Eraser, Erasure, IdempotencyKey, Mutation, NextStep, PageRequest,
    Purged, Scope, Storage, StoreError, StoredAnswer,
};

/// A change that renames the customer: one `customer.updated` each.
fn rename(name: String) -> Mutation {
    Box::new(move |c: &Customer| {
        let patch = CustomerPatch {
            first_name: Some(Text::parse(&name).expect("valid")),
            ..Default::default()
        };
        c.apply_patch(&patch, Timestamp::now())
    })
}

/// The customer's events' sequence numbers, in the order they were stored.
async fn sequences_in_store_order(store: &Storage, id: &CustomerId) -> Vec<u64> {
    let events = events_of(store, id).await;
    events.into_iter().map(|e| e.sequence).collect()
}

/// 1,000 changes to 10 customers from 32 concurrent clients, split over two nodes where the
/// backend has them: each customer's events are numbered 1..n, without gap or repeat, in
/// the order they were stored (the order of the commits, since each change holds the
/// customer's row until it commits).
pub async fn sequences_run_per_customer_without_gap_or_repeat_in_commit_order<B: Backend>() {
    let b = B::fresh().await;
    let nodes = [b.store(), b.another_node().await];
    let org = organization(&nodes[0]).await;
    let mut customers = Vec::new();
    for _ in 0..10 {
        customers.push(customer(&nodes[0], &org).await.id);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let clients = (0..32).map(|client| {
        let (next, store) = (next.clone(), nodes[client % 2].clone());
        let customers = customers.clone();
        tokio::spawn(async move {
            let mut made = HashMap::<CustomerId, u64>::new();
            loop {
                let change = next.fetch_add(1, Ordering::Relaxed);
                if change >= 1_000 {
                    break;
                }
                let id = &customers[change % customers.len()];
                let name = format!("Name{change}");
                store
                    .customers
                    .modify_customer(Scope::All, id, rename(name))
                    .await
                    .expect("changed");
                *made.entry(id.clone()).or_default() += 1;
            }
            made
        })
    });
    let mut made = HashMap::<CustomerId, u64>::new();
    for client in clients.collect::<Vec<_>>() {
        for (id, n) in client.await.expect("joined") {
            *made.entry(id).or_default() += n;
        }
    }
    for id in &customers {
        let expected: Vec<u64> = (1..=1 + made[id]).collect();
        let stored = sequences_in_store_order(&nodes[0], id).await;
        assert_eq!(stored, expected, "{id}: 1..n in the order stored");
        let latest = nodes[1].customers.customer(Scope::All, id).await;
        let latest = latest.expect("read").expect("exists").last_sequence;
        assert_eq!(latest, 1 + made[id], "{id}: the customer's last sequence");
    }
}

/// The personal data the erasure test's customer is created with.
const PERSONAL: [&str; 4] = [
    "erase.me@example.com",
    "Erasmus",
    "Forgotten",
    "Proof of Erasmus",
];

fn erasure(by: Eraser) -> Erasure {
    Erasure {
        by,
        at: Timestamp::now(),
        replay_answer: StoredAnswer {
            status: 404,
            body: r#"{"error":{"code":"not_found"}}"#.into(),
        },
    }
}

/// A customer with personal data in its row, in every kind of event body, in an attempt's
/// response excerpt and in a kept idempotent answer; after its erasure none of those bytes
/// is anywhere in the database, its events carry `null` in those fields, the pending ones
/// are claimed with the erased body, `customer.deleted` follows its last event, and the
/// audit trail names who erased it.
pub async fn an_erasure_leaves_no_personal_data_and_emits_customer_deleted<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    let k = IdempotencyKey {
        scope: org.id.to_string(),
        key: "create-erased".into(),
    };
    let now = Timestamp::now();
    let held = store
        .idempotency
        .begin(&k, "f", now, later(now, 60), later(now, -60));
    assert_eq!(held.await.expect("begun"), Begun::Started);
    let new = NewCustomer {
        customer_type: CustomerType::Individual,
        email: Email::parse(PERSONAL[0]).expect("valid"),
        first_name: Text::parse(PERSONAL[1]).expect("valid"),
        last_name: Text::parse(PERSONAL[2]).expect("valid"),
        date_of_birth: None,
        address: Default::default(),
    };
    let change = Customer::create(org.id.clone(), new, now).expect("rendered");
    let id = change.customer.id.clone();
    let answer = AnswerWithChange {
        key: k.clone(),
        status: 201,
        render: Box::new(|c| format!("{{\"email\":\"{}\"}}", c.customer.email.as_str())),
    };
    let customers = &store.customers;
    customers
        .insert_customer_answering(change, Some(answer))
        .await
        .expect("inserted");
    // Delivered, with the receiver echoing the email in its answer.
    let d = store
        .outbox
        .claim(claim(1))
        .await
        .expect("claimed")
        .remove(0);
    let mut echoed = outcome(&d, NextStep::Delivered, Some(200));
    echoed.record.response_body = Some(format!("thanks for {}", PERSONAL[0]));
    assert!(store.outbox.record_one(echoed).await.expect("recorded"));
    let rfi: Mutation = Box::new(|c: &Customer| {
        let reason = Some(PERSONAL[3].to_owned());
        let to = CustomerStatus::NeedsAdditionalInformation;
        c.change_status(to, reason, TransitionPolicy::Sandbox, Timestamp::now())
    });
    customers
        .modify_customer(Scope::All, &id, rfi)
        .await
        .expect("rfi");

    let by_key = ApiKey::digest("not a stored key");
    let deleted = store
        .erasures
        .erase_customer(
            Scope::Organization(&org.id),
            &id,
            erasure(Eraser::ApiKey(by_key)),
        )
        .await
        .expect("erased");
    assert_eq!(deleted.event_type, EventType::CustomerDeleted);
    assert_eq!(
        deleted.sequence, 4,
        "after created, status_changed, rfi_required"
    );

    let stored = b.stored_bytes().await;
    for value in PERSONAL {
        let found = stored.windows(value.len()).any(|w| w == value.as_bytes());
        assert!(!found, "{value:?} is still stored");
    }
    assert_eq!(
        customers.customer(Scope::All, &id).await.expect("read"),
        None
    );
    let again = store
        .erasures
        .erase_customer(Scope::All, &id, erasure(Eraser::Admin))
        .await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
    let patch = customers.modify_customer(Scope::All, &id, super::force(CustomerStatus::Active));
    assert!(matches!(patch.await, Err(StoreError::NotFound)));

    let events = events_of(&store, &id).await;
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4]);
    for e in &events[..3] {
        let body: serde_json::Value = serde_json::from_str(&e.body).expect("JSON");
        assert_eq!(
            body["payload"]["email"],
            serde_json::Value::Null,
            "{}",
            e.body
        );
    }
    // The pending deliveries (the RFI's two events and the deletion) go out erased.
    let pending = claim_when_due(&store, claim(10)).await;
    assert_eq!(pending.len(), 3);
    for d in &pending {
        assert!(!d.event.body.contains(PERSONAL[0]), "{}", d.event.body);
    }
    let replay = store
        .idempotency
        .begin(&k, "f", now, later(now, 60), later(now, -60));
    match replay.await.expect("begun") {
        Begun::Replay(answer) => assert_eq!(answer.status, 404),
        other => panic!("{other:?}"),
    }
    let trail = store.erasures.erasures(PageRequest {
        limit: 10,
        after: None,
    });
    let trail = trail.await.expect("listed").items;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].customer_id, id);
    assert_eq!(trail[0].organization_id, org.id);
    assert_eq!(
        trail[0].erased_by, "apiKey",
        "a key the database does not know"
    );
    assert_no_orphans(&b).await;
}

/// Expired events go with their attempts and failure records, at most a batch at a time;
/// an event still in the outbox stays until its delivery ends; later events are untouched.
pub async fn expired_events_are_purged_in_batches_but_pending_ones_stay<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    for _ in 0..4 {
        customer(&store, &org).await;
    }
    let delivered = [
        attempt_next(&store, NextStep::Delivered, 200).await,
        attempt_next(&store, NextStep::Delivered, 200).await,
    ];
    let failed = attempt_next(&store, NextStep::Failed, 500).await;
    let pending = store
        .outbox
        .claim(claim(1))
        .await
        .expect("claimed")
        .remove(0);

    let long_ago = later(Timestamp::now(), -3_600);
    let none = store
        .retention
        .purge_expired(long_ago, 10)
        .await
        .expect("purged");
    assert_eq!(none, Purged::default(), "nothing is older than an hour");
    let cut_off = later(Timestamp::now(), 1);
    let mut batches = Vec::new();
    loop {
        let purged = store
            .retention
            .purge_expired(cut_off, 2)
            .await
            .expect("purged");
        if purged.events == 0 {
            break;
        }
        assert!(
            purged.events <= 2,
            "a batch is at most its size: {purged:?}"
        );
        batches.push(purged);
    }
    let events: u64 = batches.iter().map(|p| p.events).sum();
    let attempts: u64 = batches.iter().map(|p| p.attempts).sum();
    assert_eq!((events, attempts), (3, 3), "{batches:?}");
    for id in delivered.iter().chain([&failed]) {
        let gone = store.events.event(Scope::All, id).await.expect("read");
        assert!(gone.is_none(), "{id} was purged");
    }
    let kept = store
        .events
        .event(Scope::All, &pending.event.id)
        .await
        .expect("read");
    assert!(kept.is_some(), "a pending event stays");

    // Once delivered, it goes too.
    let done = outcome(&pending, NextStep::Delivered, Some(200));
    assert!(store.outbox.record_one(done).await.expect("recorded"));
    let purged = store
        .retention
        .purge_expired(cut_off, 10)
        .await
        .expect("purged");
    assert_eq!(purged.events, 1);
    store
        .retention
        .reclaim_space(100)
        .await
        .expect("space given back");
    assert_no_orphans(&b).await;
}
