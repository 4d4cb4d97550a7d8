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
        Self::start_on(database_url, delivery_timeout, env, None)
    }

    /// [`ServerUnderTest::start`], on `core` alone when given (`taskset`, which execs
    /// the server: the child's pid is the server's).
    pub fn start_on(
        database_url: Option<&str>,
        delivery_timeout: &str,
        env: &[(&str, String)],
        core: Option<u32>,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let url = database_url.map_or_else(
            || format!("sqlite://{}", dir.path().join("bench.db").display()),
            str::to_owned,
        );
        let admin_token = format!("bench-{}", std::process::id());
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = match core {
            Some(core) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("-c").arg(core.to_string()).arg(exe);
                taskset
            }
            None => Command::new(exe),
        };
        let mut child = command
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

    /// The server's process id, when it is our child.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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

/// Moves every thread of this process onto `core` (`taskset -a -p`); threads made later
/// inherit it from the thread that makes them.
pub fn pin_this_process(core: u32) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores <= core as usize {
        return Err(format!(
            "--pin needs {} cores; this machine lets us use {cores}",
            core + 1
        ));
    }
    let out = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &core.to_string(),
            &std::process::id().to_string(),
        ])
        .output()
        .map_err(|e| format!("--pin needs taskset (util-linux): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One sample's value from the server's `/metrics` (`name` with no labels), or `None`
/// when it does not answer or has no such line.
pub async fn metric(base: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))?
        .trim()
        .parse()
        .ok()
}
