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

/// A client stalled in the middle of its request does not hold SIGTERM: the process waits
/// for it at most the shutdown timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_for_a_stalled_client_past_the_shutdown_timeout() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut vars = base_vars(&dir.path().join("stall.db"), "stall-admin");
    vars.extend([
        ("VERIHOOK_SHUTDOWN_TIMEOUT", "1s".into()),
        // Long, so that only the shutdown timeout can end the stalled request in time.
        ("VERIHOOK_HEADER_READ_TIMEOUT", "60s".into()),
    ]);
    let mut running = start(&vars);
    wait_ready(&reqwest::Client::new(), &running.base).await;
    let address = running.base.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connected");
    let head = "POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\
                Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"type\":";
    stalled.write_all(head.as_bytes()).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = Instant::now();
    let status = terminate_and_wait(&mut running);
    assert!(status.success(), "exit status {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "exited after {:?}",
        stopping.elapsed()
    );
}
