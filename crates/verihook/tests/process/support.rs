//! Running `verihook` as a process. CI points `VERIHOOK_TEST_BIN` at the release build;
//! otherwise cargo's build of this package is used.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub fn binary() -> String {
    std::env::var("VERIHOOK_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_verihook").to_owned())
}

pub struct Running {
    pub child: Child,
    pub stdout: BufReader<ChildStdout>,
    pub base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The variables every process test sets: a port chosen by the OS, a SQLite file at
/// `db`, an admin token, and plain HTTP allowed.
pub fn base_vars(db: &std::path::Path, admin_token: &str) -> Vec<(&'static str, String)> {
    vars_for(format!("sqlite://{}", db.display()), admin_token)
}

/// [`base_vars`] for any database URL.
pub fn vars_for(database_url: String, admin_token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("VERIHOOK_LISTEN", "127.0.0.1:0".into()),
        ("VERIHOOK_DATABASE_URL", database_url),
        ("VERIHOOK_ADMIN_TOKEN", admin_token.into()),
        ("VERIHOOK_ALLOW_HTTP", "true".into()),
    ]
}

/// Starts `verihook serve` with nothing but `vars` in its environment, and waits for the
/// line that says where it listens.
pub fn start(vars: &[(&str, String)]) -> Running {
    start_logging_to(vars, Stdio::null())
}

/// [`start`] with the server's log (stderr) going to `log`.
pub fn start_logging_to(vars: &[(&str, String)], log: impl Into<Stdio>) -> Running {
    start_within(&[], vars, log)
}

/// [`start_logging_to`], the server run by the command `wrapper` (e.g. `ip netns exec NS`).
pub fn start_within(wrapper: &[&str], vars: &[(&str, String)], log: impl Into<Stdio>) -> Running {
    let program = binary();
    let mut line: Vec<&str> = wrapper.to_vec();
    line.extend([program.as_str(), "serve"]);
    let mut child = Command::new(line[0])
        .args(&line[1..])
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(log)
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

pub async fn wait_ready(client: &reqwest::Client, base: &str) {
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

pub fn terminate_and_wait(running: &mut Running) -> std::process::ExitStatus {
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

/// SIGKILL: no shutdown, no cleanup, as a crash.
pub fn kill_hard(running: &mut Running) {
    let pid = running.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    running.child.wait().expect("reaped");
}

/// Sends the request, asserts a 2xx, and returns the JSON body.
pub async fn call(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.expect("sent");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("JSON")
}

/// An organization created through the admin API, with its webhook set to `url`.
pub struct SendingOrg {
    pub id: String,
    pub key: String,
    pub secret: String,
}

pub async fn org_sending_to(
    client: &reqwest::Client,
    base: &str,
    admin_token: &str,
    url: &str,
) -> SendingOrg {
    let org = call(
        client
            .post(format!("{base}/v1/admin/organizations"))
            .bearer_auth(admin_token)
            .json(&serde_json::json!({ "name": "Process test" })),
    )
    .await;
    let text = |v: &serde_json::Value| v.as_str().expect("a string").to_owned();
    let (id, key) = (text(&org["id"]), text(&org["apiKey"]));
    let hook = call(
        client
            .put(format!("{base}/v1/admin/organizations/{id}/webhook"))
            .bearer_auth(admin_token)
            .json(&serde_json::json!({ "url": url })),
    )
    .await;
    SendingOrg {
        id,
        key,
        secret: text(&hook["secret"]),
    }
}
