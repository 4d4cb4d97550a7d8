//! Prometheus metrics, served as OpenMetrics text at `GET /metrics`.
//!
//! The seed's figures to watch (delivery success rate, response time) and what an operator
//! of the delivery engine needs besides: attempts by outcome and error class, attempt
//! duration, change→delivery latency, pending and in-flight deliveries, finally failed
//! events, alerts, and API requests by route and status. No label carries an organization,
//! event or customer id: their number is unbounded, and the delivery log answers
//! per-organization questions. Each server has its own registry (no global state), so
//! several servers can run in one process, as the tests do.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// An attempt's outcome (`delivered`, `retry`, `failed`) and error class (empty when it
/// succeeded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    outcome: &'static str,
    error_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IncidentLabels {
    event: &'static str,
}

/// `route` is the route's template (`/v1/customers/{id}`), never the path itself.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

pub struct Metrics {
    registry: Registry,
    attempts: Family<AttemptLabels, Counter>,
    attempt_seconds: Histogram,
    latency_seconds: Histogram,
    pending: Gauge,
    in_flight: Gauge,
    failed_events: Counter,
    alerts: Family<AlertLabels, Counter>,
    incidents: Family<IncidentLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    outbox_lag: Gauge<f64, AtomicU64>,
    events_accepted: Counter,
    events_delivered: Counter,
    refused_for_lag: Counter,
    events_purged: Counter,
    customers_erased: Counter,
    change_limit: Gauge,
    database_memory: Gauge,
}

