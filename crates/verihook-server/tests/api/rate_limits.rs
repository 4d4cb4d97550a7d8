//! Per-organization rate limits (CONTRACT §8): a burst over the limit gets 429 with
//! `Retry-After`, a 429 changes nothing, every `/v1` answer carries `RateLimit-*`, and one
//! organization's burst leaves another's requests alone.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

fn header(response: &reqwest::Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.parse().ok()
}

#[tokio::test]
async fn a_burst_over_the_limit_gets_429s_and_creates_exactly_the_201s() {
    let app = TestApp::spawn_with(|c| c.rate_limit = 5).await;
    let org = app.org("sandbox").await;
    let other = app.org("sandbox").await;
    let calls = (0..40).map(|i| {
        let mut body = jane();
        body["email"] = format!("burst{i}@example.com").into();
        app.as_org(&org, Method::POST, "/v1/customers")
            .json(&body)
            .send()
    });
    let mut created = 0;
    let mut limited = 0;
    for response in futures_util::future::join_all(calls).await {
        let response = response.expect("sent");
        assert_eq!(header(&response, "ratelimit-limit"), Some(10), "burst 2N");
        assert!(header(&response, "ratelimit-remaining").is_some());
        assert!(header(&response, "ratelimit-reset").is_some());
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                assert!(header(&response, "retry-after").is_some_and(|s| s >= 1));
                let body: serde_json::Value = response.json().await.expect("json");
                assert_eq!(body["error"]["code"], "rate_limited");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited > 0, "40 at once exceed a burst of 10");
    assert!((10..40).contains(&created), "{created} created");
    // The other organization's bucket is untouched.
    app.customer(&other).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let response = app
            .as_org(&org, Method::GET, "/v1/customers?limit=100")
            .send()
            .await
            .expect("sent");
        if response.status() == StatusCode::OK {
            let page: serde_json::Value = response.json().await.expect("json");
            break page["data"].as_array().expect("data").len();
        }
        assert!(Instant::now() < deadline, "still limited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(listed, created, "each 201 is a customer, each 429 is none");
}

#[tokio::test]
async fn the_admin_token_has_its_own_limit_off_by_default() {
    let app = TestApp::spawn_with(|c| c.rate_limit = 1).await;
    for _ in 0..5 {
        expect(
            app.admin(Method::POST, "/v1/admin/organizations")
                .json(&serde_json::json!({ "name": "Many" })),
            StatusCode::CREATED,
        )
        .await;
    }
    let limited = TestApp::spawn_with(|c| c.admin_rate_limit = 1).await;
    let calls = (0..10).map(|_| limited.admin(Method::GET, "/v1/admin/events").send());
    let statuses: Vec<StatusCode> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("sent").status())
        .collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(ok >= 2, "a burst of two: {statuses:?}");
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}
