//! The harness: a steady load of customer creations and the check of what arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use verihook_testkit::Received;

/// The admin token of every scenario's nodes.
pub const ADMIN: &str = "faults-admin";

/// A node's settings for a scenario on `database_url`: receivers on loopback or the
/// scenario's own links are allowed, and no rate limit stands between the load and what
/// is under fault.
pub fn node_vars(database_url: String) -> Vec<(&'static str, String)> {
    let mut vars = crate::support::vars_for(database_url, ADMIN);
    vars.extend([
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("VERIHOOK_RATE_LIMIT", "0".into()),
    ]);
    vars
}

/// Runs `program args`; `Err` with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether the long forms run (by hand): longer loads, larger faults.
pub fn long() -> bool {
    std::env::var("VERIHOOK_FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// Whether a scenario that needs what this machine may not allow (mounting a file system,
/// network namespaces) must run: CI sets it, so a skip there is a failure.
pub fn required() -> bool {
    std::env::var("VERIHOOK_REQUIRE_FAULTS").is_ok_and(|v| v == "1")
}

/// A refused creation: its status, `error.code`, and `Retry-After`.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub retry_after: Option<String>,
    pub at: Instant,
}

/// What a load sent: the customers the API acknowledged (2xx), when, and what it refused.
#[derive(Debug, Default)]
pub struct Sent {
    pub acknowledged: Vec<(String, Instant)>,
    pub refused: Vec<Refusal>,
}

/// Creations at `rate` a second for `duration` (each on its own schedule: a slow answer
/// does not slow the load), each answer recorded.
pub async fn steady_load(base: &str, key: &str, rate: u32, duration: Duration) -> Sent {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let sent = Arc::new(Mutex::new(Sent::default()));
    let began = Instant::now();
    let every = Duration::from_secs(1) / rate;
    let mut tasks = Vec::new();
    let mut n = 0u64;
    while began.elapsed() < duration {
        let (client, sent) = (client.clone(), sent.clone());
        let (url, key) = (format!("{base}/v1/customers"), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let body = serde_json::json!({
                "type": "INDIVIDUAL", "email": format!("fault{n}@example.com"),
                "firstName": "Fault", "lastName": "Load"
            });
            let answer = client.post(url).bearer_auth(key).json(&body).send().await;
            record(&sent, answer).await;
        }));
        n += 1;
        tokio::time::sleep_until((began + every * u32::try_from(n).unwrap_or(u32::MAX)).into())
            .await;
    }
    for task in tasks {
        let _ = task.await;
    }
    let sent = std::mem::take(&mut *sent.lock().unwrap_or_else(PoisonError::into_inner));
    sent
}

/// [`steady_load`] in the background, so that a fault can strike while it runs.
pub fn spawn_load(
    base: &str,
    key: &str,
    rate: u32,
    duration: Duration,
) -> tokio::task::JoinHandle<Sent> {
    let (base, key) = (base.to_owned(), key.to_owned());
    tokio::spawn(async move { steady_load(&base, &key, rate, duration).await })
}

impl Sent {
    /// Two loads' answers as one.
    pub fn merge(mut self, other: Sent) -> Sent {
        self.acknowledged.extend(other.acknowledged);
        self.refused.extend(other.refused);
        self
    }

    /// How long after `fault` the API acknowledged a change again (the first 2xx answer
    /// given after it).
    pub fn recovered_after(&self, fault: Instant) -> Option<Duration> {
        self.acknowledged
            .iter()
            .map(|(_, at)| *at)
            .filter(|at| *at > fault)
            .min()
            .map(|at| at.saturating_duration_since(fault))
    }
}

async fn record(sent: &Mutex<Sent>, answer: reqwest::Result<reqwest::Response>) {
    let at = Instant::now();
    let Ok(response) = answer else {
        let refusal = Refusal {
            status: 0,
            code: "no answer".into(),
            retry_after: None,
            at,
        };
        sent.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refused
            .push(refusal);
        return;
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let mut sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
    if (200..300).contains(&status) {
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        sent.acknowledged.push((id, at));
    } else {
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        sent.refused.push(Refusal {
            status,
            code,
            retry_after,
            at,
        });
    }
}

/// What the check found.
#[derive(Debug)]
pub struct Report {
    pub acknowledged: usize,
    pub delivered: usize,
    pub lost: Vec<String>,
    pub duplicates: usize,
    /// The longest stretch between two deliveries while the load ran, and when it began.
    pub longest_gap: Duration,
    pub gap_began: Option<Instant>,
}

impl Report {
    /// When the longest gap began, relative to `fault` (negative: before it), in seconds.
    pub fn gap_after(&self, fault: Instant) -> Option<f64> {
        self.gap_began.map(|at| {
            if at >= fault {
                (at - fault).as_secs_f64()
            } else {
                -(fault - at).as_secs_f64()
            }
        })
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "acknowledged {}, delivered {}, lost {}, duplicates {}, longest gap {:?}",
            self.acknowledged,
            self.delivered,
            self.lost.len(),
            self.duplicates,
            self.longest_gap
        )
    }
}

/// Every acknowledged customer's `customer.created` among what arrived (2xx answers of
/// the receiver only count).
pub fn check(sent: &Sent, received: &[Received]) -> Report {
    check_arrivals(
        sent,
        received.iter().map(|r| (r.status, r.body.as_ref(), r.at)),
    )
}

/// [`check`] over arrivals as (status answered, body, when).
pub fn check_arrivals<'a>(
    sent: &Sent,
    received: impl Iterator<Item = (u16, &'a [u8], Instant)>,
) -> Report {
    let mut arrivals: HashMap<String, usize> = HashMap::new();
    let mut times: Vec<Instant> = Vec::new();
    for (_, body, at) in received.filter(|(status, _, _)| (200..300).contains(status)) {
        let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        if body["type"] == "customer.created" {
            let customer = body["payload"]["customerId"].as_str().unwrap_or_default();
            *arrivals.entry(customer.to_owned()).or_default() += 1;
            times.push(at);
        }
    }
    times.sort();
    let (longest_gap, gap_began) = times
        .windows(2)
        .map(|w| (w[1].saturating_duration_since(w[0]), Some(w[0])))
        .max()
        .unwrap_or_default();
    let lost: Vec<String> = sent
        .acknowledged
        .iter()
        .filter(|(id, _)| !arrivals.contains_key(id))
        .map(|(id, _)| id.clone())
        .collect();
    Report {
        acknowledged: sent.acknowledged.len(),
        delivered: sent.acknowledged.len() - lost.len(),
        lost,
        duplicates: arrivals.values().map(|n| n - 1).sum(),
        longest_gap,
        gap_began,
    }
}

/// Waits until every acknowledged customer's event arrived, or `deadline` passes.
pub async fn await_deliveries(
    sent: &Sent,
    receiver: &verihook_testkit::Receiver,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check(sent, &receiver.received()).lost.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
