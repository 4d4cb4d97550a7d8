//! What operators and integrators use to watch and check deliveries: `GET /metrics` and
//! `POST /v1/webhook/test`.

use crate::delivery::expected_signature;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};
use verihook_server::delivery::Limits;
use verihook_testkit::{Receiver, Reply, TestPki};

/// Scrapes `/metrics` until every `line` is in it (metrics of work still finishing, such
/// as the in-flight gauge, settle a moment after the event log shows the outcome).
async fn scrape_until(app: &TestApp, lines: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = app
            .request(Method::GET, "/metrics")
            .send()
            .await
            .expect("scraped");
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"].to_str().unwrap_or("");
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        let text = response.text().await.expect("text");
        let missing: Vec<_> = lines.iter().filter(|l| !text.contains(**l)).collect();
        if missing.is_empty() {
            return text;
        }
        assert!(Instant::now() < deadline, "missing {missing:?} in:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_count_attempts_failures_latency_and_requests() {
    let pki = TestPki::new();
    let (flaky, down) = (Receiver::https(&pki).await, Receiver::https(&pki).await);
    let alerts = Receiver::https(&pki).await;
    flaky.script([Reply::Status(500)]);
    down.always(Reply::Status(503));
    let alert_url = alerts.url.parse().expect("a URL");
    let app = TestApp::delivering_with(
        &pki,
        "50ms",
        |c| c.alert_webhook_url = Some(alert_url),
        Limits::default(),
    )
    .await;
    let (recovers, _) = app.org_sending_to(&flaky.url).await;
    let (fails, _) = app.org_sending_to(&down.url).await;
    app.customer(&recovers).await;
    app.customer(&fails).await;
    app.wait_for_status(
        &recovers,
        &app.newest_event_id(&recovers, None).await,
        "delivered",
    )
    .await;
    app.wait_for_status(&fails, &app.newest_event_id(&fails, None).await, "failed")
        .await;
    expect(
        app.request(Method::GET, "/no/such/route"),
        StatusCode::NOT_FOUND,
    )
    .await;

    let text = scrape_until(
        &app,
        &[
            r#"verihook_delivery_attempts_total{outcome="delivered",error_class=""} 1"#,
            r#"verihook_delivery_attempts_total{outcome="retry",error_class="status"} 2"#,
            r#"verihook_delivery_attempts_total{outcome="failed",error_class="status"} 1"#,
            "verihook_delivery_attempt_duration_seconds_count 4",
            "verihook_delivery_latency_seconds_count 1",
            "verihook_events_failed_total 1",
            r#"verihook_alerts_total{result="sent"} 1"#,
            "verihook_deliveries_pending 0",
            "verihook_deliveries_in_flight 0",
            r#"verihook_http_requests_total{route="/v1/customers",method="POST",status="201"} 2"#,
            r#"verihook_http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
            r#"verihook_http_request_duration_seconds_count{route="/v1/events/{event_id}"}"#,
        ],
    )
    .await;
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    for id in [&recovers.id, &fails.id] {
        assert!(!text.contains(id.as_str()), "no organization label");
    }
}

#[tokio::test]
async fn a_pending_event_shows_in_the_outbox_gauge() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    app.customer(&org).await;
    app.customer(&org).await;
    scrape_until(&app, &["verihook_deliveries_pending 2"]).await;
}

/// What SQLite holds in the process is on `/metrics` (it is what tells its page caches,
/// which fill up to their limit, from a leak); PostgreSQL's memory is its own processes'.
#[tokio::test]
async fn metrics_show_the_memory_the_embedded_database_holds() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    app.customer(&org).await;
    let text = scrape_until(&app, &["verihook_database_memory_bytes "]).await;
    let bytes: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("verihook_database_memory_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a number of bytes");
    if verihook_testkit::postgres_selected() {
        assert_eq!(bytes, 0);
    } else {
        // The schema and a page cache at least; under the caches' limits (32 MiB for the
        // writer, 2 MiB for each reader) and the statements.
        assert!((100_000..64 << 20).contains(&bytes), "{bytes}");
    }
}

#[tokio::test]
async fn a_test_event_is_signed_sent_and_reported() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let app = TestApp::delivering(&pki, "").await;
    let (org, secret) = app.org_sending_to(&receiver.url).await;
    let outcome = expect(
        app.as_org(&org, Method::POST, "/v1/webhook/test"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(outcome["delivered"], true, "{outcome}");
    assert_eq!(outcome["statusCode"], 200);
    assert_eq!(outcome["url"], receiver.url.as_str());
    assert!(outcome["errorClass"].is_null());

    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let request = &got[0];
    let event_id = text(&outcome["eventId"]);
    assert_eq!(
        request.header("x-webhook-event-id"),
        Some(event_id.as_str())
    );
    assert_eq!(request.header("x-webhook-event-type"), Some("webhook.test"));
    assert_eq!(request.header("x-webhook-attempt"), Some("1"));
    let timestamp = request.header("x-webhook-timestamp").expect("timestamp");
    assert_eq!(
        request.header("x-webhook-signature"),
        Some(expected_signature(&secret, timestamp, &request.body).as_str())
    );
    let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["metadata"]["eventId"], event_id.as_str());
    assert_eq!(body["metadata"]["organizationId"], org.id.as_str());

    let page = expect(app.as_org(&org, Method::GET, "/v1/events"), StatusCode::OK).await;
    assert_eq!(
        page["data"],
        Value::Array(vec![]),
        "a test event is not stored"
    );
}

#[tokio::test]
async fn a_failing_endpoint_is_reported_with_its_error() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    receiver.always(Reply::Status(500));
    let app = TestApp::delivering(&pki, "").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    let outcome = expect(
        app.as_org(&org, Method::POST, "/v1/webhook/test"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(outcome["delivered"], false, "{outcome}");
    assert_eq!(outcome["statusCode"], 500);
    assert_eq!(outcome["errorClass"], "status");
    assert!(outcome["error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test]
async fn a_test_event_needs_a_webhook_url_and_an_api_key() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let body = expect_error(
        app.as_org(&org, Method::POST, "/v1/webhook/test"),
        StatusCode::CONFLICT,
        None,
    )
    .await;
    assert_eq!(body["error"]["code"], "webhook_not_configured");
    expect_error(
        app.request(Method::POST, "/v1/webhook/test"),
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
}
