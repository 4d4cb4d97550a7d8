//! `verihook sign` and `verihook verify`: the signature scheme from the command line, with
//! the body read from stdin byte for byte.

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use verihook_receiver::{signature, standard_webhooks, Scheme, Verifier, VerifyError};

/// `verihook` or `standard-webhooks`.
pub fn parse_scheme(s: &str) -> Result<Scheme, String> {
    Scheme::parse(s).ok_or_else(|| format!("`{s}`: the scheme is verihook or standard-webhooks"))
}

/// The secrets a receiver accepts.
#[derive(clap::Args)]
pub struct Secrets {
    /// The webhook secret (whsec_…); repeat it to accept any of several (a rotation's old
    /// and new secret).
    #[arg(long = "secret", env = "WEBHOOK_SECRET", hide_env_values = true)]
    secrets: Vec<String>,
}

impl Secrets {
    /// A verifier that accepts any of them.
    pub fn verifier(&self) -> Result<Verifier, String> {
        let (first, rest) = self.secrets.split_first().ok_or("give --secret")?;
        Ok(rest
            .iter()
            .fold(Verifier::new(first), |v, s| v.with_secret(s)))
    }
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// The webhook secret (whsec_…).
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// Unix seconds, as sent in X-Webhook-Timestamp / webhook-timestamp (default: now).
    #[arg(long)]
    timestamp: Option<i64>,
    /// `verihook` (X-Webhook-Signature, hex) or `standard-webhooks` (webhook-signature,
    /// `v1,<base64>`, which needs --id).
    #[arg(long, default_value = "verihook", value_parser = parse_scheme)]
    scheme: Scheme,
    /// The message id (webhook-id: the event id) for standard-webhooks.
    #[arg(long)]
    id: Option<String>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    secrets: Secrets,
    /// X-Webhook-Timestamp as received.
    #[arg(long)]
    timestamp: String,
    /// X-Webhook-Signature (or webhook-signature) as received.
    #[arg(long)]
    signature: String,
    /// X-Webhook-Signature-Next as received, during a rotation.
    #[arg(long)]
    signature_next: Option<String>,
    /// `verihook` or `standard-webhooks` (which needs --id).
    #[arg(long, default_value = "verihook", value_parser = parse_scheme)]
    scheme: Scheme,
    /// webhook-id as received, for standard-webhooks.
    #[arg(long)]
    id: Option<String>,
    /// How far the timestamp may be from now, e.g. 5m; 0s skips the check.
    #[arg(long, default_value = "5m", value_parser = verihook_server::config::parse_duration)]
    tolerance: Duration,
}

fn stdin_bytes() -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read the body from stdin: {e}"))?;
    Ok(body)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Prints the signature of stdin.
pub fn sign(args: SignArgs) -> Result<(), String> {
    let body = stdin_bytes()?;
    let timestamp = args.timestamp.unwrap_or_else(now);
    let signed = match args.scheme {
        Scheme::Verihook => signature::sign(args.secret.as_bytes(), timestamp, &body),
        Scheme::StandardWebhooks => {
            let id = args
                .id
                .as_deref()
                .ok_or("standard-webhooks signs the message id: give --id")?;
            let key = standard_webhooks::key(&args.secret)
                .ok_or("a standard-webhooks secret is whsec_ followed by base64")?;
            standard_webhooks::sign(&key, id, timestamp, &body)
        }
    };
    println!("{signed}");
    Ok(())
}

/// `Ok` only for a valid signature with a fresh timestamp; otherwise says why.
pub fn verify(args: VerifyArgs) -> Result<(), String> {
    let body = stdin_bytes()?;
    let mut verifier = args.secrets.verifier()?;
    let clock = if args.tolerance.is_zero() {
        // No time check: judge the timestamp against itself.
        args.timestamp.trim().parse().unwrap_or_else(|_| now())
    } else {
        verifier = verifier.with_tolerance(args.tolerance);
        now()
    };
    let verifier = verifier.with_scheme(args.scheme);
    if args.scheme == Scheme::StandardWebhooks && args.id.is_none() {
        return Err("standard-webhooks signs the message id: give --id".into());
    }
    let header = |name: &str| match name {
        standard_webhooks::headers::ID => args.id.as_deref(),
        standard_webhooks::headers::SIGNATURE | verihook_receiver::headers::SIGNATURE => {
            Some(args.signature.as_str())
        }
        verihook_receiver::headers::SIGNATURE_NEXT => args.signature_next.as_deref(),
        _ => Some(args.timestamp.as_str()),
    };
    match verifier.check_request_at(clock, header, &body) {
        Ok(()) => {
            println!("valid");
            Ok(())
        }
        Err(VerifyError::BadSignature) if args.scheme == Scheme::Verihook => {
            Err(explain_mismatch(&args, &body))
        }
        Err(e @ (VerifyError::TooOld { .. } | VerifyError::TooNew { .. })) => Err(format!(
            "invalid: the signature matches, but {e} (tolerance {} s)",
            args.tolerance.as_secs()
        )),
        Err(e) => Err(format!("invalid: {e}")),
    }
}

/// A mismatch cannot tell a wrong secret from a changed body in general, but some changes
/// are common enough to recognize: a trailing newline added by `echo`, or JSON re-formatted.
fn explain_mismatch(args: &VerifyArgs, body: &[u8]) -> String {
    let matches = |candidate: &[u8]| {
        args.timestamp.trim().parse().is_ok_and(|ts| {
            args.secrets
                .secrets
                .iter()
                .any(|s| signature::verify(s.as_bytes(), ts, candidate, &args.signature))
        })
    };
    if let Some(trimmed) = body.strip_suffix(b"\n") {
        if matches(trimmed) || trimmed.strip_suffix(b"\r").is_some_and(matches) {
            return "invalid: the body changed: a trailing newline was added (use printf '%s' or echo -n)".into();
        }
    }
    let compact = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok());
    if compact.is_some_and(|c| c != body && matches(&c)) {
        return "invalid: the body changed: its JSON was re-formatted (whitespace); verify the raw bytes".into();
    }
    "invalid: signature does not match: a wrong secret, or the body or timestamp changed".into()
}
