//! Endpoint health (CONTRACT §9), kept with the attempts: each batch of recorded outcomes
//! updates the health of the endpoints it touched, in one statement per batch.

use super::Backend;
use crate::conn::Conn;
use crate::outbox::{AttemptOutcome, NextStep, Recorded};
use crate::rows::Value;
use crate::sql;
use crate::StoreError;
use std::collections::BTreeMap;

/// What one batch says about one endpoint (unix microseconds).
#[derive(Default)]
struct Seen {
    success: Option<i64>,
    failure: Option<i64>,
    finals: i64,
    first_final: Option<i64>,
    last_final: Option<i64>,
}

impl Seen {
    fn add(&mut self, outcome: &AttemptOutcome, recorded: Recorded) {
        let started = outcome.record.started_at.unix_micros();
        let duration = i64::try_from(outcome.record.duration_ms).unwrap_or(0);
        let ended = started.saturating_add(duration.saturating_mul(1000));
        match outcome.next {
            NextStep::Delivered => self.success = self.success.max(Some(ended)),
            // A redelivery asked for meanwhile makes a final failure a failed attempt.
            NextStep::Failed if recorded == Recorded::Moved => {
                self.failure = self.failure.max(Some(started));
                self.finals += 1;
                self.first_final = Some(self.first_final.map_or(ended, |f| f.min(ended)));
                self.last_final = self.last_final.max(Some(ended));
            }
            NextStep::Failed | NextStep::RetryAt(_) => {
                self.failure = self.failure.max(Some(started));
            }
        }
    }

    /// A success after every final failure of the batch ends the incident.
    fn healed(&self) -> bool {
        self.success
            .is_some_and(|s| self.last_final.is_none_or(|f| s > f))
    }
}

/// Updates the health of every endpoint whose outcomes moved in this batch.
pub(super) async fn record<B: Backend>(
    conn: &mut B::Conn,
    outcomes: &[AttemptOutcome],
    recorded: &[Recorded],
) -> Result<(), StoreError> {
    let mut by_endpoint: BTreeMap<i64, Seen> = BTreeMap::new();
    for (outcome, &recorded) in outcomes.iter().zip(recorded) {
        if recorded != Recorded::LeaseLost {
            by_endpoint
                .entry(outcome.lease.endpoint)
                .or_default()
                .add(outcome, recorded);
        }
    }
    if by_endpoint.is_empty() {
        return Ok(());
    }
    let mut params = Vec::with_capacity(by_endpoint.len() * 6);
    let mut tuples = Vec::with_capacity(by_endpoint.len());
    for (seq, seen) in by_endpoint {
        let n = params.len();
        tuples.push(format!(
            "(${}, ${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6
        ));
        params.extend([
            Value::int(seq),
            Value::Int(seen.success),
            Value::Int(seen.failure),
            Value::int(i64::from(seen.healed())),
            Value::int(seen.finals),
            Value::Int(seen.first_final),
        ]);
    }
    let statement = sql::RECORD_HEALTH.replace("{rows}", &tuples.join(", "));
    conn.execute(&statement, &params).await?;
    Ok(())
}
