//! The error statuses of the contract, each with its JSON body.

use crate::helpers::*;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let cases = [
        ("{", None),
        ("{\"type\":}", Some("type")),
        ("[]", None),
        ("", None),
        ("{} {}", None),
        ("\"x\"", None),
    ];
    for (body, field) in cases {
        let error = expect_error(
            app.as_org(&org, Method::POST, "/v1/customers")
                .header("Content-Type", "application/json")
                .body(body),
            StatusCode::BAD_REQUEST,
            field,
        )
        .await;
        assert_eq!(error["error"]["code"], "malformed_request");
    }
}

#[tokio::test]
async fn a_body_without_json_content_type_is_415() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let body = jane().to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app
            .as_org(&org, Method::POST, "/v1/customers")
            .body(body.clone());
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        expect_error(request, StatusCode::UNSUPPORTED_MEDIA_TYPE, None).await;
    }
    let charset = app
        .as_org(&org, Method::POST, "/v1/customers")
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body);
    expect(charset, StatusCode::CREATED).await;
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let huge = format!("{{\"firstName\":\"{}\"}}", "a".repeat(1024 * 1024 + 1));
    expect_error(
        app.as_org(&org, Method::POST, "/v1/customers")
            .header("Content-Type", "application/json")
            .body(huge),
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    expect_error(
        app.request(Method::GET, "/v1/nothing"),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    expect_error(
        app.request(Method::DELETE, "/v1/customers"),
        StatusCode::METHOD_NOT_ALLOWED,
        None,
    )
    .await;
}
