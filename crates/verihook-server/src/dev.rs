//! `--dev`: a sandbox organization, created at start, with a webhook URL pointing at a
//! local receiver (`verihook listen --port 9000`), so that everything can be tried with
//! curl in a minute.

use crate::api::{service, ApiError, AppState};
use std::net::SocketAddr;
use verihook_core::{Mode, WebhookSecret, WebhookUrl};

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