/// 1 ms to ~65 s: from a receiver on the same host to the delivery timeout and beyond.
fn seconds_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::default(),
            attempts: Family::default(),
            attempt_seconds: seconds_buckets(),
            latency_seconds: seconds_buckets(),
            pending: Gauge::default(),
            in_flight: Gauge::default(),
            failed_events: Counter::default(),
            alerts: Family::default(),
            incidents: Family::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(seconds_buckets),
            outbox_lag: Gauge::default(),
            events_accepted: Counter::default(),
            events_delivered: Counter::default(),
            refused_for_lag: Counter::default(),
            events_purged: Counter::default(),
            customers_erased: Counter::default(),
            change_limit: Gauge::default(),
            database_memory: Gauge::default(),
        };
        // The registry holds handles to the same metrics (they are shared counters).
        let mut registry = Registry::with_prefix("verihook");
        metrics.register(&mut registry);
        metrics.registry = registry;
        metrics
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "delivery_attempts",
            "Webhook delivery attempts by outcome (delivered, retry, failed) and error class",
            self.attempts.clone(),
        );
        r.register(
            "delivery_attempt_duration_seconds",
            "Time from sending a webhook to its response (or failure)",
            self.attempt_seconds.clone(),
        );
        r.register(
            "delivery_latency_seconds",
            "Time from the change that made an event to its successful delivery",
            self.latency_seconds.clone(),
        );
        r.register(
            "deliveries_pending",
            "Events waiting in the outbox (due, scheduled for retry, or in flight)",
            self.pending.clone(),
        );
        r.register(
            "deliveries_in_flight",
            "Attempts this process is sending now",
            self.in_flight.clone(),
        );
        r.register(
            "events_failed",
            "Events that failed their last attempt",
            self.failed_events.clone(),
        );
        r.register(
            "alerts",
            "Alerts to the operator (one per incident), by result of each try (sent, refused, error)",
            self.alerts.clone(),
        );
        r.register(
            "endpoint_incidents",
            "Endpoint incidents, by event: opened (an endpoint turned failing) or recovered",
            self.incidents.clone(),
        );
        r.register(
            "outbox_lag_seconds",
            "Age of the oldest due delivery of organizations below their in-flight limit",
            self.outbox_lag.clone(),
        );
        r.register(
            "events_accepted",
            "Events stored by accepted API changes (their rate against events_delivered: \
             whether delivery keeps pace)",
            self.events_accepted.clone(),
        );
        r.register(
            "events_delivered",
            "Events delivered (a 2xx answer)",
            self.events_delivered.clone(),
        );
        r.register(
            "api_refused_for_lag",
            "Changes refused with 503 because deliveries lagged beyond --max-lag",
            self.refused_for_lag.clone(),
        );
        r.register(
            "api_change_limit",
            "Changes the API lets run at once: narrowed while deliveries fall behind",
            self.change_limit.clone(),
        );
        r.register(
            "database_memory_bytes",
            "Memory the embedded database (SQLite) holds in this process: page caches, \
             prepared statements; 0 on PostgreSQL, which runs in processes of its own",
            self.database_memory.clone(),
        );
        r.register(
            "events_purged",
            "Events deleted (with their attempts) after --retention",
            self.events_purged.clone(),
        );
        r.register(
            "customers_erased",
            "Customers whose personal data was erased (DELETE /v1/customers/{id})",
            self.customers_erased.clone(),
        );
        r.register(
            "http_requests",
            "API requests by route template, method and status",
            self.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "API request duration by route template",
            self.request_seconds.clone(),
        );
    }

    /// One webhook attempt and what came of it.
    pub fn attempt(&self, outcome: &'static str, error_class: &'static str, took: Duration) {
        self.attempts
            .get_or_create(&AttemptLabels {
                outcome,
                error_class,
            })
            .inc();
        self.attempt_seconds.observe(took.as_secs_f64());
    }

    /// An event delivered `latency` after its change.
    pub fn delivered(&self, latency: Duration) {
        self.latency_seconds.observe(latency.as_secs_f64());
        self.events_delivered.inc();
    }

    /// Events stored by an accepted change.
    pub fn accepted(&self, events: usize) {
        self.events_accepted
            .inc_by(u64::try_from(events).unwrap_or(u64::MAX));
    }

    pub fn set_outbox_lag(&self, lag: Duration) {
        self.outbox_lag.set(lag.as_secs_f64());
    }

    pub fn set_change_limit(&self, limit: usize) {
        self.change_limit
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
    }

    pub fn set_database_memory(&self, bytes: u64) {
        self.database_memory
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn purged(&self, events: u64) {
        self.events_purged.inc_by(events);
    }

    pub fn erased(&self) {
        self.customers_erased.inc();
    }

    pub fn refused_for_lag(&self) {
        self.refused_for_lag.inc();
    }

    pub fn event_failed(&self) {
        self.failed_events.inc();
    }

    /// An endpoint's incident `opened` or `recovered`.
    pub fn incident(&self, event: &'static str) {
        self.incidents
            .get_or_create(&IncidentLabels { event })
            .inc();
    }

    pub fn alert(&self, result: &'static str) {
        self.alerts.get_or_create(&AlertLabels { result }).inc();
    }

    pub fn set_in_flight(&self, n: usize) {
        self.in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn request(&self, route: String, method: &'static str, status: u16, took: Duration) {
        let route = RouteLabels { route };
        self.request_seconds
            .get_or_create(&route)
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                route: route.route,
                method,
                status,
            })
            .inc();
    }

    /// The outbox's size as last sampled (see [`sample_outbox`]).
    pub fn set_pending(&self, pending: u64) {
        self.pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        text
    }
}

/// How often the outbox is counted for `verihook_deliveries_pending`.
const SAMPLE_PENDING: std::time::Duration = std::time::Duration::from_secs(5);

/// Counts the outbox every [`SAMPLE_PENDING`] until `stop`: a scrape reads the last
/// count, so however often (and by however many) `/metrics` is scraped, the database
/// counts at most once per interval per node.
pub async fn sample_outbox(
    metrics: std::sync::Arc<Metrics>,
    outbox: std::sync::Arc<dyn verihook_store::Outbox>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval(SAMPLE_PENDING);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => return,
        }
        match outbox.size().await {
            Ok(pending) => metrics.set_pending(pending),
            Err(e) => tracing::warn!(error = %e, "counting the outbox failed"),
        }
    }
}
