use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn admin_path(customer: &Value) -> String {
    format!("/v1/admin/customers/{}/status", text(&customer["id"]))
}

fn sandbox_path(customer: &Value) -> String {
    format!("/v1/sandbox/customers/{}/status", text(&customer["id"]))
}

#[tokio::test]
async fn the_verification_team_follows_the_workflow() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let c = app.customer_under_review(&org).await;
    let id = text(&c["id"]);
    let active = expect(
        app.admin(Method::POST, &admin_path(&c))
            .json(&json!({ "status": "ACTIVE" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(active["status"], "ACTIVE");
    let before = app.event_types(&org, &id).await;
    assert_eq!(
        before[before.len() - 2..],
        ["customer.status_changed", "verification.completed"]
    );
    for refused in ["REJECTED", "UNDER_REVIEW", "CREATED", "ACTIVE"] {
        expect_error(
            app.admin(Method::POST, &admin_path(&c))
                .json(&json!({ "status": refused })),
            StatusCode::CONFLICT,
            Some("status"),
        )
        .await;
    }
    assert_eq!(
        app.event_types(&org, &id).await,
        before,
        "a refused change emits nothing"
    );
    let read = expect(
        app.as_org(&org, Method::GET, &format!("/v1/customers/{id}")),
        StatusCode::OK,
    )
    .await;
    assert_eq!(read["status"], "ACTIVE");
    for (to, event) in [
        ("DEACTIVATED", "verification.completed"),
        ("ACTIVE", "verification.completed"),
    ] {
        expect(
            app.admin(Method::POST, &admin_path(&c))
                .json(&json!({ "status": to })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            app.event_types(&org, &id).await.last().map(String::as_str),
            Some(event)
        );
    }
}

#[tokio::test]
async fn review_from_created_needs_complete_data() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let c = app.customer(&org).await;
    let body = expect_error(
        app.admin(Method::POST, &admin_path(&c))
            .json(&json!({ "status": "UNDER_REVIEW" })),
        StatusCode::CONFLICT,
        Some("status"),
    )
    .await;
    assert_eq!(body["error"]["code"], "data_incomplete");
}

#[tokio::test]
async fn rfi_carries_the_reason_and_resubmission_returns_to_review() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let c = app.customer_under_review(&org).await;
    let id = text(&c["id"]);
    let reason = "Additional document verification required";
    expect(
        app.admin(Method::POST, &admin_path(&c))
            .json(&json!({ "status": "NEEDS_ADDITIONAL_INFORMATION", "reason": reason })),
        StatusCode::OK,
    )
    .await;
    let rfi = expect(
        app.as_org(
            &org,
            Method::GET,
            "/v1/events?type=verification.rfi_required",
        ),
        StatusCode::OK,
    )
    .await;
    assert_eq!(rfi["data"][0]["event"]["payload"]["reason"], reason);
    let resubmitted = expect(
        app.as_org(&org, Method::PATCH, &format!("/v1/customers/{id}"))
            .json(&json!({ "address": { "line2": "Floor 3" } })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(resubmitted["status"], "UNDER_REVIEW");
}

#[tokio::test]
async fn the_sandbox_forces_any_status() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let c = app.customer(&org).await;
    for to in [
        "REJECTED",
        "ACTIVE",
        "CREATED",
        "NEEDS_ADDITIONAL_INFORMATION",
        "DEACTIVATED",
        "UNDER_REVIEW",
    ] {
        let changed = expect(
            app.as_org(&org, Method::POST, &sandbox_path(&c))
                .json(&json!({ "status": to })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(changed["status"], to);
    }
    expect_error(
        app.as_org(&org, Method::POST, &sandbox_path(&c))
            .json(&json!({ "status": "UNDER_REVIEW" })),
        StatusCode::CONFLICT,
        Some("status"),
    )
    .await;
    let types = app.event_types(&org, &text(&c["id"])).await;
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(count("customer.status_changed"), 6);
    assert_eq!(count("verification.completed"), 3);
    assert_eq!(count("verification.rfi_required"), 1);
}

#[tokio::test]
async fn live_organizations_cannot_force_statuses() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let c = app.customer(&org).await;
    expect_error(
        app.as_org(&org, Method::POST, &sandbox_path(&c))
            .json(&json!({ "status": "ACTIVE" })),
        StatusCode::FORBIDDEN,
        None,
    )
    .await;
    assert_eq!(
        app.event_types(&org, &text(&c["id"])).await,
        ["customer.created"]
    );
}

#[tokio::test]
async fn status_requests_are_validated() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let c = app.customer(&org).await;
    let cases = [
        (
            json!({ "status": "DONE" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "status",
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, "status"),
        (
            json!({ "status": "ACTIVE", "reason": "" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason",
        ),
        (json!({ "status": 1 }), StatusCode::BAD_REQUEST, "status"),
    ];
    for (body, status, field) in cases {
        expect_error(
            app.as_org(&org, Method::POST, &sandbox_path(&c))
                .json(&body),
            status,
            Some(field),
        )
        .await;
        expect_error(
            app.admin(Method::POST, &admin_path(&c)).json(&body),
            status,
            Some(field),
        )
        .await;
    }
    let missing = "/v1/admin/customers/cus_000000000000000000000000/status";
    expect_error(
        app.admin(Method::POST, missing)
            .json(&json!({ "status": "ACTIVE" })),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
}
