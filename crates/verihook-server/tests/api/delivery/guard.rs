//! Without --allow-private-networks, no delivery reaches a non-public address.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use verihook_testkit::{Receiver, TestPki};

#[tokio::test]
async fn private_and_loopback_targets_are_blocked() {
    let pki = TestPki::new();
    let receiver = Receiver::https(&pki).await;
    let port = receiver.port;
    let ca = pki.ca_pem_path.clone();
    let app = TestApp::spawn_with(move |c| {
        c.extra_ca_cert = Some(ca);
        c.retry_schedule = verihook_server::config::parse_schedule("").expect("schedule");
    })
    .await;
    let targets = [
        format!("https://localhost:{port}/webhooks/verification"),
        format!("https://127.0.0.1:{port}/webhooks/verification"),
        format!("https://[::1]:{port}/webhooks/verification"),
        format!("https://[::ffff:127.0.0.1]:{port}/webhooks/verification"),
        "https://10.0.0.1/hook".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://192.168.1.1/hook".to_owned(),
    ];
    for target in &targets {
        let (org, _) = app.org_sending_to(target).await;
        app.customer(&org).await;
        let page = expect(app.as_org(&org, Method::GET, "/v1/events"), StatusCode::OK).await;
        let id = text(&page["data"][0]["id"]);
        let shown = app.wait_for_status(&org, &id, "failed").await;
        let attempt = &shown["attempts"][0];
        assert_eq!(attempt["errorClass"], "blocked", "{target}: {shown}");
        assert!(
            attempt["error"]
                .as_str()
                .is_some_and(|e| e.contains("non-public")),
            "{attempt}"
        );
        if target.contains("localhost") {
            // The organization sees this message: it must not learn what the host
            // resolves to inside the operator's network.
            let error = attempt["error"].as_str().unwrap_or_default();
            assert!(
                !error.contains("127.0.0.1") && !error.contains("::1"),
                "{error}"
            );
        }
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
    let _ = json!(null);
}
