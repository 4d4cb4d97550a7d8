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

impl RetryPolicy {
    /// At most this many waits in an endpoint's own schedule.
    pub const MAX_ENDPOINT_WAITS: usize = 20;
    /// At most this long, each wait of an endpoint's own schedule.
    pub const MAX_ENDPOINT_WAIT: Duration = Duration::from_secs(24 * 3_600);

    /// `1s,2s,4s`; an empty string means no retries.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self::new(Vec::new()));
        }
        s.split(',')
            .map(parse_duration)
            .collect::<Result<_, _>>()
            .map(Self::new)
    }

    /// [`RetryPolicy::parse`] within an endpoint's bounds: at most 20 waits, each at most
    /// 24 h.
    pub fn parse_for_endpoint(s: &str) -> Result<Self, String> {
        let policy = Self::parse(s)?;
        if policy.waits.len() > Self::MAX_ENDPOINT_WAITS {
            return Err(format!(
                "has {} waits; at most {} are allowed",
                policy.waits.len(),
                Self::MAX_ENDPOINT_WAITS
            ));
        }
        if let Some(long) = policy.waits.iter().find(|w| **w > Self::MAX_ENDPOINT_WAIT) {
            return Err(format!(
                "wait `{}` is longer than 24h",
                format_duration(*long)
            ));
        }
        Ok(policy)
    }
}

/// The schedule as it is written: `1s,2s,4s` (empty: no retries).
impl fmt::Display for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waits: Vec<String> = self.waits.iter().map(|w| format_duration(*w)).collect();
        f.write_str(&waits.join(","))
    }
}

/// `500ms`, `2s`, `5m`, `1h`, `90d`: a whole number and a unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` needs a unit: ms, s, m, h or d (e.g. 2s)"))?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` must start with a whole number (e.g. 500ms)"))?;
    let per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "`{s}` has unknown unit `{unit}`; use ms, s, m, h or d"
            ))
        }
    };
    n.checked_mul(per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too long"))
}

/// A duration in the largest unit up to hours that writes it whole (the inverse of
/// [`parse_duration`]; days print as hours, as schedules were always shown).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_owned(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
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

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
        for bad in ["", "2", "s", "2x", "-1s", "1.5s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedules_parse_and_print_back() {
        let s = RetryPolicy::parse("1s,2s,4s").expect("valid");
        assert_eq!(s.attempts(), 4);
        assert_eq!(s.to_string(), "1s,2s,4s");
        let mixed = RetryPolicy::parse("500ms,90s,120m,24h").expect("valid");
        assert_eq!(mixed.to_string(), "500ms,90s,2h,24h");
        assert_eq!(RetryPolicy::parse("").map(|s| s.attempts()), Ok(1));
        assert!(RetryPolicy::parse("1s,,2s").is_err());
    }

    #[test]
    fn an_endpoints_schedule_is_bounded() {
        let twenty = vec!["1s"; 20].join(",");
        assert!(RetryPolicy::parse_for_endpoint(&twenty).is_ok());
        assert!(RetryPolicy::parse_for_endpoint(&format!("{twenty},1s")).is_err());
        assert!(RetryPolicy::parse_for_endpoint("24h").is_ok());
        assert!(RetryPolicy::parse_for_endpoint("1441m").is_err());
    }
}
