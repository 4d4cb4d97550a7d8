//! Receivers that misbehave. One endpoint, on a raw TCP server, answers 20 requests in
//! turn: two with 500, one never, one reset halfway through its answer, one with a 1 MiB
//! header, one with a body that never ends, and the other fourteen 200. A second endpoint
//! fails every other TLS handshake. A third, beside them, is healthy. Every event reaches
//! every endpoint (retries), no attempt outlasts the delivery timeout, the node's memory
//! stays flat, and the healthy endpoint's deliveries keep their pace.

use crate::harness::{self, await_deliveries, check, check_arrivals, steady_load, Sent, ADMIN};
use crate::support::{base_vars, org_sending_to, start, wait_ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use verihook_testkit::{Receiver, TestPki};

const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misbehaviour {
    Ok,
    Error,
    NoAnswer,
    ResetMidAnswer,
    HugeHeader,
    EndlessBody,
}

impl Misbehaviour {
    fn of(n: u64) -> Self {
        match n % 20 {
            0 | 10 => Self::Error,
            3 => Self::NoAnswer,
            6 => Self::ResetMidAnswer,
            13 => Self::HugeHeader,
            16 => Self::EndlessBody,
            _ => Self::Ok,
        }
    }
}

#[derive(Default)]
struct Log {
    /// (status answered, body, when) of requests whose status line went out.
    answered: Vec<(u16, Vec<u8>, Instant)>,
    /// How long the sender held each misbehaving exchange open before it gave up.
    held: Vec<(Misbehaviour, Duration)>,
}

/// The misbehaving receiver: one request per connection, answered by hand.
struct Misbehaving {
    url: String,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Misbehaving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Misbehaving {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let log = Arc::new(Mutex::new(Log::default()));
        let counter = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let log = log.clone();
            async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (log, counter) = (log.clone(), counter.clone());
                    tokio::spawn(async move {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        exchange(tcp, Misbehaviour::of(n), &log).await;
                    });
                }
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/webhooks/verification"),
            log,
            task,
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        lock(&self.log)
    }
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one exchange writes to the log.
struct Entry<'a> {
    log: &'a Mutex<Log>,
    body: Vec<u8>,
    began: Instant,
}

impl Entry<'_> {
    /// The status line went out.
    fn answered(&self, status: u16) {
        lock(self.log)
            .answered
            .push((status, self.body.clone(), Instant::now()));
    }

    /// The sender gave up on the exchange (closed its end).
    fn held(&self, how: Misbehaviour) {
        lock(self.log).held.push((how, self.began.elapsed()));
    }
}

async fn exchange(mut tcp: TcpStream, how: Misbehaviour, log: &Mutex<Log>) {
    let Some(body) = read_request(&mut tcp).await else {
        return;
    };
    let began = Instant::now();
    let entry = Entry { log, body, began };
    match how {
        Misbehaviour::Ok | Misbehaviour::Error => {
            let status = if how == Misbehaviour::Ok { 200 } else { 500 };
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
            );
            if tcp.write_all(head.as_bytes()).await.is_ok() {
                entry.answered(status);
            }
        }
        Misbehaviour::NoAnswer => {
            until_closed(&mut tcp).await;
            entry.held(how);
        }
        Misbehaviour::ResetMidAnswer => {
            // The status line is out: a sender that takes it has delivered.
            let partial = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"recei";
            if tcp.write_all(partial).await.is_ok() {
                entry.answered(200);
            }
            // Closing with a zero linger sends RST instead of FIN (and, being zero, never
            // blocks the drop, which is why tokio deprecates the setter in general).
            #[allow(deprecated)]
            let _ = tcp.set_linger(Some(Duration::ZERO));
            drop(tcp);
        }
        Misbehaviour::HugeHeader => {
            let mut head = b"HTTP/1.1 200 OK\r\nx-padding: ".to_vec();
            head.resize(head.len() + (1 << 20), b'a');
            head.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\n{}");
            // A 200 all the same: a sender that reads its status has delivered.
            if tcp.write_all(&head).await.is_ok() {
                entry.answered(200);
            }
            until_closed(&mut tcp).await;
            entry.held(how);
        }
        Misbehaviour::EndlessBody => {
            let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            if tcp.write_all(head).await.is_ok() {
                entry.answered(200);
            }
            let chunk = format!("{:x}\r\n{}\r\n", 16_384, "a".repeat(16_384));
            while tcp.write_all(chunk.as_bytes()).await.is_ok() {
                if began.elapsed() > Duration::from_secs(60) {
                    break;
                }
            }
            entry.held(how);
        }
    }
}

/// The request's body, read by its `content-length`.
async fn read_request(tcp: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = tcp.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())?;
    while buf.len() < head_end + length {
        let n = tcp.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[head_end..head_end + length].to_vec())
}

/// Waits until the peer closes (or a minute passes).
async fn until_closed(tcp: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while tcp.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    })
    .await;
}

