//! Instants in UTC. Stored with microsecond precision (so that ordering within a second is
//! kept), shown on the wire as RFC 3339 with whole seconds and `Z`, exactly as the webhook
//! examples of the product document show them.

use std::fmt;
use time::{format_description::FormatItem, macros::format_description, OffsetDateTime};

const WIRE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

fn micros_of(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Timestamp {
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self(i64::try_from(nanos / 1_000).unwrap_or(i64::MAX))
    }

    pub fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn unix_micros(self) -> i64 {
        self.0
    }

    /// `d` later (saturating at the end of representable time).
    pub fn saturating_add(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_add(micros_of(d)))
    }

    /// `d` earlier (saturating).
    pub fn saturating_sub(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_sub(micros_of(d)))
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// `2025-11-05T10:30:00Z`.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp(self.unix_seconds())
            .ok()
            .and_then(|t| t.format(WIRE).ok())
            // Only instants outside years 1..9999 fail, and none is ever constructed.
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
    }

    /// The calendar date, for comparing birth dates with today.
    pub fn date(self) -> time::Date {
        OffsetDateTime::from_unix_timestamp(self.unix_seconds())
            .map(|t| t.date())
            .unwrap_or(time::Date::MIN)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_product_document() {
        // 2025-11-05T10:30:00Z, plus a fraction that the wire form drops.
        let t = Timestamp::from_unix_micros(1_762_338_600_123_456);
        assert_eq!(t.to_rfc3339(), "2025-11-05T10:30:00Z");
        assert_eq!(t.unix_seconds(), 1_762_338_600);
    }

    #[test]
    fn now_is_after_2025() {
        assert!(Timestamp::now().unix_seconds() > 1_735_689_600);
    }
}
