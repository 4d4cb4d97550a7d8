//! `verihook check URL --secret S [--json]` (CONTRACT §10): grades a receiver against the
//! product document's testing checklist from this machine (see
//! `verihook_server::check`). A localhost receiver is allowed, plain http:// too (with a
//! warning): this is the developer's own machine. Exits 0 only when no check failed.

use std::path::PathBuf;
use verihook_core::{OrganizationId, SignatureScheme, WebhookSecret, WebhookUrl};
use verihook_server::check::{self, Target, ANSWER_WITHIN};
use verihook_server::delivery::sender::Sender;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The receiver's URL, e.g. http://localhost:3000/webhooks.
    url: String,
    /// The webhook secret the receiver verifies with.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// How the receiver's endpoint signs: `verihook` or `standard-webhooks`.
    #[arg(long, default_value = "verihook", value_parser = crate::signing::parse_scheme)]
    scheme: SignatureScheme,
    /// Print the report as one JSON object (for CI).
    #[arg(long)]
    json: bool,
    /// A CA certificate (PEM) to trust besides the usual roots, for a local HTTPS receiver.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
}

pub async fn run(args: CheckArgs) -> Result<(), String> {
    let url = WebhookUrl::parse(&args.url, true).map_err(|e| format!("{}: {e}", args.url))?;
    // A little past the checklist's 10 s, so that a late answer is graded, not cut off.
    let timeout = ANSWER_WITHIN + std::time::Duration::from_secs(2);
    let sender = Sender::new(timeout, true, args.ca_cert.as_deref())
        .map_err(|e| e.to_string())?
        .allowing_http(true);
    let secret = WebhookSecret::from_stored(args.secret);
    let organization = OrganizationId::generate();
    let target = Target {
        url: &url,
        secret: &secret,
        previous: None,
        scheme: args.scheme,
        organization: &organization,
    };
    let report = check::run(&sender, &target)
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report.text());
    }
    if report.passed {
        Ok(())
    } else {
        Err(format!("{} of the checks failed", report.fail))
    }
}
