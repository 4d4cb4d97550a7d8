//! Admission control: overload said out loud.
//!
//! The API can accept changes faster than the engine delivers them (both share the
//! machine's cores and the database's writer). Left alone the outbox then grows for as
//! long as the load lasts, and every event is late: the 5-second promise breaks silently,
//! for everyone. Instead a monitor samples the outbox's lag (the age of its oldest due
//! delivery, leaving out organizations whose own endpoints hold all their slots), and
//! while it exceeds `--max-lag` the requests that would add events are refused with
//! `503` and `Retry-After`, before they write anything. A client that retries later
//! loses nothing; one that was told "201" is delivered to within the promise. Reads,
//! deliveries and redeliveries already queued go on.

use crate::metrics::Metrics;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use verihook_store::Outbox;

/// How often the lag is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// At most one WARN line per this long while refusing.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Why a change was refused: deliveries lag `lag` behind, past `max_lag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded {
    pub lag: Duration,
    pub max_lag: Duration,
}

pub struct Admission {
    /// `None`: never refuse (`--max-lag 0s`).
    max_lag: Option<Duration>,
    /// The lower of the last two samples: a lag must last a whole sampling period to
    /// refuse anything, so the instant between a busy endpoint's attempt ending and its
    /// next claim (when its backlog briefly counts) refuses no one.
    lag_micros: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(max_lag: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            max_lag: (!max_lag.is_zero()).then_some(max_lag),
            lag_micros: AtomicU64::new(0),
            last_warning: Mutex::new(None),
            metrics,
        }
    }

    /// The lag that admission goes by: the lower of the last two samples.
    pub fn lag(&self) -> Duration {
        Duration::from_micros(self.lag_micros.load(Ordering::Relaxed))
    }

    fn set_lag(&self, previous: Duration, lag: Duration) {
        let lasting = u64::try_from(previous.min(lag).as_micros()).unwrap_or(u64::MAX);
        self.lag_micros.store(lasting, Ordering::Relaxed);
        self.metrics.set_outbox_lag(lag);
    }

    /// Ok while deliveries keep pace; otherwise why not (the API answers 503, nothing
    /// written).
    pub fn admit(&self) -> Result<(), Overloaded> {
        let Some(max_lag) = self.max_lag else {
            return Ok(());
        };
        let lag = self.lag();
        if lag <= max_lag {
            return Ok(());
        }
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
    per_organization: u32,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous = Duration::ZERO;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => return,
        }
        match outbox.lag(per_organization).await {
            Ok(lag) => {
                admission.set_lag(previous, lag);
                previous = lag;
            }
            Err(e) => tracing::warn!(error = %e, "reading the outbox lag failed"),
        }
    }
}
