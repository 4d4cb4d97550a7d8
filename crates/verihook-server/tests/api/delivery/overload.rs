//! Overload said out loud: while deliveries lag beyond `--max-lag`, changes are refused
//! with 503 and `Retry-After`, write nothing, and every accepted change is delivered.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use verihook_server::delivery::Limits;
use verihook_testkit::{Receiver, Reply, TestPki};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_server_refuses_changes_and_delivers_what_it_accepted() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.always(Reply::Delay(Duration::from_millis(50), 200));
    // Two sending slots in all (far below the organization's own limit): the server, not
    // the receiver, is what cannot keep up.
    let limits = Limits {
        in_flight: 2,
        per_endpoint: 32,
        ..Limits::default()
    };
    let max_lag = Duration::from_millis(300);
    let app = TestApp::delivering_with(&pki, "1s", |c| c.max_lag = max_lag, limits).await;
    let (org, _) = app.org_sending_to(&receiver.url).await;

    let (mut accepted, mut refused) = (Vec::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while refused < 3 {
        assert!(Instant::now() < deadline, "no 503 within 30 s");
        let response = app
            .as_org(&org, Method::POST, "/v1/customers")
            .json(&jane())
            .send()
            .await
            .expect("sent");
        match response.status() {
            StatusCode::CREATED => {
                let body: Value = response.json().await.expect("JSON");
                accepted.push(text(&body["id"]));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                assert!(
                    retry_after.is_some_and(|s| s >= 1),
                    "Retry-After: {retry_after:?}"
                );
                let body: Value = response.json().await.expect("JSON");
                assert_eq!(body["error"]["code"], "overloaded", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Every accepted change is delivered, once the backlog drains.
    let arrived = receiver
        .wait_for(accepted.len(), Duration::from_secs(60))
        .await;
    let delivered: HashSet<String> = arrived
        .iter()
        .filter_map(|r| r.header("x-webhook-event-id").map(str::to_owned))
        .collect();
    assert_eq!(delivered.len(), accepted.len());

    // The refused requests wrote nothing: the organization has exactly the accepted ones.
    let mut stored = HashSet::new();
    let mut path = "/v1/customers?limit=100".to_owned();
    loop {
        let page = expect(app.as_org(&org, Method::GET, &path), StatusCode::OK).await;
        for c in page["data"].as_array().expect("a list") {
            stored.insert(text(&c["id"]));
        }
        match page["nextCursor"].as_str() {
            Some(next) => path = format!("/v1/customers?limit=100&after={next}"),
            None => break,
        }
    }
    assert_eq!(stored, accepted.into_iter().collect::<HashSet<_>>());

    // Caught up, the server lets changes in again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app
            .as_org(&org, Method::POST, "/v1/customers")
            .json(&jane())
            .send()
            .await
            .expect("sent")
            .status();
        if status == StatusCode::CREATED {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            Instant::now() < deadline,
            "still refusing after the backlog drained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = app
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("verihook_api_refused_for_lag_total ") && !l.ends_with(" 0")),
        "the refusals are counted"
    );
}
