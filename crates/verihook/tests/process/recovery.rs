//! A recovery survives a crash (CONTRACT §9): killed with SIGKILL in the middle of a
//! recovery, the server goes on with it after a restart and completes it, every event
//! of it delivered.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use verihook_testkit::{Receiver, Reply};

const ADMIN: &str = "recovery-admin";
const EVENTS: usize = 200;

fn vars(db: &std::path::Path) -> Vec<(&'static str, String)> {
    let mut vars = base_vars(db, ADMIN);
    vars.extend([
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("VERIHOOK_DELIVERY_TIMEOUT", "1s".into()),
        // One attempt each: every event fails at once while the receiver is down.
        ("VERIHOOK_RETRY_SCHEDULE", "".into()),
        ("VERIHOOK_RATE_LIMIT", "0".into()),
    ]);
    vars
}

async fn recovery(client: &reqwest::Client, base: &str, key: &str, id: &str) -> Value {
    call(
        client
            .get(format!("{base}/v1/recoveries/{id}"))
            .bearer_auth(key),
    )
    .await
}

/// Waits until the default endpoint counts every event of the run as failed.
async fn wait_all_failed(client: &reqwest::Client, base: &str, key: &str) {
    wait_failed(client, base, key, EVENTS).await;
}

async fn wait_failed(client: &reqwest::Client, base: &str, key: &str, events: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let webhook = call(client.get(format!("{base}/v1/webhook")).bearer_auth(key)).await;
        if webhook["health"]["failedEvents"] == events {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not all failed: {}",
            webhook["health"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_killed_midway_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("recovery.db");
    let receiver = Receiver::http().await;
    receiver.always(Reply::Status(503));
    let client = reqwest::Client::new();
    let mut first = start(&vars(&db));
    wait_ready(&client, &first.base).await;
    let org = org_sending_to(&client, &first.base, ADMIN, &receiver.url).await;
    for i in 0..EVENTS {
        call(
            client
                .post(format!("{}/v1/customers", first.base))
                .bearer_auth(&org.key)
                .json(&json!({ "type": "INDIVIDUAL", "email": format!("r{i}@example.com"), "firstName": "R", "lastName": "K" })),
        )
        .await;
    }
    wait_all_failed(&client, &first.base, &org.key).await;

    receiver.always(Reply::Status(200));
    let started = call(
        client
            .post(format!("{}/v1/events/recover", first.base))
            .bearer_auth(&org.key)
            .json(&json!({ "since": "2000-01-01T00:00:00Z" })),
    )
    .await;
    let id = started["id"].as_str().expect("id").to_owned();
    assert_eq!(started["total"], EVENTS);
    // Paced at 50 a second: 4 s in all. Kill it a little way in.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let progress = recovery(&client, &first.base, &org.key, &id).await;
        if progress["delivered"].as_u64().is_some_and(|d| d >= 20) {
            assert!(
                progress["pending"].as_u64().is_some_and(|p| p > 0),
                "killed midway"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {progress}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_hard(&mut first);

    let second = start(&vars(&db));
    wait_ready(&client, &second.base).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let progress = recovery(&client, &second.base, &org.key, &id).await;
        if progress["status"] == "completed" {
            break progress;
        }
        assert!(Instant::now() < deadline, "never completed: {progress}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (done["delivered"].clone(), done["failed"].clone()),
        (json!(EVENTS), json!(0))
    );
    let arrived: HashSet<String> = receiver
        .received()
        .iter()
        .filter(|r| r.header("x-webhook-attempt") != Some("1"))
        .filter_map(|r| r.header("x-webhook-event-id").map(str::to_owned))
        .collect();
    assert_eq!(
        arrived.len(),
        EVENTS,
        "every event of the recovery delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_a_recovery_without_sending_an_event_twice() {
    let Some(db) = verihook_testkit::TestDatabase::postgres_or_skip(
        "two_nodes_share_a_recovery_without_sending_an_event_twice",
    )
    .await
    else {
        return;
    };
    let receiver = Receiver::http().await;
    receiver.always(Reply::Status(503));
    let node_vars = || {
        let mut vars = vars_for(db.url().to_owned(), ADMIN);
        vars.extend([
            ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("VERIHOOK_RETRY_SCHEDULE", "".into()),
            ("VERIHOOK_RATE_LIMIT", "0".into()),
        ]);
        vars
    };
    let (a, b) = (start(&node_vars()), start(&node_vars()));
    let client = reqwest::Client::new();
    for n in [&a, &b] {
        wait_ready(&client, &n.base).await;
    }
    let org = org_sending_to(&client, &a.base, ADMIN, &receiver.url).await;
    for i in 0..EVENTS {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        call(
            client
                .post(format!("{base}/v1/customers"))
                .bearer_auth(&org.key)
                .json(&json!({ "type": "INDIVIDUAL", "email": format!("t{i}@example.com"), "firstName": "T", "lastName": "N" })),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.received().len() < EVENTS {
        assert!(Instant::now() < deadline, "not every event tried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_all_failed(&client, &a.base, &org.key).await;
    receiver.always(Reply::Status(200));
    let started = call(
        client
            .post(format!("{}/v1/events/recover", b.base))
            .bearer_auth(&org.key)
            .json(&json!({ "since": "2000-01-01T00:00:00Z" })),
    )
    .await;
    let id = started["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if recovery(&client, &a.base, &org.key, &id).await["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut sends = std::collections::HashMap::<String, usize>::new();
    for r in receiver.received() {
        if r.header("x-webhook-attempt") != Some("1") {
            let id = r
                .header("x-webhook-event-id")
                .unwrap_or_default()
                .to_owned();
            *sends.entry(id).or_default() += 1;
        }
    }
    assert_eq!(sends.len(), EVENTS, "every event recovered");
    let twice: Vec<_> = sends.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "sent twice within the recovery: {twice:?}"
    );
}

/// Customers created by 16 clients at once, `n` in all.
async fn create_customers(client: &reqwest::Client, base: &str, key: &str, n: usize) {
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..16 {
        let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
        clients.spawn(async move {
            for i in (c..n).step_by(16) {
                call(
                    client
                        .post(format!("{base}/v1/customers"))
                        .bearer_auth(&key)
                        .json(&json!({ "type": "INDIVIDUAL", "email": format!("p{i}@example.com"), "firstName": "P", "lastName": "R" })),
                )
                .await;
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("a client");
    }
}

const PACED_EVENTS: usize = 5_000;
/// Requests a second the receiver of the paced recovery takes; it answers 503 above.
const CAPACITY: u32 = 200;
/// From when on the pace counts as settled (it climbs from 10 a second by 10 a second).
const SETTLED_AFTER: Duration = Duration::from_secs(25);

/// A recovery of 5,000 failed events to a receiver that takes only ~200 requests a
/// second (CONTRACT §9: paced so as not to knock it over): every event delivered, none
/// twice, and once the pace has settled, few 503s. The figures are printed
/// (`--nocapture`) and written in docs/performance.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_paces_itself_to_what_the_receiver_takes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::http().await;
    receiver.always(Reply::Status(503));
    let client = reqwest::Client::new();
    let server = start(&vars(&dir.path().join("paced.db")));
    wait_ready(&client, &server.base).await;
    let org = org_sending_to(&client, &server.base, ADMIN, &receiver.url).await;
    create_customers(&client, &server.base, &org.key, PACED_EVENTS).await;
    wait_failed(&client, &server.base, &org.key, PACED_EVENTS).await;

    // The recovery's 503s are retried, as any failed attempt.
    let endpoints = call(
        client
            .get(format!("{}/v1/endpoints", server.base))
            .bearer_auth(&org.key),
    )
    .await;
    let endpoint = endpoints["data"][0]["id"].as_str().expect("id").to_owned();
    call(
        client
            .patch(format!("{}/v1/endpoints/{endpoint}", server.base))
            .bearer_auth(&org.key)
            .json(&json!({ "retrySchedule": "1s,2s,4s,8s,16s,30s,60s" })),
    )
    .await;
    let before = receiver.received().len();
    receiver.always(Reply::Capacity(CAPACITY));
    let started_at = std::time::Instant::now();
    let started = call(
        client
            .post(format!("{}/v1/events/recover", server.base))
            .bearer_auth(&org.key)
            .json(&json!({ "since": "2000-01-01T00:00:00Z" })),
    )
    .await;
    let id = started["id"].as_str().expect("id").to_owned();
    assert_eq!(started["total"], PACED_EVENTS);
    let deadline = Instant::now() + Duration::from_secs(180);
    let done = loop {
        let progress = recovery(&client, &server.base, &org.key, &id).await;
        if progress["status"] == "completed" {
            break progress;
        }
        assert!(Instant::now() < deadline, "never completed: {progress}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = started_at.elapsed();
    assert_eq!(
        (done["delivered"].clone(), done["failed"].clone()),
        (json!(PACED_EVENTS), json!(0))
    );

    let sent = &receiver.received()[before..];
    let mut delivered = std::collections::HashMap::<&str, usize>::new();
    for r in sent.iter().filter(|r| r.status == 200) {
        *delivered
            .entry(r.header("x-webhook-event-id").unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(delivered.len(), PACED_EVENTS, "every event delivered");
    let twice = delivered.values().filter(|n| **n > 1).count();
    assert_eq!(twice, 0, "events delivered twice within the recovery");
    let refused = |rs: &[&verihook_testkit::Received]| {
        let n = rs.iter().filter(|r| r.status == 503).count();
        (n, rs.len(), n as f64 / rs.len().max(1) as f64)
    };
    let all: Vec<_> = sent.iter().collect();
    let settled: Vec<_> = sent
        .iter()
        .filter(|r| r.at.duration_since(started_at) >= SETTLED_AFTER)
        .collect();
    let (n_all, of_all, share_all) = refused(&all);
    let (n_settled, of_settled, share_settled) = refused(&settled);
    eprintln!(
        "paced recovery of {PACED_EVENTS} events to a {CAPACITY}/s receiver: completed in \
         {took:.1?} ({:.0} delivered/s); 503s: {n_all} of {of_all} requests ({:.1} %), \
         after the first {SETTLED_AFTER:?} {n_settled} of {of_settled} ({:.1} %)",
        PACED_EVENTS as f64 / took.as_secs_f64(),
        100.0 * share_all,
        100.0 * share_settled,
    );
    assert!(
        share_settled < 0.25,
        "the pace settled below what the receiver takes: {n_settled} of {of_settled} refused"
    );
}
