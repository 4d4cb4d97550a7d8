//! The benchmark's receiver: verifies every signature (as a real receiver must), and
//! records when each event arrived at each endpoint ("lane": 0 is `/hook`, the default
//! endpoint; `/fan/N` is lane N), keyed by the request that caused it. It can be taken
//! down (every webhook answered 503) and brought back, and counts the operator alerts
//! posted to `/alerts` by kind.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use verihook_receiver::{Scheme, Verifier};

/// Arrivals keyed by the request index the bench encoded in the customer's e-mail, and
/// the lane it arrived on.
#[derive(Default)]
pub struct Arrivals {
    pub first: HashMap<(u64, u8), Instant>,
    pub total: u64,
    pub bad_signatures: u64,
    pub last: Option<Instant>,
    /// Operator alerts received, by their `alert` field.
    pub alerts: HashMap<String, u64>,
}

pub struct Receiver {
    pub base: String,
    state: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    /// Each endpoint (organization, lane) signs with its own secret, in its scheme.
    verifiers: Mutex<HashMap<(String, u8), Verifier>>,
    arrivals: Mutex<Arrivals>,
    down: AtomicBool,
    /// Answer 503 to one request in this many (0: never), as a flaky receiver does.
    flaky: AtomicU64,
    requests: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Receiver {
    pub async fn start() -> Result<Self, String> {
        let state = Arc::new(Shared {
            verifiers: Mutex::default(),
            arrivals: Mutex::default(),
            down: AtomicBool::new(false),
            flaky: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/hook", post(|s, h, b| receive(s, Path(0), h, b)))
            .route("/fan/{lane}", post(receive))
            .route("/dead", post(dead))
            .route("/alerts", post(alert))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let base = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { base, state, task })
    }

    /// Verify `organization`'s events on `lane` with `secret`, in `scheme`.
    pub fn trust(&self, organization: &str, lane: u8, secret: &str, scheme: Scheme) {
        let verifier = Verifier::new(secret).with_scheme(scheme);
        lock(&self.state.verifiers).insert((organization.to_owned(), lane), verifier);
    }

    /// Down: every webhook is answered 503 (as by a receiver being deployed) until up again.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Flaky: one webhook in `one_in` is answered 503 (0: none).
    pub fn set_flaky(&self, one_in: u64) {
        self.state.flaky.store(one_in, Ordering::SeqCst);
    }

    pub fn snapshot<T>(&self, f: impl FnOnce(&Arrivals) -> T) -> T {
        f(&lock(&self.state.arrivals))
    }
}

/// The string value of `"key":"…"` in a compact body (no full parse on the hot path).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(key)? + key.len();
    let end = start + text[start..].find('"')?;
    Some(&text[start..end])
}

/// The request index in `"email":"b<index>@bench.example"`.
fn request_index(text: &str) -> Option<u64> {
    field(text, "\"email\":\"b")?
        .split('@')
        .next()?
        .parse()
        .ok()
}

async fn receive(
    State(state): State<Arc<Shared>>,
    Path(lane): Path<u8>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let flaky = state.flaky.load(Ordering::Relaxed);
    if flaky > 0 && state.requests.fetch_add(1, Ordering::Relaxed) % flaky == 0 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let now = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let text = std::str::from_utf8(&body).unwrap_or_default();
    let verifier = field(text, "\"organizationId\":\"")
        .and_then(|org| lock(&state.verifiers).get(&(org.to_owned(), lane)).cloned());
    // Deliveries can start before the bench has read the secret the server generated:
    // "not yet" (503, retried by the server) rather than a bad signature.
    let Some(verifier) = verifier else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let verified = verifier.check_request_at(unix, header, &body).is_ok();
    let mut arrivals = lock(&state.arrivals);
    if !verified {
        arrivals.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    arrivals.total += 1;
    arrivals.last = Some(now);
    if let Some(index) = request_index(text) {
        arrivals.first.entry((index, lane)).or_insert(now);
    }
    StatusCode::OK
}

/// A dead endpoint: never answers in time.
async fn dead() -> StatusCode {
    tokio::time::sleep(Duration::from_secs(3_600)).await;
    StatusCode::OK
}

/// An operator alert: counted by kind (a reminder apart from the first failing alert).
async fn alert(State(state): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let text = std::str::from_utf8(&body).unwrap_or_default();
    let kind = if text.contains("\"reminder\":true") {
        "reminder"
    } else {
        field(text, "\"alert\":\"").unwrap_or("unknown")
    };
    let kind = kind.to_owned();
    *lock(&state.arrivals).alerts.entry(kind).or_default() += 1;
    StatusCode::OK
}
