//! PostgreSQL stopped under a running node (a server of this test's own, so that nothing
//! else loses its database): writes answer 503 within seconds instead of hanging, the node
//! recovers when the database returns, and SIGTERM exits within the shutdown timeout even
//! with the database gone.

#[allow(dead_code)]
#[path = "process/support.rs"]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::*;
use verihook_testkit::PrivatePostgres;

const ADMIN: &str = "down-admin";

async fn create(client: &reqwest::Client, base: &str, key: &str, i: usize) -> reqwest::Response {
    client
        .post(format!("{base}/v1/customers"))
        .bearer_auth(key)
        .json(&json!({ "type": "INDIVIDUAL", "email": format!("d{i}@example.com"), "firstName": "D", "lastName": "N" }))
        .send()
        .await
        .expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_down_writes_answer_503_within_seconds_and_sigterm_exits() {
    let Some(pg) = PrivatePostgres::start("with_postgres_down_writes_answer_503") else {
        return;
    };
    let mut node = start(&vars_for(pg.url(), ADMIN));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    wait_ready(&client, &node.base).await;
    let org = call(
        client
            .post(format!("{}/v1/admin/organizations", node.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": "Down" })),
    )
    .await;
    let key = org["apiKey"].as_str().expect("key").to_owned();
    assert_eq!(create(&client, &node.base, &key, 0).await.status(), 201);

    pg.stop();
    let asked = Instant::now();
    let refused = create(&client, &node.base, &key, 1).await;
    let took = asked.elapsed();
    assert_eq!(refused.status(), 503, "{:?}", refused.text().await);
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    let ready = client
        .get(format!("{}/readyz", node.base))
        .send()
        .await
        .expect("an answer");
    assert_eq!(ready.status(), 503);
    let said = ready.text().await.expect("body");
    assert!(
        said.contains("the database is not ready") && !said.to_lowercase().contains("connect"),
        "the answer, open to anyone, names no database error: {said}"
    );
    let metrics = client
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .expect("an answer");
    assert_eq!(metrics.status(), 200, "a scrape does not read the database");

    pg.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 2;
    while create(&client, &node.base, &key, i).await.status() != 201 {
        assert!(
            Instant::now() < deadline,
            "no recovery after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        i += 1;
    }

    pg.stop();
    // A write in flight while the process is asked to stop.
    let pending = tokio::spawn({
        let (client, base, key) = (client.clone(), node.base.clone(), key.clone());
        async move { create(&client, &base, &key, 1000).await.status() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = terminate_and_wait(&mut node);
    assert!(status.success(), "{status}");
    let answered = pending.await.expect("joined");
    assert_eq!(
        answered, 503,
        "the write in flight was answered before the exit"
    );
}
