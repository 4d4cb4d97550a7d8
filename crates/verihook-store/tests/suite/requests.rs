//! API keys and idempotency records in the store.

use super::{new_customer, organization, Backend};
use verihook_core::{ApiKey, Mode, Organization, Timestamp};
use verihook_store::{
    AnswerWithChange, Begun, IdempotencyKey, NewApiKey, Storage, StoreError, StoredAnswer,
};

fn shifted(t: Timestamp, micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(t.unix_micros() + micros)
}

/// An organization and the first key it was created with.
async fn organization_with_key(store: &Storage) -> (Organization, NewApiKey) {
    let org = Organization::new("Keys", Mode::Live, Timestamp::now()).expect("valid");
    let key = NewApiKey::of(&ApiKey::generate(), Timestamp::now());
    store
        .organizations
        .create_organization(&org, &key)
        .await
        .expect("created");
    (org, key)
}

/// An organization's first key is listed; more are added; a revoked key finds nothing
/// and is reported to key caches; only the owner can revoke.
pub async fn api_keys_are_created_listed_and_revoked<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let (org, first) = organization_with_key(&store).await;
    let other = organization(&store).await;
    let listed = store.api_keys.api_keys(&org.id).await.expect("listed");
    assert_eq!(listed.len(), 1, "the key the organization was created with");
    assert_eq!(
        (&listed[0].id, &listed[0].prefix),
        (&first.id, &first.prefix)
    );
    let key = ApiKey::generate();
    let second = NewApiKey::of(&key, Timestamp::now());
    store
        .api_keys
        .create_api_key(&org.id, &second)
        .await
        .expect("created");
    let found = store.organizations.organization_by_key(second.digest).await;
    assert_eq!(found.expect("read").map(|o| o.id), Some(org.id.clone()));
    let listed = store.api_keys.api_keys(&org.id).await.expect("listed");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].prefix, key.prefix());

    let before = shifted(Timestamp::now(), -1);
    let revoke = |org_id, key_id| {
        let store = store.clone();
        async move {
            store
                .api_keys
                .revoke_api_key(&org_id, &key_id, Timestamp::now())
                .await
        }
    };
    let refused = revoke(other.id.clone(), second.id.clone()).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound)),
        "another's key"
    );
    revoke(org.id.clone(), second.id.clone())
        .await
        .expect("revoked");
    let again = revoke(org.id.clone(), second.id.clone()).await;
    assert!(
        matches!(again, Err(StoreError::NotFound)),
        "already revoked"
    );
    let gone = store.organizations.organization_by_key(second.digest).await;
    assert_eq!(gone.expect("read"), None);
    let revoked = store.api_keys.revoked_since(before).await.expect("read");
    assert_eq!(revoked, vec![second.digest]);
    let listed = store.api_keys.api_keys(&org.id).await.expect("listed");
    assert_eq!(
        listed.iter().map(|k| &k.id).collect::<Vec<_>>(),
        [&first.id]
    );
    let missing = store
        .api_keys
        .api_keys(&verihook_core::OrganizationId::generate())
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

/// `lastUsedAt` follows the uses reported, never backwards, and unknown keys are ignored.
pub async fn key_use_moves_last_used_forward_only<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let (org, first) = organization_with_key(&store).await;
    let now = Timestamp::now();
    let earlier = shifted(now, -60_000_000);
    let uses = vec![(first.digest, now), (ApiKey::digest("not a key"), now)];
    store.api_keys.record_key_use(uses).await.expect("recorded");
    store
        .api_keys
        .record_key_use(vec![(first.digest, earlier)])
        .await
        .expect("recorded");
    let listed = store.api_keys.api_keys(&org.id).await.expect("listed");
    assert_eq!(listed[0].last_used_at, Some(now));
}

fn key(scope: &str, key: &str) -> IdempotencyKey {
    IdempotencyKey {
        scope: scope.into(),
        key: key.into(),
    }
}

async fn begin(store: &Storage, k: &IdempotencyKey, fingerprint: &str, now: Timestamp) -> Begun {
    store
        .idempotency
        .begin(
            k,
            fingerprint,
            now,
            shifted(now, 60_000_000),
            shifted(now, -86_400_000_000),
        )
        .await
        .expect("begun")
}

