use super::expected_signature;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use verihook_testkit::{Receiver, Reply, TestPki};

const WAIT: Duration = Duration::from_secs(15);

/// With a single attempt allowed: the log entry of that attempt to `url`.
async fn the_only_attempt(pki: &TestPki, url: &str) -> Value {
    let app = TestApp::delivering(pki, "").await;
    let (org, _) = app.org_sending_to(url).await;
    app.customer(&org).await;
    let shown = app
        .wait_for_status(&org, &app.newest_event_id(&org, None).await, "failed")
        .await;
    shown["attempts"][0].clone()
}

#[tokio::test]
async fn a_failed_attempt_is_retried_until_it_succeeds() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.script([Reply::Status(500), Reply::Status(503)]);
    let app = TestApp::delivering(&pki, "50ms,50ms,50ms").await;
    let (org, secret) = app.org_sending_to(&receiver.url).await;
    app.customer(&org).await;
    let got = receiver.wait_for(3, WAIT).await;
    let attempts: Vec<_> = got
        .iter()
        .map(|r| r.header("x-webhook-attempt").unwrap_or_default())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    for r in &got {
        let ts = r.header("x-webhook-timestamp").expect("timestamp");
        assert_eq!(
            r.header("x-webhook-signature"),
            Some(expected_signature(&secret, ts, &r.body).as_str())
        );
        assert_eq!(r.body, got[0].body, "every attempt sends the same bytes");
    }
    let shown = app
        .wait_for_status(&org, &app.newest_event_id(&org, None).await, "delivered")
        .await;
    let log: Vec<(Value, Value)> = shown["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| (a["statusCode"].clone(), a["errorClass"].clone()))
        .collect();
    assert_eq!(
        log,
        [
            (json!(500), json!("status")),
            (json!(503), json!("status")),
            (json!(200), Value::Null)
        ]
    );
}

#[tokio::test]
async fn retries_wait_as_the_schedule_says() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.always(Reply::Status(500));
    let app = TestApp::delivering(&pki, "300ms,600ms").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    app.customer(&org).await;
    let got = receiver.wait_for(3, WAIT).await;
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, wait) in gaps.iter().zip([300, 600]) {
        let wait = Duration::from_millis(wait);
        assert!(
            *gap >= wait,
            "retried after {gap:?}, before the {wait:?} wait"
        );
        assert!(
            *gap < wait + Duration::from_secs(2),
            "retried only after {gap:?} for a {wait:?} wait"
        );
    }
    app.wait_for_status(&org, &app.newest_event_id(&org, None).await, "failed")
        .await;
    assert_eq!(receiver.received().len(), 3, "1 + 2 retries, then no more");
}

#[tokio::test]
async fn a_final_failure_is_listed_for_the_admin_and_alerted() {
    let pki = TestPki::new();
    let (receiver, alerts) = (Receiver::https(&pki).await, Receiver::https(&pki).await);
    receiver.always(Reply::Status(500));
    let alert_url = alerts.url.parse().expect("URL");
    let app = TestApp::delivering_with(
        &pki,
        "50ms",
        |c| c.alert_webhook_url = Some(alert_url),
        Default::default(),
    )
    .await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    app.customer(&org).await;
    let event_id = app.newest_event_id(&org, None).await;
    let shown = app.wait_for_status(&org, &event_id, "failed").await;
    assert_eq!(shown["attempts"].as_array().map(Vec::len), Some(2));
    let failed = expect(
        app.admin(Method::GET, "/v1/admin/events?deliveryStatus=failed"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(failed["data"][0]["id"], event_id.as_str());
    assert_eq!(failed["data"][0]["organizationId"], org.id.as_str());
    let alert = alerts.wait_for(1, WAIT).await.remove(0);
    let alert: Value = serde_json::from_slice(&alert.body).expect("JSON");
    assert_eq!(alert["alert"], "webhook.endpoint_failing");
    assert_eq!(alert["failedEvents"], 1);
    assert_eq!(alert["organizationId"], org.id.as_str());
    assert_eq!(alert["eventId"], event_id.as_str());
    assert_eq!(alert["type"], "customer.created");
    assert_eq!(alert["attempts"], 2);
    assert_eq!(alert["lastError"], "status: HTTP 500");
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.script([Reply::Delay(Duration::from_secs(3), 200)]);
    let app = TestApp::delivering_with(
        &pki,
        "50ms",
        |c| c.delivery_timeout = Duration::from_millis(300),
        Default::default(),
    )
    .await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    app.customer(&org).await;
    let shown = app
        .wait_for_status(&org, &app.newest_event_id(&org, None).await, "delivered")
        .await;
    let first = &shown["attempts"][0];
    assert_eq!(first["errorClass"], "timeout");
    assert!(first.get("statusCode").is_none());
    let took = first["durationMs"].as_u64().expect("duration");
    assert!(
        (300..3_000).contains(&took),
        "the timeout cut it at {took} ms"
    );
    assert_eq!(shown["attempts"][1]["statusCode"], 200);
}

#[tokio::test]
async fn redirects_are_failures_and_not_followed() {
    let pki = TestPki::new();
    let (receiver, elsewhere) = (Receiver::https(&pki).await, Receiver::https(&pki).await);
    receiver.always(Reply::Redirect(elsewhere.url.clone()));
    let attempt = the_only_attempt(&pki, &receiver.url).await;
    assert_eq!(attempt["statusCode"], 302);
    assert_eq!(attempt["errorClass"], "status");
    assert!(elsewhere.received().is_empty());
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_failure() {
    let (pki, other) = (TestPki::new(), TestPki::new());
    let receiver = Receiver::https(&other).await;
    let attempt = the_only_attempt(&pki, &receiver.url).await;
    assert_eq!(attempt["errorClass"], "tls", "{attempt}");
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    let pki = TestPki::new();
    let port = {
        let receiver = Receiver::https(&pki).await;
        receiver.port
    };
    let attempt = the_only_attempt(&pki, &format!("https://localhost:{port}/gone")).await;
    assert_eq!(attempt["errorClass"], "connect", "{attempt}");
}

#[tokio::test]
async fn a_failed_event_is_redelivered_with_the_same_id_and_body() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.script([Reply::Status(500)]);
    let app = TestApp::delivering(&pki, "").await;
    let (org, secret) = app.org_sending_to(&receiver.url).await;
    app.customer(&org).await;
    let event_id = app.newest_event_id(&org, None).await;
    app.wait_for_status(&org, &event_id, "failed").await;
    let path = format!("/v1/events/{event_id}/redeliver");
    let accepted = expect(app.as_org(&org, Method::POST, &path), StatusCode::ACCEPTED).await;
    assert_eq!(accepted["eventId"], event_id.as_str());
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].body, got[0].body);
    assert_eq!(got[1].header("x-webhook-event-id"), Some(event_id.as_str()));
    assert_eq!(got[1].header("x-webhook-attempt"), Some("2"));
    let ts = got[1].header("x-webhook-timestamp").expect("timestamp");
    assert_eq!(
        got[1].header("x-webhook-signature"),
        Some(expected_signature(&secret, ts, &got[1].body).as_str())
    );
    app.wait_for_status(&org, &event_id, "delivered").await;

    // A delivered event can be redelivered too.
    expect(app.as_org(&org, Method::POST, &path), StatusCode::ACCEPTED).await;
    receiver.wait_for(3, WAIT).await;
    let other = app.org("sandbox").await;
    expect_error(
        app.as_org(&other, Method::POST, &path),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let missing = "/v1/events/evt_000000000000000000000000/redeliver";
    expect_error(
        app.as_org(&org, Method::POST, missing),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
}
