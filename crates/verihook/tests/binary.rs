//! The `verihook` binary as a process, configured only through `VERIHOOK_*` variables.
//! CI points `VERIHOOK_TEST_BIN` at the release build; otherwise cargo's build is used.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

fn binary() -> String {
    std::env::var("VERIHOOK_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_verihook").to_owned())
}

struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `verihook serve` with nothing but `vars` in its environment, and waits for the
/// line that says where it listens.
fn start(vars: &[(&str, String)]) -> Running {
    let mut child = Command::new(binary())
        .arg("serve")
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("first line");
    let base = line
        .trim()
        .strip_prefix("verihook listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    Running {
        child,
        stdout,
        base,
    }
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "not ready within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn terminate_and_wait(running: &mut Running) -> std::process::ExitStatus {
    let pid = running.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "did not exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn starts_from_environment_variables_alone_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("env.db");
    let mut running = start(&[
        ("VERIHOOK_LISTEN", "127.0.0.1:0".into()),
        (
            "VERIHOOK_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        ),
        ("VERIHOOK_ADMIN_TOKEN", "env-admin".into()),
        ("VERIHOOK_ALLOW_HTTP", "true".into()),
        ("VERIHOOK_RETRY_SCHEDULE", "100ms,200ms".into()),
        ("VERIHOOK_DELIVERY_TIMEOUT", "2s".into()),
    ]);
    let client = reqwest::Client::new();
    wait_ready(&client, &running.base).await;
    assert!(db.exists(), "the SQLite file is created");

    let org: Value = client
        .post(format!("{}/v1/admin/organizations", running.base))
        .bearer_auth("env-admin")
        .json(&json!({ "name": "Env", "mode": "sandbox" }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
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
