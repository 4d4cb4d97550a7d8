//! `--scenario purge`: the API's latency while the retention purge deletes a large table
//! of expired events (SQLite). A server keeping everything makes the schema and the
//! organizations; `--events` expired events (1,000,000 unless told), each with an attempt,
//! are then written straight into the file, dated a year ago; a server with `--retention
//! 1d` starts on it under a closed loop of creations. Reported: how long the purge took,
//! and the API's latency while it ran beside the same load once it was done.

use super::load::{self, Api, Sent, Until};
use super::receiver::Receiver;
use super::report::{per_sec, Percentiles, Report};
use super::server::ServerUnderTest;
use super::{await_deliveries, measure, organizations, report, wait_ready, BenchArgs, Shape};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one slice of load runs between looks at the purge's progress.
const SLICE: Duration = Duration::from_secs(5);
/// The purge is given up on after this long.
const PURGE_LIMIT: Duration = Duration::from_secs(1_800);

pub async fn purge(args: &BenchArgs) -> Result<Report, String> {
    if args.database_url.is_some() || args.target.is_some() {
        return Err("the purge scenario runs on a SQLite file of its own".into());
    }
    let expired = args.events.unwrap_or(1_000_000);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("purge.db");
    let url = format!("sqlite://{}", path.display());
    let receiver = Receiver::start().await?;
    let orgs = {
        let keeping =
            ServerUnderTest::start(Some(&url), "10s", &[("VERIHOOK_RETENTION", "0".into())])?;
        wait_ready(&keeping.base).await?;
        let api = Api::new(&keeping.base, &keeping.admin_token, args.concurrency)?;
        organizations(&api, &receiver, args.organizations, Shape::Plain, true).await?
    };
    eprintln!("writing {expired} expired events…");
    seed_expired(&path, expired)?;

    let server = ServerUnderTest::start(Some(&url), "10s", &[("VERIHOOK_RETENTION", "1d".into())])?;
    wait_ready(&server.base).await?;
    let api = Arc::new(Api::new(
        &server.base,
        &server.admin_token,
        args.concurrency,
    )?);
    let orgs = Arc::new(orgs);
    let began = Instant::now();
    let mut during = Vec::new();
    let mut next = 0;
    let purge_secs = loop {
        let sent = slice(next, &api, &orgs, args.concurrency).await;
        next = sent.next_index;
        during.push(sent);
        let purged = purged(&server.base).await.unwrap_or(0);
        if purged >= expired {
            break began.elapsed().as_secs_f64();
        }
        if began.elapsed() > PURGE_LIMIT {
            return Err(format!(
                "only {purged} of {expired} purged in {PURGE_LIMIT:?}"
            ));
        }
    };
    let mut after = Vec::new();
    for _ in 0..during.len().min(6) {
        let sent = slice(next, &api, &orgs, args.concurrency).await;
        next = sent.next_index;
        after.push(sent);
    }
    let sent = merged(during.iter().chain(&after));
    await_deliveries(&receiver, &sent, None, 1, args.drain_timeout).await;
    let measured = measure(&receiver, &sent, None, 1, began);
    let (while_purging, once_done) = (api_latency(&during), api_latency(&after));
    let extra = vec![
        ("expiredEvents", expired as f64),
        ("purgeSecs", purge_secs),
        (
            "purgedPerSec",
            per_sec(expired, Duration::from_secs_f64(purge_secs)),
        ),
        ("apiP50MsWhilePurging", while_purging.p50),
        ("apiP99MsWhilePurging", while_purging.p99),
        ("apiP50MsAfter", once_done.p50),
        ("apiP99MsAfter", once_done.p99),
        (
            "purgeBatchEvents",
            f64::from(verihook_server::retention::BATCH),
        ),
    ];
    let mode = format!(
        "closed loop, concurrency {}, while {expired} expired events are purged, then as long again (at most 30 s)",
        args.concurrency
    );
    Ok(report(
        args,
        "purge",
        mode,
        &sent,
        measured,
        (&server, &receiver),
        extra,
    ))
}

/// `expired` events of one organization dated a year ago, delivered long since (one
/// attempt each), as a year of traffic leaves them.
fn seed_expired(path: &std::path::Path, expired: u64) -> Result<(), String> {
    let db = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    let year_ago = (std::time::SystemTime::now() - Duration::from_secs(365 * 86_400))
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_micros();
    let year_ago = i64::try_from(year_ago).map_err(|e| e.to_string())?;
    let body = r#"{"type":"customer.created","payload":{"customerId":"cus_expired","customerType":"INDIVIDUAL","status":"CREATED","email":"old@example.com","firstName":"Old","lastName":"Event","createdAt":"2025-01-01T00:00:00Z"},"metadata":{"eventId":"evt_expired","occurredAt":"2025-01-01T00:00:00Z","organizationId":"org_expired"}}"#;
    let seed = format!(
        "BEGIN; \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {expired}) \
         INSERT INTO events (id, organization_id, customer_id, event_type, occurred_at, \
             sequence, body) \
         SELECT printf('evt_expired%013d', i), (SELECT id FROM organizations LIMIT 1), \
             printf('cus_expired%013d', i % 100000), 'customer.created', {year_ago} + i, 1, \
             '{body}' FROM n; \
         INSERT INTO attempts (event_seq, endpoint_seq, attempt, started_at, duration_ms, \
             status_code) \
         SELECT seq, 1, 1, occurred_at, 12, 200 FROM events WHERE occurred_at < {year_ago} + {expired} + 1; \
         COMMIT;"
    );
    db.execute_batch(&seed).map_err(|e| e.to_string())
}

/// The load for one [`SLICE`], its creations numbered from `first`.
async fn slice(first: u64, api: &Arc<Api>, orgs: &Arc<Vec<load::Org>>, concurrency: usize) -> Sent {
    let (api, orgs, until) = (api.clone(), orgs.clone(), Until::Elapsed(SLICE));
    load::closed_loop(first, api, orgs, until, concurrency, ProgressBar::hidden()).await
}

/// `verihook_events_purged_total` from the server's metrics.
async fn purged(base: &str) -> Option<u64> {
    let n = super::server::metric(base, "verihook_events_purged_total").await?;
    Some(n as u64)
}

/// The API's answer times over `slices`.
fn api_latency(slices: &[Sent]) -> Percentiles {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
    for answered in slices.iter().flat_map(|s| &s.answered_micros) {
        let _ = h.record((*answered).max(1));
    }
    Percentiles::of(&h)
}

/// One [`Sent`] of several slices (numbered apart).
fn merged<'a>(slices: impl Iterator<Item = &'a Sent>) -> Sent {
    let mut all = Sent::default();
    for s in slices {
        all.accepted
            .extend(s.accepted.iter().map(|(i, v)| (*i, *v)));
        all.refused += s.refused;
        all.elapsed += s.elapsed;
        all.answered_micros.extend(&s.answered_micros);
    }
    all
}
