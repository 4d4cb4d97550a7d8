//! `POST /v1/endpoints/{id}/check` (CONTRACT §10): the receiver check run from the server.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use verihook_testkit::{Receiver, TestPki};

/// The server grades an endpoint's receiver and answers the report: a receiver that takes
/// everything fails the four refusal checks and passes the others.
#[tokio::test]
async fn an_endpoint_s_receiver_is_checked_from_the_server() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let app = TestApp::delivering(&pki, "").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    let endpoints = expect(
        app.as_org(&org, Method::GET, "/v1/endpoints"),
        StatusCode::OK,
    )
    .await;
    let id = text(&endpoints["data"][0]["id"]);
    let path = format!("/v1/endpoints/{id}/check");
    let report = expect(app.as_org(&org, Method::POST, &path), StatusCode::OK).await;
    assert_eq!(report["passed"], false);
    assert_eq!(
        (report["pass"].clone(), report["fail"].clone()),
        (8.into(), 4.into())
    );
    let https = &report["checks"][11];
    assert_eq!(
        (https["name"].as_str(), https["verdict"].as_str()),
        (Some("the URL is HTTPS"), Some("PASS"))
    );
    assert!(receiver
        .received()
        .iter()
        .all(|r| r.header("x-webhook-check") == Some("true")));

    let unknown = "/v1/endpoints/ep_0000000000000000000000aa/check";
    expect(
        app.as_org(&org, Method::POST, unknown),
        StatusCode::NOT_FOUND,
    )
    .await;
}
