//! SIGTERM lets an attempt in flight finish and records it; nothing is sent twice.

use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};
use verihook_testkit::{Receiver, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_attempt_in_flight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("term.db");
    let receiver = Receiver::http().await;
    receiver.always(Reply::Delay(Duration::from_millis(1500), 200));
    let mut vars = base_vars(&db, "term-admin");
    vars.push(("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()));
    let mut running = start(&vars);
    let client = reqwest::Client::new();
    wait_ready(&client, &running.base).await;
    let base = running.base.clone();
    let key = org_sending_to(&client, &base, "term-admin", &receiver.url)
        .await
        .key;
    let body =
        json!({ "type": "BUSINESS", "email": "t@example.com", "firstName": "T", "lastName": "S" });
    call(
        client
            .post(format!("{base}/v1/customers"))
            .bearer_auth(&key)
            .json(&body),
    )
    .await;
    receiver.wait_for(1, Duration::from_secs(10)).await;

    let stopping = Instant::now();
    let status = terminate_and_wait(&mut running);
    assert!(status.success(), "exit status {status}");
    assert!(
        stopping.elapsed() >= Duration::from_millis(500),
        "it waited for the attempt"
    );

    let again = start(&vars);
    wait_ready(&client, &again.base).await;
    let events = call(
        client
            .get(format!("{}/v1/events", again.base))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(events["data"][0]["deliveryStatus"], "delivered", "{events}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "recorded, so never sent again"
    );
}
