//! One organization never sees another's customers or events: 404, or an empty listing.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn another_organization_gets_404_and_empty_listings() {
    let app = TestApp::spawn().await;
    let (mine, theirs) = (app.org("sandbox").await, app.org("sandbox").await);
    let c = app.customer(&mine).await;
    let id = text(&c["id"]);
    let events = expect(app.as_org(&mine, Method::GET, "/v1/events"), StatusCode::OK).await;
    let event_id = text(&events["data"][0]["id"]);

    let customer_path = format!("/v1/customers/{id}");
    expect_error(
        app.as_org(&theirs, Method::GET, &customer_path),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    expect_error(
        app.as_org(&theirs, Method::PATCH, &customer_path)
            .json(&json!({ "firstName": "Mallory" })),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    expect_error(
        app.as_org(
            &theirs,
            Method::POST,
            &format!("/v1/sandbox/customers/{id}/status"),
        )
        .json(&json!({ "status": "ACTIVE" })),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    expect_error(
        app.as_org(&theirs, Method::GET, &format!("/v1/events/{event_id}")),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    for path in [
        "/v1/customers",
        "/v1/events",
        &format!("/v1/events?customerId={id}"),
    ] {
        let page = expect(app.as_org(&theirs, Method::GET, path), StatusCode::OK).await;
        assert_eq!(page["data"], json!([]), "{path}");
    }
    expect_error(
        app.as_org(
            &theirs,
            Method::GET,
            &format!("/v1/events?after={event_id}"),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("after"),
    )
    .await;
    let read = expect(
        app.as_org(&mine, Method::GET, &customer_path),
        StatusCode::OK,
    )
    .await;
    assert_eq!(read, c, "nothing changed");
}

#[tokio::test]
async fn organization_endpoints_need_a_valid_api_key() {
    let app = TestApp::spawn().await;
    for path in ["/v1/customers", "/v1/events", "/v1/webhook"] {
        expect_error(
            app.request(Method::GET, path),
            StatusCode::UNAUTHORIZED,
            None,
        )
        .await;
        expect_error(
            app.request(Method::GET, path).bearer_auth("vhk_forged"),
            StatusCode::UNAUTHORIZED,
            None,
        )
        .await;
        expect_error(
            app.request(Method::GET, path)
                .header("Authorization", "Basic dXNlcjpwdw=="),
            StatusCode::UNAUTHORIZED,
            None,
        )
        .await;
        expect_error(app.admin(Method::GET, path), StatusCode::UNAUTHORIZED, None).await;
    }
}
