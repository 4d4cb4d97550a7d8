//! Endpoint health and incident alerts (CONTRACT §9), kept with the attempts: each batch
//! of recorded outcomes updates the health of the endpoints it touched (one statement per
//! batch), and where one turns failing or healthy again, writes the operator's alert in
//! the same transaction, so an alert is never lost to a crash between the two.

use super::recoveries::recover_in;
use super::Backend;
use crate::conn::Conn;
use crate::outbox::{AttemptOutcome, NextStep, Recorded};
use crate::recoveries::RecoveryRequest;
use crate::rows::{Row, Value};
use crate::sql;
use crate::StoreError;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use verihook_core::{EndpointId, OrganizationId, RecoveryId, Timestamp};

/// What one batch says about one endpoint (unix microseconds).
#[derive(Default)]
struct Seen<'a> {
    success: Option<i64>,
    failure: Option<i64>,
    finals: i64,
    /// The batch's first final failure here, and when it ended.
    first_final: Option<(&'a AttemptOutcome, i64)>,
    last_final: Option<i64>,
    /// Events a probe delivered: failed still, until the recovery that follows.
    probed: Vec<i64>,
}

impl<'a> Seen<'a> {
    fn add(&mut self, outcome: &'a AttemptOutcome, recorded: Recorded) {
        let started = outcome.record.started_at.unix_micros();
        let ended = outcome.record.ended_at().unix_micros();
        let probe = is_probe(&outcome.lease.token);
        match outcome.next {
            NextStep::Delivered => {
                self.success = self.success.max(Some(ended));
                if probe {
                    self.probed.push(outcome.lease.event);
                }
            }
            // A failed probe is the same failed event once more, not another.
            NextStep::Failed if probe => self.failure = self.failure.max(Some(started)),
            // A redelivery asked for meanwhile makes a final failure a failed attempt.
            NextStep::Failed if recorded == Recorded::Moved => {
                self.failure = self.failure.max(Some(started));
                self.finals += 1;
                if self.first_final.is_none_or(|(_, at)| ended < at) {
                    self.first_final = Some((outcome, ended));
                }
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

/// Updates the health of every endpoint whose outcomes moved in this batch, and writes
/// the alerts of the incidents it opened or closed.
pub(super) async fn record<B: Backend>(
    conn: &mut B::Conn,
    outcomes: &[AttemptOutcome],
    recorded: &[Recorded],
) -> Result<(), StoreError> {
    let mut by_endpoint: BTreeMap<i64, Seen<'_>> = BTreeMap::new();
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
    let before = states::<B>(conn, by_endpoint.keys().copied()).await?;
    update_health::<B>(conn, &by_endpoint).await?;
    for (seq, seen) in &by_endpoint {
        if let Some(before) = before.get(seq) {
            write_alerts::<B>(conn, *seq, seen, before).await?;
        }
    }
    Ok(())
}

/// An endpoint as the batch found it.
struct Before {
    id: String,
    organization_id: String,
    url: String,
    failing_since: Option<i64>,
    failed_events: i64,
    auto_recover: bool,
}

async fn states<B: Backend>(
    conn: &mut B::Conn,
    seqs: impl Iterator<Item = i64>,
) -> Result<BTreeMap<i64, Before>, StoreError> {
    let params: Vec<Value<'_>> = seqs.map(Value::int).collect();
    let list = (1..=params.len())
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = conn
        .query(
            &(sql::ENDPOINT_STATES.replace("{seqs}", &list) + B::LOCK_FOR_UPDATE),
            &params,
        )
        .await?;
    rows.iter()
        .map(|row: &Row| {
            Ok((
                row.int("seq")?,
                Before {
                    id: row.string("id")?,
                    organization_id: row.string("organization_id")?,
                    url: row.string("url")?,
                    failing_since: row.opt_int("failing_since")?,
                    failed_events: row.int("failed_events")?,
                    auto_recover: row.int("auto_recover")? != 0,
                },
            ))
        })
        .collect()
}

async fn update_health<B: Backend>(
    conn: &mut B::Conn,
    by_endpoint: &BTreeMap<i64, Seen<'_>>,
) -> Result<(), StoreError> {
    let mut params = Vec::with_capacity(by_endpoint.len() * 6);
    let mut tuples = Vec::with_capacity(by_endpoint.len());
    for (&seq, seen) in by_endpoint {
        let n = params.len();
        let places: Vec<String> = (n + 1..=n + 6).map(|i| format!("${i}")).collect();
        tuples.push(format!("({})", places.join(", ")));
        params.extend([
            Value::int(seq),
            Value::Int(seen.success),
            Value::Int(seen.failure),
            Value::int(i64::from(seen.healed())),
            Value::int(seen.finals),
            Value::Int(seen.first_final.map(|(_, at)| at)),
        ]);
    }
    let statement = sql::RECORD_HEALTH.replace("{rows}", &tuples.join(", "));
    conn.execute(&statement, &params).await?;
    Ok(())
}

/// The failing alert when this batch opened an incident, the recovered one when it closed
/// one (both, for an incident opened and closed within the batch).
async fn write_alerts<B: Backend>(
    conn: &mut B::Conn,
    seq: i64,
    seen: &Seen<'_>,
    before: &Before,
) -> Result<(), StoreError> {
    let now = Timestamp::now();
    let mut failing_since = before.failing_since;
    let mut failed_events = before.failed_events;
    if let (None, Some((first, ended))) = (before.failing_since, seen.first_final) {
        let body = failing_alert::<B>(conn, before, first, ended, seen.finals).await?;
        insert_alert::<B>(conn, seq, "webhook.endpoint_failing", &body, now).await?;
        let params = [
            Value::time(now),
            Value::int(first.lease.event),
            Value::int(micros(FIRST_PROBE)),
            Value::int(seq),
        ];
        conn.execute(sql::INCIDENT_OPENED, &params).await?;
        failing_since = Some(ended);
        failed_events = seen.finals;
    }
    if let (true, Some(since)) = (seen.healed(), failing_since) {
        let body = json!({
            "alert": "webhook.endpoint_recovered",
            "organizationId": before.organization_id,
            "endpointId": before.id,
            "url": before.url,
            "failedEvents": failed_events,
            "failingSince": Timestamp::from_unix_micros(since).to_rfc3339(),
            "recoveredAt": now.to_rfc3339(),
        });
        insert_alert::<B>(
            conn,
            seq,
            "webhook.endpoint_recovered",
            &body.to_string(),
            now,
        )
        .await?;
        conn.execute(sql::INCIDENT_CLOSED, &[Value::int(seq)])
            .await?;
        for &event in &seen.probed {
            let params = [Value::int(event), Value::int(seq)];
            conn.execute(sql::UNMARK_FAILED_ONE, &params).await?;
        }
        let left = conn.query(sql::ANY_FAILED_AT, &[Value::int(seq)]).await?;
        if before.auto_recover && !left.is_empty() {
            recover_incident::<B>(conn, before, now).await?;
        }
    }
    Ok(())
}

/// The first success after an incident: every event failed at the endpoint goes back to
/// the outbox as one automatic recovery, paced.
async fn recover_incident<B: Backend>(
    conn: &mut B::Conn,
    before: &Before,
    now: Timestamp,
) -> Result<(), StoreError> {
    let request = RecoveryRequest {
        id: RecoveryId::generate(),
        organization: OrganizationId::parse(&before.organization_id)
            .map_err(StoreError::corrupt)?,
        since: Timestamp::from_unix_micros(0),
        until: now,
        endpoint: Some(EndpointId::parse(&before.id).map_err(StoreError::corrupt)?),
        event_type: None,
        automatic: true,
        created_at: now,
    };
    recover_in::<B>(conn, &request).await
}

/// How long after an endpoint turns failing it is first probed (the wait then doubles).
pub(crate) const FIRST_PROBE: Duration = Duration::from_secs(30);
/// The longest wait between probes.
pub(crate) const LAST_PROBE: Duration = Duration::from_secs(600);
/// What starts a probe's lease token: its outcome is the same failed event once more.
pub(crate) const PROBE_TOKEN: &str = "probe-";

fn is_probe(token: &str) -> bool {
    token.starts_with(PROBE_TOKEN)
}

pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

async fn failing_alert<B: Backend>(
    conn: &mut B::Conn,
    before: &Before,
    first: &AttemptOutcome,
    ended: i64,
    failed_events: i64,
) -> Result<String, StoreError> {
    let event = conn
        .query(sql::EVENT_ID_AND_TYPE, &[Value::int(first.lease.event)])
        .await?;
    let event = event.first().ok_or(StoreError::NotFound)?;
    let r = &first.record;
    let last_error = match (&r.error_class, &r.error) {
        (Some(class), Some(error)) => format!("{}: {error}", class.as_str()),
        (Some(class), None) => class.as_str().to_owned(),
        (None, error) => error.clone().unwrap_or_default(),
    };
    Ok(json!({
        "alert": "webhook.endpoint_failing",
        "organizationId": before.organization_id,
        "endpointId": before.id,
        "url": before.url,
        "eventId": event.string("id")?,
        "type": event.string("event_type")?,
        "attempts": r.attempt,
        "lastAttempt": r.attempt,
        "lastError": last_error,
        "lastStatusCode": r.status_code,
        "failedAt": Timestamp::from_unix_micros(ended).to_rfc3339(),
        "failedEvents": failed_events,
    })
    .to_string())
}

pub(super) async fn insert_alert<B: Backend>(
    conn: &mut B::Conn,
    endpoint_seq: i64,
    kind: &str,
    body: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let params = [
        Value::int(endpoint_seq),
        Value::text(kind),
        Value::text(body),
        Value::time(now),
    ];
    conn.execute(sql::INSERT_ALERT, &params).await?;
    Ok(())
}
