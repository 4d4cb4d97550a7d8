//! The soak: a steady open loop for a long time (500/s for 30 minutes unless told), each
//! event to three endpoints, the receiver answering 503 to one request in ten, on one
//! node or several sharing PostgreSQL. What it shows is what does not change: nothing
//! lost, each node's memory at the start and the end, and the change→receipt latency of
//! the first window against the last.

use super::load::{self, Sent};
use super::receiver::Receiver;
use super::report::{Percentiles, Report};
use super::server::ServerUnderTest;
use super::{
    await_deliveries, latency_histogram, measure, organizations, progress, record_latency, report,
    set_up_with, wait_ready, BenchArgs, Shape,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every how often each node's memory is read.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

pub async fn soak(args: &BenchArgs) -> Result<Report, String> {
    if args.nodes > 1
        && !args
            .database_url
            .as_deref()
            .unwrap_or("")
            .starts_with("postgres")
    {
        return Err("--nodes above 1 needs --database-url postgres://…".into());
    }
    // Each 503 is logged as a warning: thousands of lines.
    let quiet = [("RUST_LOG", "error".to_owned())];
    let (receiver, first, api) = set_up_with(args, &quiet).await?;
    let mut nodes = vec![first];
    for _ in 1..args.nodes {
        let url = args.database_url.as_deref();
        let node = ServerUnderTest::start(url, "10s", &quiet)?;
        wait_ready(&node.base).await?;
        nodes.push(node);
    }
    let orgs = organizations(&api, &receiver, args.organizations, Shape::FanOut, true).await?;
    receiver.set_flaky(10);
    let rate = args.rate.unwrap_or(500);
    let duration = args.duration.unwrap_or(Duration::from_secs(30 * 60));
    let window = (duration / 5).min(Duration::from_secs(5 * 60));
    let nodes = Arc::new(nodes);
    let memory = tokio::spawn(sample_memory(nodes.clone(), duration));
    let began = Instant::now();
    let bar = progress((rate as f64 * duration.as_secs_f64()) as u64, "sending");
    let sent = load::open_loop(api, Arc::new(orgs), rate, duration, bar.clone()).await;
    bar.finish_and_clear();
    let rss = memory.await.map_err(|e| e.to_string())?;
    await_deliveries(&receiver, &sent, None, 3, args.drain_timeout).await;
    let measured = measure(&receiver, &sent, None, 3, began);
    let first_window = window_latency(&receiver, &sent, began, window);
    let last_window = window_latency(&receiver, &sent, began + duration - window, window);
    let mut extra = vec![
        ("nodes", nodes.len() as f64),
        ("endpointsPerEvent", 3.0),
        ("windowSecs", window.as_secs_f64()),
        ("p50FirstWindowMs", first_window.p50),
        ("p99FirstWindowMs", first_window.p99),
        ("p50LastWindowMs", last_window.p50),
        ("p99LastWindowMs", last_window.p99),
        ("apiRefused", sent.refused as f64),
    ];
    let names = [
        ("node1RssStartMb", "node1RssEndMb"),
        ("node2RssStartMb", "node2RssEndMb"),
    ];
    for ((start, end), (start_name, end_name)) in rss.iter().zip(names) {
        extra.push((start_name, *start));
        extra.push((end_name, *end));
    }
    let mode = format!(
        "open loop, {rate}/s for {} s to 3 endpoints, 1 in 10 answered 503, {} node(s)",
        duration.as_secs(),
        nodes.len()
    );
    Ok(report(
        args,
        "soak",
        mode,
        &sent,
        measured,
        (&nodes[0], &receiver),
        extra,
    ))
}

/// Each node's resident memory once the first window is over (the start: caches and
/// pools filled) and at the end of the load, in MB.
async fn sample_memory(nodes: Arc<Vec<ServerUnderTest>>, duration: Duration) -> Vec<(f64, f64)> {
    let began = Instant::now();
    let settle = (duration / 5).min(Duration::from_secs(5 * 60));
    let read = || -> Vec<f64> { nodes.iter().map(|n| n.rss_mb().unwrap_or(0.0)).collect() };
    let mut start = None;
    let mut last = read();
    let mut minutes = 0;
    while began.elapsed() < duration {
        tokio::time::sleep(SAMPLE_EVERY.min(duration.saturating_sub(began.elapsed()))).await;
        last = read();
        // The curve, not only its ends: a cache filling up levels off, a leak does not.
        if began.elapsed() >= Duration::from_secs(60 * (minutes + 1)) {
            minutes += 1;
            let mut each = Vec::new();
            for (node, rss) in nodes.iter().zip(&last) {
                each.push(match database_memory_mb(&node.base).await {
                    Some(db) => format!("{rss:.1} (SQLite {db:.1})"),
                    None => format!("{rss:.1}"),
                });
            }
            eprintln!(
                "soak: minute {minutes}, RSS MB per node: {}",
                each.join(" ")
            );
        }
        if start.is_none() && began.elapsed() >= settle {
            start = Some(last.clone());
        }
    }
    let start = start.unwrap_or_else(|| last.clone());
    start.into_iter().zip(last).collect()
}

/// What the node's embedded SQLite holds (`verihook_database_memory_bytes`), in MB: the
/// part of its memory that is page caches, which grow with the file up to their limit.
/// `None` on PostgreSQL (the gauge reads 0) or when `/metrics` does not answer.
async fn database_memory_mb(base: &str) -> Option<f64> {
    let bytes = super::server::metric(base, "verihook_database_memory_bytes").await?;
    (bytes > 0.0).then_some(bytes / 1_048_576.0)
}

/// The change→receipt latency of the changes sent within `[from, from + window)`, over
/// all their deliveries.
fn window_latency(
    receiver: &Receiver,
    sent: &Sent,
    from: Instant,
    window: Duration,
) -> Percentiles {
    receiver.snapshot(|a| {
        let mut latency = latency_histogram();
        for (index, (start, _)) in &sent.accepted {
            if *start < from || *start >= from + window {
                continue;
            }
            for lane in 0..3 {
                if let Some(arrived) = a.first.get(&(*index, lane)) {
                    record_latency(&mut latency, *start, *arrived);
                }
            }
        }
        Percentiles::of(&latency)
    })
}
