//! Endpoints in the store: their CRUD and limit, the fan-out of each event to the
//! endpoints whose filter takes it, and each endpoint's own deliveries, budget, headroom
//! and redelivery.

use super::{
    assert_no_orphans, claim, claim_when_due, customer, force, new_customer, organization, outcome,
    with_webhook, Backend, RecordOne,
};
use std::time::Duration;
use verihook_core::endpoint::MAX_ENDPOINTS;
use verihook_core::{
    CustomerStatus, DeliveryStatus, Endpoint, EndpointId, EndpointPatch, EventType, EventTypes,
    Organization, RetryPolicy, SignatureScheme, Timestamp, WebhookSecret, WebhookUrl,
};
use verihook_store::outbox::ADOPTION_SLICE;
use verihook_store::{
    ClaimRequest, ClaimedDelivery, EventFilter, NextStep, PageRequest, Scope, Storage, StoreError,
};

fn new_endpoint(org: &Organization, types: &[&str]) -> Endpoint {
    Endpoint {
        id: EndpointId::generate(),
        organization_id: org.id.clone(),
        url: WebhookUrl::parse("https://crm.example.com/hooks", false).expect("valid"),
        description: "CRM".into(),
        event_types: EventTypes::parse(types.iter().copied()).expect("known types"),
        secret: WebhookSecret::generate(),
        scheme: SignatureScheme::StandardWebhooks,
        retry_schedule: Some(RetryPolicy::parse("10s,1m").expect("valid")),
        auto_recover: false,
        disabled: false,
        is_default: false,
        created_at: Timestamp::from_unix_micros(
            Timestamp::now().unix_micros() / 1_000_000 * 1_000_000,
        ),
        health: Default::default(),
    }
}

async fn endpoint(store: &Storage, org: &Organization, types: &[&str]) -> Endpoint {
    let e = new_endpoint(org, types);
    store.endpoints.create_endpoint(&e).await.expect("created");
    e
}

/// Everything claimable now, until nothing is.
async fn claim_all(store: &Storage) -> Vec<ClaimedDelivery> {
    let mut all = Vec::new();
    loop {
        let claimed = store.outbox.claim(claim(100)).await.expect("claimed");
        if claimed.is_empty() {
            return all;
        }
        all.extend(claimed);
    }
}

fn to(claimed: &[ClaimedDelivery], e: &EndpointId) -> Vec<EventType> {
    let mut types: Vec<EventType> = claimed
        .iter()
        .filter(|d| &d.endpoint == e)
        .map(|d| d.event.event_type)
        .collect();
    types.sort_by_key(|t| t.as_str());
    types
}

