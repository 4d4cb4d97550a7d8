use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn forced(app: &TestApp, org: &Org, customer: &Value, to: &str) {
    let path = format!("/v1/sandbox/customers/{}/status", text(&customer["id"]));
    expect(
        app.as_org(org, Method::POST, &path)
            .json(&json!({ "status": to })),
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn an_event_shows_its_exact_body_and_pending_delivery() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let c = app.customer(&org).await;
    let list = expect(app.as_org(&org, Method::GET, "/v1/events"), StatusCode::OK).await;
    let id = text(&list["data"][0]["id"]);
    assert!(id.starts_with("evt_"));
    let response = app
        .as_org(&org, Method::GET, &format!("/v1/events/{id}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let raw = response.text().await.expect("body");
    let shown: Value = serde_json::from_str(&raw).expect("JSON");
    assert_eq!(shown["deliveryStatus"], "pending");
    assert_eq!(shown["attempts"], json!([]));
    let event = &shown["event"];
    assert_eq!(event["type"], "customer.created");
    assert_eq!(event["metadata"]["eventId"], id.as_str());
    assert_eq!(event["metadata"]["organizationId"], org.id.as_str());
    assert_eq!(event["payload"]["customerId"], c["id"]);
    // The body is embedded byte for byte: compact, as it will be signed and sent.
    let compact = serde_json::to_string(event).expect("serializes");
    assert!(raw.starts_with(&format!("{{\"event\":{compact}")), "{raw}");
}

#[tokio::test]
async fn events_list_newest_first_with_filters_and_cursors() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let (a, b) = (app.customer(&org).await, app.customer(&org).await);
    forced(&app, &org, &a, "ACTIVE").await;
    forced(&app, &org, &b, "NEEDS_ADDITIONAL_INFORMATION").await;
    let all = expect(
        app.as_org(&org, Method::GET, "/v1/events?limit=100"),
        StatusCode::OK,
    )
    .await;
    let types: Vec<String> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| text(&e["type"]))
        .collect();
    assert_eq!(
        types,
        [
            "verification.rfi_required",
            "customer.status_changed",
            "verification.completed",
            "customer.status_changed",
            "customer.created",
            "customer.created"
        ]
    );
    let by_type = expect(
        app.as_org(&org, Method::GET, "/v1/events?type=verification.completed"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_type["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(by_type["data"][0]["customerId"], a["id"]);
    let of_b = format!("/v1/events?customerId={}", text(&b["id"]));
    let of_b = expect(app.as_org(&org, Method::GET, &of_b), StatusCode::OK).await;
    assert_eq!(of_b["data"].as_array().map(Vec::len), Some(3));
    let pending = expect(
        app.as_org(&org, Method::GET, "/v1/events?deliveryStatus=pending"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(pending["data"].as_array().map(Vec::len), Some(6));
    let failed = expect(
        app.as_org(&org, Method::GET, "/v1/events?deliveryStatus=failed"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(failed["data"], json!([]));

    let first = expect(
        app.as_org(&org, Method::GET, "/v1/events?limit=4"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["hasMore"], true);
    let next = format!("/v1/events?limit=4&after={}", text(&first["nextCursor"]));
    let second = expect(app.as_org(&org, Method::GET, &next), StatusCode::OK).await;
    assert_eq!(second["hasMore"], false);
    let paged: Vec<String> = [first, second]
        .iter()
        .flat_map(|p| {
            p["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|e| text(&e["type"]))
        })
        .collect();
    assert_eq!(paged, types);
}

#[tokio::test]
async fn event_filters_are_validated() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    for (path, field) in [
        ("/v1/events?type=customer.archived", "type"),
        ("/v1/events?deliveryStatus=lost", "deliveryStatus"),
        ("/v1/events?customerId=42", "customerId"),
        ("/v1/events?after=evt_000000000000000000000000", "after"),
    ] {
        expect_error(
            app.as_org(&org, Method::GET, path),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(field),
        )
        .await;
    }
    expect_error(
        app.as_org(&org, Method::GET, "/v1/events/evt_000000000000000000000000"),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
}

#[tokio::test]
async fn the_admin_lists_events_across_organizations() {
    let app = TestApp::spawn().await;
    let (one, two) = (app.org("sandbox").await, app.org("live").await);
    app.customer(&one).await;
    app.customer(&two).await;
    let all = expect(app.admin(Method::GET, "/v1/admin/events"), StatusCode::OK).await;
    let orgs: Vec<String> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| text(&e["organizationId"]))
        .collect();
    assert_eq!(orgs, [two.id.clone(), one.id.clone()]);
    let failed = expect(
        app.admin(Method::GET, "/v1/admin/events?deliveryStatus=failed"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(failed["data"], json!([]));
    expect_error(
        app.as_org(&one, Method::GET, "/v1/admin/events"),
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
}
