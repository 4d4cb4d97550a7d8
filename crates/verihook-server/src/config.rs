//! `verihook serve` configuration: every flag also reads `VERIHOOK_<FLAG_NAME>`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use verihook_core::RetryPolicy;

#[derive(clap::Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address of the HTTP API.
    #[arg(long, env = "VERIHOOK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// `sqlite://PATH` (embedded, created if missing) or `postgres://…`. Several
    /// PostgreSQL servers, tried in order, as libpq takes them:
    /// `postgres://user@db1:5432,db2:5432/verihook?target_session_attrs=read-write`.
    #[arg(
        long,
        env = "VERIHOOK_DATABASE_URL",
        default_value = "sqlite://verihook.db"
    )]
    pub database_url: String,

    /// Bearer token of the account-manager (admin) API; without it that API is disabled.
    #[arg(long, env = "VERIHOOK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Waits before retries 1..n, e.g. `1s,2s,4s`; attempts = 1 + number of entries.
    #[arg(long, env = "VERIHOOK_RETRY_SCHEDULE", default_value = "1s,2s,4s", value_parser = parse_schedule)]
    pub retry_schedule: RetryPolicy,

    /// Slow changes down while the oldest due delivery is older than a twentieth of this,
    /// refuse them (503 with Retry-After) while it is older than this: overload admitted
    /// instead of every event running late. `0s` never slows down nor refuses.
    #[arg(long, env = "VERIHOOK_MAX_LAG", default_value = "2s", value_parser = parse_duration)]
    pub max_lag: Duration,

    /// Per-attempt timeout, from connecting to the full response.
    #[arg(long, env = "VERIHOOK_DELIVERY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub delivery_timeout: Duration,

    /// Accept `http://` webhook URLs (development only).
    #[arg(long, env = "VERIHOOK_ALLOW_HTTP")]
    pub allow_http: bool,

    /// Allow webhook targets that resolve to loopback, private or link-local addresses.
    #[arg(long, env = "VERIHOOK_ALLOW_PRIVATE_NETWORKS")]
    pub allow_private_networks: bool,

    /// PEM file of an extra CA to trust for HTTPS deliveries.
    #[arg(long, env = "VERIHOOK_EXTRA_CA_CERT")]
    pub extra_ca_cert: Option<PathBuf>,

    /// Where the operator alert for a finally failed event is POSTed.
    #[arg(long, env = "VERIHOOK_ALERT_WEBHOOK_URL", value_parser = parse_url)]
    pub alert_webhook_url: Option<url::Url>,

    /// At most one reminder this often per endpoint that stays failing.
    #[arg(long, env = "VERIHOOK_ALERT_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub alert_interval: Duration,

    /// Signs the alerts as webhooks are signed (X-Webhook-Timestamp, X-Webhook-Signature).
    #[arg(long, env = "VERIHOOK_ALERT_SECRET", hide_env_values = true)]
    pub alert_secret: Option<String>,

    /// Development mode: --allow-http --allow-private-networks, and a sandbox organization
    /// whose API key, webhook secret and curl examples are printed at start.
    #[arg(long, env = "VERIHOOK_DEV")]
    pub dev: bool,

    /// What this node runs: `all`, `api` (the HTTP API only) or `worker` (deliveries only,
    /// with /healthz and /readyz), so the two sides can scale apart on PostgreSQL.
    #[arg(long, env = "VERIHOOK_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,

    /// 32 bytes in base64 (`openssl rand -base64 32`): webhook secrets are stored sealed
    /// with it (XChaCha20-Poly1305); plaintext ones are sealed at the first start with it.
    /// `--dev` makes one and keeps it beside its SQLite file.
    #[arg(long, env = "VERIHOOK_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Requests a second per organization (bursts of twice that); over it, 429 with
    /// `Retry-After`. Each node limits on its own. `0` turns the limit off.
    #[arg(long, env = "VERIHOOK_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,

    /// Requests a second for the admin token, likewise; `0` (the default) is no limit.
    #[arg(long, env = "VERIHOOK_ADMIN_RATE_LIMIT", default_value_t = 0)]
    pub admin_rate_limit: u32,

    /// How long a client may take to send a request's headers (slow clients cannot hold
    /// connections open), and, separately, its body.
    #[arg(long, env = "VERIHOOK_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// How long one request may take, from its headers to the answer; past it, 503.
    #[arg(long, env = "VERIHOOK_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "VERIHOOK_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// On SIGTERM, how long requests and attempts in flight may take to finish before the
    /// process exits anyway (their leases then run out and another node sends them).
    #[arg(long, env = "VERIHOOK_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// How long events (their bodies, attempts and delivery records) are kept, e.g. `90d`,
    /// `12h`; `0` keeps everything. An expired event goes within a minute, unless it is
    /// still to be delivered: then once its delivery ends.
    #[arg(long, env = "VERIHOOK_RETENTION", default_value = "90d", value_parser = parse_retention)]
    pub retention: Retention,

    /// Log lines on stderr: `pretty` (one readable line per record) or `json` (one JSON
    /// object per line, for log collectors). The level comes from `RUST_LOG` (default info).
    #[arg(long, env = "VERIHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    All,
    Api,
    Worker,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Self::All | Self::Api)
    }

    pub fn delivers(self) -> bool {
        matches!(self, Self::All | Self::Worker)
    }
}

