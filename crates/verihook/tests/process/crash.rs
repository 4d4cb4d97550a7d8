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
        // The load goes through one organization as fast as it can; limits are not tested.
        ("VERIHOOK_RATE_LIMIT", "0".into()),
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

/// The event ids a receiver got, each with its type.
fn arrived(receiver: &Receiver) -> HashMap<String, String> {
    receiver
        .received()
        .iter()
        .map(|r| {
            let id = r
                .header("x-webhook-event-id")
                .unwrap_or_default()
                .to_owned();
            let kind = r
                .header("x-webhook-event-type")
                .unwrap_or_default()
                .to_owned();
            (id, kind)
        })
        .collect()
}

/// Three endpoints of one organization, each with its own filter, all down while events
/// pile up; the server is SIGKILLed and restarted; each endpoint then gets every event of
/// its types (at least once) and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_endpoint_gets_its_events_after_a_sigkill_and_restart() {
    const CUSTOMERS: usize = 60;
    const UPDATED: usize = 30;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("fan-out-crash.db");
    let mut ports = Vec::new();
    for _ in 0..3 {
        ports.push(Receiver::http().await.port);
    }
    let hook = |port: u16| format!("http://127.0.0.1:{port}/webhooks/verification");
    let mut first = start(&vars(&db));
    let client = reqwest::Client::new();
    wait_ready(&client, &first.base).await;
    let org = org_sending_to(&client, &first.base, "crash-admin", &hook(ports[0])).await;
    for (port, kind) in [
        (ports[1], "customer.created"),
        (ports[2], "customer.updated"),
    ] {
        let body = json!({ "url": hook(port), "eventTypes": [kind] });
        call(
            client
                .post(format!("{}/v1/endpoints", first.base))
                .bearer_auth(&org.key)
                .json(&body),
        )
        .await;
    }
    for i in 0..CUSTOMERS {
        let body = json!({ "type": "INDIVIDUAL", "email": format!("c{i}@example.com"), "firstName": "C", "lastName": "S" });
        let created = call(
            client
                .post(format!("{}/v1/customers", first.base))
                .bearer_auth(&org.key)
                .json(&body),
        )
        .await;
        if i < UPDATED {
            let path = format!(
                "{}/v1/customers/{}",
                first.base,
                created["id"].as_str().expect("id")
            );
            call(
                client
                    .patch(path)
                    .bearer_auth(&org.key)
                    .json(&json!({ "firstName": "D" })),
            )
            .await;
        }
    }
    kill_hard(&mut first);

    let mut receivers = Vec::new();
    for port in &ports {
        receivers.push(Receiver::http_on(*port).await);
    }
    let second = start(&vars(&db));
    wait_ready(&client, &second.base).await;
    let expected = [CUSTOMERS + UPDATED, CUSTOMERS, UPDATED];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<HashMap<String, String>> = receivers.iter().map(arrived).collect();
        if got.iter().zip(expected).all(|(g, n)| g.len() >= n) {
            assert_eq!(got[0].len(), CUSTOMERS + UPDATED);
            assert!(
                got[1].values().all(|t| t == "customer.created"),
                "{:?}",
                got[1]
            );
            assert!(
                got[2].values().all(|t| t == "customer.updated"),
                "{:?}",
                got[2]
            );
            assert_eq!((got[1].len(), got[2].len()), (CUSTOMERS, UPDATED));
            // The filtered endpoints got the very events the default one got.
            assert!(got[1]
                .keys()
                .chain(got[2].keys())
                .all(|id| got[0].contains_key(id)));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "distinct events per endpoint: {:?} of {expected:?}",
            got.iter().map(HashMap::len).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A URL stored while `--allow-http` was on is refused once the operator turns it off:
/// the rule is judged at each attempt, not only when the URL is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_urls_stop_when_allow_http_is_turned_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("http-off.db");
    let receiver = Receiver::http().await;
    let mut first = start(&vars(&db));
    let client = reqwest::Client::new();
    wait_ready(&client, &first.base).await;
    let org = org_sending_to(&client, &first.base, "crash-admin", &receiver.url).await;
    terminate_and_wait(&mut first);

    // The same server without --allow-http, one attempt per event.
    let mut strict = base_vars(&db, "crash-admin");
    strict.retain(|(name, _)| *name != "VERIHOOK_ALLOW_HTTP");
    strict.extend([
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("VERIHOOK_RETRY_SCHEDULE", String::new()),
    ]);
    let second = start(&strict);
    wait_ready(&client, &second.base).await;
    let body = json!({ "type": "INDIVIDUAL", "email": "h@example.com", "firstName": "H", "lastName": "T" });
    call(
        client
            .post(format!("{}/v1/customers", second.base))
            .bearer_auth(&org.key)
            .json(&body),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page: Value = call(
            client
                .get(format!("{}/v1/events?deliveryStatus=failed", second.base))
                .bearer_auth(&org.key),
        )
        .await;
        if let Some(id) = page["data"][0]["id"].as_str() {
            let event: Value = call(
                client
                    .get(format!("{}/v1/events/{id}", second.base))
                    .bearer_auth(&org.key),
            )
            .await;
            assert_eq!(event["attempts"][0]["errorClass"], "blocked", "{event}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        receiver.received().is_empty(),
        "nothing went over plain http"
    );
}
