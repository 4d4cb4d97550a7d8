//! Retention (CONTRACT §11): events older than `--retention` are deleted with their
//! attempts and delivery records, within a minute of expiring, in small batches that leave
//! the writer to the API and the deliveries between them. Every node runs it; on
//! PostgreSQL the nodes' batches take different rows, and a day whose events have all
//! expired (and been delivered or failed) goes whole, by dropping its partitions.

use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use verihook_core::Timestamp;
use verihook_store::Retention;

/// How often the purge looks for expired events: an event goes at most this long after
/// it expired (plus the time to purge what expired before it); a quarter of a short
/// retention.
fn every(keep: Duration) -> Duration {
    (keep / 4).clamp(Duration::from_millis(100), Duration::from_secs(10))
}
/// Events per batch: one short write (measured in docs/performance.md).
pub const BATCH: u32 = 200;
/// After a batch, the purge rests this many times as long as the batch took, so that it
/// takes at most a fifth of the writer however much has expired.
const REST_FACTOR: u32 = 4;
/// Pages given back to the file system per round (SQLite; 4 KiB each).
const RECLAIM_PAGES: u32 = 2_048;

pub async fn purge(
    store: Arc<dyn Retention>,
    keep: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every(keep)) => {}
        }
        let now = Timestamp::now();
        let before = now.saturating_sub(keep);
        // Whole expired days first (PostgreSQL's partitions), then what is left row by row.
        match store.maintain(before, midnight(now)).await {
            Ok(dropped) => metrics.purged(dropped.events),
            Err(e) => tracing::warn!(error = %e, "could not maintain the event partitions"),
        }
        let purged = purge_round(&*store, before, &metrics, &stop).await;
        if purged > 0 {
            tracing::info!(events = purged, "expired events purged");
            if let Err(e) = store.reclaim_space(RECLAIM_PAGES).await {
                tracing::warn!(error = %e, "could not give purged space back");
            }
        }
    }
}

/// The start of `now`'s day, UTC: a partition holds one day's events.
fn midnight(now: Timestamp) -> Timestamp {
    const DAY: i64 = 86_400_000_000;
    let micros = now.unix_micros();
    Timestamp::from_unix_micros(micros - micros.rem_euclid(DAY))
}

/// Purges batch after batch until a batch comes back short; the events purged.
async fn purge_round(
    store: &dyn Retention,
    before: Timestamp,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> u64 {
    let mut total = 0;
    while !stop.is_cancelled() {
        let started = Instant::now();
        match store.purge_expired(before, BATCH).await {
            Ok(purged) => {
                total += purged.events;
                metrics.purged(purged.events);
                if purged.events < u64::from(BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not purge expired events");
                break;
            }
        }
        tokio::time::sleep(started.elapsed() * REST_FACTOR).await;
    }
    total
}
