//! The `verihook` binary configured only through `VERIHOOK_*` variables.

use crate::support::*;
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::Command;

#[tokio::test]
async fn starts_from_environment_variables_alone_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("env.db");
    let mut vars = base_vars(&db, "env-admin");
    vars.extend([
        ("VERIHOOK_RETRY_SCHEDULE", "100ms,200ms".into()),
        ("VERIHOOK_DELIVERY_TIMEOUT", "2s".into()),
    ]);
    let mut running = start(&vars);
    let client = reqwest::Client::new();
    wait_ready(&client, &running.base).await;
    assert!(db.exists(), "the SQLite file is created");

    let org: Value = call(
        client
            .post(format!("{}/v1/admin/organizations", running.base))
            .bearer_auth("env-admin")
            .json(&json!({ "name": "Env", "mode": "sandbox" })),
    )
    .await;
    let org_id = org["id"].as_str().expect("id");
    let webhook = client
        .put(format!(
            "{}/v1/admin/organizations/{org_id}/webhook",
            running.base
        ))
        .bearer_auth("env-admin")
        .json(&json!({ "url": "http://127.0.0.1:9/hook" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        webhook.status(),
        200,
        "VERIHOOK_ALLOW_HTTP=true is honoured"
    );

    let status = terminate_and_wait(&mut running);
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn dev_mode_prints_a_working_sandbox() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut running = start(&[
        ("VERIHOOK_LISTEN", "127.0.0.1:0".into()),
        (
            "VERIHOOK_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("dev.db").display()),
        ),
        ("VERIHOOK_DEV", "true".into()),
    ]);
    let mut banner = String::new();
    while !banner.contains("/v1/events") {
        let mut line = String::new();
        let read = running.stdout.read_line(&mut line).expect("banner");
        assert!(read > 0, "banner ended early: {banner}");
        banner.push_str(&line);
    }
    let field = |name: &str| {
        banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} in {banner}"))
    };
    let key = field("API key:");
    assert!(field("webhook secret:").starts_with("whsec_"));
    assert!(banner.contains("curl"));

    let client = reqwest::Client::new();
    wait_ready(&client, &running.base).await;
    let created = client
        .post(format!("{}/v1/customers", running.base))
        .bearer_auth(&key)
        .json(&json!({ "type": "INDIVIDUAL", "email": "a@example.com", "firstName": "A", "lastName": "B" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);
    let customer: Value = created.json().await.expect("JSON");
    let forced = client
        .post(format!(
            "{}/v1/sandbox/customers/{}/status",
            running.base,
            customer["id"].as_str().expect("id")
        ))
        .bearer_auth(&key)
        .json(&json!({ "status": "ACTIVE" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(forced.status(), 200, "the dev organization is a sandbox");
}

#[test]
fn bad_flags_are_refused_with_the_flag_named() {
    let output = Command::new(binary())
        .args(["serve", "--retry-schedule", "1x"])
        .env_clear()
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--retry-schedule"), "{stderr}");
}
