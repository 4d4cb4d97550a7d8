//! Operator alerts per incident, not per event (CONTRACT §9): a burst of failures at one
//! endpoint raises one `webhook.endpoint_failing` alert naming the first failed event, and
//! the next success one `webhook.endpoint_recovered` with the count; both signed with the
//! alert secret.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};
use verihook_receiver::Verifier;
use verihook_testkit::{Receiver, Reply, TestPki};

const ALERT_SECRET: &str = "whsec_alerts-for-the-operator";
const BURST: usize = 1_000;

fn now_unix() -> i64 {
    Timestamp::now().unix_seconds()
}

use verihook_core::Timestamp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_failures_raises_one_alert_and_the_recovery_another() {
    let pki = TestPki::new();
    let (receiver, alerts) = (Receiver::https(&pki).await, Receiver::https(&pki).await);
    receiver.always(Reply::Status(503));
    let alert_url = alerts.url.parse().expect("URL");
    let app = TestApp::delivering_with(
        &pki,
        "",
        |c| {
            c.alert_webhook_url = Some(alert_url);
            c.alert_secret = Some(ALERT_SECRET.into());
            c.rate_limit = 0;
        },
        Default::default(),
    )
    .await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    let first = app.customer(&org).await;
    let first_event = app.newest_event_id(&org, Some(&text(&first["id"]))).await;
    app.wait_for_status(&org, &first_event, "failed").await;
    for _ in 1..BURST {
        app.customer(&org).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let webhook = expect(app.as_org(&org, Method::GET, "/v1/webhook"), StatusCode::OK).await;
        if webhook["health"]["failedEvents"] == BURST {
            break;
        }
        assert!(Instant::now() < deadline, "not all failed: {webhook}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    receiver.always(Reply::Status(200));
    app.customer(&org).await;
    let got = alerts.wait_for(2, Duration::from_secs(30)).await;
    let bodies: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
        .collect();
    // An alert written before the recovered one is due before it, so sent before it.
    assert_eq!(
        got.len(),
        2,
        "one alert per incident change, not per event: {bodies:?}"
    );
    for r in &got {
        Verifier::new(ALERT_SECRET)
            .check_request_at(now_unix(), |name| r.header(name), &r.body)
            .expect("signed with the alert secret");
    }
    let (failing, recovered) = (&bodies[0], &bodies[1]);
    assert_eq!(failing["alert"], "webhook.endpoint_failing");
    assert_eq!(
        failing["eventId"],
        first_event.as_str(),
        "the first failed event"
    );
    assert_eq!(failing["url"], receiver.url.as_str());
    assert_eq!(failing["failedEvents"], 1);
    assert_eq!(recovered["alert"], "webhook.endpoint_recovered");
    assert_eq!(recovered["failedEvents"], BURST);
    assert_eq!(recovered["organizationId"], org.id.as_str());
    assert!(recovered["failingSince"].is_string() && recovered["recoveredAt"].is_string());

    let metrics = app
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("scraped")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains(r#"verihook_endpoint_incidents_total{event="opened"} 1"#));
    assert!(metrics.contains(r#"verihook_endpoint_incidents_total{event="recovered"} 1"#));
}
