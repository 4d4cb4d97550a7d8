//! The operator's alerts (CONTRACT §9), sent from their durable queue: the store writes
//! one when an endpoint turns failing and one when it recovers, in the transaction that
//! records the outcome; this loop sends them to `--alert-webhook-url` (signed with
//! `--alert-secret` when set) with retries, and writes the reminders of incidents still
//! open after `--alert-interval`. Every node runs it; leases keep two from sending one
//! alert at once.

use super::Sender;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use verihook_core::{Timestamp, WebhookSecret};
use verihook_store::{Alerts, PendingAlert};

/// How often due alerts are looked for.
const POLL: Duration = Duration::from_secs(1);
/// How long a claimed alert is this node's to send.
const LEASE: Duration = Duration::from_secs(60);
/// Alerts sent per round.
const BATCH: u32 = 16;

pub struct AlertSender {
    pub alerts: Arc<dyn Alerts>,
    pub sender: Arc<Sender>,
    /// `None`: alerts are logged and dropped.
    pub url: Option<String>,
    pub secret: Option<WebhookSecret>,
    /// At most one reminder per incident this often.
    pub interval: Duration,
    pub metrics: Arc<Metrics>,
}

impl AlertSender {
    pub async fn run(self, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_reminders = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if last_reminders.elapsed() >= self.interval.min(Duration::from_secs(60)) {
                last_reminders = tokio::time::Instant::now();
                self.remind().await;
            }
            self.send_due().await;
        }
    }

    async fn remind(&self) {
        let now = Timestamp::now();
        if let Err(e) = self
            .alerts
            .write_reminders(now, now.saturating_sub(self.interval))
            .await
        {
            tracing::warn!(error = %e, "writing alert reminders failed");
        }
    }

    async fn send_due(&self) {
        let now = Timestamp::now();
        let claimed = match self
            .alerts
            .claim_alerts(now, now.saturating_add(LEASE), BATCH)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "claiming alerts failed");
                return;
            }
        };
        for alert in claimed {
            self.count_incident(&alert);
            let done = self.send(&alert).await;
            let written = match done {
                Ok(()) => self.alerts.alert_sent(alert.seq).await,
                Err(()) => {
                    let retry_at = Timestamp::now().saturating_add(backoff(alert.attempts));
                    self.alerts.alert_failed(alert.seq, retry_at).await
                }
            };
            if let Err(e) = written {
                tracing::warn!(error = %e, "recording an alert's outcome failed");
            }
        }
    }

    /// The first time an incident's opening or closing alert goes out.
    fn count_incident(&self, alert: &PendingAlert) {
        if alert.attempts == 1 {
            match alert.kind.as_str() {
                "webhook.endpoint_failing" => self.metrics.incident("opened"),
                "webhook.endpoint_recovered" => self.metrics.incident("recovered"),
                _ => {}
            }
        }
    }

    async fn send(&self, alert: &PendingAlert) -> Result<(), ()> {
        let Some(url) = &self.url else {
            tracing::info!(kind = alert.kind, "no --alert-webhook-url: alert dropped");
            return Ok(());
        };
        let outcome = self
            .sender
            .post_json(url, alert.body.clone(), self.secret.as_ref())
            .await;
        match outcome {
            Ok(status) if (200..300).contains(&status) => {
                tracing::info!(kind = alert.kind, "alert sent");
                self.metrics.alert("sent");
                Ok(())
            }
            Ok(status) => {
                tracing::warn!(
                    kind = alert.kind,
                    status,
                    attempts = alert.attempts,
                    "alert refused; will retry"
                );
                self.metrics.alert("refused");
                Err(())
            }
            Err(error) => {
                tracing::warn!(kind = alert.kind, %error, attempts = alert.attempts, "alert not sent; will retry");
                self.metrics.alert("error");
                Err(())
            }
        }
    }
}

/// 1 s, 2 s, 4 s … at most 5 minutes: an alert is retried until it is taken.
fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(9);
    Duration::from_secs(1u64 << exponent).min(Duration::from_secs(300))
}
