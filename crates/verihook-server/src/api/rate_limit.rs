//! Per-caller request rate (CONTRACT §8): a token bucket per organization (and one for the
//! admin token) refilled at `--rate-limit` tokens a second up to twice that, so a client
//! may burst to 2N and then sustain N. Each node limits on its own: a shared bucket would
//! put a database round trip on every request.
//!
//! A dozen lines of arithmetic rather than a crate: the `RateLimit-*` headers need the
//! bucket's level, which is ours to read this way.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Buckets kept before full (idle) ones are dropped: bounds memory by active callers.
const PRUNE_ABOVE: usize = 10_000;

pub struct RateLimiter {
    /// Tokens per second; `None` when the limit is off.
    rate: Option<f64>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What one request was told: the `RateLimit-*` headers, and whether it may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket's size (the burst).
    pub limit: u64,
    pub remaining: u64,
    /// Whole seconds until the bucket is full again.
    pub reset: u64,
    /// Whole seconds (≥ 1) until one request would be let in; for refused requests.
    pub retry_after: u64,
}

impl RateLimiter {
    /// `per_second` requests a second, bursts of twice that; 0 turns the limit off.
    pub fn new(per_second: u32) -> Self {
        Self {
            rate: (per_second > 0).then_some(f64::from(per_second)),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token from `caller`'s bucket if it has one; `None` when the limit is off.
    pub fn check(&self, caller: &str) -> Option<Decision> {
        self.take(caller, Instant::now())
    }

    fn take(&self, caller: &str, now: Instant) -> Option<Decision> {
        let rate = self.rate?;
        let burst = rate * 2.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| b.level(rate, burst, now) < burst);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let level = bucket.level(rate, burst, now);
        let allowed = level >= 1.0;
        *bucket = Bucket {
            tokens: if allowed { level - 1.0 } else { level },
            at: now,
        };
        Some(Decision {
            allowed,
            limit: whole(burst),
            remaining: bucket.tokens.floor() as u64,
            reset: seconds_until(burst - bucket.tokens, rate),
            retry_after: seconds_until(1.0 - bucket.tokens, rate).max(1),
        })
    }

    /// The headers of a caller the limit does not apply to yet (an unknown key).
    pub fn untouched(&self) -> Option<Decision> {
        let burst = whole(self.rate? * 2.0);
        Some(Decision {
            allowed: true,
            limit: burst,
            remaining: burst,
            reset: 0,
            retry_after: 1,
        })
    }
}

impl Bucket {
    fn level(&self, rate: f64, burst: f64, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }
}

fn whole(x: f64) -> u64 {
    x.round() as u64
}

fn seconds_until(missing: f64, rate: f64) -> u64 {
    if missing <= 0.0 {
        return 0;
    }
    (missing / rate).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_to_twice_the_rate_then_refuses_until_refilled() {
        let limiter = RateLimiter::new(5);
        let start = Instant::now();
        let decisions: Vec<_> = (0..11)
            .map(|_| limiter.take("org", start).expect("on"))
            .collect();
        assert!(decisions[..10].iter().all(|d| d.allowed));
        assert_eq!((decisions[0].limit, decisions[0].remaining), (10, 9));
        let refused = decisions[10];
        assert!(!refused.allowed);
        assert_eq!((refused.remaining, refused.retry_after), (0, 1));
        assert_eq!(refused.reset, 2, "ten tokens at five a second");
        let later = limiter
            .take("org", start + Duration::from_millis(200))
            .expect("on");
        assert!(later.allowed, "one token back after a fifth of a second");
    }

    #[test]
    fn callers_have_their_own_buckets_and_zero_is_off() {
        let limiter = RateLimiter::new(1);
        let now = Instant::now();
        for _ in 0..2 {
            assert!(limiter.take("a", now).expect("on").allowed);
        }
        assert!(!limiter.take("a", now).expect("on").allowed);
        assert!(limiter.take("b", now).expect("on").allowed);
        assert_eq!(RateLimiter::new(0).check("a"), None);
    }
}
