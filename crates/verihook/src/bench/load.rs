//! Driving the real HTTP API: organizations, webhooks, and customer creations in a closed
//! loop (as fast as `concurrency` clients go) or an open loop (a fixed rate, with latency
//! measured from each request's intended start, so a stalled server cannot hide its stall:
//! no coordinated omission).

use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub struct Api {
    client: reqwest::Client,
    base: String,
    admin_token: String,
}

pub struct Org {
    pub id: String,
    pub key: String,
}

/// What the load sent: for each accepted request, when it was meant to start and which
/// organization it was for.
#[derive(Default)]
pub struct Sent {
    pub accepted: HashMap<u64, (Instant, usize)>,
    pub refused: u64,
    pub elapsed: Duration,
}

impl Api {
    pub fn new(base: &str, admin_token: &str, connections: usize) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
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
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token)
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
        Ok(Org {
            id: text("id")?,
            key: text("apiKey")?,
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

    /// Creates the customer of request `index`; its e-mail carries the index back.
    async fn create(&self, org: &Org, index: u64) -> bool {
        let body = json!({
            "type": "INDIVIDUAL",
            "email": format!("b{index}@bench.example"),
            "firstName": "Bench",
            "lastName": "Mark",
        });
        let sent = self
            .client
            .post(format!("{}/v1/customers", self.base))
            .bearer_auth(&org.key)
            .json(&body)
            .send()
            .await;
        sent.is_ok_and(|r| r.status() == reqwest::StatusCode::CREATED)
    }
}

fn record(sent: &Mutex<Sent>, index: u64, ok: bool, start: Instant, org: usize) {
    let mut sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
    if ok {
        sent.accepted.insert(index, (start, org));
    } else {
        sent.refused += 1;
    }
}

/// `events` creations by `concurrency` clients, each waiting for its answer.
pub async fn closed_loop(
    api: Arc<Api>,
    orgs: Arc<Vec<Org>>,
    events: u64,
    concurrency: usize,
    progress: ProgressBar,
) -> Sent {
    let next = Arc::new(AtomicU64::new(0));
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
                    if index >= events {
                        break;
                    }
                    let org = usize::try_from(index).unwrap_or(0) % orgs.len();
                    let start = Instant::now();
                    let ok = api.create(&orgs[org], index).await;
                    record(&sent, index, ok, start, org);
                    progress.inc(1);
                }
            })
        })
        .collect();
    for client in clients {
        let _ = client.await;
    }
    finish(sent, began)
}

/// Creations at `rate` per second for `duration`, each started at its scheduled time
/// whatever the server's state.
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
    let mut requests = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for index in 0..total {
        let intended = began + period.mul_f64(index as f64);
        tokio::time::sleep_until(intended.into()).await;
        let (api, orgs, sent, progress) =
            (api.clone(), orgs.clone(), sent.clone(), progress.clone());
        requests.push(tokio::spawn(async move {
            let org = usize::try_from(index).unwrap_or(0) % orgs.len();
            let ok = api.create(&orgs[org], index).await;
            record(&sent, index, ok, intended, org);
            progress.inc(1);
        }));
    }
    for r in requests {
        let _ = r.await;
    }
    finish(sent, began)
}

fn finish(sent: Arc<Mutex<Sent>>, began: Instant) -> Sent {
    let mut sent = std::mem::take(&mut *sent.lock().unwrap_or_else(PoisonError::into_inner));
    sent.elapsed = began.elapsed();
    sent
}
