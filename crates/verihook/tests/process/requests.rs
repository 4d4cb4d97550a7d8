//! What callers rely on across restarts and nodes: an idempotent answer kept in the
//! database, a revoked key refused by every node within a second, and a secret rotation
//! that every node signs alike.

use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};
use verihook_receiver::{headers, Verifier};
use verihook_testkit::{Received, Receiver, TestDatabase};

const ADMIN: &str = "requests-admin";

fn node(db: &TestDatabase) -> Running {
    let mut vars = vars_for(db.url().to_owned(), ADMIN);
    vars.push(("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()));
    start(&vars)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_answer_is_replayed_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vars = base_vars(&dir.path().join("replay.db"), ADMIN);
    let client = reqwest::Client::new();
    let mut first = start(&vars);
    wait_ready(&client, &first.base).await;
    let org = call(
        client
            .post(format!("{}/v1/admin/organizations", first.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": "Replay" })),
    )
    .await;
    let key = org["apiKey"].as_str().expect("key").to_owned();
    let create = |base: &str| {
        client
            .post(format!("{base}/v1/customers"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "after-restart")
            .json(&json!({ "type": "INDIVIDUAL", "email": "r@example.com", "firstName": "R", "lastName": "S" }))
            .send()
    };
    let answered = create(&first.base).await.expect("sent");
    assert_eq!(answered.status(), 201);
    let body = answered.text().await.expect("body");
    assert!(terminate_and_wait(&mut first).success());

    let second = start(&vars);
    wait_ready(&client, &second.base).await;
    let replayed = create(&second.base).await.expect("sent");
    assert_eq!(replayed.status(), 201);
    assert_eq!(
        replayed
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(replayed.text().await.expect("body"), body);
    let listed = call(
        client
            .get(format!("{}/v1/customers", second.base))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_by_every_node_within_a_second() {
    let Some(db) =
        TestDatabase::postgres_or_skip("a_revoked_key_is_refused_by_every_node_within_a_second")
            .await
    else {
        return;
    };
    let (a, b) = (node(&db), node(&db));
    let client = reqwest::Client::new();
    for n in [&a, &b] {
        wait_ready(&client, &n.base).await;
    }
    let org = call(
        client
            .post(format!("{}/v1/admin/organizations", a.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": "Keys" })),
    )
    .await;
    let (id, key) = (
        org["id"].as_str().expect("id"),
        org["apiKey"].as_str().expect("key"),
    );
    let use_key = |base: &str| {
        client
            .get(format!("{base}/v1/customers"))
            .bearer_auth(key)
            .send()
    };
    // Node B has the key in its cache before the revocation.
    assert_eq!(use_key(&b.base).await.expect("sent").status(), 200);
    let keys = call(
        client
            .get(format!("{}/v1/admin/organizations/{id}/api-keys", a.base))
            .bearer_auth(ADMIN),
    )
    .await;
    let key_id = keys["data"][0]["id"].as_str().expect("key id");
    let revoked = client
        .delete(format!(
            "{}/v1/admin/organizations/{id}/api-keys/{key_id}",
            a.base
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(revoked.status(), 204);
    let at = Instant::now();
    loop {
        let status = use_key(&b.base).await.expect("sent").status();
        if status == 401 {
            break;
        }
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "node B still answers {status} for the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `secret` alone verifies `r` as a receiver holding only it would.
fn verifies(secret: &str, r: &Received) -> bool {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(i64::MAX);
    Verifier::new(secret)
        .check_request_at(now, |name| r.header(name), &r.body)
        .is_ok()
}

/// Deliveries of customers created on `base` until `n` arrived at `receiver` in all.
async fn deliveries(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    receiver: &Receiver,
    n: usize,
) -> Vec<Received> {
    let before = receiver.received().len();
    for i in 0..n {
        call(
            client
                .post(format!("{base}/v1/customers"))
                .bearer_auth(key)
                .json(&json!({ "type": "INDIVIDUAL", "email": format!("rot{i}@example.com"), "firstName": "R", "lastName": "S" })),
        )
        .await;
    }
    let all = receiver.wait_for(before + n, Duration::from_secs(20)).await;
    all[before..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_verifies_with_either_secret_on_every_node_until_completed() {
    let Some(db) = TestDatabase::postgres_or_skip(
        "a_rotation_verifies_with_either_secret_on_every_node_until_completed",
    )
    .await
    else {
        return;
    };
    let receiver = Receiver::http().await;
    let (a, b) = (node(&db), node(&db));
    let client = reqwest::Client::new();
    for n in [&a, &b] {
        wait_ready(&client, &n.base).await;
    }
    let org = org_sending_to(&client, &a.base, ADMIN, &receiver.url).await;
    let rotated = call(
        client
            .post(format!("{}/v1/webhook/rotate-secret", b.base))
            .bearer_auth(&org.key)
            .json(&json!({ "overlap": "1h" })),
    )
    .await;
    let new_secret = rotated["secret"].as_str().expect("secret").to_owned();
    // Both nodes deliver (each claims from the shared outbox) and both sign alike.
    for base in [&a.base, &b.base] {
        for r in deliveries(&client, base, &org.key, &receiver, 6).await {
            assert!(verifies(&org.secret, &r), "the old secret alone verifies");
            assert!(verifies(&new_secret, &r), "the new secret alone verifies");
            assert!(r.header(headers::SIGNATURE_NEXT).is_some());
        }
    }
    call(
        client
            .post(format!("{}/v1/webhook/rotate-secret/complete", a.base))
            .bearer_auth(&org.key),
    )
    .await;
    for base in [&a.base, &b.base] {
        for r in deliveries(&client, base, &org.key, &receiver, 6).await {
            assert!(
                !verifies(&org.secret, &r),
                "the old secret no longer verifies"
            );
            assert!(verifies(&new_secret, &r), "the new one does");
        }
    }
}
