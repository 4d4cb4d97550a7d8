//! Delivery vocabulary shared by the store, the engine and the API: where an event is in
//! its delivery, why an attempt failed, and how long to wait before each retry. Each has
//! one list of its values, from which the API's documented enums are generated.

use std::fmt;
use std::time::Duration;

/// Where an event is: still in the outbox, delivered, or failed after its last attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [Self::Pending, Self::Delivered, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt failed, as the attempt log and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// No complete answer within the delivery timeout.
    Timeout,
    /// The connection could not be made or broke.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The host name did not resolve.
    Dns,
    /// An answer other than 2xx (redirects included: they are not followed).
    Status,
    /// The target is an address deliveries may not reach (loopback, private, …).
    Blocked,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        Self::Timeout,
        Self::Connect,
        Self::Tls,
        Self::Dns,
        Self::Status,
        Self::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Dns => "dns",
            Self::Status => "status",
            Self::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The waits before each retry: the first attempt, then one more after each wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    waits: Vec<Duration>,
}

impl RetryPolicy {
    pub fn new(waits: Vec<Duration>) -> Self {
        Self { waits }
    }

    /// Attempts in one budget: the first plus one per wait.
    pub fn attempts(&self) -> usize {
        1 + self.waits.len()
    }

    /// The wait before the next attempt, after `used` attempts of the budget have failed;
    /// `None` when that was the last one.
    pub fn wait_after(&self, used: u32) -> Option<Duration> {
        self.waits.get(usize::try_from(used).ok()?).copied()
    }

    pub fn waits(&self) -> &[Duration] {
        &self.waits
    }
}

impl Default for RetryPolicy {
    /// The product's schedule: 1 s, 2 s, 4 s.
    fn default() -> Self {
        Self::new(vec![
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(4),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
        for c in ErrorClass::ALL {
            assert_eq!(ErrorClass::parse(c.as_str()), Some(c));
        }
        assert_eq!(DeliveryStatus::parse("done"), None);
        assert_eq!(ErrorClass::parse("Timeout"), None);
    }

    #[test]
    fn the_policy_counts_its_waits() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts(), 4);
        assert_eq!(policy.wait_after(0), Some(Duration::from_secs(1)));
        assert_eq!(policy.wait_after(2), Some(Duration::from_secs(4)));
        assert_eq!(policy.wait_after(3), None);
        assert_eq!(RetryPolicy::new(Vec::new()).wait_after(0), None);
    }
}
