//! `Idempotency-Key` (CONTRACT §8): a repeat answers the first answer and changes nothing;
//! another request under the same key is refused; a duplicate while the first runs gets
//! 409 or the first's answer, and never a second change.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Option<String>, String) {
    let response = request.send().await.expect("sent");
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        response.status(),
        replayed,
        response.text().await.expect("body"),
    )
}

async fn count_customers(app: &TestApp, org: &Org) -> usize {
    let page = expect(
        app.as_org(org, Method::GET, "/v1/customers?limit=100"),
        StatusCode::OK,
    )
    .await;
    page["data"].as_array().expect("data").len()
}

#[tokio::test]
async fn a_repeat_answers_the_first_answer_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let create = || {
        app.as_org(&org, Method::POST, "/v1/customers")
            .header("Idempotency-Key", "create-jane-1")
            .json(&jane())
    };
    let (status, replayed, first) = send(create()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, None), "{first}");
    let (status, replayed, again) = send(create()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(again, first, "byte for byte");
    assert_eq!(count_customers(&app, &org).await, 1);
    let id = serde_json::from_str::<Value>(&first).expect("json")["id"].clone();
    assert_eq!(
        app.event_types(&org, &text(&id)).await,
        ["customer.created"]
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_path_or_method_is_refused() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let keyed = |method: Method, path: &str| {
        app.as_org(&org, method, path)
            .header("Idempotency-Key", "k-1")
    };
    let created = expect(
        keyed(Method::POST, "/v1/customers").json(&jane()),
        StatusCode::CREATED,
    )
    .await;
    let mut other = jane();
    other["email"] = json!("other@example.com");
    let body = expect_error(
        keyed(Method::POST, "/v1/customers").json(&other),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("Idempotency-Key"),
    )
    .await;
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    let path = format!("/v1/customers/{}", text(&created["id"]));
    let body = expect_error(
        keyed(Method::PATCH, &path).json(&complete_data()),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("Idempotency-Key"),
    )
    .await;
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(count_customers(&app, &org).await, 1);
    let customer = expect(app.as_org(&org, Method::GET, &path), StatusCode::OK).await;
    assert_eq!(customer["status"], "CREATED", "the PATCH changed nothing");
}

#[tokio::test]
async fn concurrent_duplicates_make_one_change() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let calls = (0..8).map(|_| {
        send(
            app.as_org(&org, Method::POST, "/v1/customers")
                .header("Idempotency-Key", "burst")
                .json(&jane()),
        )
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for (status, replayed, body) in &answers {
        match *status {
            StatusCode::CREATED => {
                fresh += usize::from(replayed.is_none());
                let v: Value = serde_json::from_str(body).expect("json");
                ids.insert(text(&v["id"]));
            }
            StatusCode::CONFLICT => assert!(body.contains("idempotency_key_in_use"), "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one request ran: {answers:?}");
    assert_eq!(ids.len(), 1, "every 201 is the same customer");
    assert_eq!(count_customers(&app, &org).await, 1);
}

#[tokio::test]
async fn a_refused_change_is_not_kept_and_a_validation_error_is() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let c = app.customer(&org).await;
    let path = format!("/v1/sandbox/customers/{}/status", text(&c["id"]));
    let unchanged = || {
        app.as_org(&org, Method::POST, &path)
            .header("Idempotency-Key", "same-status")
            .json(&json!({ "status": "CREATED" }))
    };
    for _ in 0..2 {
        let (status, replayed, body) = send(unchanged()).await;
        assert_eq!((status, replayed), (StatusCode::CONFLICT, None), "{body}");
    }
    let invalid = || {
        app.as_org(&org, Method::POST, "/v1/customers")
            .header("Idempotency-Key", "invalid")
            .json(&json!({ "type": "INDIVIDUAL" }))
    };
    let (status, replayed, first) = send(invalid()).await;
    assert_eq!((status, replayed), (StatusCode::UNPROCESSABLE_ENTITY, None));
    let (status, replayed, again) = send(invalid()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((replayed.as_deref(), again), (Some("true"), first));
}

#[tokio::test]
async fn keys_are_scoped_to_their_caller_and_must_be_visible_ascii() {
    let app = TestApp::spawn().await;
    let a = app.org("sandbox").await;
    let b = app.org("sandbox").await;
    for org in [&a, &b] {
        let (status, replayed, _) = send(
            app.as_org(org, Method::POST, "/v1/customers")
                .header("Idempotency-Key", "shared")
                .json(&jane()),
        )
        .await;
        assert_eq!((status, replayed), (StatusCode::CREATED, None));
    }
    let body = expect_error(
        app.as_org(&a, Method::POST, "/v1/customers")
            .header("Idempotency-Key", "has space")
            .json(&jane()),
        StatusCode::BAD_REQUEST,
        Some("Idempotency-Key"),
    )
    .await;
    assert_eq!(body["error"]["code"], "malformed_request");
    assert_eq!(count_customers(&app, &a).await, 1);
}

#[tokio::test]
async fn a_status_decision_replays_with_its_events_once() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let c = app.customer_under_review(&org).await;
    let path = format!("/v1/sandbox/customers/{}/status", text(&c["id"]));
    let decide = || {
        app.as_org(&org, Method::POST, &path)
            .header("Idempotency-Key", "approve")
            .json(&json!({ "status": "ACTIVE" }))
    };
    let (status, _, first) = send(decide()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, replayed, again) = send(decide()).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::OK, Some("true"))
    );
    assert_eq!(again, first);
    let types = app.event_types(&org, &text(&c["id"])).await;
    let activated = types
        .iter()
        .filter(|t| *t == "verification.completed")
        .count();
    assert_eq!(activated, 1, "{types:?}");
}
