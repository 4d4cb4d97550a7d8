//! `GET /openapi.json`: an OpenAPI 3.1 document of exactly the routes the server serves.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

/// Every operation of the API, as CONTRACT §2 and the operations endpoints list them.
const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/v1/admin/organizations"),
    ("put", "/v1/admin/organizations/{org_id}/webhook"),
    ("post", "/v1/admin/organizations/{org_id}/events/recover"),
    ("post", "/v1/events/recover"),
    ("get", "/v1/recoveries"),
    ("get", "/v1/recoveries/{recovery_id}"),
    ("post", "/v1/admin/organizations/{org_id}/api-keys"),
    ("get", "/v1/admin/organizations/{org_id}/api-keys"),
    (
        "delete",
        "/v1/admin/organizations/{org_id}/api-keys/{key_id}",
    ),
    (
        "post",
        "/v1/admin/organizations/{org_id}/webhook/rotate-secret",
    ),
    ("get", "/v1/admin/events"),
    ("post", "/v1/admin/customers/{id}/status"),
    ("delete", "/v1/admin/customers/{id}"),
    ("get", "/v1/admin/erasures"),
    ("get", "/v1/webhook"),
    ("put", "/v1/webhook"),
    ("post", "/v1/webhook/test"),
    ("post", "/v1/customers"),
    ("get", "/v1/customers"),
    ("get", "/v1/customers/{id}"),
    ("patch", "/v1/customers/{id}"),
    ("delete", "/v1/customers/{id}"),
    ("post", "/v1/sandbox/customers/{id}/status"),
    ("get", "/v1/events"),
    ("get", "/v1/events/stream"),
    ("get", "/v1/events/{event_id}"),
    ("post", "/v1/events/{event_id}/redeliver"),
    ("get", "/v1/stats/deliveries"),
    ("get", "/v1/endpoints"),
    ("post", "/v1/endpoints"),
    ("get", "/v1/endpoints/{endpoint_id}"),
    ("patch", "/v1/endpoints/{endpoint_id}"),
    ("delete", "/v1/endpoints/{endpoint_id}"),
    ("post", "/v1/endpoints/{endpoint_id}/check"),
    ("post", "/v1/endpoints/{endpoint_id}/rotate-secret"),
    ("post", "/v1/endpoints/{endpoint_id}/rotate-secret/complete"),
    ("post", "/v1/webhook/rotate-secret"),
    ("post", "/v1/webhook/rotate-secret/complete"),
    (
        "post",
        "/v1/admin/organizations/{org_id}/webhook/rotate-secret/complete",
    ),
];

async fn document(app: &TestApp) -> Value {
    expect(app.request(Method::GET, "/openapi.json"), StatusCode::OK).await
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item");
            methods.keys().map(move |m| (m.clone(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn the_document_lists_every_operation_and_only_those() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let expected: BTreeSet<_> = OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(operations(&doc), expected);
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    for (method, path) in operations(&doc) {
        let concrete = path
            .replace("{org_id}", "org_00000000000000000000000a")
            .replace("{id}", "cus_00000000000000000000000a")
            .replace("{event_id}", "evt_00000000000000000000000a");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let response = app
            .request(method.clone(), &concrete)
            .send()
            .await
            .expect("sent");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !body.contains("route not found"),
            "{method} {path} is documented but not routed"
        );
    }
}

#[tokio::test]
async fn operations_declare_their_auth_and_error_body() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert!(schemes.contains_key("organizationKey") && schemes.contains_key("adminToken"));
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    for (method, path) in operations(&doc) {
        let operation = &doc["paths"][&path][&method];
        let protected = path.starts_with("/v1/");
        if protected {
            let scheme = if path.starts_with("/v1/admin/") {
                "adminToken"
            } else {
                "organizationKey"
            };
            assert!(
                operation["security"][0][scheme].is_array(),
                "{method} {path} declares {scheme}"
            );
            let unauthorized = &operation["responses"]["401"]["content"]["application/json"];
            assert_eq!(
                unauthorized["schema"]["$ref"], "#/components/schemas/ErrorBody",
                "{method} {path} documents its 401"
            );
        }
    }
}

#[tokio::test]
async fn every_v1_operation_documents_the_rate_limit_and_writes_the_idempotency_key() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    for (method, path) in operations(&doc) {
        if !path.starts_with("/v1/") {
            continue;
        }
        let operation = &doc["paths"][&path][&method];
        assert!(
            operation["responses"]["429"].is_object(),
            "{method} {path} documents 429"
        );
        let keyed = operation["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
        assert_eq!(
            keyed,
            method == "post" || method == "patch",
            "{method} {path}: the Idempotency-Key header"
        );
    }
}
