use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    expect(app.request(Method::GET, "/healthz"), StatusCode::OK).await;
    let ready = expect(app.request(Method::GET, "/readyz"), StatusCode::OK).await;
    assert_eq!(ready["database"], "ok");
}

#[tokio::test]
async fn an_organization_is_created_with_a_one_time_api_key() {
    let app = TestApp::spawn().await;
    let body = json!({ "name": "Acme Bank", "mode": "live" });
    let org = expect(
        app.admin(Method::POST, "/v1/admin/organizations")
            .json(&body),
        StatusCode::CREATED,
    )
    .await;
    assert!(text(&org["id"]).starts_with("org_"));
    assert_eq!(org["name"], "Acme Bank");
    assert_eq!(org["mode"], "live");
    let key = text(&org["apiKey"]);
    let listed = app
        .request(Method::GET, "/v1/customers")
        .bearer_auth(&key)
        .send()
        .await
        .expect("sent");
    assert_eq!(listed.status(), StatusCode::OK, "the key authenticates");
}

#[tokio::test]
async fn mode_defaults_to_sandbox() {
    let app = TestApp::spawn().await;
    let org = expect(
        app.admin(Method::POST, "/v1/admin/organizations")
            .json(&json!({ "name": "New" })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(org["mode"], "sandbox");
}

#[tokio::test]
async fn the_admin_api_needs_the_admin_token() {
    let app = TestApp::spawn().await;
    let body = json!({ "name": "Acme" });
    let path = "/v1/admin/organizations";
    expect_error(
        app.request(Method::POST, path).json(&body),
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
    expect_error(
        app.request(Method::POST, path)
            .bearer_auth("wrong")
            .json(&body),
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
    let org = app.org("sandbox").await;
    expect_error(
        app.as_org(&org, Method::POST, path).json(&body),
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
}

#[tokio::test]
async fn without_an_admin_token_the_admin_api_is_disabled() {
    let app = TestApp::spawn_with(|c| c.admin_token = None).await;
    expect_error(
        app.admin(Method::POST, "/v1/admin/organizations")
            .json(&json!({ "name": "A" })),
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
}

#[tokio::test]
async fn invalid_organizations_are_refused_by_field() {
    let app = TestApp::spawn().await;
    let path = "/v1/admin/organizations";
    let cases = [
        (
            json!({ "mode": "live" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({ "name": "  " }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({ "name": "A", "mode": "prod" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "mode",
        ),
        (json!({ "name": 5 }), StatusCode::BAD_REQUEST, "name"),
        (
            json!({ "name": "A", "plan": "gold" }),
            StatusCode::BAD_REQUEST,
            "plan",
        ),
    ];
    for (body, status, field) in cases {
        expect_error(
            app.admin(Method::POST, path).json(&body),
            status,
            Some(field),
        )
        .await;
    }
}
