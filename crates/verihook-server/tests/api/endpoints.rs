//! `/v1/endpoints`: every call and error, the default endpoint beside the others, and the
//! limit of 50.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use verihook_core::standard_webhooks;

async fn create(app: &TestApp, org: &Org, body: Value) -> Value {
    expect(
        app.as_org(org, Method::POST, "/v1/endpoints").json(&body),
        StatusCode::CREATED,
    )
    .await
}

#[tokio::test]
async fn an_endpoint_is_created_shown_changed_and_deleted() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    expect(
        app.as_org(&org, Method::PUT, "/v1/webhook")
            .json(&json!({ "url": "https://main.example.com/hooks" })),
        StatusCode::OK,
    )
    .await;
    let body = json!({
        "url": "https://crm.example.com/hooks",
        "description": "CRM",
        "eventTypes": ["customer.created", "customer.updated"],
        "signatureScheme": "standard-webhooks",
        "retrySchedule": "10s,1m,1h",
        "autoRecover": false
    });
    let created = create(&app, &org, body).await;
    let id = text(&created["id"]);
    assert!(id.starts_with("ep_"), "{created}");
    assert_eq!(created["url"], "https://crm.example.com/hooks");
    assert_eq!(created["description"], "CRM");
    assert_eq!(
        created["eventTypes"],
        json!(["customer.created", "customer.updated"])
    );
    assert_eq!(created["signatureScheme"], "standard-webhooks");
    assert_eq!(created["retrySchedule"], "10s,1m,1h");
    assert_eq!(created["autoRecover"], false);
    assert_eq!(created["default"], false);
    assert_eq!(created["disabled"], false);
    assert!(created["createdAt"].is_string());
    let secret = text(&created["secret"]);
    let key = standard_webhooks::key(&secret).expect("whsec_ and base64");
    assert!(secret.starts_with("whsec_") && key.len() >= 24, "{secret}");

    let listed = expect(
        app.as_org(&org, Method::GET, "/v1/endpoints"),
        StatusCode::OK,
    )
    .await;
    let data = listed["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["default"], true);
    assert_eq!(data[0]["url"], "https://main.example.com/hooks");
    assert_eq!(data[0]["eventTypes"], json!([]));
    assert_eq!(data[0]["signatureScheme"], "verihook");
    assert!(data.iter().all(|e| e.get("secret").is_none()), "{listed}");

    let path = format!("/v1/endpoints/{id}");
    let shown = expect(app.as_org(&org, Method::GET, &path), StatusCode::OK).await;
    assert_eq!(shown["id"], created["id"]);
    assert!(shown.get("secret").is_none());
    let patch = json!({ "eventTypes": [], "disabled": true, "retrySchedule": null });
    let changed = expect(
        app.as_org(&org, Method::PATCH, &path).json(&patch),
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["eventTypes"], json!([]));
    assert_eq!(changed["disabled"], true);
    assert_eq!(changed["retrySchedule"], Value::Null);
    assert_eq!(changed["description"], "CRM", "absent fields stay");

    expect(
        app.as_org(&org, Method::DELETE, &path),
        StatusCode::NO_CONTENT,
    )
    .await;
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
    let listed = expect(
        app.as_org(&org, Method::GET, "/v1/endpoints"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn bad_input_names_its_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let post = || app.as_org(&org, Method::POST, "/v1/endpoints");
    let url = "https://crm.example.com/hooks";
    let cases = [
        (
            json!({ "url": "http://crm.example.com/hooks" }),
            StatusCode::BAD_REQUEST,
            "url",
        ),
        (
            json!({ "url": "not a url" }),
            StatusCode::BAD_REQUEST,
            "url",
        ),
        (
            json!({ "description": "no url" }),
            StatusCode::BAD_REQUEST,
            "url",
        ),
        (
            json!({ "url": url, "eventTypes": ["customer.archived"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "eventTypes",
        ),
        (
            json!({ "url": url, "signatureScheme": "svix" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "signatureScheme",
        ),
        (
            json!({ "url": url, "retrySchedule": vec!["1s"; 21].join(",") }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "retrySchedule",
        ),
        (
            json!({ "url": url, "retrySchedule": "25h" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "retrySchedule",
        ),
        (
            json!({ "url": url, "retrySchedule": "soon" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "retrySchedule",
        ),
        (
            json!({ "url": url, "description": "x".repeat(501) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "description",
        ),
        (
            json!({ "url": url, "eventTypes": "customer.created" }),
            StatusCode::BAD_REQUEST,
            "eventTypes",
        ),
        (
            json!({ "url": url, "colour": "blue" }),
            StatusCode::BAD_REQUEST,
            "",
        ),
    ];
    for (body, status, field) in cases {
        let answer = expect(post().json(&body), status).await;
        let named = answer["error"]["field"].as_str().unwrap_or_default();
        assert!(named.contains(field), "{body}: {answer}");
    }
    let listed = expect(
        app.as_org(&org, Method::GET, "/v1/endpoints"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"], json!([]), "nothing was created");
}

#[tokio::test]
async fn another_organizations_endpoint_is_not_found() {
    let app = TestApp::spawn().await;
    let (owner, stranger) = (app.org("sandbox").await, app.org("sandbox").await);
    let created = create(&app, &owner, json!({ "url": "https://a.example.com/h" })).await;
    let path = format!("/v1/endpoints/{}", text(&created["id"]));
    expect_error(
        app.as_org(&stranger, Method::GET, &path),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let patch = json!({ "disabled": true });
    expect_error(
        app.as_org(&stranger, Method::PATCH, &path).json(&patch),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    expect_error(
        app.as_org(&stranger, Method::DELETE, &path),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    expect_error(
        app.as_org(&owner, Method::GET, "/v1/endpoints/ep_nope"),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let shown = expect(app.as_org(&owner, Method::GET, &path), StatusCode::OK).await;
    assert_eq!(shown["disabled"], false, "the stranger changed nothing");
}

#[tokio::test]
async fn an_organization_has_at_most_fifty_endpoints() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    for i in 0..50 {
        create(
            &app,
            &org,
            json!({ "url": format!("https://e{i}.example.com/h") }),
        )
        .await;
    }
    let refused = expect_error(
        app.as_org(&org, Method::POST, "/v1/endpoints")
            .json(&json!({ "url": "https://e50.example.com/h" })),
        StatusCode::CONFLICT,
        None,
    )
    .await;
    assert_eq!(refused["error"]["code"], "endpoint_limit_reached");
    let listed = expect(
        app.as_org(&org, Method::GET, "/v1/endpoints"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(50));
}
