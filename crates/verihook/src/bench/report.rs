//! The figures of a run: a table for people, one JSON line for scripts.

use hdrhistogram::Histogram;
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub mode: String,
    pub database: String,
    pub events: u64,
    pub api_per_sec: f64,
    pub delivered_per_sec: f64,
    pub latency_ms: Percentiles,
    pub peak_rss_mb: Option<f64>,
    pub lost: u64,
    pub duplicates: u64,
    pub bad_signatures: u64,
    /// Scenario-specific figures, e.g. the healthy run's p99 beside the dead-endpoint one.
    pub extra: Vec<(&'static str, f64)>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1_000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

pub fn per_sec(count: u64, over: Duration) -> f64 {
    if over.is_zero() {
        0.0
    } else {
        count as f64 / over.as_secs_f64()
    }
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

impl Report {
    pub fn table(&self) -> String {
        let l = &self.latency_ms;
        let rss = self.peak_rss_mb.map_or_else(
            || "n/a (external server)".to_owned(),
            |mb| format!("{mb:.0} MB"),
        );
        let mut out = format!(
            "\nverihook bench: {} ({}, {}, {} events)\n\
             \x20 API requests/s            {:>10.0}\n\
             \x20 delivered events/s        {:>10.0}\n\
             \x20 change→receipt p50        {:>10.1} ms\n\
             \x20 change→receipt p90        {:>10.1} ms\n\
             \x20 change→receipt p99        {:>10.1} ms\n\
             \x20 change→receipt max        {:>10.1} ms\n\
             \x20 server peak RSS           {:>10}\n\
             \x20 lost / duplicates         {:>10}\n\
             \x20 bad signatures            {:>10}\n",
            self.scenario,
            self.mode,
            self.database,
            self.events,
            self.api_per_sec,
            self.delivered_per_sec,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            rss,
            format!("{} / {}", self.lost, self.duplicates),
            self.bad_signatures,
        );
        for (name, value) in &self.extra {
            out.push_str(&format!("  {name:<26}{value:>10.1}\n"));
        }
        out
    }

    pub fn json(&self) -> String {
        let l = &self.latency_ms;
        let mut value = json!({
            "scenario": self.scenario,
            "mode": self.mode,
            "database": self.database,
            "events": self.events,
            "apiPerSec": round(self.api_per_sec, 1),
            "deliveredPerSec": round(self.delivered_per_sec, 1),
            "latencyMs": {
                "p50": round(l.p50, 2), "p90": round(l.p90, 2),
                "p99": round(l.p99, 2), "max": round(l.max, 2),
            },
            "peakRssMb": self.peak_rss_mb.map(|m| round(m, 1)),
            "lost": self.lost,
            "duplicates": self.duplicates,
            "badSignatures": self.bad_signatures,
        });
        for (name, v) in &self.extra {
            value[*name] = json!(round(*v, 2));
        }
        value.to_string()
    }
}
