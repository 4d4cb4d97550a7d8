//! Bulk recovery (CONTRACT §9): every event that failed in a window (at one endpoint, or
//! any; of one type, or any) redelivered once with a fresh budget, paced per endpoint, with
//! its progress readable from any node.
//!
//! A recovery's deliveries wait in the outbox *held* (due at no time the claim reaches),
//! and each second the engine lets out the next share at each endpoint ([`Pace`]).

use crate::StoreError;
use async_trait::async_trait;
use std::time::Duration;
use verihook_core::{EndpointId, EventType, OrganizationId, RecoveryId, Timestamp};

/// How often each endpoint's recovery pace is adjusted and its next share let out.
pub const PACE_TICK: Duration = Duration::from_secs(1);

/// The pace of an endpoint's recovery, in deliveries a second, decided once per
/// [`PACE_TICK`] on what the endpoint did since the last decision, as TCP paces a
/// connection: a slow start (doubling from a modest 10 a second, so that a receiver that
/// has only just come back is not knocked over by its backlog, yet a strong one gets it
/// in seconds), then additive increase and multiplicative decrease around what the
/// receiver takes, learnt at the first failure or slowdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub per_second: u32,
    /// Where the slow start ends: half the pace of the last failure (¾ of the last
    /// slowdown's); none before either.
    pub ceiling: Option<u32>,
}

/// What an endpoint did since its pace was last decided.
#[derive(Debug, Clone, Copy, Default)]
pub struct Since {
    /// An attempt failed there (a recovered event or any other: the receiver is in trouble).
    pub failed: bool,
    /// An attempt succeeded there.
    pub succeeded: bool,
    /// Deliveries due there and not yet sent: its concurrency slots are full, the receiver
    /// answers more slowly than the pace asks.
    pub waiting: u32,
}

impl Pace {
    pub const START: Pace = Pace {
        per_second: 10,
        ceiling: None,
    };
    /// Added each second past the slow start while deliveries succeed and none waits.
    pub const STEP: u32 = 10;
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 5_000;
    /// A pace not decided for this long is stale: the next recovery starts over.
    pub const STALE: Duration = Duration::from_secs(10);

    /// The rule: a failure halves the pace; a slowdown (half a second's share or more still
    /// unsent) takes a quarter off; either ends the slow start there. A few unsent, or
    /// nothing answered, hold it. All sent and some delivered: doubled up to the ceiling,
    /// [`Self::STEP`] more past it.
    pub fn next(self, since: Since) -> Pace {
        let now = self.per_second;
        let lowered = |to: u32| {
            let to = to.clamp(Self::MIN, Self::MAX);
            Pace {
                per_second: to,
                ceiling: Some(to),
            }
        };
        if since.failed {
            return lowered(now / 2);
        }
        if since.waiting >= now.div_ceil(2) {
            return lowered(now - now / 4);
        }
        if since.waiting > 0 || !since.succeeded {
            return self;
        }
        let raised = match self.ceiling {
            Some(ceiling) if now >= ceiling => now.saturating_add(Self::STEP),
            Some(ceiling) => now.saturating_mul(2).min(ceiling),
            None => now.saturating_mul(2),
        };
        Pace {
            per_second: raised.clamp(Self::MIN, Self::MAX),
            ..self
        }
    }

    /// How many to let out now, `elapsed` after the last share: the pace's worth of that
    /// time (at most two ticks' worth), less the endpoint's deliveries that will be sent
    /// within the tick anyway (retries, the last share still unsent): the pace bounds
    /// what the receiver gets, not only what the recovery adds.
    pub fn share(self, elapsed: Duration, coming: u32) -> u32 {
        let elapsed = elapsed.min(2 * PACE_TICK).as_micros();
        let worth = u128::from(self.per_second) * elapsed / PACE_TICK.as_micros();
        u32::try_from(worth)
            .unwrap_or(u32::MAX)
            .max(1)
            .saturating_sub(coming)
    }
}