/// The process's resident memory, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The p50 and p99 of change→receipt, for the healthy endpoint's deliveries.
fn latencies(sent: &Sent, received: &[verihook_testkit::Received]) -> (Duration, Duration) {
    let acked: std::collections::HashMap<&str, Instant> = sent
        .acknowledged
        .iter()
        .map(|(id, at)| (id.as_str(), *at))
        .collect();
    let mut waits: Vec<Duration> = received
        .iter()
        .filter_map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
            let at = acked.get(body["payload"]["customerId"].as_str()?)?;
            Some(r.at.saturating_duration_since(*at))
        })
        .collect();
    waits.sort();
    let at = |q: f64| {
        waits
            .get(((waits.len() as f64 - 1.0) * q) as usize)
            .copied()
    };
    (at(0.5).unwrap_or_default(), at(0.99).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_receivers_get_bounded_attempts_and_leave_the_healthy_one_alone() {
    let (rate, duration) = if harness::long() {
        (100, Duration::from_secs(300))
    } else {
        (30, Duration::from_secs(8))
    };
    let pki = TestPki::new();
    let misbehaving = Misbehaving::start().await;
    let tls = Receiver::https_failing_half_the_handshakes(&pki).await;
    let healthy = Receiver::http().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut vars = base_vars(&dir.path().join("verihook.db"), ADMIN);
    vars.extend([
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("VERIHOOK_RATE_LIMIT", "0".into()),
        ("VERIHOOK_DELIVERY_TIMEOUT", "2s".into()),
        // Fifteen attempts: at a 30 % failure rate, one event fails all with odds of 1e-8.
        (
            "VERIHOOK_RETRY_SCHEDULE",
            "100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s".into(),
        ),
        (
            "VERIHOOK_EXTRA_CA_CERT",
            pki.ca_pem_path.display().to_string(),
        ),
    ]);
    let server = start(&vars);
    let pid = server.child.id();
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;
    let orgs = [
        org_sending_to(&client, &server.base, ADMIN, &healthy.url).await,
        org_sending_to(&client, &server.base, ADMIN, &misbehaving.url).await,
        org_sending_to(&client, &server.base, ADMIN, &tls.url).await,
    ];
    // The healthy endpoint alone first, then beside the two misbehaving ones.
    let alone = steady_load(&server.base, &orgs[0].key, rate, duration / 2).await;
    await_deliveries(&alone, &healthy, Duration::from_secs(30)).await;
    let (alone_p50, alone_p99) = latencies(&alone, &healthy.received());
    let rss_before = rss_mib(pid);
    let (beside, bad, flaky) = tokio::join!(
        steady_load(&server.base, &orgs[0].key, rate, duration),
        steady_load(&server.base, &orgs[1].key, rate, duration),
        steady_load(&server.base, &orgs[2].key, rate, duration),
    );
    let rss_loaded = rss_mib(pid);
    await_deliveries(&beside, &healthy, Duration::from_secs(30)).await;
    await_deliveries(&flaky, &tls, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let report_bad = loop {
        let report = {
            let log = misbehaving.log();
            let arrivals = log
                .answered
                .iter()
                .map(|(s, b, at)| (*s, b.as_slice(), *at));
            check_arrivals(&bad, arrivals)
        };
        if report.lost.is_empty() || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rss_after = rss_mib(pid);
    let (beside_p50, beside_p99) = latencies(&beside, &healthy.received());
    let report_healthy = check(&beside, &healthy.received());
    let report_flaky = check(&flaky, &tls.received());
    let held = misbehaving.log().held.clone();
    let longest = held.iter().map(|(_, d)| *d).max().unwrap_or_default();
    eprintln!(
        "misbehaving receivers ({rate}/s to each of 3 endpoints for {duration:?}): \
         misbehaving: {report_bad}; failing TLS: {report_flaky}; healthy: {report_healthy}; \
         healthy change→receipt p50/p99 alone {alone_p50:?}/{alone_p99:?}, beside the others \
         {beside_p50:?}/{beside_p99:?}; {} exchanges held open, the longest {longest:?}; \
         RSS {rss_before:.1} MiB before, {rss_loaded:.1} at the end of the load, \
         {rss_after:.1} after",
        held.len()
    );
    assert!(
        report_bad.lost.is_empty(),
        "misbehaving endpoint: {report_bad}"
    );
    assert!(report_flaky.lost.is_empty(), "failing TLS: {report_flaky}");
    assert!(
        report_healthy.lost.is_empty(),
        "healthy endpoint: {report_healthy}"
    );
    for kind in [
        Misbehaviour::NoAnswer,
        Misbehaviour::HugeHeader,
        Misbehaviour::EndlessBody,
    ] {
        assert!(
            held.iter().any(|(how, _)| *how == kind),
            "no {kind:?} exchange"
        );
    }
    // The sender gives up at its timeout; a second's grace for the close to arrive.
    for (how, took) in &held {
        assert!(
            *took < TIMEOUT + Duration::from_secs(1),
            "{how:?} held {took:?}"
        );
    }
    assert!(
        rss_after < rss_before + 64.0,
        "memory grew from {rss_before:.1} to {rss_after:.1} MiB"
    );
}
