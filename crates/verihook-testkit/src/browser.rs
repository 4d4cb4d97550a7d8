//! Headless Chromium driven over the DevTools protocol: open a page, run JavaScript in it,
//! wait for a condition. Enough for end-to-end tests of the dashboard without a browser
//! automation framework.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The Chromium binary on this machine, if any (Debian's package installs `chromium`).
pub fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(str::to_owned)
}

pub struct Browser {
    process: Child,
    socket: Socket,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Browser {
    /// Starts `binary` headless and opens `url` in a new tab.
    pub async fn open(binary: &str, url: &str) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut process = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let endpoint = devtools_endpoint(&mut process);
        let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str())
            .await
            .expect("DevTools connection");
        let mut browser = Self {
            process,
            socket,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = browser
            .call("Target.createTarget", json!({ "url": url }))
            .await;
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        browser
    }

    /// Sends a command (to the page once attached) and returns its result.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            command["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(command.to_string()))
            .await
            .expect("command sent");
        while let Some(message) = self.socket.next().await {
            let Ok(Message::Text(text)) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {}", reply["error"]);
                return reply["result"].clone();
            }
        }
        panic!("the browser closed the connection");
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Writes a PNG of the page as it is now to `path` (its folder made if missing).
    pub async fn screenshot(&mut self, path: &std::path::Path) {
        use base64::Engine;
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("a base64 PNG");
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).expect("the screenshots' folder");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Polls `expression` until it is `true`; fails with `what` after `deadline`.
    pub async fn wait_until(&mut self, expression: &str, what: &str, deadline: Duration) {
        let end = Instant::now() + deadline;
        loop {
            if self.eval(expression).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > end {
                let page = self.eval("document.body.innerText").await;
                panic!("{what} did not happen within {deadline:?}; the page shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Chromium prints `DevTools listening on ws://…` on stderr once it is ready.
fn devtools_endpoint(process: &mut Child) -> String {
    let stderr = process.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let endpoint = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("DevTools listening on ").map(str::to_owned))
        .expect("chromium announces its DevTools endpoint");
    // Keep draining stderr so that Chromium never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    endpoint
}
