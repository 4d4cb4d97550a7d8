//! `verihook check` against receivers that each break one item of the testing checklist:
//! each fails on exactly the checks of that item (CONTRACT §10).

use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use verihook_receiver::signature;

const SECRET: &str = "whsec_wrong_receivers";

/// The one thing a receiver gets wrong.
#[derive(Clone, Copy)]
enum Flaw {
    /// Takes 11 s to answer.
    Slow,
    /// Answers 400 to an event type it does not know.
    RefusesUnknownTypes,
    /// Answers 409 to an event id it has seen.
    RefusesDuplicates,
    /// Never checks the signature (only that the timestamp is fresh).
    SkipsSignatures,
    /// Checks the signature but not the timestamp's age.
    SkipsTimestamps,
    /// Checks the signature only when there is one.
    AcceptsUnsigned,
}

struct Receiver {
    flaw: Flaw,
    seen: Mutex<HashSet<String>>,
}

const KNOWN: [&str; 5] = [
    "customer.created",
    "customer.updated",
    "customer.status_changed",
    "verification.completed",
    "verification.rfi_required",
];

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(0)
}

/// A correct receiver but for its flaw.
async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header("x-webhook-timestamp").and_then(|t| t.parse::<i64>().ok());
    let signed = match (header("x-webhook-signature"), timestamp) {
        (Some(sig), Some(ts)) => signature::verify(SECRET.as_bytes(), ts, &body, sig),
        (None, _) if matches!(r.flaw, Flaw::AcceptsUnsigned) => true,
        _ => false,
    };
    let fresh = timestamp.is_some_and(|ts| (now() - ts).abs() <= 300);
    let verified = match r.flaw {
        Flaw::SkipsSignatures => fresh,
        Flaw::SkipsTimestamps => signed,
        Flaw::AcceptsUnsigned if header("x-webhook-signature").is_none() => true,
        _ => signed && fresh,
    };
    if !verified {
        return StatusCode::UNAUTHORIZED;
    }
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = event["metadata"]["eventId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let known = KNOWN.contains(&event["type"].as_str().unwrap_or_default());
    let first = r.seen.lock().map(|mut s| s.insert(id)).unwrap_or(true);
    match r.flaw {
        Flaw::Slow => tokio::time::sleep(Duration::from_secs(11)).await,
        Flaw::RefusesUnknownTypes if !known => return StatusCode::BAD_REQUEST,
        Flaw::RefusesDuplicates if !first => return StatusCode::CONFLICT,
        _ => {}
    }
    StatusCode::OK
}

async fn serve(flaw: Flaw) -> String {
    let state = Arc::new(Receiver {
        flaw,
        seen: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/hook")
}

/// The names of the checks `verihook check` failed at `url`.
async fn failed_at(url: String) -> Vec<String> {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binary())
            .args(["check", &url, "--secret", SECRET, "--json"])
            .env_clear()
            .output()
            .expect("check runs")
    })
    .await
    .expect("joined");
    assert!(
        !output.status.success(),
        "a flawed receiver fails the check"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["verdict"] == "FAIL")
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_flawed_receiver_fails_exactly_the_item_it_breaks() {
    let within = |t: &str| format!("{t} answered 2xx within 10 s");
    let mut typed: Vec<String> = KNOWN.iter().map(|t| within(t)).collect();
    typed.push("an unknown event type answered 2xx".into());
    typed.push("the same event twice answered 2xx both times".into());
    let cases = [
        (Flaw::Slow, typed),
        (
            Flaw::RefusesUnknownTypes,
            vec!["an unknown event type answered 2xx".to_owned()],
        ),
        (
            Flaw::RefusesDuplicates,
            vec!["the same event twice answered 2xx both times".to_owned()],
        ),
        (
            Flaw::SkipsSignatures,
            // (It still refuses a request without a timestamp.)
            vec![
                "a wrong signature refused".to_owned(),
                "a tampered body refused".to_owned(),
            ],
        ),
        (
            Flaw::SkipsTimestamps,
            vec!["a timestamp 10 minutes old refused".to_owned()],
        ),
        (
            Flaw::AcceptsUnsigned,
            vec!["a request without signature headers refused".to_owned()],
        ),
    ];
    // All at once: the slow one takes its 11 s (twice: the duplicate comes after the first
    // sending) beside the others.
    let runs = cases.map(|(flaw, expected)| async move {
        let url = serve(flaw).await;
        (failed_at(url).await, expected)
    });
    for (failed, expected) in futures_util::future::join_all(runs).await {
        assert_eq!(failed, expected);
    }
}
