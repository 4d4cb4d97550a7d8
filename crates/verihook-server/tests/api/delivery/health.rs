//! An endpoint's health in the API (CONTRACT §9): failing with its first finally failed
//! event, counting those since, healthy again at the next successful delivery.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use verihook_testkit::{Receiver, Reply, TestPki};

async fn webhook_health(app: &TestApp, org: &Org) -> Value {
    let webhook = expect(app.as_org(org, Method::GET, "/v1/webhook"), StatusCode::OK).await;
    webhook["health"].clone()
}

#[tokio::test]
async fn an_endpoint_turns_failing_and_back_to_healthy() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.always(Reply::Status(503));
    // No retries: each event fails at its first attempt.
    let app = TestApp::delivering(&pki, "").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    let health = webhook_health(&app, &org).await;
    assert_eq!(health["state"], "healthy", "{health}");
    assert_eq!(health["failedEvents"], 0);
    assert!(health["failingSince"].is_null() && health["lastSuccessAt"].is_null());

    for _ in 0..3 {
        let c = app.customer(&org).await;
        let event = app.newest_event_id(&org, Some(&text(&c["id"]))).await;
        app.wait_for_status(&org, &event, "failed").await;
    }
    let health = webhook_health(&app, &org).await;
    assert_eq!(health["state"], "failing", "{health}");
    assert_eq!(health["failedEvents"], 3);
    assert!(health["failingSince"].is_string() && health["lastFailureAt"].is_string());
    let endpoints = expect(
        app.as_org(&org, Method::GET, "/v1/endpoints"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        endpoints["data"][0]["health"], health,
        "the same in the endpoint view"
    );

    receiver.always(Reply::Status(200));
    let c = app.customer(&org).await;
    let event = app.newest_event_id(&org, Some(&text(&c["id"]))).await;
    app.wait_for_status(&org, &event, "delivered").await;
    let health = webhook_health(&app, &org).await;
    assert_eq!(health["state"], "healthy", "{health}");
    assert_eq!(health["failedEvents"], 0);
    assert!(health["failingSince"].is_null() && health["lastSuccessAt"].is_string());
    receiver.wait_for(4, Duration::from_secs(5)).await;
}
