//! PostgreSQL restarted in the middle of a run: the nodes reconnect (pools, the batching
//! writer, LISTEN) and every event whose change was acknowledged is delivered.
//!
//! A test binary of its own: a restart cuts every connection to the server, so nothing else
//! may be using it meanwhile (cargo runs test binaries one after another).

#[allow(dead_code)]
#[path = "process/support.rs"]
mod support;

use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;
use verihook_testkit::{Receiver, TestDatabase};

const ADMIN: &str = "restart-admin";
const CUSTOMERS: usize = 600;

fn node(db: &TestDatabase) -> Running {
    let mut vars = vars_for(db.url().to_owned(), ADMIN);
    vars.extend([
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        (
            "VERIHOOK_RETRY_SCHEDULE",
            "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s".into(),
        ),
    ]);
    start(&vars)
}

/// `pg_ctlcluster <version> main restart`, for the one cluster this machine runs.
fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL installation")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a cluster version");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "restart failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_is_delivered_across_a_postgres_restart() {
    let Some(db) = TestDatabase::postgres_or_skip(
        "every_acknowledged_change_is_delivered_across_a_postgres_restart",
    )
    .await
    else {
        return;
    };
    let receiver = Receiver::http().await;
    let nodes = [node(&db), node(&db)];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    for n in &nodes {
        wait_ready(&client, &n.base).await;
    }
    let base = nodes[0].base.clone();
    let org = call(
        client
            .post(format!("{base}/v1/admin/organizations"))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": "R" })),
    )
    .await;
    let (org_id, key) = (
        org["id"].as_str().expect("id"),
        org["apiKey"].as_str().expect("key"),
    );
    call(
        client
            .put(format!("{base}/v1/admin/organizations/{org_id}/webhook"))
            .bearer_auth(ADMIN)
            .json(&json!({ "url": receiver.url })),
    )
    .await;

    let mut acknowledged = HashSet::new();
    let mut refused = 0;
    for i in 0..CUSTOMERS {
        if i == CUSTOMERS / 3 {
            restart_postgres();
        }
        let response = client
            .post(format!("{}/v1/customers", nodes[i % 2].base))
            .bearer_auth(key)
            .json(&json!({ "type": "INDIVIDUAL", "email": format!("r{i}@example.com"), "firstName": "R", "lastName": "S" }))
            .send()
            .await;
        match response {
            Ok(r) if r.status() == 201 => {
                let customer: Value = r.json().await.expect("JSON");
                acknowledged.insert(customer["id"].as_str().expect("id").to_owned());
            }
            // During the restart the API answers errors: those changes did not happen.
            _ => refused += 1,
        }
    }
    println!(
        "{} changes acknowledged, {refused} refused during the restart",
        acknowledged.len()
    );
    assert!(acknowledged.len() > CUSTOMERS / 2, "the nodes recovered");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered: HashSet<String> = receiver
            .received()
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter_map(|b| b["payload"]["customerId"].as_str().map(str::to_owned))
            .collect();
        let missing = acknowledged.difference(&delivered).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged changes never delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
