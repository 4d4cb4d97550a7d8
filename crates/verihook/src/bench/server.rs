//! The server under test: a `verihook serve` child process of this very binary (so its
//! memory is its own and can be read from /proc), or a running server (`--target`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct ServerUnderTest {
    pub base: String,
    pub admin_token: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl ServerUnderTest {
    /// Starts `verihook serve` on a random port with `database_url` (a fresh SQLite file
    /// when `None`), http and private addresses allowed so it can reach the local receiver,
    /// and the settings of `env` besides.
    pub fn start(
        database_url: Option<&str>,
        delivery_timeout: &str,
        env: &[(&str, String)],
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let url = database_url.map_or_else(
            || format!("sqlite://{}", dir.path().join("bench.db").display()),
            str::to_owned,
        );
        let admin_token = format!("bench-{}", std::process::id());
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("serve")
            .env("VERIHOOK_LISTEN", "127.0.0.1:0")
            .env("VERIHOOK_DATABASE_URL", &url)
            .env("VERIHOOK_ADMIN_TOKEN", &admin_token)
            .env("VERIHOOK_ALLOW_HTTP", "true")
            .env("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true")
            .env("VERIHOOK_DELIVERY_TIMEOUT", delivery_timeout)
            // The bench drives one organization as hard as it can: no per-client limit.
            .env("VERIHOOK_RATE_LIMIT", "0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let base = line
            .trim()
            .strip_prefix("verihook listening on ")
            .ok_or_else(|| format!("the server did not start: {line}"))?
            .to_owned();
        Ok(Self {
            base,
            admin_token,
            child: Some(child),
            _dir: Some(dir),
        })
    }

    /// A server already running at `base`.
    pub fn target(base: String, admin_token: String) -> Self {
        Self {
            base,
            admin_token,
            child: None,
            _dir: None,
        }
    }

    /// The server process's peak resident set (VmHWM), in MB, when it is our child.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        self.memory_mb("VmHWM:")
    }

    /// The server process's resident set now (VmRSS), in MB, when it is our child.
    pub fn rss_mb(&self) -> Option<f64> {
        self.memory_mb("VmRSS:")
    }

    fn memory_mb(&self, field: &str) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}
