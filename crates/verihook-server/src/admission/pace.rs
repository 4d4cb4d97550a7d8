//! Pacing: while deliveries fall behind, fewer changes run at once.
//!
//! Refusing with 503 is the last resort; before the lag reaches `--max-lag` the API
//! narrows how many changes may run at once, so that ingest gives the engine back the
//! cores and the database it needs, and clients slow down by waiting a little longer for
//! their answer instead of being told to retry. The limit follows the lag sample by sample,
//! like a TCP congestion window: cut by a quarter of what is actually running while the lag
//! is above the target, widened by an eighth while it is below half of it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The widest the limit gets: far above what a node serves at once, so an idle or keeping
/// up server never makes anyone wait.
const WIDEST: usize = 4_096;
/// The narrowest: a few changes always run, so pacing alone never stops ingest (refusal
/// is `--max-lag`'s job).
const NARROWEST: usize = 4;

pub struct Pace {
    limit: AtomicUsize,
    running: AtomicUsize,
    freed: Notify,
}

/// A change running under the limit; dropping it makes room for the next.
pub struct Permit {
    pace: Arc<Pace>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.pace.running.fetch_sub(1, Ordering::AcqRel);
        self.pace.freed.notify_one();
    }
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            limit: AtomicUsize::new(WIDEST),
            running: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }
}

impl Pace {
    /// How many changes may run at once now.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Waits for room under the limit, at most `within`; `None` if none came.
    pub async fn enter(self: &Arc<Self>, within: Duration) -> Option<Permit> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Registered before looking, so a permit dropped in between still wakes us.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_enter() {
                return Some(Permit { pace: self.clone() });
            }
            tokio::time::timeout_at(deadline, freed).await.ok()?;
        }
    }

    fn try_enter(&self) -> bool {
        let mut running = self.running.load(Ordering::Acquire);
        loop {
            if running >= self.limit() {
                return false;
            }
            match self.running.compare_exchange_weak(
                running,
                running + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => running = now,
            }
        }
    }

    /// Follows one lag sample against the target.
    pub fn adjust(&self, lag: Duration, target: Duration) {
        let limit = self.limit();
        let next = if lag > target {
            // Cut from what actually runs: the limit may be far above it.
            let running = self.running.load(Ordering::Relaxed);
            (limit.min(running) * 3 / 4).max(NARROWEST)
        } else if lag < target / 2 {
            (limit + (limit / 8).max(1)).min(WIDEST)
        } else {
            limit
        };
        self.limit.store(next, Ordering::Relaxed);
        if next > limit {
            self.freed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn a_lag_above_the_target_narrows_the_limit_to_below_what_runs() {
        let pace = Arc::new(Pace::default());
        let mut permits = Vec::new();
        for _ in 0..40 {
            permits.push(pace.enter(Duration::ZERO).await.expect("room"));
        }
        pace.adjust(Duration::from_millis(300), TARGET);
        assert_eq!(pace.limit(), 30);
        assert!(pace.enter(Duration::from_millis(10)).await.is_none());
        permits.truncate(29);
        assert!(pace.enter(Duration::from_millis(10)).await.is_some());
    }

    #[tokio::test]
    async fn a_lag_below_half_the_target_widens_it_and_lets_waiters_in() {
        let pace = Arc::new(Pace::default());
        for _ in 0..20 {
            pace.adjust(Duration::from_secs(1), TARGET);
        }
        assert_eq!(pace.limit(), NARROWEST);
        let _held: Vec<Permit> =
            futures_util::future::join_all((0..NARROWEST).map(|_| pace.enter(Duration::ZERO)))
                .await
                .into_iter()
                .map(|p| p.expect("room"))
                .collect();
        let waiter = tokio::spawn({
            let pace = pace.clone();
            async move { pace.enter(Duration::from_secs(30)).await.is_some() }
        });
        pace.adjust(Duration::ZERO, TARGET);
        assert_eq!(pace.limit(), NARROWEST + 1);
        assert!(
            waiter.await.expect("joined"),
            "the widened limit let the waiter in"
        );
    }

    #[tokio::test]
    async fn a_lag_between_half_and_the_target_holds_it() {
        let pace = Pace::default();
        pace.adjust(Duration::from_millis(1), TARGET);
        pace.adjust(Duration::from_millis(75), TARGET);
        assert_eq!(pace.limit(), WIDEST);
    }
}