/// What to recover: the organization's events that occurred in `since..=until` and are
/// failed now.
#[derive(Debug, Clone)]
pub struct RecoveryRequest {
    pub id: RecoveryId,
    pub organization: OrganizationId,
    pub since: Timestamp,
    pub until: Timestamp,
    pub endpoint: Option<EndpointId>,
    pub event_type: Option<EventType>,
    /// Started by the engine for an endpoint that came back (`autoRecover`).
    pub automatic: bool,
    pub created_at: Timestamp,
}

/// A recovery with its progress: `pending` items are in the outbox, `failed` ones failed
/// again, the rest were delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub id: RecoveryId,
    pub since: Timestamp,
    pub until: Timestamp,
    pub endpoint: Option<EndpointId>,
    pub event_type: Option<EventType>,
    pub automatic: bool,
    pub created_at: Timestamp,
    pub total: u64,
    pub delivered: u64,
    pub failed: u64,
    pub pending: u64,
}

impl Recovery {
    pub fn is_completed(&self) -> bool {
        self.pending == 0
    }
}

#[async_trait]
pub trait Recoveries: Send + Sync + 'static {
    /// Takes the failed events of the request and puts each back in the outbox, held
    /// until the pacing lets it out. `NotFound` when the endpoint named is not the
    /// organization's.
    async fn start_recovery(&self, request: &RecoveryRequest) -> Result<Recovery, StoreError>;
    async fn recovery(
        &self,
        organization: &OrganizationId,
        id: &RecoveryId,
    ) -> Result<Option<Recovery>, StoreError>;
    /// The organization's newest `limit` recoveries, newest first.
    async fn recoveries(
        &self,
        organization: &OrganizationId,
        limit: u32,
    ) -> Result<Vec<Recovery>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn since(failed: bool, succeeded: bool, waiting: u32) -> Since {
        Since {
            failed,
            succeeded,
            waiting,
        }
    }

    fn pace(per_second: u32, ceiling: Option<u32>) -> Pace {
        Pace {
            per_second,
            ceiling,
        }
    }

    const DELIVERED: Since = Since {
        failed: false,
        succeeded: true,
        waiting: 0,
    };

    #[test]
    fn a_slow_start_doubles_until_the_first_failure_then_steps() {
        let mut p = Pace::START;
        for _ in 0..4 {
            p = p.next(DELIVERED);
        }
        assert_eq!(p, pace(160, None));
        p = p.next(since(true, true, 0));
        assert_eq!(p, pace(80, Some(80)), "halved, and the slow start is over");
        assert_eq!(
            p.next(DELIVERED),
            pace(90, Some(80)),
            "a step past the ceiling"
        );
        assert_eq!(pace(20, Some(80)).next(DELIVERED), pace(40, Some(80)));
        assert_eq!(pace(60, Some(80)).next(DELIVERED), pace(80, Some(80)));
    }

    #[test]
    fn the_pace_stays_within_its_bounds() {
        assert_eq!(pace(1, None).next(since(true, false, 0)), pace(1, Some(1)));
        assert_eq!(pace(Pace::MAX, None).next(DELIVERED).per_second, Pace::MAX);
        assert_eq!(
            pace(Pace::MAX, Some(10)).next(DELIVERED).per_second,
            Pace::MAX
        );
    }

    #[test]
    fn a_slow_receiver_holds_then_shrinks_the_pace() {
        assert_eq!(
            pace(100, None).next(since(false, true, 10)),
            pace(100, None)
        );
        assert_eq!(
            pace(100, None).next(since(false, true, 50)),
            pace(75, Some(75))
        );
        // Nothing answered yet: no reason to go faster.
        assert_eq!(
            pace(100, None).next(since(false, false, 0)),
            pace(100, None)
        );
    }

    #[test]
    fn the_share_is_the_time_s_worth_less_what_comes_anyway() {
        let p = pace(100, None);
        assert_eq!(p.share(PACE_TICK, 0), 100);
        assert_eq!(p.share(PACE_TICK / 2, 0), 50);
        assert_eq!(p.share(10 * PACE_TICK, 0), 200);
        assert_eq!(p.share(PACE_TICK, 30), 70);
        assert_eq!(p.share(PACE_TICK, 300), 0);
        assert_eq!(pace(1, None).share(PACE_TICK / 10, 0), 1);
    }
}
