//! Driving the real HTTP API: organizations and webhooks (set up with reqwest), and the
//! load itself — customer creations on a bare hyper client (pooled keep-alive connections,
//! headers built once per organization, one small allocation per request), so that the
//! load generator costs little enough CPU to saturate the server it shares the machine
//! with. Three shapes: a closed loop of a fixed count (as fast as `concurrency` clients
//! go), a sustained closed loop of a fixed duration, and an open loop (a fixed rate, with
//! latency measured from each request's intended start, so a stalled server cannot hide
//! its stall: no coordinated omission).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub struct Api {
    /// For the set-up calls, which are few.
    client: reqwest::Client,
    /// For the load.
    load: Client<HttpConnector, Full<Bytes>>,
    customers: Uri,
    base: String,
    admin_token: String,
}

pub struct Org {
    pub id: String,
    /// `Bearer <API key>`, built once.
    authorization: HeaderValue,
}

/// What the load sent: for each accepted request, when it was meant to start and which
/// organization it was for.
#[derive(Default)]
pub struct Sent {
    pub accepted: HashMap<u64, (Instant, usize)>,
    pub refused: u64,
    pub elapsed: Duration,
    /// How long each request took to be answered, in microseconds.
    pub answered_micros: Vec<u64>,
    /// A closed loop's first number not handed out: where a following slice starts.
    pub next_index: u64,
}

/// How the API answered one creation.
enum Answer {
    Created,
    /// 503 overloaded: try again after this long.
    Overloaded(Duration),
    Failed,
}

impl Api {
    pub fn new(base: &str, admin_token: &str, connections: usize) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let load = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .build(http);
        let customers = format!("{base}/v1/customers")
            .parse()
            .map_err(|e| format!("{base}: {e}"))?;
        Ok(Self {
            client,
            load,
            customers,
            base: base.to_owned(),
            admin_token: admin_token.to_owned(),
        })
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
        let token = format!("Bearer {}", self.admin_token);
        self.call(method, path, &token, body).await
    }

    async fn as_org(
        &self,
        org: &Org,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
        let token = org.authorization.to_str().map_err(|e| e.to_string())?;
        self.call(method, path, token, body).await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: &str,
        body: Value,
    ) -> Result<Value, String> {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let value: Value = response.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!("{path}: {status} {value}"))
        }
    }

    pub async fn organization(&self, n: usize) -> Result<Org, String> {
        let body = json!({ "name": format!("bench {n}"), "mode": "sandbox" });
        let org = self
            .admin(reqwest::Method::POST, "/v1/admin/organizations", body)
            .await?;
        let text = |k: &str| org[k].as_str().map(str::to_owned).ok_or(format!("no {k}"));
        let authorization = HeaderValue::try_from(format!("Bearer {}", text("apiKey")?))
            .map_err(|e| e.to_string())?;
        Ok(Org {
            id: text("id")?,
            authorization,
        })
    }

    /// Sets the organization's webhook URL; returns its secret.
    pub async fn webhook(&self, org: &Org, url: &str) -> Result<String, String> {
        let path = format!("/v1/admin/organizations/{}/webhook", org.id);
        let set = self
            .admin(reqwest::Method::PUT, &path, json!({ "url": url }))
            .await?;
        set["secret"]
            .as_str()
            .map(str::to_owned)
            .ok_or("no secret".into())
    }

    /// Adds an endpoint to the organization; returns its secret.
    pub async fn endpoint(&self, org: &Org, body: Value) -> Result<String, String> {
        let created = self
            .as_org(org, reqwest::Method::POST, "/v1/endpoints", body)
            .await?;
        created["secret"]
            .as_str()
            .map(str::to_owned)
            .ok_or("no secret".into())
    }

    /// Creates the customer of request `index`; its e-mail carries the index back.
    async fn create(&self, org: &Org, index: u64) -> Answer {
        let body = format!(
            r#"{{"type":"INDIVIDUAL","email":"b{index}@bench.example","firstName":"Bench","lastName":"Mark"}}"#
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.customers.clone())
            .header(AUTHORIZATION, org.authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body)));
        let Ok(request) = request else {
            return Answer::Failed;
        };
        let Ok(response) = self.load.request(request).await else {
            return Answer::Failed;
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // Read the body to the end, so the connection goes back to the pool.
        let _ = response.into_body().collect().await;
        match status {
            StatusCode::CREATED => Answer::Created,
            StatusCode::SERVICE_UNAVAILABLE => {
                Answer::Overloaded(Duration::from_secs(retry_after.unwrap_or(1)))
            }
            _ => Answer::Failed,
        }
    }

    /// The server's current outbox lag (`verihook_outbox_lag_seconds`), if it says.
    pub async fn outbox_lag(&self) -> Option<Duration> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let seconds: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("verihook_outbox_lag_seconds "))?
            .trim()
            .parse()
            .ok()?;
        Duration::try_from_secs_f64(seconds).ok()
    }
}

