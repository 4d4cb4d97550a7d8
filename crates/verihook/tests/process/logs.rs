//! `--log-format json`: one JSON object per line, one line per attempt with what an
//! operator searches by, and never a secret, an API key, the admin token or a signature.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;
use verihook_testkit::{Receiver, Reply};

const ADMIN: &str = "logs-admin-token-do-not-print";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_a_line_per_attempt_and_no_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("server.log");
    let mut vars = base_vars(&dir.path().join("logs.db"), ADMIN);
    vars.extend([
        ("VERIHOOK_LOG_FORMAT", "json".into()),
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("VERIHOOK_RETRY_SCHEDULE", "50ms".into()),
    ]);
    let receiver = Receiver::http().await;
    receiver.script([Reply::Status(500)]);
    let mut server = start_logging_to(&vars, std::fs::File::create(&log_path).expect("log"));
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;

    let base = server.base.clone();
    let org = org_sending_to(&client, &base, ADMIN, &receiver.url).await;
    let (org_id, key, secret) = (org.id, org.key, org.secret);
    call(
        client
            .post(format!("{base}/v1/customers"))
            .bearer_auth(&key)
            .json(&json!({ "type": "INDIVIDUAL", "email": "l@example.com", "firstName": "L", "lastName": "S" })),
    )
    .await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    call(
        client
            .post(format!("{base}/v1/webhook/test"))
            .bearer_auth(&key),
    )
    .await;
    let got = [got, receiver.wait_for(3, Duration::from_secs(10)).await].concat();
    assert!(terminate_and_wait(&mut server).success());

    let log = std::fs::read_to_string(&log_path).expect("log read");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let event_id = got[0].header("x-webhook-event-id").expect("event id");
    let attempts: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "webhook attempt")
        .map(|l| {
            assert!(l["duration_ms"].is_u64(), "duration in {l}");
            assert_eq!(l["organization_id"], org_id.as_str(), "{l}");
            assert_eq!(l["level"], "INFO");
            (
                text(&l["event_id"]),
                l["attempt"].as_u64(),
                text(&l["outcome"]),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            (event_id.to_owned(), Some(1), "retry".to_owned()),
            (event_id.to_owned(), Some(2), "delivered".to_owned()),
        ]
    );
    let mut never = vec![secret, key, ADMIN.to_owned()];
    never.extend(
        got.iter()
            .filter_map(|r| r.header("x-webhook-signature").map(str::to_owned)),
    );
    for value in never {
        assert!(!log.contains(&value), "the log shows a secret value");
    }
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string: {v}"))
        .to_owned()
}
