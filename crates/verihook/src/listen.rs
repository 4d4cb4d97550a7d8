//! `verihook listen`: a local receiver for trying an integration. It verifies each request
//! with `verihook-receiver`, prints the event (readably, or as JSON lines), answers 401 to
//! anything unverified, and can fail on purpose to exercise verihook's retries. With
//! `--forward-to` it receives nothing itself: it forwards the organization's event stream
//! to a local receiver (see [`crate::forward`]).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use verihook_receiver::dedup::{Deduplicator, MemoryDeduplicator};
use verihook_receiver::{headers, Event, Scheme, Verifier};

#[derive(clap::Args)]
pub struct ListenArgs {
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[command(flatten)]
    secrets: crate::signing::Secrets,
    /// How the endpoint signs: `verihook` or `standard-webhooks`.
    #[arg(long, default_value = "verihook", value_parser = crate::signing::parse_scheme)]
    scheme: Scheme,
    /// Path events are POSTed to.
    #[arg(long, default_value = "/webhooks/verification")]
    path: String,
    /// Print one JSON object per request instead of a readable line.
    #[arg(long)]
    json: bool,
    /// Answer the first N verified requests with a failure (see --status).
    #[arg(long, default_value_t = 0)]
    fail_first: u64,
    /// Status of the failures; given without --fail-first, every request gets it.
    #[arg(long)]
    status: Option<u16>,
    /// Wait this long before answering, e.g. 11s to provoke a timeout.
    #[arg(long, value_parser = verihook_server::config::parse_duration)]
    delay: Option<Duration>,
    /// Forward every event of the organization (its event stream) to this local URL, with
    /// exactly the headers and body of the webhook request: no tunnel needed.
    #[arg(long, requires_all = ["api", "api_key"], value_name = "URL")]
    forward_to: Option<String>,
    /// With --forward-to: the verihook API, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "BASE")]
    api: Option<String>,
    /// With --forward-to: the organization's API key.
    #[arg(
        long,
        env = "VERIHOOK_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    api_key: Option<String>,
}

struct Listener {
    verifier: Verifier,
    seen: MemoryDeduplicator,
    verified: AtomicU64,
    json: bool,
    fail_first: u64,
    status: Option<u16>,
    delay: Option<Duration>,
}

impl Listener {
    /// The answer to the `n`-th verified request (0-based).
    fn answer(&self, n: u64) -> StatusCode {
        let code = match (self.fail_first, self.status) {
            (0, Some(code)) => code,
            (first, code) if n < first => code.unwrap_or(500),
            _ => 200,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

pub async fn run(args: ListenArgs) -> Result<(), String> {
    if let (Some(to), Some(api), Some(api_key)) = (&args.forward_to, &args.api, &args.api_key) {
        return crate::forward::run(crate::forward::Forward {
            to: to.clone(),
            api: api.clone(),
            api_key: api_key.clone(),
            json: args.json,
        })
        .await;
    }
    if !args.path.starts_with('/') {
        return Err("--path must start with /".into());
    }
    let state = Arc::new(Listener {
        verifier: args.secrets.verifier()?.with_scheme(args.scheme),
        seen: MemoryDeduplicator::default(),
        verified: AtomicU64::new(0),
        json: args.json,
        fail_first: args.fail_first,
        status: args.status,
        delay: args.delay,
    });
    let app = Router::new()
        .route(&args.path, post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let banner = format!("listening on http://{address}{}", args.path);
    // With --json, stdout carries only events.
    if args.json {
        eprintln!("{banner}");
    } else {
        println!("{banner}");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::serve::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn receive(State(state): State<Arc<Listener>>, headers: HeaderMap, body: Bytes) -> Response {
    let attempt = header(&headers, headers::ATTEMPT).unwrap_or("?").to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let verified = state
        .verifier
        .verify_request_at(now, |name| header(&headers, name), &body);
    let event = match verified {
        Ok(event) => event,
        Err(e) => {
            report_rejection(&state, &e.to_string(), &attempt);
            let body = serde_json::json!({ "error": e.to_string() });
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    };
    let n = state.verified.fetch_add(1, Ordering::SeqCst);
    let answer = state.answer(n);
    let id = event.event_id().unwrap_or_default().to_owned();
    let duplicate = !state.seen.first_sighting(&id).await.unwrap_or(true);
    report_event(&state, &event, &body, &attempt, duplicate, answer);
    if let Some(delay) = state.delay {
        tokio::time::sleep(delay).await;
    }
    (
        answer,
        Json(serde_json::json!({ "received": answer.is_success() })),
    )
        .into_response()
}

pub(crate) fn clock() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second())
}

fn report_rejection(state: &Listener, reason: &str, attempt: &str) {
    if state.json {
        let line = serde_json::json!({ "verified": false, "error": reason, "attempt": attempt });
        println!("{line}");
    } else {
        println!("{}  rejected (401): {reason}", clock());
    }
}

fn report_event(
    state: &Listener,
    event: &Event,
    body: &[u8],
    attempt: &str,
    duplicate: bool,
    answer: StatusCode,
) {
    if state.json {
        let raw: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let line = serde_json::json!({
            "verified": true,
            "eventId": event.event_id(),
            "type": event.event_type(),
            "attempt": attempt,
            "duplicate": duplicate,
            "answer": answer.as_u16(),
            "event": raw,
        });
        println!("{line}");
        return;
    }
    println!(
        "{}  {:<26} {}  attempt {attempt}  {}{}  → {}",
        clock(),
        event.event_type(),
        event.event_id().unwrap_or("?"),
        describe(event),
        if duplicate { "  (duplicate)" } else { "" },
        answer.as_u16(),
    );
}

/// The customer and what changed, in a few words.
fn describe(event: &Event) -> String {
    match event {
        Event::CustomerCreated { payload, .. } => {
            format!("{} created ({})", payload.customer_id, payload.status)
        }
        Event::CustomerUpdated { payload, .. } => {
            format!(
                "{} updated: {}",
                payload.customer_id,
                payload.changed_fields.join(", ")
            )
        }
        Event::CustomerStatusChanged { payload, .. } => format!(
            "{} {} → {}",
            payload.customer_id, payload.previous_status, payload.new_status
        ),
        Event::VerificationCompleted { payload, .. } => {
            format!("{} completed: {}", payload.customer_id, payload.new_status)
        }
        Event::VerificationRfiRequired { payload, .. } => {
            format!(
                "{} needs information: {}",
                payload.customer_id,
                payload.reason.as_deref().unwrap_or("(erased)")
            )
        }
        Event::CustomerDeleted { payload, .. } => {
            format!("{} deleted (personal data erased)", payload.customer_id)
        }
        Event::Unknown { .. } => event.customer_id().unwrap_or("?").to_owned(),
    }
}
