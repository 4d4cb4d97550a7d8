//! `GET /v1/stats/deliveries`: the organization's delivery success rate and response times
//! over the last hour, by minute, the events its changes made beside those delivered, and
//! the server's outbox lag (the dashboard's chart).

use super::error::{ApiError, ErrorBody};
use super::extract::OrgAuth;
use super::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::Timestamp;
use verihook_store::AttemptSample;

/// One minute, in microseconds.
const BUCKET: i64 = 60_000_000;
const BUCKETS: usize = 60;
/// The statistics read the attempts of at most this many of the newest events, so that a
/// busy organization's chart costs the same as a quiet one's.
const RECENT_EVENTS: u32 = 5_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(deliveries))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryStats {
    /// The length of each bucket.
    bucket_seconds: u32,
    /// How many of the newest events were read (at most).
    recent_events: u32,
    /// The server's outbox lag now: the age of the oldest due delivery (see
    /// `verihook_outbox_lag_seconds`); past `--max-lag`, changes are refused with 503.
    outbox_lag_seconds: f64,
    /// Oldest first; the last one is the current minute.
    buckets: Vec<Bucket>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Bucket {
    #[schema(value_type = String, format = DateTime)]
    start: Timestamp,
    attempts: u32,
    /// Attempts answered with a 2xx: events delivered.
    succeeded: u32,
    /// Events the organization's changes made (accepted), to set against `succeeded`.
    accepted: u32,
    /// Mean attempt duration, when there were attempts.
    avg_duration_ms: Option<u64>,
    max_duration_ms: Option<u64>,
}

/// Per-minute attempts, successes and durations of the last hour.
#[utoipa::path(get, path = "/v1/stats/deliveries", tag = "events",
    security(("organizationKey" = [])),
    responses(
        (status = 200, description = "The last hour, by minute", body = DeliveryStats),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
    ))]
async fn deliveries(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
) -> Result<Json<DeliveryStats>, ApiError> {
    let now = Timestamp::now().unix_micros();
    let first = (now / BUCKET - (BUCKETS as i64 - 1)) * BUCKET;
    let since = Timestamp::from_unix_micros(first);
    let events = &state.store.events;
    let samples = events
        .recent_attempts(&org.id, since, RECENT_EVENTS)
        .await?;
    let made = events.recent_events(&org.id, since, RECENT_EVENTS).await?;
    Ok(Json(DeliveryStats {
        bucket_seconds: 60,
        recent_events: RECENT_EVENTS,
        outbox_lag_seconds: state.admission.lag().as_secs_f64(),
        buckets: buckets(first, &samples, &made),
    }))
}

/// The bucket of `at`, if it falls within the hour.
fn bucket_of(first: i64, at: Timestamp) -> Option<usize> {
    usize::try_from((at.unix_micros() - first) / BUCKET)
        .ok()
        .filter(|i| *i < BUCKETS)
        .filter(|_| at.unix_micros() >= first)
}

fn buckets(first: i64, samples: &[AttemptSample], made: &[Timestamp]) -> Vec<Bucket> {
    let mut buckets: Vec<Bucket> = (0..BUCKETS as i64)
        .map(|i| Bucket {
            start: Timestamp::from_unix_micros(first + i * BUCKET),
            attempts: 0,
            succeeded: 0,
            accepted: 0,
            avg_duration_ms: None,
            max_duration_ms: None,
        })
        .collect();
    let mut total_ms = vec![0u64; BUCKETS];
    for at in made {
        if let Some(i) = bucket_of(first, *at) {
            buckets[i].accepted += 1;
        }
    }
    for s in samples {
        let Some(i) = bucket_of(first, s.started_at) else {
            continue;
        };
        let b = &mut buckets[i];
        b.attempts += 1;
        b.succeeded += u32::from(s.status_code.is_some_and(|c| (200..300).contains(&c)));
        b.max_duration_ms = b.max_duration_ms.max(Some(s.duration_ms));
        total_ms[i] += s.duration_ms;
    }
    for (b, total) in buckets.iter_mut().zip(total_ms) {
        b.avg_duration_ms = (b.attempts > 0).then(|| total / u64::from(b.attempts));
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64, second: i64, duration_ms: u64, status: u16) -> AttemptSample {
        AttemptSample {
            started_at: Timestamp::from_unix_micros(minute * BUCKET + second * 1_000_000),
            duration_ms,
            status_code: Some(status),
        }
    }

    #[test]
    fn attempts_fall_in_their_minute() {
        let samples = [at(0, 5, 10, 200), at(0, 59, 30, 500), at(59, 0, 7, 204)];
        let made = [
            Timestamp::from_unix_micros(0),
            Timestamp::from_unix_micros(BUCKET),
        ];
        let b = buckets(0, &samples, &made);
        assert_eq!(b.len(), 60);
        assert_eq!((b[0].attempts, b[0].succeeded, b[0].accepted), (2, 1, 1));
        assert_eq!(b[1].accepted, 1);
        assert_eq!(
            (b[0].avg_duration_ms, b[0].max_duration_ms),
            (Some(20), Some(30))
        );
        assert_eq!((b[1].attempts, b[1].avg_duration_ms), (0, None));
        assert_eq!((b[59].attempts, b[59].succeeded), (1, 1));
    }

    #[test]
    fn attempts_outside_the_hour_are_left_out() {
        let samples = [at(-1, 0, 1, 200), at(60, 0, 1, 200)];
        let made = [Timestamp::from_unix_micros(-1)];
        let b = buckets(0, &samples, &made);
        assert!(b.iter().all(|b| b.attempts == 0 && b.accepted == 0));
    }
}
