//! Bulk recovery through the API (CONTRACT §9): the failed events of a window redelivered
//! once each, with progress until `completed`; the admin counterpart; bad input refused
//! by field.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use verihook_testkit::{Receiver, Reply, TestPki};

async fn wait_completed(app: &TestApp, org: &Org, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let path = format!("/v1/recoveries/{id}");
        let recovery = expect(app.as_org(org, Method::GET, &path), StatusCode::OK).await;
        if recovery["status"] == "completed" {
            return recovery;
        }
        assert!(Instant::now() < deadline, "still running: {recovery}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn failed_events_are_recovered_once_each_with_progress() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.always(Reply::Status(503));
    let app = TestApp::delivering(&pki, "").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    let mut failed = Vec::new();
    for _ in 0..5 {
        let c = app.customer(&org).await;
        let event = app.newest_event_id(&org, Some(&text(&c["id"]))).await;
        app.wait_for_status(&org, &event, "failed").await;
        failed.push(event);
    }
    receiver.always(Reply::Status(200));
    let started = expect(
        app.as_org(&org, Method::POST, "/v1/events/recover")
            .json(&json!({ "since": "2000-01-01T00:00:00Z" })),
        StatusCode::ACCEPTED,
    )
    .await;
    let id = text(&started["id"]);
    assert!(id.starts_with("rec_"));
    assert_eq!(started["total"], 5);
    let done = wait_completed(&app, &org, &id).await;
    assert_eq!(
        (
            done["delivered"].clone(),
            done["failed"].clone(),
            done["pending"].clone()
        ),
        (json!(5), json!(0), json!(0))
    );
    for event in &failed {
        app.wait_for_status(&org, event, "delivered").await;
    }
    let delivered_again = receiver
        .received()
        .iter()
        .filter(|r| r.header("x-webhook-attempt") == Some("2"))
        .count();
    assert_eq!(delivered_again, 5, "each failed event sent once more");

    let listed = expect(
        app.as_org(&org, Method::GET, "/v1/recoveries"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    let path = format!("/v1/admin/organizations/{}/events/recover", org.id);
    let again = expect(
        app.admin(Method::POST, &path)
            .json(&json!({ "since": "2000-01-01T00:00:00Z" })),
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        (again["total"].clone(), again["status"].clone()),
        (json!(0), json!("completed"))
    );
}

#[tokio::test]
async fn a_bad_recovery_request_names_its_field() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    for (body, field) in [
        (json!({}), "since"),
        (json!({ "since": "yesterday" }), "since"),
        (
            json!({ "since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z" }),
            "until",
        ),
        (
            json!({ "since": "2025-01-01T00:00:00Z", "type": "customer.deleted_forever" }),
            "type",
        ),
        (
            json!({ "since": "2025-01-01T00:00:00Z", "endpointId": "nope" }),
            "endpointId",
        ),
    ] {
        expect_error(
            app.as_org(&org, Method::POST, "/v1/events/recover")
                .json(&body),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(field),
        )
        .await;
    }
    expect_error(
        app.as_org(&org, Method::POST, "/v1/events/recover").json(
            &json!({ "since": "2025-01-01T00:00:00Z", "endpointId": "ep_000000000000000000000000" }),
        ),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    expect_error(
        app.as_org(
            &org,
            Method::GET,
            "/v1/recoveries/rec_000000000000000000000000",
        ),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
}

/// `autoRecover` (the default): once the receiver is back, the first success (here a new
/// event) brings every event that failed meanwhile, with no API call; with `autoRecover`
/// off, failed events stay failed.
#[tokio::test]
async fn failed_events_come_back_by_themselves_unless_auto_recover_is_off() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.always(Reply::Status(503));
    let app = TestApp::delivering(&pki, "").await;
    let (auto, _) = app.org_sending_to(&receiver.url).await;
    let (manual, _) = app.org_sending_to(&receiver.url).await;
    let endpoints = expect(
        app.as_org(&manual, Method::GET, "/v1/endpoints"),
        StatusCode::OK,
    )
    .await;
    let path = format!("/v1/endpoints/{}", text(&endpoints["data"][0]["id"]));
    expect(
        app.as_org(&manual, Method::PATCH, &path)
            .json(&json!({ "autoRecover": false })),
        StatusCode::OK,
    )
    .await;
    let mut failed = Vec::new();
    for org in [&auto, &manual] {
        for _ in 0..10 {
            let c = app.customer(org).await;
            let event = app.newest_event_id(org, Some(&text(&c["id"]))).await;
            app.wait_for_status(org, &event, "failed").await;
            failed.push((org, event));
        }
    }
    receiver.always(Reply::Status(200));
    for org in [&auto, &manual] {
        let c = app.customer(org).await;
        let event = app.newest_event_id(org, Some(&text(&c["id"]))).await;
        app.wait_for_status(org, &event, "delivered").await;
    }
    for (org, event) in &failed[..10] {
        app.wait_for_status(org, event, "delivered").await;
    }
    let recoveries = expect(
        app.as_org(&auto, Method::GET, "/v1/recoveries"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(recoveries["data"][0]["automatic"], true);
    assert_eq!(recoveries["data"][0]["total"], 10);
    for (org, event) in &failed[10..] {
        let shown = expect(
            app.as_org(org, Method::GET, &format!("/v1/events/{event}")),
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            shown["deliveryStatus"], "failed",
            "autoRecover off: left alone"
        );
    }
    let none = expect(
        app.as_org(&manual, Method::GET, "/v1/recoveries"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(none["data"].as_array().map(Vec::len), Some(0));
}

/// With no traffic at all after the receiver is back, the probe (30 s after the incident
/// opened) finds it, and every failed event follows, with no API call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_finds_the_receiver_back_and_brings_every_failed_event() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.always(Reply::Status(503));
    let app = TestApp::delivering_with(&pki, "", |c| c.rate_limit = 0, Default::default()).await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    let mut failed = Vec::new();
    for _ in 0..100 {
        let c = app.customer(&org).await;
        failed.push(app.newest_event_id(&org, Some(&text(&c["id"]))).await);
    }
    for event in &failed {
        app.wait_for_status(&org, event, "failed").await;
    }
    receiver.always(Reply::Status(200));
    let back = Instant::now();
    let deadline = back + Duration::from_secs(90);
    for event in &failed {
        loop {
            let path = format!("/v1/events/{event}");
            let shown = expect(app.as_org(&org, Method::GET, &path), StatusCode::OK).await;
            if shown["deliveryStatus"] == "delivered" {
                break;
            }
            assert!(Instant::now() < deadline, "{event} not back within 90 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!(
        "all 100 delivered {:?} after the receiver came back",
        back.elapsed()
    );
    let recoveries = expect(
        app.as_org(&org, Method::GET, "/v1/recoveries"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(recoveries["data"][0]["automatic"], true);
    assert_eq!(
        recoveries["data"][0]["total"], 99,
        "the probed event was delivered by the probe"
    );
}