/// A key is held while its request runs, answers its stored answer after, refuses another
/// fingerprint, is free again once let go, and is scoped to its caller.
pub async fn an_idempotency_key_is_held_answered_and_scoped<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let now = Timestamp::now();
    let k = key("org_a", "k-1");
    assert_eq!(begin(&store, &k, "f1", now).await, Begun::Started);
    assert_eq!(begin(&store, &k, "f1", now).await, Begun::InUse);
    assert_eq!(begin(&store, &k, "f2", now).await, Begun::Reused);
    assert_eq!(
        begin(&store, &key("admin", "k-1"), "f1", now).await,
        Begun::Started
    );
    let answer = StoredAnswer {
        status: 201,
        body: r#"{"id":"x"}"#.into(),
    };
    store
        .idempotency
        .finish(&k, answer.clone())
        .await
        .expect("finished");
    store.idempotency.abandon(&k).await.expect("no-op");
    assert_eq!(begin(&store, &k, "f1", now).await, Begun::Replay(answer));
    assert_eq!(begin(&store, &k, "f2", now).await, Begun::Reused);

    let dropped = key("org_a", "k-2");
    assert_eq!(begin(&store, &dropped, "f1", now).await, Begun::Started);
    store.idempotency.abandon(&dropped).await.expect("let go");
    assert_eq!(begin(&store, &dropped, "f2", now).await, Begun::Started);
}

/// A key held by a request that never ended (its node crashed) is taken over once its
/// hold runs out; one older than the expiry is free; purging removes expired records.
pub async fn idempotency_keys_are_taken_over_expire_and_purge<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let then = shifted(Timestamp::now(), -120_000_000);
    let crashed = key("org_a", "crashed");
    assert_eq!(begin(&store, &crashed, "f", then).await, Begun::Started);
    let now = Timestamp::now();
    assert_eq!(begin(&store, &crashed, "f", now).await, Begun::Started);
    let old = key("org_a", "old");
    let day_ago = shifted(now, -90_000_000_000);
    assert_eq!(begin(&store, &old, "f", day_ago).await, Begun::Started);
    store
        .idempotency
        .finish(
            &old,
            StoredAnswer {
                status: 200,
                body: "{}".into(),
            },
        )
        .await
        .expect("finished");
    let purged = store
        .idempotency
        .purge(shifted(now, -86_400_000_000), 100)
        .await
        .expect("purged");
    assert_eq!(purged, 1);
    assert_eq!(begin(&store, &old, "other", now).await, Begun::Started);
}

/// An event-producing change stores the answer in its own transaction: committed
/// together, or (when the change fails) not at all.
pub async fn an_answer_is_stored_with_its_change_or_not_at_all<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let now = Timestamp::now();
    let k = key(org.id.as_str(), "create-1");
    assert_eq!(begin(&store, &k, "f", now).await, Begun::Started);
    let change = new_customer(&org, "a@example.com");
    let id = change.customer.id.clone();
    let answer = AnswerWithChange {
        key: k.clone(),
        status: 201,
        render: Box::new(|c| format!("{{\"id\":\"{}\"}}", c.customer.id)),
    };
    store
        .customers
        .insert_customer_answering(change, Some(answer))
        .await
        .expect("inserted");
    let expected = StoredAnswer {
        status: 201,
        body: format!("{{\"id\":\"{id}\"}}"),
    };
    assert_eq!(begin(&store, &k, "f", now).await, Begun::Replay(expected));

    b.fail_event_inserts().await;
    let failing = key(org.id.as_str(), "create-2");
    assert_eq!(begin(&store, &failing, "f", now).await, Begun::Started);
    let answer = AnswerWithChange {
        key: failing.clone(),
        status: 201,
        render: Box::new(|_| "{}".into()),
    };
    let change = new_customer(&org, "b@example.com");
    let result = store
        .customers
        .insert_customer_answering(change, Some(answer))
        .await;
    assert!(result.is_err(), "the event insert fails");
    assert_eq!(
        begin(&store, &failing, "f", now).await,
        Begun::InUse,
        "no answer stored without the change"
    );
}

/// An event's record shows its newest 100 attempts, oldest first, and says when older ones
/// were left out: an event redelivered without end does not make its view grow without end.
pub async fn an_events_record_shows_its_newest_hundred_attempts<B: Backend>() {
    use super::{attempt_next, customer, with_webhook};
    use verihook_store::{NextStep, Scope};
    let b = B::fresh().await;
    let store = b.store();
    let org = with_webhook(&store).await;
    customer(&store, &org).await;
    let mut event = None;
    for _ in 0..103 {
        let retry = NextStep::RetryAt(Timestamp::from_unix_micros(0));
        event = Some(attempt_next(&store, retry, 500).await);
    }
    let id = event.expect("an event");
    let record = store
        .events
        .event(Scope::All, &id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(record.attempts.len(), 100);
    assert!(record.attempts_truncated);
    let numbers: Vec<u32> = record.attempts.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers.first(), Some(&4), "the three oldest left out");
    assert_eq!(numbers.last(), Some(&103));
}