impl ServeConfig {
    /// The defaults, for embedding and tests.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: database_url.into(),
            admin_token: None,
            retry_schedule: RetryPolicy::default(),
            max_lag: Duration::from_secs(2),
            delivery_timeout: Duration::from_secs(10),
            allow_http: false,
            allow_private_networks: false,
            extra_ca_cert: None,
            alert_webhook_url: None,
            alert_interval: Duration::from_secs(3600),
            alert_secret: None,
            dev: false,
            role: Role::All,
            secret_key: None,
            rate_limit: 100,
            admin_rate_limit: 0,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(10),
            log_format: LogFormat::Pretty,
            retention: Retention::default(),
        }
    }

    pub fn allows_http(&self) -> bool {
        self.allow_http || self.dev
    }

    pub fn allows_private_networks(&self) -> bool {
        self.allow_private_networks || self.dev
    }
}

pub use verihook_core::delivery::parse_duration;

/// `--retention`: how long events are kept; `None` keeps them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub Option<Duration>);

impl Default for Retention {
    /// 90 days.
    fn default() -> Self {
        Self(Some(Duration::from_secs(90 * 86_400)))
    }
}

/// `90d`, `12h`, `30s`…; `0` (or `0s`) keeps everything.
pub fn parse_retention(s: &str) -> Result<Retention, String> {
    if s.trim() == "0" {
        return Ok(Retention(None));
    }
    let keep = parse_duration(s)?;
    Ok(Retention((!keep.is_zero()).then_some(keep)))
}

/// `1s,2s,4s`; an empty string means no retries.
pub fn parse_schedule(s: &str) -> Result<RetryPolicy, String> {
    RetryPolicy::parse(s)
}

fn parse_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("`{s}`: scheme must be http or https, not {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let s = parse_schedule("1s,2s,4s").expect("valid");
        assert_eq!(s.attempts(), 4);
        assert_eq!(parse_schedule("").map(|s| s.attempts()), Ok(1));
        assert!(parse_schedule("1s,,2s").is_err());
    }

    #[test]
    fn retention() {
        let days = |d: u64| Retention(Some(Duration::from_secs(d * 86_400)));
        assert_eq!(parse_retention("90d"), Ok(days(90)));
        assert_eq!(Retention::default(), days(90));
        assert_eq!(parse_retention("0"), Ok(Retention(None)));
        assert_eq!(parse_retention("0s"), Ok(Retention(None)));
        assert!(parse_retention("90").is_err());
        assert!(parse_retention("-1d").is_err());
    }
}
