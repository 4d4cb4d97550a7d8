//! Several `verihook serve` nodes on one PostgreSQL database share the deliveries: none is
//! lost when a node is killed, and in normal operation no attempt is sent twice.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use verihook_testkit::{Received, Receiver, Reply, TestDatabase};

const ADMIN: &str = "nodes-admin";

fn node(db: &TestDatabase, role: &str) -> Running {
    let mut vars = vars_for(db.url().to_owned(), ADMIN);
    vars.extend([
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("VERIHOOK_DELIVERY_TIMEOUT", "2s".into()),
        (
            "VERIHOOK_RETRY_SCHEDULE",
            "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s".into(),
        ),
        ("VERIHOOK_ROLE", role.into()),
        // These tests drive load through one organization; the limit is not under test.
        ("VERIHOOK_RATE_LIMIT", "0".into()),
    ]);
    start(&vars)
}

/// An organization whose webhook goes to `receiver`; returns its API key.
async fn organization(client: &reqwest::Client, base: &str, receiver: &Receiver) -> String {
    let org = call(
        client
            .post(format!("{base}/v1/admin/organizations"))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": "Nodes" })),
    )
    .await;
    let id = org["id"].as_str().expect("id");
    call(
        client
            .put(format!("{base}/v1/admin/organizations/{id}/webhook"))
            .bearer_auth(ADMIN)
            .json(&json!({ "url": receiver.url })),
    )
    .await;
    org["apiKey"].as_str().expect("key").to_owned()
}

/// Creates `count` customers through the API at `base`, 32 requests at a time.
async fn create_customers(client: &reqwest::Client, base: &str, key: &str, count: usize) {
    let mut pending = Vec::new();
    for i in 0..count {
        let request = client
            .post(format!("{base}/v1/customers"))
            .bearer_auth(key)
            .json(&json!({ "type": "INDIVIDUAL", "email": format!("n{i}@example.com"), "firstName": "N", "lastName": "S" }));
        pending.push(tokio::spawn(call(request)));
        if pending.len() == 32 {
            for p in pending.drain(..) {
                p.await.expect("joined");
            }
        }
    }
    for p in pending {
        p.await.expect("joined");
    }
}

/// Waits until no event of the organization is pending any more.
async fn wait_none_pending(client: &reqwest::Client, base: &str, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!("{base}/v1/events?deliveryStatus=pending&limit=1");
        let page: Value = call(client.get(url).bearer_auth(key)).await;
        if page["data"].as_array().is_some_and(Vec::is_empty) {
            return;
        }
        assert!(Instant::now() < deadline, "still pending: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How often each event id arrived, once `distinct` of them have.
async fn wait_distinct(
    receiver: &Receiver,
    distinct: usize,
    deadline: Duration,
) -> HashMap<String, Vec<Received>> {
    let end = Instant::now() + deadline;
    loop {
        let mut by_id: HashMap<String, Vec<Received>> = HashMap::new();
        for r in receiver.received() {
            by_id
                .entry(
                    r.header("x-webhook-event-id")
                        .unwrap_or_default()
                        .to_owned(),
                )
                .or_default()
                .push(r);
        }
        if by_id.len() >= distinct {
            return by_id;
        }
        assert!(
            Instant::now() < end,
            "{} of {distinct} events within {deadline:?}",
            by_id.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_nodes_share_the_work_without_doubling_attempts() {
    let Some(db) = TestDatabase::postgres_or_skip(
        "api_and_worker_nodes_share_the_work_without_doubling_attempts",
    )
    .await
    else {
        return;
    };
    let receiver = Receiver::http().await;
    let api = node(&db, "api");
    let workers = [node(&db, "worker"), node(&db, "worker")];
    let client = reqwest::Client::new();
    for n in workers.iter().chain([&api]) {
        wait_ready(&client, &n.base).await;
    }
    let worker_api = client
        .get(format!("{}/v1/customers", workers[0].base))
        .send()
        .await
        .expect("sent");
    assert_eq!(worker_api.status(), 404, "a worker serves no API");
    let key = organization(&client, &api.base, &receiver).await;
    create_customers(&client, &api.base, &key, 1_000).await;

    let by_id = wait_distinct(&receiver, 1_000, Duration::from_secs(60)).await;
    let mut attempts: HashMap<(String, String), usize> = HashMap::new();
    for (id, received) in &by_id {
        for r in received {
            *attempts
                .entry((
                    id.clone(),
                    r.header("x-webhook-attempt").unwrap_or_default().to_owned(),
                ))
                .or_default() += 1;
        }
    }
    let doubled: Vec<_> = attempts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "attempts sent twice: {doubled:?}");
    wait_none_pending(&client, &api.base, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_no_event() {
    const EVENTS: usize = 2_000;
    let Some(db) = TestDatabase::postgres_or_skip("a_node_killed_mid_run_loses_no_event").await
    else {
        return;
    };
    let receiver = Receiver::http().await;
    // Slow enough answers that the killed node has attempts in flight.
    receiver.always(Reply::Delay(Duration::from_millis(20), 200));
    // One node takes the API traffic; two workers share the deliveries, and one of them
    // is killed while it has attempts in flight.
    let api = node(&db, "api");
    let mut workers = vec![node(&db, "worker"), node(&db, "worker")];
    let client = reqwest::Client::new();
    for n in workers.iter().chain([&api]) {
        wait_ready(&client, &n.base).await;
    }
    let key = organization(&client, &api.base, &receiver).await;
    let creating = {
        let (client, key, base) = (client.clone(), key.clone(), api.base.clone());
        tokio::spawn(async move { create_customers(&client, &base, &key, EVENTS).await })
    };
    receiver.wait_for(EVENTS / 5, Duration::from_secs(60)).await;
    kill_hard(&mut workers[0]);
    // The killed node's leases stay until they run out: what it had claimed (sending, or
    // answered and not yet recorded) is among these, and only that can come twice.
    let leased_at_kill = leased(db.url()).await;
    creating.await.expect("every customer created");

    wait_distinct(&receiver, EVENTS, Duration::from_secs(90)).await;
    // Deliveries the killed node had leased come again once their leases end.
    wait_none_pending(&client, &api.base, &key).await;
    let by_id = wait_distinct(&receiver, EVENTS, Duration::from_secs(1)).await;
    assert_eq!(by_id.len(), EVENTS);
    let duplicates: usize = by_id.values().map(|r| r.len() - 1).sum();
    println!(
        "{EVENTS} events delivered with a node killed mid-run; {duplicates} delivered twice \
         ({leased_at_kill} leased at the kill)"
    );
    assert!(
        duplicates <= leased_at_kill,
        "{duplicates} duplicates, but only {leased_at_kill} deliveries were leased at the kill"
    );
    let _ = &workers;
}

/// How many deliveries are leased now (by any node).
async fn leased(url: &str) -> usize {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connected");
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE lease_token IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .expect("counted");
    usize::try_from(n).unwrap_or(0)
}