pub async fn endpoints_are_created_listed_changed_and_deleted<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    let stranger = organization(&store).await;
    let crm = endpoint(&store, &org, &["customer.created", "customer.updated"]).await;
    let listed = store.endpoints.endpoints(&org.id).await.expect("listed");
    assert_eq!(listed.len(), 2);
    assert!(listed[0].is_default && !listed[1].is_default);
    assert_eq!(listed[1], crm, "every field is stored as given");
    let patch = EndpointPatch {
        event_types: Some(EventTypes::all()),
        disabled: Some(true),
        retry_schedule: Some(None),
        ..Default::default()
    };
    let changed = store
        .endpoints
        .update_endpoint(&org.id, &crm.id, patch.clone())
        .await
        .expect("changed");
    assert!(changed.disabled && changed.retry_schedule.is_none());
    assert_eq!(changed.event_types, EventTypes::all());
    assert_eq!(changed.secret, crm.secret, "a change keeps the secret");
    let read = store
        .endpoints
        .endpoint(&org.id, &crm.id)
        .await
        .expect("read");
    assert_eq!(read, Some(changed));
    // Another organization's endpoint does not exist for it.
    assert_eq!(
        store
            .endpoints
            .endpoint(&stranger.id, &crm.id)
            .await
            .expect("read"),
        None
    );
    assert!(matches!(
        store
            .endpoints
            .update_endpoint(&stranger.id, &crm.id, patch)
            .await,
        Err(StoreError::NotFound)
    ));
    let now = Timestamp::now();
    assert!(matches!(
        store
            .endpoints
            .delete_endpoint(&stranger.id, &crm.id, now)
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .endpoints
        .delete_endpoint(&org.id, &crm.id, now)
        .await
        .expect("deleted");
    assert_eq!(
        store
            .endpoints
            .endpoints(&org.id)
            .await
            .expect("listed")
            .len(),
        1
    );
    assert!(matches!(
        store.endpoints.delete_endpoint(&org.id, &crm.id, now).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn an_organization_has_at_most_fifty_endpoints<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    for _ in 1..MAX_ENDPOINTS {
        endpoint(&store, &org, &[]).await;
    }
    let one_too_many = store
        .endpoints
        .create_endpoint(&new_endpoint(&org, &[]))
        .await;
    assert!(matches!(one_too_many, Err(StoreError::LimitReached(50))));
    let listed = store.endpoints.endpoints(&org.id).await.expect("listed");
    assert_eq!(listed.len(), 50);
    // Deleting one makes room again.
    let now = Timestamp::now();
    store
        .endpoints
        .delete_endpoint(&org.id, &listed[1].id, now)
        .await
        .expect("deleted");
    endpoint(&store, &org, &[]).await;
}

/// The default endpoint takes every type; the others only theirs; a disabled endpoint and
/// one deleted before the event was stored take nothing.
pub async fn an_event_is_queued_for_each_endpoint_whose_filter_takes_it<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    let default = store.endpoints.endpoints(&org.id).await.expect("listed")[0]
        .id
        .clone();
    let onboarding = endpoint(&store, &org, &["verification.completed"]).await;
    let crm = endpoint(&store, &org, &["customer.created"]).await;
    let disabled = endpoint(&store, &org, &[]).await;
    let patch = EndpointPatch {
        disabled: Some(true),
        ..Default::default()
    };
    store
        .endpoints
        .update_endpoint(&org.id, &disabled.id, patch)
        .await
        .expect("disabled");
    let deleted = endpoint(&store, &org, &[]).await;
    store
        .endpoints
        .delete_endpoint(&org.id, &deleted.id, Timestamp::now())
        .await
        .expect("deleted");
    let c = customer(&store, &org).await;
    store
        .customers
        .modify_customer(Scope::All, &c.id, force(CustomerStatus::Active))
        .await
        .expect("changed");
    let claimed = claim_all(&store).await;
    use EventType::*;
    assert_eq!(
        to(&claimed, &default),
        vec![
            CustomerCreated,
            CustomerStatusChanged,
            VerificationCompleted
        ]
    );
    assert_eq!(to(&claimed, &onboarding.id), vec![VerificationCompleted]);
    assert_eq!(to(&claimed, &crm.id), vec![CustomerCreated]);
    assert!(to(&claimed, &disabled.id).is_empty());
    assert!(to(&claimed, &deleted.id).is_empty());
    let to_crm = claimed
        .iter()
        .find(|d| d.endpoint == crm.id)
        .expect("claimed");
    assert_eq!(to_crm.scheme, SignatureScheme::StandardWebhooks);
    assert_eq!(to_crm.secret, crm.secret);
    assert_eq!(to_crm.retry_schedule, crm.retry_schedule);
    let record = store
        .events
        .event(Scope::All, &to_crm.event.id)
        .await
        .expect("read")
        .expect("exists");
    let mut queued: Vec<EndpointId> = record
        .deliveries
        .iter()
        .map(|d| d.endpoint_id.clone())
        .collect();
    queued.sort();
    let mut expected = vec![default, crm.id.clone()];
    expected.sort();
    assert_eq!(queued, expected);
}

/// Two endpoints of one organization: one's failure, headroom and redelivery leave the
/// other's deliveries alone, and the log tells them apart.
pub async fn each_endpoint_has_its_own_attempts_headroom_and_redelivery<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    let dead = endpoint(&store, &org, &[]).await;
    for _ in 0..3 {
        customer(&store, &org).await;
    }
    // The dead endpoint at its limit: the claim still takes every delivery of the other.
    let capped = ClaimRequest {
        per_endpoint: 3,
        in_flight: vec![(dead.id.clone(), 3)],
        ..claim(100)
    };
    let live = store.outbox.claim(capped).await.expect("claimed");
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|d| d.endpoint != dead.id));
    let to_dead = store.outbox.claim(claim(100)).await.expect("claimed");
    assert_eq!(to_dead.len(), 3);
    assert!(to_dead.iter().all(|d| d.endpoint == dead.id));
    for d in &live {
        assert!(store
            .outbox
            .record_one(outcome(d, NextStep::Delivered, Some(200)))
            .await
            .expect("recorded"));
    }
    for d in &to_dead {
        assert!(store
            .outbox
            .record_one(outcome(d, NextStep::Failed, Some(500)))
            .await
            .expect("recorded"));
    }
    let event = to_dead[0].event.id.clone();
    let record = store
        .events
        .event(Scope::All, &event)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        record.delivery_status,
        DeliveryStatus::Failed,
        "failed if any failed"
    );
    let status_at = |r: &verihook_store::EventRecord, e: &EndpointId| {
        r.deliveries
            .iter()
            .find(|d| &d.endpoint_id == e)
            .map(|d| d.status)
    };
    let default = live[0].endpoint.clone();
    assert_eq!(
        status_at(&record, &default),
        Some(DeliveryStatus::Delivered)
    );
    assert_eq!(status_at(&record, &dead.id), Some(DeliveryStatus::Failed));
    assert_eq!(record.attempts.len(), 2);
    assert!(
        record.attempts.iter().all(|a| a.attempt == 1),
        "numbered per endpoint"
    );
    let of = |endpoint: &EndpointId, status: Option<DeliveryStatus>| {
        let store = store.clone();
        let filter = EventFilter {
            endpoint_id: Some(endpoint.clone()),
            delivery_status: status,
            ..Default::default()
        };
        async move {
            let page = PageRequest {
                limit: 50,
                after: None,
            };
            store
                .events
                .list_events(Scope::All, &filter, page)
                .await
                .expect("listed")
                .items
                .len()
        }
    };
    assert_eq!(of(&dead.id, None).await, 3);
    assert_eq!(
        of(&default, Some(DeliveryStatus::Failed)).await,
        3,
        "the aggregate"
    );
    // Redelivery to the dead endpoint only: the other's delivery stays as it was.
    store
        .outbox
        .requeue(
            Scope::Organization(&org.id),
            &event,
            Some(&dead.id),
            Timestamp::now(),
        )
        .await
        .expect("requeued");
    let again = claim_when_due(&store, claim(100)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].endpoint.clone(), again[0].attempt),
        (dead.id.clone(), 2)
    );
    let record = store
        .events
        .event(Scope::All, &event)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(record.delivery_status, DeliveryStatus::Pending);
    assert_eq!(
        status_at(&record, &default),
        Some(DeliveryStatus::Delivered)
    );
    // Another organization's endpoint is not a target.
    let stranger = with_webhook(&store).await;
    let theirs = endpoint(&store, &stranger, &[]).await;
    assert!(matches!(
        store
            .outbox
            .requeue(Scope::All, &event, Some(&theirs.id), Timestamp::now())
            .await,
        Err(StoreError::NotFound)
    ));
    // Redelivery to every endpoint queues both again.
    store
        .outbox
        .record_one(outcome(&again[0], NextStep::Delivered, Some(200)))
        .await
        .expect("recorded");
    store
        .outbox
        .requeue(Scope::Organization(&org.id), &event, None, Timestamp::now())
        .await
        .expect("requeued");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let both = claim_when_due(&store, claim(100)).await;
    assert_eq!(both.len(), 2);
}

