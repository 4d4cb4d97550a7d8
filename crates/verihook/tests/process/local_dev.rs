//! Local development (CONTRACT §10): `verihook listen --forward-to` (the event stream
//! forwarded to a local receiver, each event once, also across a restart of the server)
//! and `verihook trigger`.

use crate::support::*;
use serde_json::json;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use verihook_receiver::Verifier;
use verihook_testkit::Receiver;

const ADMIN: &str = "forward-admin";

/// The `listen --forward-to` child, stopped with the test.
struct Forwarder(Child);

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` customers, e-mailed `{tag}{i}@example.com`.
async fn create(client: &reqwest::Client, base: &str, key: &str, tag: &str, n: usize) {
    for i in 0..n {
        call(
            client
                .post(format!("{base}/v1/customers"))
                .bearer_auth(key)
                .json(&json!({ "type": "INDIVIDUAL", "email": format!("{tag}{i}@example.com"), "firstName": "F", "lastName": "W" })),
        )
        .await;
    }
}

/// `listen --forward-to` the local receiver, following the stream of the node at
/// `stream_base`; returns once it forwards (events made on `api_base` meanwhile).
async fn forwarding(
    client: &reqwest::Client,
    local: &Receiver,
    stream_base: &str,
    api_base: &str,
    key: &str,
) -> Forwarder {
    let forwarder = Forwarder(
        Command::new(binary())
            .args(["listen", "--forward-to", &local.url, "--api", stream_base])
            .args(["--api-key", key])
            .env_clear()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("listen starts"),
    );
    // The stream starts at its connection: wait for it before making events.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        create(client, api_base, key, "connecting", 1).await;
        if !local.received().is_empty() {
            return forwarder;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "listen never connected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many requests the receiver got whose body holds `text`, waiting up to 20 s for one.
async fn received_with(local: &Receiver, text: &str) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = local
            .received()
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(text))
            .count();
        if n > 0 || std::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_every_event_once_across_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("forward.db");
    // Where the server delivers (not under test) and the local receiver forwarded to.
    let (remote, local) = (Receiver::http().await, Receiver::http().await);
    let client = reqwest::Client::new();
    let mut vars = base_vars(&db, ADMIN);
    vars.push(("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()));
    let mut server = start(&vars);
    wait_ready(&client, &server.base).await;
    let base = server.base.clone();
    let org = org_sending_to(&client, &base, ADMIN, &remote.url).await;
    let _forwarder = forwarding(&client, &local, &base, &base, &org.key).await;
    create(&client, &base, &org.key, "before", 3).await;
    for i in 0..3 {
        assert_eq!(received_with(&local, &format!("before{i}@")).await, 1);
    }

    kill_hard(&mut server);
    let address = base.trim_start_matches("http://").to_owned();
    vars.retain(|(k, _)| *k != "VERIHOOK_LISTEN");
    vars.push(("VERIHOOK_LISTEN", address));
    let restarted = start(&vars);
    wait_ready(&client, &restarted.base).await;
    create(&client, &base, &org.key, "after", 5).await;
    for i in 0..5 {
        assert_eq!(
            received_with(&local, &format!("after{i}@")).await,
            1,
            "after the restart"
        );
    }
    let got = local.received();

    let verifier = Verifier::new(&org.secret);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("fits");
    let mut seen = HashMap::<String, usize>::new();
    for r in &got {
        let verified = verifier.verify_request_at(now, |name| r.header(name), &r.body);
        assert!(verified.is_ok(), "forwarded as signed: {verified:?}");
        *seen
            .entry(
                r.header("x-webhook-event-id")
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "each once: {seen:?}");
}

/// `verihook trigger TYPE` makes an event of each of the five types happen, and prints it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_emits_each_event_type() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::http().await;
    let client = reqwest::Client::new();
    let mut vars = base_vars(&dir.path().join("trigger.db"), ADMIN);
    vars.push(("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()));
    let server = start(&vars);
    wait_ready(&client, &server.base).await;
    let org = org_sending_to(&client, &server.base, ADMIN, &receiver.url).await;
    for event_type in [
        "customer.created",
        "customer.updated",
        "customer.status_changed",
        "verification.completed",
        "verification.rfi_required",
        "customer.deleted",
    ] {
        let output = Command::new(binary())
            .args(["trigger", event_type, "--api", &server.base, "--json"])
            .args(["--api-key", &org.key])
            .env_clear()
            .output()
            .expect("trigger runs");
        assert!(
            output.status.success(),
            "{event_type}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert!(printed["customerId"]
            .as_str()
            .is_some_and(|c| c.starts_with("cus_")));
        let types: Vec<&str> = printed["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect();
        assert!(types.contains(&event_type), "{event_type} in {types:?}");
        assert!(printed["events"][0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("evt_")));
    }
    let refused = Command::new(binary())
        .args(["trigger", "customer.archived", "--api", &server.base])
        .args(["--api-key", &org.key])
        .env_clear()
        .output()
        .expect("trigger runs");
    assert!(!refused.status.success(), "an unknown type is refused");
}

/// On PostgreSQL with two nodes: events made on one node reach a stream on the other; the
/// stream's node is killed (SIGKILL) and restarted while events keep coming on the first;
/// `listen --forward-to` forwards every one of them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_another_node_s_events_across_a_node_kill() {
    let name = "listen_forwards_another_node_s_events_across_a_node_kill";
    let Some(db) = verihook_testkit::TestDatabase::postgres_or_skip(name).await else {
        return;
    };
    let (remote, local) = (Receiver::http().await, Receiver::http().await);
    let client = reqwest::Client::new();
    let mut vars = vars_for(db.url().to_owned(), ADMIN);
    vars.push(("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()));
    let (writer, mut streaming) = (start(&vars), start(&vars));
    for node in [&writer, &streaming] {
        wait_ready(&client, &node.base).await;
    }
    let org = org_sending_to(&client, &writer.base, ADMIN, &remote.url).await;
    let stream_base = streaming.base.clone();
    let _forwarder = forwarding(&client, &local, &stream_base, &writer.base, &org.key).await;
    create(&client, &writer.base, &org.key, "before", 3).await;
    kill_hard(&mut streaming);
    create(&client, &writer.base, &org.key, "while-down", 3).await;
    vars.retain(|(k, _)| *k != "VERIHOOK_LISTEN");
    vars.push((
        "VERIHOOK_LISTEN",
        stream_base.trim_start_matches("http://").to_owned(),
    ));
    let restarted = start(&vars);
    wait_ready(&client, &restarted.base).await;
    create(&client, &writer.base, &org.key, "after", 3).await;
    for tag in ["before", "while-down", "after"] {
        for i in 0..3 {
            let email = format!("{tag}{i}@");
            assert_eq!(received_with(&local, &email).await, 1, "{email}");
        }
    }
    let mut seen = HashMap::<String, usize>::new();
    for r in local.received() {
        *seen
            .entry(
                r.header("x-webhook-event-id")
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "each once: {seen:?}");
}
