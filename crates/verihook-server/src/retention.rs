//! Retention (CONTRACT §11): events older than `--retention` are deleted with their
//! attempts and delivery records, within a minute of expiring, in small batches that leave
//! the writer to the API and the deliveries between them. Every node runs it; on
//! PostgreSQL the nodes' batches take different rows, and a week whose events have all
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
        // Whole expired weeks first (PostgreSQL's partitions), then what is left row by row.
        match store.maintain(before, week_start(now)).await {
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

/// The start of `now`'s week (Monday 00:00 UTC): a partition holds one week's events. A
/// day per partition was measured first: 90 of them (a 90-day retention) cost the
/// delivery path's planning enough to raise PostgreSQL's p99 by two thirds; 14 cost
/// nothing measurable (docs/performance.md).
fn week_start(now: Timestamp) -> Timestamp {
    const DAY: i64 = 86_400_000_000;
    let micros = now.unix_micros();
    let days = micros.div_euclid(DAY);
    // 1970-01-01 was a Thursday: three days after a Monday.
    let since_monday = (days + 3).rem_euclid(7);
    Timestamp::from_unix_micros((days - since_monday) * DAY)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_utc() {
        // Wednesday 2026-12-02 21:58 UTC.
        let now = Timestamp::from_unix_micros(1_796_248_680_000_000);
        // Monday 2026-11-30 00:00 UTC.
        assert_eq!(
            week_start(now),
            Timestamp::from_unix_micros(1_795_996_800_000_000)
        );
        assert_eq!(week_start(week_start(now)), week_start(now));
    }
}
