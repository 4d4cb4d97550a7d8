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

/// Personal data the run below uses; none of it may reach the log or an alert.
const PERSONAL: [&str; 8] = [
    "quentin.example@example.com",
    "Quentin",
    "Examplovic",
    "renamed.person@example.org",
    "Rosalind",
    "Brightwater",
    "Passport of Quentin",
    "1987-06-05",
];

/// A full run at debug level (customers created, changed, refused, decided, erased; events
/// delivered, retried, failed, redelivered; an incident alerted): the JSON log and the
/// alerts hold no email address, name, date of birth or status reason that it used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_logs_and_alerts_no_personal_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("server.log");
    let alerts = Receiver::http().await;
    let receiver = Receiver::http().await;
    // The first event's two attempts fail (it fails for good: an incident), then 200s.
    receiver.script(std::iter::repeat_n(Reply::Status(500), 2));
    let mut vars = base_vars(&dir.path().join("personal.db"), ADMIN);
    vars.extend([
        ("VERIHOOK_LOG_FORMAT", "json".into()),
        ("RUST_LOG", "debug".into()),
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("VERIHOOK_RETRY_SCHEDULE", "50ms".into()),
        ("VERIHOOK_ALERT_WEBHOOK_URL", alerts.url.clone()),
    ]);
    let mut server = start_logging_to(&vars, std::fs::File::create(&log_path).expect("log"));
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;
    let base = server.base.clone();
    let org = org_sending_to(&client, &base, ADMIN, &receiver.url).await;
    let send = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&org.key)
    };
    let created = call(send(reqwest::Method::POST, "/v1/customers").json(&json!({
        "type": "INDIVIDUAL", "email": PERSONAL[0], "firstName": PERSONAL[1], "lastName": PERSONAL[2]
    })))
    .await;
    let id = text(&created["id"]);
    let customer = format!("/v1/customers/{id}");
    let failed = receiver.wait_for(2, Duration::from_secs(15)).await;
    alerts.wait_for(1, Duration::from_secs(15)).await;
    let refused = send(reqwest::Method::PATCH, &customer)
        .json(&json!({ "email": format!("{} nope", PERSONAL[3]) }))
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 422);
    call(send(reqwest::Method::PATCH, &customer).json(&json!({
        "email": PERSONAL[3], "firstName": PERSONAL[4], "lastName": PERSONAL[5],
        "dateOfBirth": PERSONAL[7],
        "address": { "line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE" }
    })))
    .await;
    let status = format!("/v1/sandbox/customers/{id}/status");
    call(send(reqwest::Method::POST, &status).json(&json!({
        "status": "NEEDS_ADDITIONAL_INFORMATION", "reason": PERSONAL[6]
    })))
    .await;
    receiver.wait_for(5, Duration::from_secs(15)).await;
    let event = failed[0]
        .header("x-webhook-event-id")
        .expect("event id")
        .to_owned();
    call(send(
        reqwest::Method::POST,
        &format!("/v1/events/{event}/redeliver"),
    ))
    .await;
    let erased = send(reqwest::Method::DELETE, &customer)
        .send()
        .await
        .expect("sent");
    assert_eq!(erased.status(), 204);
    receiver.wait_for(8, Duration::from_secs(15)).await;
    assert!(terminate_and_wait(&mut server).success());

    let log = std::fs::read_to_string(&log_path).expect("log read");
    assert!(
        log.contains("customer erased"),
        "the erasure is logged, by id"
    );
    let sent_alerts: Vec<String> = alerts
        .received()
        .iter()
        .map(|a| String::from_utf8_lossy(&a.body).into_owned())
        .collect();
    for value in PERSONAL {
        assert!(!log.contains(value), "the log holds {value:?}");
        for alert in &sent_alerts {
            assert!(!alert.contains(value), "an alert holds {value:?}: {alert}");
        }
    }
}
