//! At least once across crashes: the server is SIGKILLed with hundreds of events pending
//! while the receiver is down, restarted on the same database, and every event arrives.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use verihook_testkit::Receiver;

const EVENTS: usize = 300;

fn vars(db: &std::path::Path) -> Vec<(&'static str, String)> {
    let mut vars = base_vars(db, "crash-admin");
    vars.extend([
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("VERIHOOK_DELIVERY_TIMEOUT", "1s".into()),
        // Long enough that no event runs out of attempts while the receiver is down.
        (
            "VERIHOOK_RETRY_SCHEDULE",
            "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s".into(),
        ),
    ]);
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_after_a_sigkill_and_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crash.db");
    // A port with nobody listening: the receiver is down.
    let port = Receiver::http().await.port;
    let mut first = start(&vars(&db));
    let client = reqwest::Client::new();
    wait_ready(&client, &first.base).await;
    let org = call(
        client
            .post(format!("{}/v1/admin/organizations", first.base))
            .bearer_auth("crash-admin")
            .json(&json!({ "name": "Crash" })),
    )
    .await;
    let org_id = org["id"].as_str().expect("id").to_owned();
    let key = org["apiKey"].as_str().expect("key").to_owned();
    let hook = format!("http://127.0.0.1:{port}/webhooks/verification");
    let put = client
        .put(format!(
            "{}/v1/admin/organizations/{org_id}/webhook",
            first.base
        ))
        .bearer_auth("crash-admin")
        .json(&json!({ "url": hook }))
        .send()
        .await
        .expect("sent");
    assert!(put.status().is_success());

    let creations = (0..EVENTS).map(|i| {
        let (client, base, key) = (client.clone(), first.base.clone(), key.clone());
        tokio::spawn(async move {
            let body = json!({ "type": "INDIVIDUAL", "email": format!("c{i}@example.com"), "firstName": "C", "lastName": "S" });
            call(client.post(format!("{base}/v1/customers")).bearer_auth(&key).json(&body)).await
        })
    });
    for created in creations.collect::<Vec<_>>() {
        created.await.expect("joined");
    }
    let events: Value = call(
        client
            .get(format!(
                "{}/v1/events?limit=100&deliveryStatus=pending",
                first.base
            ))
            .bearer_auth(&key),
    )
    .await;
    assert!(
        !events["data"].as_array().expect("data").is_empty(),
        "events are pending"
    );
    kill_hard(&mut first);

    let receiver = Receiver::http_on(port).await;
    let second = start(&vars(&db));
    wait_ready(&client, &second.base).await;
    receiver.wait_for(EVENTS, Duration::from_secs(60)).await;
    // Every event, by id, arrived at least once; report how many came twice.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for r in receiver.received() {
            *seen
                .entry(
                    r.header("x-webhook-event-id")
                        .unwrap_or_default()
                        .to_owned(),
                )
                .or_default() += 1;
        }
        if seen.len() == EVENTS {
            let duplicates: usize = seen.values().map(|n| n - 1).sum();
            println!("{EVENTS} events delivered after the crash; {duplicates} duplicates");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {EVENTS} distinct events",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