/// A deleted endpoint's pending deliveries are dropped; its history stays in the log.
pub async fn deleting_an_endpoint_drops_its_pending_deliveries<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let gone = endpoint(&store, &org, &[]).await;
    let kept = endpoint(&store, &org, &[]).await;
    let first = customer(&store, &org).await;
    let claimed = claim_all(&store).await;
    for d in &claimed {
        store
            .outbox
            .record_one(outcome(d, NextStep::Delivered, Some(200)))
            .await
            .expect("recorded");
    }
    customer(&store, &org).await;
    store
        .endpoints
        .delete_endpoint(&org.id, &gone.id, Timestamp::now())
        .await
        .expect("deleted");
    let claimed = claim_all(&store).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].endpoint, kept.id);
    let filter = EventFilter {
        customer_id: Some(first.id.clone()),
        ..Default::default()
    };
    let page = PageRequest {
        limit: 5,
        after: None,
    };
    let listed = store
        .events
        .list_events(Scope::All, &filter, page)
        .await
        .expect("listed");
    let record = store
        .events
        .event(Scope::All, &listed.items[0].event.id)
        .await
        .expect("read")
        .expect("exists");
    assert!(record.deliveries.iter().any(|d| d.endpoint_id == gone.id));
    assert!(record
        .attempts
        .iter()
        .any(|a| a.endpoint_id.as_ref() == Some(&gone.id)));
    assert_no_orphans(&b).await;
}

