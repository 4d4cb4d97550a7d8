//! The right to erasure through the API (CONTRACT §11): `DELETE /v1/customers/{id}`.

use crate::delivery::expected_signature;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};
use verihook_testkit::{Receiver, Reply, TestPki};

const WAIT: Duration = Duration::from_secs(15);

/// A customer whose first event is still being retried is erased: from then on the API
/// answers 404 for it, its stored events show `null` in place of the email and names, the
/// retry and a redelivery carry the erased body (signed afresh, verifying),
/// `customer.deleted` follows as its sequence 2, and the audit trail names the key.
#[tokio::test]
async fn a_deleted_customer_is_erased_from_the_api_and_from_what_is_sent() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.always(Reply::Status(500));
    let app = TestApp::delivering(&pki, "1s,1s,1s,1s").await;
    let (org, secret) = app.org_sending_to(&receiver.url).await;
    let other = app.org("sandbox").await;
    let c = app.customer(&org).await;
    let id = text(&c["id"]);
    let path = format!("/v1/customers/{id}");
    receiver.wait_for(1, WAIT).await;
    let created = app.newest_event_id(&org, Some(&id)).await;

    expect_error(
        app.as_org(&other, Method::DELETE, &path),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let erased_at = Instant::now();
    expect(
        app.as_org(&org, Method::DELETE, &path),
        StatusCode::NO_CONTENT,
    )
    .await;
    receiver.always(Reply::Status(200));

    expect_error(
        app.as_org(&org, Method::GET, &path),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    expect_error(
        app.as_org(&org, Method::DELETE, &path),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let patch = app
        .as_org(&org, Method::PATCH, &path)
        .json(&complete_data());
    expect_error(patch, StatusCode::NOT_FOUND, None).await;
    let listed = expect(
        app.as_org(&org, Method::GET, "/v1/customers"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        listed["data"],
        serde_json::json!([]),
        "an erased customer is not listed"
    );

    let shown = app.wait_for_status(&org, &created, "delivered").await;
    let payload = &shown["event"]["payload"];
    for field in ["email", "firstName", "lastName"] {
        assert_eq!(payload[field], Value::Null, "{field} in {payload}");
    }
    assert_eq!(payload["customerId"], id.as_str());
    let redeliver = format!("/v1/events/{created}/redeliver");
    expect(
        app.as_org(&org, Method::POST, &redeliver),
        StatusCode::ACCEPTED,
    )
    .await;

    // The retry, customer.deleted and the redelivery, all after the erasure.
    let deadline = Instant::now() + WAIT;
    let sent_after = loop {
        let after: Vec<_> = receiver
            .received()
            .into_iter()
            .filter(|r| r.at > erased_at && r.status == 200)
            .collect();
        if after.len() >= 3 {
            break after;
        }
        assert!(
            Instant::now() < deadline,
            "only {} sent after the erasure",
            after.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut deleted = None;
    for r in &sent_after {
        let body = std::str::from_utf8(&r.body).expect("UTF-8");
        for personal in ["jane.smith@example.com", "Jane", "Smith"] {
            assert!(
                !body.contains(personal),
                "{personal} sent after the erasure: {body}"
            );
        }
        let timestamp = r.header("x-webhook-timestamp").expect("timestamp");
        let signature = expected_signature(&secret, timestamp, &r.body);
        assert_eq!(r.header("x-webhook-signature"), Some(signature.as_str()));
        if r.header("x-webhook-event-type") == Some("customer.deleted") {
            deleted = Some(r.clone());
        }
    }
    let deleted = deleted.expect("customer.deleted was sent");
    assert_eq!(deleted.header("x-webhook-sequence"), Some("2"));
    let body: Value = serde_json::from_slice(&deleted.body).expect("JSON");
    assert_eq!(body["payload"]["customerId"], id.as_str());
    assert_eq!(body["payload"]["customerType"], "INDIVIDUAL");
    assert!(body["payload"]["deletedAt"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    let trail = expect(app.admin(Method::GET, "/v1/admin/erasures"), StatusCode::OK).await;
    assert_eq!(trail["data"][0]["customerId"], id.as_str());
    assert_eq!(trail["data"][0]["organizationId"], org.id.as_str());
    assert!(
        text(&trail["data"][0]["erasedBy"]).starts_with("key_"),
        "{trail}"
    );
    let trail_text = trail.to_string();
    assert!(
        !trail_text.contains("jane"),
        "no personal data in the trail: {trail_text}"
    );
}

/// The account manager erases any organization's customer; the trail says `admin`.
#[tokio::test]
async fn the_admin_erases_a_customer_of_any_organization() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let c = app.customer(&org).await;
    let id = text(&c["id"]);
    let path = format!("/v1/admin/customers/{id}");
    expect(app.admin(Method::DELETE, &path), StatusCode::NO_CONTENT).await;
    let own = format!("/v1/customers/{id}");
    expect_error(
        app.as_org(&org, Method::GET, &own),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let trail = expect(app.admin(Method::GET, "/v1/admin/erasures"), StatusCode::OK).await;
    assert_eq!(trail["data"][0]["erasedBy"], "admin");
    let types = app.event_types(&org, &id).await;
    assert_eq!(types, ["customer.created", "customer.deleted"]);
    expect_error(
        app.as_org(&org, Method::DELETE, &own),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
}
