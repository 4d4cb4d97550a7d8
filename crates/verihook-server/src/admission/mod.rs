//! Admission control: overload slowed down, then said out loud.
//!
//! The API can accept changes faster than the engine delivers them (both share the
//! machine's cores and the database's writer). Left alone the outbox then grows for as
//! long as the load lasts, and every event is late: the 5-second promise breaks silently,
//! for everyone. Instead a monitor samples the outbox's lag (the age of its oldest due
//! delivery, leaving out organizations whose own endpoints hold all their slots), and
//! - past a twentieth of `--max-lag` (100 ms by default) fewer changes run at once
//!   ([`pace`]): clients wait a little longer for their answer, and the engine gets back
//!   the share of the machine it needs;
//! - past `--max-lag`, or when a change found no room within `--max-lag`, the requests
//!   that would add events are refused with `503` and `Retry-After`, before they write
//!   anything. A client that retries later loses nothing; one that was told "201" is
//!   delivered to within the promise. Reads, deliveries and redeliveries already queued
//!   go on.

mod pace;

pub use pace::Permit;

use crate::metrics::Metrics;
use pace::Pace;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use verihook_store::Outbox;

/// How often the lag is sampled: often enough that pacing follows a load that changes
/// within a second.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Samples a lag must last through to refuse anything (a quarter of a second): the
/// instant between a busy endpoint's attempt ending and its next claim (when its backlog
/// briefly counts) refuses no one.
const LASTING: usize = 3;
/// Pacing starts at this fraction of `--max-lag`.
const PACE_FROM: u32 = 20;
/// At most one WARN line per this long while refusing.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Why a change was refused: deliveries lag `lag` behind, past `max_lag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded {
    pub lag: Duration,
    pub max_lag: Duration,
}

pub struct Admission {
    /// `None`: never slow down nor refuse (`--max-lag 0s`).
    max_lag: Option<Duration>,
    /// The lowest of the last [`LASTING`] samples.
    lag_micros: AtomicU64,
    pace: Arc<Pace>,
    last_warning: Mutex<Option<Instant>>,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(max_lag: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            max_lag: (!max_lag.is_zero()).then_some(max_lag),
            lag_micros: AtomicU64::new(0),
            pace: Arc::default(),
            last_warning: Mutex::new(None),
            metrics,
        }
    }

    /// The lag that refusal goes by: the lowest of the last few samples.
    pub fn lag(&self) -> Duration {
        Duration::from_micros(self.lag_micros.load(Ordering::Relaxed))
    }

    /// Takes a new sample, `lag`, with the lowest of the recent ones, `lasting`.
    fn observe(&self, lag: Duration, lasting: Duration) {
        let micros = u64::try_from(lasting.as_micros()).unwrap_or(u64::MAX);
        self.lag_micros.store(micros, Ordering::Relaxed);
        self.metrics.set_outbox_lag(lag);
        if let Some(max_lag) = self.max_lag {
            self.pace.adjust(lag, max_lag / PACE_FROM);
            self.metrics.set_change_limit(self.pace.limit());
            tracing::trace!(
                lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
                change_limit = self.pace.limit(),
                "pacing"
            );
        }
    }

    /// Lets a change in (its permit held until it is answered) while deliveries keep
    /// pace, after a wait while they fall behind; otherwise why not (the API answers 503,
    /// nothing written).
    pub async fn admit(&self) -> Result<Option<Permit>, Overloaded> {
        let Some(max_lag) = self.max_lag else {
            return Ok(None);
        };
        let lag = self.lag();
        if lag <= max_lag {
            if let Some(permit) = self.pace.enter(max_lag).await {
                return Ok(Some(permit));
            }
        }
        let lag = self.lag().max(lag);
        self.metrics.refused_for_lag();
        self.warn(lag, max_lag);
        Err(Overloaded { lag, max_lag })
    }

    fn warn(&self, lag: Duration, max_lag: Duration) {
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
            max_lag_ms = u64::try_from(max_lag.as_millis()).unwrap_or(u64::MAX),
            "overloaded: refusing changes with 503 until deliveries catch up"
        );
    }
}

/// Samples the lag until `stop`; a failed sample keeps the last value (the writes that
/// would be refused fail on the database anyway).
pub async fn monitor(
    admission: Arc<Admission>,
    outbox: Arc<dyn Outbox>,
    per_endpoint: u32,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut recent = VecDeque::with_capacity(LASTING);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => return,
        }
        match outbox.lag(per_endpoint).await {
            Ok(lag) => {
                if recent.len() == LASTING {
                    recent.pop_front();
                }
                recent.push_back(lag);
                let lasting = recent.iter().min().copied().unwrap_or(lag);
                admission.observe(lag, lasting);
            }
            Err(e) => tracing::warn!(error = %e, "reading the outbox lag failed"),
        }
    }
}