/// An organization with no endpoint: its events wait (pending, claimed by no one) for its
/// first endpoint, which takes those its filter takes; the others are dropped.
pub async fn without_an_endpoint_events_wait_for_the_first<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let c = customer(&store, &org).await;
    store
        .customers
        .modify_customer(Scope::All, &c.id, force(CustomerStatus::Active))
        .await
        .expect("changed");
    assert!(claim_all(&store).await.is_empty());
    assert_eq!(store.outbox.size().await.expect("size"), 3);
    let filter = EventFilter {
        delivery_status: Some(DeliveryStatus::Pending),
        ..Default::default()
    };
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    let pending = store
        .events
        .list_events(Scope::All, &filter, page)
        .await
        .expect("listed");
    assert_eq!(pending.items.len(), 3);
    let first = endpoint(
        &store,
        &org,
        &["customer.created", "verification.completed"],
    )
    .await;
    let claimed = claim_all(&store).await;
    use EventType::*;
    assert_eq!(
        to(&claimed, &first.id),
        vec![CustomerCreated, VerificationCompleted]
    );
    assert_eq!(
        store.outbox.size().await.expect("size"),
        2,
        "the third was dropped"
    );
    assert_no_orphans(&b).await;
}

/// `n` customers of `org` stored at once (their writes share commits): `n` events.
async fn many_customers(store: &Storage, org: &Organization, n: usize) {
    let inserts = (0..n).map(|_| store.customers.insert_customer(new_customer(org, "a@b.co")));
    for inserted in futures_util::future::join_all(inserts).await {
        inserted.expect("inserted");
    }
}

/// A first endpoint adopts a backlog larger than a slice a slice at a time: the first
/// with the endpoint, the rest by `adopt_parked`, which carries on after a restart and
/// answers `false` once nothing is left to adopt.
pub async fn a_first_endpoint_adopts_a_large_backlog_a_slice_at_a_time<B: Backend>() {
    let mut b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let slice = usize::try_from(ADOPTION_SLICE).expect("small");
    many_customers(&store, &org, slice + 3).await;
    assert!(!store.outbox.adopt_parked().await.expect("looked"));
    let first = endpoint(&store, &org, &[]).await;
    let claimed = claim_all(&store).await;
    assert_eq!(to(&claimed, &first.id).len(), slice, "the first slice");
    b.reopen().await;
    let store = b.store();
    assert!(store.outbox.adopt_parked().await.expect("adopted"));
    let rest = claim_all(&store).await;
    assert_eq!(to(&rest, &first.id).len(), 3, "the rest, after a restart");
    assert!(!store.outbox.adopt_parked().await.expect("looked"));
    assert_eq!(store.outbox.size().await.expect("size"), slice as u64 + 3);
}

/// Two organizations' adoptions under way at once share rounds, and each endpoint takes
/// exactly its own organization's backlog, whatever the share of a round each gets.
pub async fn adoptions_under_way_at_once_each_take_their_own<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let (one, two) = (organization(&store).await, organization(&store).await);
    let slice = usize::try_from(ADOPTION_SLICE).expect("small");
    // Rounds of two share half a slice each: `one`'s rounds end before `two`'s events
    // begin until it catches up with them.
    many_customers(&store, &one, 2 * slice + 40).await;
    many_customers(&store, &two, slice + 7 + slice / 2).await;
    many_customers(&store, &one, 30).await;
    let (first, second) = (
        endpoint(&store, &one, &[]).await,
        endpoint(&store, &two, &[]).await,
    );
    let mut claimed = claim_all(&store).await;
    let mut rounds = 0;
    while store.outbox.adopt_parked().await.expect("adopted") {
        claimed.extend(claim_all(&store).await);
        rounds += 1;
        assert!(rounds < 100, "the adoptions end");
    }
    assert_eq!(to(&claimed, &first.id).len(), 2 * slice + 70);
    assert_eq!(to(&claimed, &second.id).len(), slice + 7 + slice / 2);
    let organizations = |e: &EndpointId| {
        let mut of: Vec<_> = claimed
            .iter()
            .filter(|d| &d.endpoint == e)
            .map(|d| d.event.organization_id.clone())
            .collect();
        of.dedup();
        of
    };
    assert_eq!(organizations(&first.id), vec![one.id.clone()]);
    assert_eq!(organizations(&second.id), vec![two.id.clone()]);
}

