//! `--dev`: a sandbox organization, created at start, with a webhook URL pointing at a
//! local receiver (`verihook listen --port 9000`), so that everything can be tried with
//! curl in a minute.

use crate::api::{service, ApiError, AppState};
use crate::ServerError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use verihook_core::{Mode, WebhookSecret, WebhookUrl};
use verihook_store::secrets::SecretKey;

/// Where the dev organization's events go: the default of `verihook listen --port 9000`.
pub const DEV_WEBHOOK_URL: &str = "http://127.0.0.1:9000/webhooks/verification";

pub struct DevSandbox {
    pub organization_id: String,
    pub api_key: String,
    pub webhook_url: String,
    pub webhook_secret: String,
    pub admin_token: String,
}

/// A random admin token for a `--dev` run that was given none.
pub fn admin_token() -> String {
    format!(
        "dev_admin_{}",
        WebhookSecret::generate()
            .expose()
            .trim_start_matches("whsec_")
    )
}

/// The `--dev` secret key, kept in `<database file>.secret-key` (owner-only) and made on
/// the first run; `None` for a database that is not a SQLite file.
pub(crate) fn secret_key_beside(database_url: &str) -> Result<Option<SecretKey>, ServerError> {
    let Some(path) = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p))
        .filter(|p| !p.is_empty() && *p != ":memory:")
    else {
        return Ok(None);
    };
    let file = PathBuf::from(format!("{path}.secret-key"));
    let io = |e: std::io::Error| ServerError::Config(format!("{}: {e}", file.display()));
    if file.exists() {
        let text = std::fs::read_to_string(&file).map_err(io)?;
        let key = SecretKey::parse(&text)
            .map_err(|e| ServerError::Config(format!("{}: {e}", file.display())))?;
        return Ok(Some(key));
    }
    let key = SecretKey::generate();
    write_owner_only(&file, &key.to_base64()).map_err(io)?;
    tracing::info!(file = %file.display(), "made a secret key for --dev");
    Ok(Some(key))
}

fn write_owner_only(file: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(file)?, format!("{text}\n").as_bytes())
}

impl DevSandbox {
    pub(crate) async fn create(state: &AppState, admin_token: String) -> Result<Self, ApiError> {
        let (org, key) =
            service::create_organization(&state.store, "Development sandbox", Mode::Sandbox)
                .await?;
        let url = WebhookUrl::parse(DEV_WEBHOOK_URL, true)
            .map_err(|e| ApiError::invalid("url", e.to_string()))?;
        let set = service::set_webhook_url(&state.store, &org.id, &url).await?;
        Ok(Self {
            organization_id: org.id.to_string(),
            api_key: key.expose().to_owned(),
            webhook_url: set.url.as_str().to_owned(),
            webhook_secret: set.secret.expose().to_owned(),
            admin_token,
        })
    }

    /// What `verihook serve --dev` prints: credentials and copy-paste commands.
    pub fn banner(&self, listen: SocketAddr) -> String {
        let base = format!("http://{listen}");
        let key = &self.api_key;
        format!(
            "\
verihook is running in development mode (sandbox, http allowed, private networks allowed).

  API:             {base}
  organization:    {org}
  API key:         {key}
  webhook URL:     {url}
  webhook secret:  {secret}
  admin token:     {admin}

Try it:

  # receive and verify webhooks in another terminal
  verihook listen --port 9000 --secret {secret}

  # create a customer
  curl -s -X POST {base}/v1/customers \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{\"type\":\"INDIVIDUAL\",\"email\":\"jane.smith@example.com\",\"firstName\":\"Jane\",\"lastName\":\"Smith\"}}'

  # force a status in the sandbox (use the id from above)
  curl -s -X POST {base}/v1/sandbox/customers/CUSTOMER_ID/status \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{\"status\":\"ACTIVE\"}}'

  # the events and their delivery
  curl -s {base}/v1/events -H 'Authorization: Bearer {key}'
",
            org = self.organization_id,
            url = self.webhook_url,
            secret = self.webhook_secret,
            admin = self.admin_token,
        )
    }
}
