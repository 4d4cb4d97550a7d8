use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn path(org: &Org) -> String {
    format!("/v1/admin/organizations/{}/webhook", org.id)
}

#[tokio::test]
async fn the_secret_is_generated_on_first_configuration_and_kept() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let url = "https://api.example.com/webhooks/verification";
    let first = expect(
        app.admin(Method::PUT, &path(&org))
            .json(&json!({ "url": url })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["url"], url);
    let secret = text(&first["secret"]);
    assert!(secret.starts_with("whsec_") && secret.len() > 30);
    let second = expect(
        app.admin(Method::PUT, &path(&org))
            .json(&json!({ "url": "https://other.example.com/hook" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(second["secret"], secret.as_str());
    assert_eq!(second["url"], "https://other.example.com/hook");
}

#[tokio::test]
async fn rotation_replaces_the_secret() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let set = expect(
        app.admin(Method::PUT, &path(&org))
            .json(&json!({ "url": "https://a.example.com/h" })),
        StatusCode::OK,
    )
    .await;
    let rotated = expect(
        app.admin(Method::POST, &format!("{}/rotate-secret", path(&org))),
        StatusCode::OK,
    )
    .await;
    assert!(text(&rotated["secret"]).starts_with("whsec_"));
    assert_ne!(rotated["secret"], set["secret"]);
    let again = expect(
        app.admin(Method::PUT, &path(&org))
            .json(&json!({ "url": "https://a.example.com/h" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["secret"], rotated["secret"]);
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let app = TestApp::spawn().await;
    let org = app.org("live").await;
    let http = json!({ "url": "http://api.example.com/hook" });
    expect_error(
        app.admin(Method::PUT, &path(&org)).json(&http),
        StatusCode::BAD_REQUEST,
        Some("url"),
    )
    .await;
    expect_error(
        app.as_org(&org, Method::PUT, "/v1/webhook").json(&http),
        StatusCode::BAD_REQUEST,
        Some("url"),
    )
    .await;
    for bad in [
        json!({}),
        json!({ "url": "not a url" }),
        json!({ "url": "https://u:p@x.example.com/" }),
    ] {
        expect_error(
            app.admin(Method::PUT, &path(&org)).json(&bad),
            StatusCode::BAD_REQUEST,
            Some("url"),
        )
        .await;
    }
    let view = expect(app.as_org(&org, Method::GET, "/v1/webhook"), StatusCode::OK).await;
    assert!(view["url"].is_null(), "nothing was stored: {view}");

    let permissive = TestApp::spawn_with(|c| c.allow_http = true).await;
    let org = permissive.org("live").await;
    expect(
        permissive.admin(Method::PUT, &path(&org)).json(&http),
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn an_organization_sees_its_url_but_not_its_secret() {
    let app = TestApp::spawn().await;
    let org = app.org("sandbox").await;
    let first = expect(
        app.as_org(&org, Method::PUT, "/v1/webhook")
            .json(&json!({ "url": "https://a.example.com/h" })),
        StatusCode::OK,
    )
    .await;
    assert!(
        text(&first["secret"]).starts_with("whsec_"),
        "first configuration shows it"
    );
    let second = expect(
        app.as_org(&org, Method::PUT, "/v1/webhook")
            .json(&json!({ "url": "https://b.example.com/h" })),
        StatusCode::OK,
    )
    .await;
    assert!(second.get("secret").is_none(), "{second}");
    let view = expect(app.as_org(&org, Method::GET, "/v1/webhook"), StatusCode::OK).await;
    assert_eq!(view["url"], "https://b.example.com/h");
    assert!(view.get("secret").is_none(), "{view}");
}

#[tokio::test]
async fn unknown_organizations_are_404() {
    let app = TestApp::spawn().await;
    let body = json!({ "url": "https://a.example.com/h" });
    for id in [
        "org_00000000000000000000000000",
        "org_0000000000000000000000000",
        "nope",
    ] {
        let p = format!("/v1/admin/organizations/{id}/webhook");
        expect_error(
            app.admin(Method::PUT, &p).json(&body),
            StatusCode::NOT_FOUND,
            None,
        )
        .await;
        let r = format!("{p}/rotate-secret");
        expect_error(app.admin(Method::POST, &r), StatusCode::NOT_FOUND, None).await;
    }
}

/// Test sends go out at most three at a time per organization; the others are refused
/// with 429 and `Retry-After`, and nothing is sent for them.
#[tokio::test]
async fn test_sends_are_bounded_per_organization() {
    let pki = verihook_testkit::TestPki::new();
    let receiver = verihook_testkit::Receiver::https(&pki).await;
    receiver.always(verihook_testkit::Reply::Delay(
        std::time::Duration::from_millis(1500),
        200,
    ));
    let app = TestApp::delivering(&pki, "").await;
    let (org, _) = app.org_sending_to(&receiver.url).await;
    let calls = (0..10).map(|_| app.as_org(&org, Method::POST, "/v1/webhook/test").send());
    let answers = futures_util::future::join_all(calls).await;
    let mut statuses: Vec<u16> = Vec::new();
    for answer in answers {
        let answer = answer.expect("sent");
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(
                answer
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
                Some("1")
            );
        }
        statuses.push(answer.status().as_u16());
    }
    let sent = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(sent, 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 7);
    assert_eq!(
        receiver.received().len(),
        3,
        "only the admitted ones went out"
    );
    // Once they answered, there is room again.
    expect(
        app.as_org(&org, Method::POST, "/v1/webhook/test"),
        StatusCode::OK,
    )
    .await;
}
