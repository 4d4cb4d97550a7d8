//! Several endpoints of one organization: each event goes to the endpoints whose filter
//! takes it, signed in each one's scheme; a dead endpoint delays no other; each keeps its
//! own retry schedule; a redelivery to one leaves the others alone.

use super::expected_signature;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use verihook_receiver::{Scheme, Verifier};
use verihook_testkit::{Receiver, Reply, TestPki};

const WAIT: Duration = Duration::from_secs(10);

async fn add_endpoint(app: &TestApp, org: &Org, body: Value) -> (String, String) {
    let created = expect(
        app.as_org(org, Method::POST, "/v1/endpoints").json(&body),
        StatusCode::CREATED,
    )
    .await;
    (text(&created["id"]), text(&created["secret"]))
}

fn event_type(r: &verihook_testkit::Received) -> String {
    let body: Value = serde_json::from_slice(&r.body).expect("JSON");
    text(&body["type"])
}

#[tokio::test]
async fn each_endpoint_gets_the_types_it_takes_signed_in_its_scheme() {
    let pki = TestPki::new();
    let (main, crm) = (Receiver::https(&pki).await, Receiver::https(&pki).await);
    let app = TestApp::delivering(&pki, "50ms").await;
    let (org, main_secret) = app.org_sending_to(&main.url).await;
    let filter = json!({
        "url": crm.url,
        "eventTypes": ["customer.created"],
        "signatureScheme": "standard-webhooks"
    });
    let (crm_id, crm_secret) = add_endpoint(&app, &org, filter).await;
    let customer = app.customer_under_review(&org).await;

    // customer.created, customer.updated, customer.status_changed to the default one.
    let to_main = main.wait_for(3, WAIT).await;
    let to_crm = crm.wait_for(1, WAIT).await;
    assert_eq!(event_type(&to_crm[0]), "customer.created");
    let verifier = Verifier::new(&crm_secret).with_scheme(Scheme::StandardWebhooks);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("seconds");
    let verified = verifier
        .verify_request_at(now, |name| to_crm[0].header(name), &to_crm[0].body)
        .expect("verifies as Standard Webhooks");
    let event_id = verified.event_id().expect("an event id").to_owned();
    assert_eq!(to_crm[0].header("webhook-id"), Some(event_id.as_str()));
    assert!(to_crm[0].header("x-webhook-signature").is_none());
    let main_created = to_main
        .iter()
        .find(|r| event_type(r) == "customer.created")
        .expect("sent to the default endpoint too");
    let ts = main_created
        .header("x-webhook-timestamp")
        .expect("timestamp");
    assert_eq!(
        main_created.header("x-webhook-signature"),
        Some(expected_signature(&main_secret, ts, &main_created.body).as_str())
    );

    let shown = app.wait_for_status(&org, &event_id, "delivered").await;
    let deliveries = shown["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 2, "{shown}");
    assert!(deliveries
        .iter()
        .any(|d| d["endpointId"] == crm_id.as_str()));
    assert!(deliveries.iter().all(|d| d["status"] == "delivered"));
    let attempts = shown["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| a["endpointId"].is_string()));
    let path = format!(
        "/v1/events?endpointId={crm_id}&customerId={}",
        text(&customer["id"])
    );
    let listed = expect(app.as_org(&org, Method::GET, &path), StatusCode::OK).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(crm.received().len(), 1, "nothing else went to the CRM");
}

#[tokio::test]
async fn a_dead_endpoint_delays_none_of_its_organizations_others() {
    let pki = TestPki::new();
    let (dead, live) = (Receiver::https(&pki).await, Receiver::https(&pki).await);
    // Each attempt at the dead endpoint takes its whole timeout.
    dead.always(Reply::Delay(Duration::from_secs(30), 200));
    let limits = verihook_server::delivery::Limits {
        per_endpoint: 4,
        ..Default::default()
    };
    let app = TestApp::delivering_with(
        &pki,
        "1s,1s,1s",
        |c| c.delivery_timeout = Duration::from_secs(5),
        limits,
    )
    .await;
    let (org, _) = app.org_sending_to(&dead.url).await;
    add_endpoint(&app, &org, json!({ "url": live.url })).await;
    for _ in 0..20 {
        app.customer(&org).await;
    }
    // All 20 reach the live endpoint while the dead one holds every slot it may.
    let got = live.wait_for(20, WAIT).await;
    assert_eq!(got.len(), 20);
    let first = got.iter().map(|r| r.at).min().expect("some");
    let last = got.iter().map(|r| r.at).max().expect("some");
    assert!(
        last.duration_since(first) < Duration::from_secs(5),
        "the live endpoint waited on the dead one's timeouts"
    );
    assert!(
        dead.received().len() <= 4,
        "the dead endpoint took only its share"
    );
}

#[tokio::test]
async fn each_endpoint_keeps_its_own_retry_schedule() {
    let pki = TestPki::new();
    let (main, once) = (Receiver::https(&pki).await, Receiver::https(&pki).await);
    main.always(Reply::Status(500));
    once.always(Reply::Status(500));
    let app = TestApp::delivering(&pki, "50ms,50ms,50ms").await;
    let (org, _) = app.org_sending_to(&main.url).await;
    let (once_id, _) =
        add_endpoint(&app, &org, json!({ "url": once.url, "retrySchedule": "" })).await;
    app.customer(&org).await;
    let event_id = app.newest_event_id(&org, None).await;
    let shown = app.wait_for_status(&org, &event_id, "failed").await;
    let shown = wait_until_settled(&app, &org, &event_id, shown).await;
    let at = |endpoint: &str| {
        shown["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .filter(|a| a["endpointId"] == endpoint)
            .count()
    };
    assert_eq!(
        main.received().len(),
        4,
        "the server's schedule: 1 + 3 retries"
    );
    assert_eq!(once.received().len(), 1, "its own: no retry");
    assert_eq!(at(&once_id), 1);
    assert_eq!(shown["attempts"].as_array().map(Vec::len), Some(5));
}

/// Polls the event until no endpoint of it is pending.
async fn wait_until_settled(app: &TestApp, org: &Org, event_id: &str, mut shown: Value) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    let path = format!("/v1/events/{event_id}");
    while shown["deliveries"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| d["status"] == "pending"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never settled: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        shown = expect(app.as_org(org, Method::GET, &path), StatusCode::OK).await;
    }
    shown
}

#[tokio::test]
async fn a_redelivery_to_one_endpoint_leaves_the_other_alone() {
    let pki = TestPki::new();
    let (main, crm) = (Receiver::https(&pki).await, Receiver::https(&pki).await);
    let app = TestApp::delivering(&pki, "50ms").await;
    let (org, _) = app.org_sending_to(&main.url).await;
    let (crm_id, _) = add_endpoint(&app, &org, json!({ "url": crm.url })).await;
    app.customer(&org).await;
    main.wait_for(1, WAIT).await;
    crm.wait_for(1, WAIT).await;
    let event_id = app.newest_event_id(&org, None).await;
    let path = format!("/v1/events/{event_id}/redeliver");
    expect(
        app.as_org(&org, Method::POST, &path)
            .json(&json!({ "endpointId": crm_id })),
        StatusCode::ACCEPTED,
    )
    .await;
    let again = crm.wait_for(2, WAIT).await;
    assert_eq!(again[1].header("x-webhook-attempt"), Some("2"));
    // Then one for every endpoint (no body, as before endpoints existed).
    expect(app.as_org(&org, Method::POST, &path), StatusCode::ACCEPTED).await;
    main.wait_for(2, WAIT).await;
    crm.wait_for(3, WAIT).await;
    assert_eq!(
        main.received().len(),
        2,
        "the first redelivery went to the CRM alone"
    );
    let unknown = json!({ "endpointId": "ep_0000000000000000000000zz" });
    expect_error(
        app.as_org(&org, Method::POST, &path).json(&unknown),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
}