fn record(sent: &Mutex<Sent>, index: u64, ok: bool, start: Instant, org: usize) {
    let answered = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
    sent.answered_micros.push(answered);
    if ok {
        sent.accepted.insert(index, (start, org));
    } else {
        sent.refused += 1;
    }
}

/// When a closed loop stops.
#[derive(Clone, Copy)]
pub enum Until {
    /// After this many creations.
    Count(u64),
    /// When this much time has passed since the start.
    Elapsed(Duration),
}

/// Creations by `concurrency` clients, each waiting for its answer; a client told 503
/// waits the `Retry-After` it was given, as a well-behaved client does. Creations are
/// numbered from `first` (a run in several slices keeps each one's number unique).
pub async fn closed_loop(
    first: u64,
    api: Arc<Api>,
    orgs: Arc<Vec<Org>>,
    until: Until,
    concurrency: usize,
    progress: ProgressBar,
) -> Sent {
    let next = Arc::new(AtomicU64::new(first));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let began = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (api, orgs, next, sent, progress) = (
                api.clone(),
                orgs.clone(),
                next.clone(),
                sent.clone(),
                progress.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    match until {
                        Until::Count(n) if index - first >= n => break,
                        Until::Elapsed(d) if began.elapsed() >= d => break,
                        _ => {}
                    }
                    let org = usize::try_from(index).unwrap_or(0) % orgs.len();
                    let start = Instant::now();
                    let answer = api.create(&orgs[org], index).await;
                    record(&sent, index, matches!(answer, Answer::Created), start, org);
                    progress.inc(1);
                    if let Answer::Overloaded(wait) = answer {
                        tokio::time::sleep(wait).await;
                    }
                }
            })
        })
        .collect();
    for client in clients {
        let _ = client.await;
    }
    let mut sent = finish(sent, began);
    sent.next_index = next.load(Ordering::Relaxed);
    sent
}

/// Creations at `rate` per second for `duration`, each started at its scheduled time
/// whatever the server's state.
///
/// Paced from a thread of its own: tokio's timers tick once a millisecond and a sleep ends
/// at the first tick after its deadline, so paced by them each request left up to a
/// millisecond after the time its latency is measured from, and every figure carried that
/// much of the load tool's own delay. A thread's sleep ends within tens of microseconds.
pub async fn open_loop(
    api: Arc<Api>,
    orgs: Arc<Vec<Org>>,
    rate: u64,
    duration: Duration,
    progress: ProgressBar,
) -> Sent {
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let sent = Arc::new(Mutex::new(Sent::default()));
    let began = Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let runtime = tokio::runtime::Handle::current();
    let pacing = sent.clone();
    let paced = tokio::task::spawn_blocking(move || {
        let mut requests = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for index in 0..total {
            let intended = began + period.mul_f64(index as f64);
            std::thread::sleep(intended.saturating_duration_since(Instant::now()));
            let (api, orgs, sent, progress) =
                (api.clone(), orgs.clone(), pacing.clone(), progress.clone());
            requests.push(runtime.spawn(async move {
                let org = usize::try_from(index).unwrap_or(0) % orgs.len();
                let answer = api.create(&orgs[org], index).await;
                record(
                    &sent,
                    index,
                    matches!(answer, Answer::Created),
                    intended,
                    org,
                );
                progress.inc(1);
            }));
        }
        requests
    });
    for r in paced.await.unwrap_or_default() {
        let _ = r.await;
    }
    finish(sent, began)
}

fn finish(sent: Arc<Mutex<Sent>>, began: Instant) -> Sent {
    let mut sent = std::mem::take(&mut *sent.lock().unwrap_or_else(PoisonError::into_inner));
    sent.elapsed = began.elapsed();
    sent
}
