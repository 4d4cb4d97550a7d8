use super::expected_signature;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use verihook_testkit::{Receiver, TestPki};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_change_is_delivered_signed_with_every_header() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let app = TestApp::delivering(&pki, "50ms").await;
    let (org, secret) = app.org_sending_to(&receiver.url).await;
    let customer = app.customer(&org).await;

    let got = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(got.path, "/webhooks/verification");
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert!(got
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("verihook/")));
    let timestamp = got.header("x-webhook-timestamp").expect("timestamp");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let sent: u64 = timestamp.parse().expect("unix seconds");
    assert!(now.abs_diff(sent) <= 5, "timestamp {sent} vs now {now}");
    assert_eq!(
        got.header("x-webhook-signature"),
        Some(expected_signature(&secret, timestamp, &got.body).as_str())
    );
    let body: Value = serde_json::from_slice(&got.body).expect("JSON");
    assert_eq!(body["type"], "customer.created");
    assert_eq!(body["payload"]["customerId"], customer["id"]);
    let event_id = text(&body["metadata"]["eventId"]);
    assert_eq!(got.header("x-webhook-event-id"), Some(event_id.as_str()));
    assert_eq!(got.header("x-webhook-event-type"), Some("customer.created"));
    assert_eq!(got.header("x-webhook-attempt"), Some("1"));
    assert_eq!(
        got.header("x-webhook-sequence"),
        Some("1"),
        "the customer's first"
    );

    let shown = app.wait_for_status(&org, &event_id, "delivered").await;
    assert_eq!(shown["attempts"][0]["statusCode"], 200);
    assert_eq!(shown["attempts"][0]["attempt"], 1);
    // The bytes sent are the stored bytes, which the API shows verbatim.
    let raw = app
        .as_org(&org, Method::GET, &format!("/v1/events/{event_id}"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    let sent_body = std::str::from_utf8(&got.body).expect("UTF-8");
    assert!(
        raw.starts_with(&format!("{{\"event\":{sent_body},")),
        "{raw}"
    );
}

#[tokio::test]
async fn every_event_of_a_change_arrives_and_is_marked_delivered() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let app = TestApp::delivering(&pki, "50ms").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    let c = app.customer(&org).await;
    let path = format!("/v1/sandbox/customers/{}/status", text(&c["id"]));
    expect(
        app.as_org(&org, Method::POST, &path)
            .json(&serde_json::json!({ "status": "ACTIVE" })),
        StatusCode::OK,
    )
    .await;
    let got = receiver.wait_for(3, WAIT).await;
    let header =
        |r: &verihook_testkit::Received, name| r.header(name).unwrap_or_default().to_owned();
    let mut numbered: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            (
                header(r, "x-webhook-sequence"),
                header(r, "x-webhook-event-type"),
            )
        })
        .collect();
    numbered.sort();
    let expected = [
        ("1", "customer.created"),
        ("2", "customer.status_changed"),
        ("3", "verification.completed"),
    ]
    .map(|(n, t)| (n.to_owned(), t.to_owned()));
    assert_eq!(numbered, expected, "numbered in the documented order");
    let listed = app
        .as_org(
            &org,
            Method::GET,
            &format!("/v1/events?customerId={}", text(&c["id"])),
        )
        .send()
        .await
        .expect("sent")
        .json::<Value>()
        .await
        .expect("JSON");
    let sequences: Vec<&Value> = listed["data"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| &e["sequence"])
        .collect();
    assert_eq!(sequences, [3, 2, 1], "the event log, newest first");
    for r in &got {
        let id = r.header("x-webhook-event-id").expect("id").to_owned();
        app.wait_for_status(&org, &id, "delivered").await;
    }
}

#[tokio::test]
async fn events_wait_for_a_webhook_url_then_go() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let app = TestApp::delivering(&pki, "50ms").await;
    let org = app.org("sandbox").await;
    app.customer(&org).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.received().is_empty());
    let path = format!("/v1/admin/organizations/{}/webhook", org.id);
    expect(
        app.admin(Method::PUT, &path)
            .json(&serde_json::json!({ "url": receiver.url })),
        StatusCode::OK,
    )
    .await;
    receiver.wait_for(1, WAIT).await;
}
