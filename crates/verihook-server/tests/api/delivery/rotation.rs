//! Rotation without a failed verification: during the overlap a receiver holding only the
//! old secret and one holding only the new secret both verify every delivery; after
//! completion only the new one does.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use verihook_receiver::{Scheme, Verifier};
use verihook_testkit::{Received, Receiver, TestPki};

const WAIT: Duration = Duration::from_secs(10);

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("seconds")
}

fn verifies(secret: &str, scheme: Scheme, r: &Received) -> bool {
    Verifier::new(secret)
        .with_scheme(scheme)
        .check_request_at(now(), |name| r.header(name), &r.body)
        .is_ok()
}

#[tokio::test]
async fn old_and_new_secrets_both_verify_during_the_overlap_and_only_the_new_after() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let app = TestApp::delivering(&pki, "50ms").await;
    let (org, old) = app.org_sending_to(&receiver.url).await;
    let rotated = expect(
        app.as_org(&org, Method::POST, "/v1/webhook/rotate-secret"),
        StatusCode::OK,
    )
    .await;
    let new = text(&rotated["secret"]);
    assert_ne!(new, old);
    let expires: Value = rotated["previousSecretExpiresAt"].clone();
    assert!(
        expires.as_str().is_some_and(|t| t.ends_with('Z')),
        "{rotated}"
    );

    app.customer(&org).await;
    let during = receiver.wait_for(1, WAIT).await.remove(0);
    assert!(
        verifies(&old, Scheme::Verihook, &during),
        "the old secret still verifies"
    );
    assert!(
        verifies(&new, Scheme::Verihook, &during),
        "the new one verifies -Next"
    );
    assert!(during.header("x-webhook-signature-next").is_some());

    expect(
        app.as_org(&org, Method::POST, "/v1/webhook/rotate-secret/complete"),
        StatusCode::OK,
    )
    .await;
    app.customer(&org).await;
    let after = receiver.wait_for(2, WAIT).await.remove(1);
    assert!(verifies(&new, Scheme::Verihook, &after));
    assert!(
        !verifies(&old, Scheme::Verihook, &after),
        "the old secret signs no more"
    );
    assert!(after.header("x-webhook-signature-next").is_none());
}

#[tokio::test]
async fn a_standard_webhooks_endpoint_lists_both_signatures_new_first() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let app = TestApp::delivering(&pki, "50ms").await;
    let org = app.org("sandbox").await;
    let body = json!({ "url": receiver.url, "signatureScheme": "standard-webhooks" });
    let created = expect(
        app.as_org(&org, Method::POST, "/v1/endpoints").json(&body),
        StatusCode::CREATED,
    )
    .await;
    let (id, old) = (text(&created["id"]), text(&created["secret"]));
    let path = format!("/v1/endpoints/{id}/rotate-secret");
    let rotated = expect(
        app.as_org(&org, Method::POST, &path)
            .json(&json!({ "overlap": "1h" })),
        StatusCode::OK,
    )
    .await;
    let new = text(&rotated["secret"]);
    app.customer(&org).await;
    let got = receiver.wait_for(1, WAIT).await.remove(0);
    let listed: Vec<&str> = got
        .header("webhook-signature")
        .expect("signatures")
        .split(' ')
        .collect();
    assert_eq!(listed.len(), 2);
    let key = verihook_receiver::standard_webhooks::key(&new).expect("base64");
    let event_id = got.header("webhook-id").expect("id");
    let ts: i64 = got
        .header("webhook-timestamp")
        .expect("timestamp")
        .parse()
        .expect("seconds");
    assert!(
        verihook_receiver::standard_webhooks::verify(&key, event_id, ts, &got.body, listed[0]),
        "the new secret's signature comes first"
    );
    assert!(verifies(&old, Scheme::StandardWebhooks, &got));
    assert!(verifies(&new, Scheme::StandardWebhooks, &got));
}

#[tokio::test]
async fn no_overlap_switches_at_once_and_a_bad_overlap_is_refused() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let app = TestApp::delivering(&pki, "50ms").await;
    let (org, old) = app.org_sending_to(&receiver.url).await;
    let path = format!("/v1/admin/organizations/{}/webhook/rotate-secret", org.id);
    for bad in ["soon", "721h"] {
        expect_error(
            app.admin(Method::POST, &path)
                .json(&json!({ "overlap": bad })),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("overlap"),
        )
        .await;
    }
    let rotated = expect(
        app.admin(Method::POST, &path)
            .json(&json!({ "overlap": "0s" })),
        StatusCode::OK,
    )
    .await;
    let new = text(&rotated["secret"]);
    app.customer(&org).await;
    let got = receiver.wait_for(1, WAIT).await.remove(0);
    assert!(verifies(&new, Scheme::Verihook, &got));
    assert!(!verifies(&old, Scheme::Verihook, &got));
    let stranger = app.org("sandbox").await;
    let other = format!(
        "/v1/admin/organizations/{}/webhook/rotate-secret",
        stranger.id
    );
    expect_error(app.admin(Method::POST, &other), StatusCode::NOT_FOUND, None).await;
}