/// An endpoint deleted before its adoption is done takes the rest of the backlog with it,
/// as if it had adopted it all: nothing stays parked, and the organization's other
/// endpoint is sent none of it.
pub async fn an_endpoint_deleted_during_its_adoption_drops_the_rest<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let slice = usize::try_from(ADOPTION_SLICE).expect("small");
    many_customers(&store, &org, slice + 3).await;
    let first = endpoint(&store, &org, &[]).await;
    let second = endpoint(&store, &org, &[]).await;
    store
        .endpoints
        .delete_endpoint(&org.id, &first.id, Timestamp::now())
        .await
        .expect("deleted");
    assert!(!store.outbox.adopt_parked().await.expect("looked"));
    assert!(to(&claim_all(&store).await, &second.id).is_empty());
    assert_eq!(store.outbox.size().await.expect("size"), 0);
    assert_no_orphans(&b).await;
}

/// The next due time leaves out the endpoints a sender names (those at its limit), so a
/// sender does not wake again at once for deliveries it may not claim.
pub async fn the_next_due_time_leaves_out_saturated_endpoints<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let dead = endpoint(&store, &org, &[]).await;
    let live = endpoint(&store, &org, &["customer.updated"]).await;
    customer(&store, &org).await;
    let due = store.outbox.next_due(&[]).await.expect("read");
    assert!(due.is_some_and(|t| t <= Timestamp::now()));
    let only_live = store
        .outbox
        .next_due(std::slice::from_ref(&dead.id))
        .await
        .expect("read");
    assert_eq!(only_live, None, "the live endpoint has nothing waiting");
    let both = [dead.id.clone(), live.id.clone()];
    assert_eq!(store.outbox.next_due(&both).await.expect("read"), None);
}

/// A rotation with an overlap hands the claim the replaced secret beside the new one until
/// the overlap ends or is completed; one without an overlap switches at once.
pub async fn a_rotation_keeps_the_previous_secret_signing_until_its_overlap_ends<B: Backend>() {
    use verihook_store::EndpointRef;
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let e = endpoint(&store, &org, &[]).await;
    let which = EndpointRef::Id(&e.id);
    let rotate = |overlap_secs: i64| {
        let (store, org, id) = (store.clone(), org.id.clone(), e.id.clone());
        async move {
            let secret = WebhookSecret::generate();
            let now = Timestamp::now();
            let until = Timestamp::from_unix_micros(now.unix_micros() + overlap_secs * 1_000_000);
            store
                .endpoints
                .rotate_secret(&org, EndpointRef::Id(&id), secret.clone(), now, until)
                .await
                .expect("rotated");
            secret
        }
    };
    let new = rotate(3_600).await;
    customer(&store, &org).await;
    let claimed = claim_all(&store).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].secret, new);
    assert_eq!(claimed[0].previous_secret, Some(e.secret.clone()));
    store
        .endpoints
        .complete_rotation(&org.id, which)
        .await
        .expect("completed");
    customer(&store, &org).await;
    let claimed = claim_all(&store).await;
    assert_eq!(
        (
            claimed[0].secret.clone(),
            claimed[0].previous_secret.clone()
        ),
        (new, None)
    );
    rotate(0).await;
    customer(&store, &org).await;
    assert_eq!(
        claim_all(&store).await[0].previous_secret,
        None,
        "no overlap: at once"
    );
    let stranger = organization(&store).await;
    assert!(matches!(
        store.endpoints.complete_rotation(&stranger.id, which).await,
        Err(StoreError::NotFound)
    ));
}
