//! API keys (CONTRACT §8): several per organization, listed without the key, revoked by
//! the admin API and refused within a second.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

#[tokio::test]
async fn keys_are_created_listed_and_revoked() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let keys_path = format!("/v1/admin/organizations/{}/api-keys", org.id);
    let created = expect(app.admin(Method::POST, &keys_path), StatusCode::CREATED).await;
    let second = Org {
        id: org.id.clone(),
        key: text(&created["apiKey"]),
    };
    assert!(text(&created["id"]).starts_with("key_"));
    assert!(created["createdAt"].is_string());
    for holder in [&org, &second] {
        expect(
            app.as_org(holder, Method::GET, "/v1/customers"),
            StatusCode::OK,
        )
        .await;
    }

    let listed = expect(app.admin(Method::GET, &keys_path), StatusCode::OK).await;
    let keys = listed["data"].as_array().expect("data");
    assert_eq!(keys.len(), 2, "the first key and the new one: {listed}");
    assert!(
        !listed.to_string().contains(&second.key),
        "never the key itself"
    );
    assert_eq!(text(&keys[1]["prefix"]), second.key[..8]);
    assert!(keys[0]["lastUsedAt"].is_string() || keys[0]["lastUsedAt"].is_null());

    let first_id = text(&keys[0]["id"]);
    let revoke = format!("{keys_path}/{first_id}");
    expect(app.admin(Method::DELETE, &revoke), StatusCode::NO_CONTENT).await;
    let revoked_at = Instant::now();
    loop {
        let status = app
            .as_org(&org, Method::GET, "/v1/customers")
            .send()
            .await
            .expect("sent")
            .status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "the revoked key still answers {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    expect(
        app.as_org(&second, Method::GET, "/v1/customers"),
        StatusCode::OK,
    )
    .await;
    expect_error(
        app.admin(Method::DELETE, &revoke),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let listed = expect(app.admin(Method::GET, &keys_path), StatusCode::OK).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn keys_of_a_missing_organization_are_not_found() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    for (method, path) in [
        (
            Method::POST,
            "/v1/admin/organizations/org_000000000000000000000000/api-keys".to_owned(),
        ),
        (
            Method::GET,
            "/v1/admin/organizations/nonsense/api-keys".to_owned(),
        ),
        (
            Method::DELETE,
            format!(
                "/v1/admin/organizations/{}/api-keys/key_000000000000000000000000",
                org.id
            ),
        ),
    ] {
        expect_error(app.admin(method, &path), StatusCode::NOT_FOUND, None).await;
    }
    expect_error(
        app.as_org(
            &org,
            Method::POST,
            &format!("/v1/admin/organizations/{}/api-keys", org.id),
        ),
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
}
