use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_customer_is_created_in_created_with_its_event() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let c = app.customer(&org).await;
    let id = text(&c["id"]);
    assert!(id.starts_with("cus_"));
    assert_eq!(c["status"], "CREATED");
    assert_eq!(c["type"], "INDIVIDUAL");
    assert_eq!(c["email"], "jane.smith@example.com");
    assert_eq!(c["organizationId"], org.id.as_str());
    let read = expect(
        app.as_org(&org, Method::GET, &format!("/v1/customers/{id}")),
        StatusCode::OK,
    )
    .await;
    assert_eq!(read, c);
    assert_eq!(app.event_types(&org, &id).await, ["customer.created"]);
}

#[tokio::test]
async fn invalid_customers_are_refused_by_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let with = |k: &str, v: serde_json::Value| {
        let mut body = jane();
        body[k] = v;
        body
    };
    let cases = [
        (
            with("email", json!("jane@")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            with("type", json!("PERSON")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "type",
        ),
        (
            with("firstName", json!("")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "firstName",
        ),
        (
            with("dateOfBirth", json!("2999-01-01")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "dateOfBirth",
        ),
        (
            with("dateOfBirth", json!("1990-02-30")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "dateOfBirth",
        ),
        (
            with("address", json!({ "country": "Germany" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "address.country",
        ),
        (with("email", json!(42)), StatusCode::BAD_REQUEST, "email"),
        (
            with("address", json!({ "zip": "1" })),
            StatusCode::BAD_REQUEST,
            "address.zip",
        ),
        (
            json!({ "type": "INDIVIDUAL", "firstName": "J", "lastName": "S" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
    ];
    for (body, status, field) in cases {
        expect_error(
            app.as_org(&org, Method::POST, "/v1/customers").json(&body),
            status,
            Some(field),
        )
        .await;
    }
    let page = expect(
        app.as_org(&org, Method::GET, "/v1/customers"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["data"], json!([]));
    let events = expect(app.as_org(&org, Method::GET, "/v1/events"), StatusCode::OK).await;
    assert_eq!(events["data"], json!([]));
}

#[tokio::test]
async fn completing_date_of_birth_and_address_moves_to_review() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let c = app.customer(&org).await;
    let path = format!("/v1/customers/{}", text(&c["id"]));
    let partial = expect(
        app.as_org(&org, Method::PATCH, &path)
            .json(&json!({ "dateOfBirth": "1990-04-01" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(partial["status"], "CREATED");
    assert_eq!(partial["dateOfBirth"], "1990-04-01");
    let done = expect(
        app.as_org(&org, Method::PATCH, &path)
            .json(&complete_data()),
        StatusCode::OK,
    )
    .await;
    assert_eq!(done["status"], "UNDER_REVIEW");
    assert_eq!(done["address"]["country"], "DE");
    assert_eq!(
        app.event_types(&org, &text(&c["id"])).await,
        [
            "customer.created",
            "customer.updated",
            "customer.updated",
            "customer.status_changed"
        ]
    );
    let events = expect(
        app.as_org(&org, Method::GET, "/v1/events?type=customer.status_changed"),
        StatusCode::OK,
    )
    .await;
    let payload = &events["data"][0]["event"]["payload"];
    assert_eq!(payload["previousStatus"], "CREATED");
    assert_eq!(payload["newStatus"], "UNDER_REVIEW");
}

#[tokio::test]
async fn an_update_names_the_changed_fields() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let c = app.customer(&org).await;
    let path = format!("/v1/customers/{}", text(&c["id"]));
    let updated = expect(
        app.as_org(&org, Method::PATCH, &path)
            .json(&json!({ "email": "jane@example.org", "firstName": "Jane" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["email"], "jane@example.org");
    let events = expect(
        app.as_org(&org, Method::GET, "/v1/events?type=customer.updated"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        events["data"][0]["event"]["payload"]["changedFields"],
        json!(["email"])
    );
}

#[tokio::test]
async fn invalid_patches_change_nothing() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let c = app.customer(&org).await;
    let path = format!("/v1/customers/{}", text(&c["id"]));
    let cases = [
        (
            json!({ "email": "nope" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            json!({ "type": "BUSINESS" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "type",
        ),
        (
            json!({ "dateOfBirth": "tomorrow" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "dateOfBirth",
        ),
        (
            json!({ "address": { "line1": "" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "address.line1",
        ),
        (
            json!({ "lastName": ["x"] }),
            StatusCode::BAD_REQUEST,
            "lastName",
        ),
    ];
    for (body, status, field) in cases {
        expect_error(
            app.as_org(&org, Method::PATCH, &path).json(&body),
            status,
            Some(field),
        )
        .await;
    }
    let read = expect(app.as_org(&org, Method::GET, &path), StatusCode::OK).await;
    assert_eq!(read, c);
    assert_eq!(
        app.event_types(&org, &text(&c["id"])).await,
        ["customer.created"]
    );
}

#[tokio::test]
async fn customers_list_newest_first_in_cursor_pages_and_by_status() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(text(&app.customer(&org).await["id"]));
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/v1/customers?limit=2".to_owned();
    loop {
        let page = expect(app.as_org(&org, Method::GET, &path), StatusCode::OK).await;
        seen.extend(
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|c| text(&c["id"])),
        );
        if page["hasMore"] != json!(true) {
            assert!(page["nextCursor"].is_null());
            break;
        }
        path = format!("/v1/customers?limit=2&after={}", text(&page["nextCursor"]));
    }
    assert_eq!(seen, ids);
    let status_path = format!("/v1/sandbox/customers/{}/status", ids[1]);
    expect(
        app.as_org(&org, Method::POST, &status_path)
            .json(&json!({ "status": "REJECTED" })),
        StatusCode::OK,
    )
    .await;
    let rejected = expect(
        app.as_org(&org, Method::GET, "/v1/customers?status=REJECTED"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(rejected["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(rejected["data"][0]["id"], ids[1].as_str());
}

#[tokio::test]
async fn list_parameters_are_validated() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let cases = [
        (
            "/v1/customers?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit",
        ),
        (
            "/v1/customers?limit=101",
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit",
        ),
        ("/v1/customers?limit=ten", StatusCode::BAD_REQUEST, "limit"),
        (
            "/v1/customers?status=DONE",
            StatusCode::UNPROCESSABLE_ENTITY,
            "status",
        ),
        (
            "/v1/customers?after=cus_x",
            StatusCode::UNPROCESSABLE_ENTITY,
            "after",
        ),
        (
            "/v1/customers?after=cus_000000000000000000000000",
            StatusCode::UNPROCESSABLE_ENTITY,
            "after",
        ),
    ];
    for (path, status, field) in cases {
        expect_error(app.as_org(&org, Method::GET, path), status, Some(field)).await;
    }
}

#[tokio::test]
async fn unknown_customers_are_404() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    for id in [
        "cus_000000000000000000000000",
        "cus_short",
        "evt_000000000000000000000000",
    ] {
        let path = format!("/v1/customers/{id}");
        expect_error(
            app.as_org(&org, Method::GET, &path),
            StatusCode::NOT_FOUND,
            None,
        )
        .await;
        expect_error(
            app.as_org(&org, Method::PATCH, &path)
                .json(&json!({ "firstName": "X" })),
            StatusCode::NOT_FOUND,
            None,
        )
        .await;
    }
}
