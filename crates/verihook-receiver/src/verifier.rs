//! Verifying a request: signature first (constant time), then the timestamp's age, then
//! the JSON. Each failure has its own error.

use crate::event::Event;
use crate::standard_webhooks::{self, headers as sw};
use crate::{headers, signature, Scheme};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far a timestamp may be from the receiver's clock, in either direction.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("X-Webhook-Timestamp is not unix seconds")]
    MalformedTimestamp,
    #[error("X-Webhook-Signature is not 64 hex digits")]
    MalformedSignature,
    #[error("signature does not match: wrong secret, or the body or timestamp was changed")]
    BadSignature,
    #[error("timestamp is {age_secs} s old, beyond the tolerance (replayed or delayed)")]
    TooOld { age_secs: u64 },
    #[error("timestamp is {ahead_secs} s in the future, beyond the tolerance (clock skew?)")]
    TooNew { ahead_secs: u64 },
    #[error("body is not a webhook event: {0}")]
    BadJson(String),
}

/// One secret, as each scheme keys with it.
#[derive(Clone)]
struct Key {
    /// verihook's scheme: the whole string.
    raw: Vec<u8>,
    /// Standard Webhooks: the secret's base64 part decoded (`None`: not base64, so no
    /// Standard Webhooks signature can match).
    standard: Option<Vec<u8>>,
}

impl Key {
    fn of(secret: &str) -> Self {
        Self {
            raw: secret.as_bytes().to_vec(),
            standard: standard_webhooks::key(secret),
        }
    }
}

/// Verifies requests signed with one secret (or, around a rotation, any of several), in
/// one scheme.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<Key>,
    scheme: Scheme,
    tolerance: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &"<redacted>")
            .field("scheme", &self.scheme)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// The system clock in unix seconds.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Verifier {
    /// A verifier of verihook's scheme for `secret` (as given, e.g. `whsec_…`).
    pub fn new(secret: impl AsRef<str>) -> Self {
        Self {
            keys: vec![Key::of(secret.as_ref())],
            scheme: Scheme::Verihook,
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Also accepts requests signed with `secret`: hold the old and the new secret while
    /// a rotation is under way, and either signature header verifies.
    pub fn with_secret(mut self, secret: impl AsRef<str>) -> Self {
        self.keys.push(Key::of(secret.as_ref()));
        self
    }

    /// The same secret, verified in `scheme`.
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Accept timestamps up to `tolerance` away from now (default 5 minutes).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies the header values and raw body of a request and returns its event.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Event, VerifyError> {
        self.verify_at(now_unix(), timestamp, signature, body)
    }

    /// [`Verifier::verify`] against a given clock (unix seconds), for tests and replays.
    pub fn verify_at(
        &self,
        now: i64,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Event, VerifyError> {
        self.check_at(now, timestamp, signature, body)?;
        Event::from_slice(body).map_err(|e| VerifyError::BadJson(e.to_string()))
    }

    /// Checks a request's signature and timestamp in the verifier's scheme, reading each
    /// header by its lowercase name with `header`, without parsing the body.
    pub fn check_request_at<'h>(
        &self,
        now: i64,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        match self.scheme {
            Scheme::Verihook => {
                let timestamp = header(headers::TIMESTAMP);
                let first = self.check_at(now, timestamp, header(headers::SIGNATURE), body);
                match (first, header(headers::SIGNATURE_NEXT)) {
                    // During a rotation the new secret signs the second header.
                    (Err(VerifyError::BadSignature), Some(next)) => {
                        self.check_at(now, timestamp, Some(next), body)
                    }
                    (result, _) => result,
                }
            }
            Scheme::StandardWebhooks => self.check_standard_at(
                now,
                header(sw::ID),
                header(sw::TIMESTAMP),
                header(sw::SIGNATURE),
                body,
            ),
        }
    }

    /// [`Verifier::check_request_at`], then the typed event.
    pub fn verify_request_at<'h>(
        &self,
        now: i64,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<Event, VerifyError> {
        self.check_request_at(now, header, body)?;
        Event::from_slice(body).map_err(|e| VerifyError::BadJson(e.to_string()))
    }

    /// Checks a Standard Webhooks request: any `v1` signature of `webhook-signature` over
    /// `id.timestamp.body`, then the timestamp's age.
    pub fn check_standard_at(
        &self,
        now: i64,
        id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let id = id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
        let timestamp = timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
        let signature = signature.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
        let ts = parse_timestamp(timestamp)?;
        let verified = self.keys.iter().any(|k| {
            k.standard
                .as_deref()
                .is_some_and(|key| standard_webhooks::verify(key, id, ts, body, signature))
        });
        if !verified {
            return Err(VerifyError::BadSignature);
        }
        self.check_age(now, ts)
    }

    /// Checks signature and timestamp only, without parsing the body.
    pub fn check_at(
        &self,
        now: i64,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let timestamp = timestamp.ok_or(VerifyError::MissingHeader("X-Webhook-Timestamp"))?;
        let signature = signature.ok_or(VerifyError::MissingHeader("X-Webhook-Signature"))?;
        let ts = parse_timestamp(timestamp)?;
        let signature = signature.trim();
        if signature.len() != 64 || !signature.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(VerifyError::MalformedSignature);
        }
        if !self
            .keys
            .iter()
            .any(|k| signature::verify(&k.raw, ts, body, signature))
        {
            return Err(VerifyError::BadSignature);
        }
        self.check_age(now, ts)
    }

    fn check_age(&self, now: i64, ts: i64) -> Result<(), VerifyError> {
        let tolerance = self.tolerance.as_secs();
        let skew = now.saturating_sub(ts);
        if skew > 0 && skew.unsigned_abs() > tolerance {
            return Err(VerifyError::TooOld {
                age_secs: skew.unsigned_abs(),
            });
        }
        if skew < 0 && skew.unsigned_abs() > tolerance {
            return Err(VerifyError::TooNew {
                ahead_secs: skew.unsigned_abs(),
            });
        }
        Ok(())
    }
}

/// Unix seconds written as the sender writes them: digits only, no sign, no leading zero
/// (so that one timestamp has one spelling, and `+T` or `0T` cannot pass for `T`).
fn parse_timestamp(timestamp: &str) -> Result<i64, VerifyError> {
    let t = timestamp.trim();
    let canonical =
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && (t == "0" || !t.starts_with('0'));
    if !canonical {
        return Err(VerifyError::MalformedTimestamp);
    }
    t.parse().map_err(|_| VerifyError::MalformedTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const BODY: &[u8] = br#"{"type":"customer.created","payload":{"customerId":"cus_1","customerType":"INDIVIDUAL","status":"CREATED","email":"a@example.com","firstName":"A","lastName":"B","createdAt":"2025-11-05T10:00:00Z"},"metadata":{"eventId":"evt_1","occurredAt":"2025-11-05T10:00:00Z","organizationId":"org_1"}}"#;
    const T: i64 = 1_762_336_800;

    fn sig(secret: &str, ts: i64, body: &[u8]) -> String {
        signature::sign(secret.as_bytes(), ts, body)
    }

    fn check(
        now: i64,
        ts: Option<&str>,
        sig: Option<&str>,
        body: &[u8],
    ) -> Result<Event, VerifyError> {
        Verifier::new(SECRET).verify_at(now, ts, sig, body)
    }

    #[test]
    fn a_genuine_request_verifies() {
        let s = sig(SECRET, T, BODY);
        let event = check(T, Some(&T.to_string()), Some(&s), BODY).expect("valid");
        assert_eq!(event.event_id(), Some("evt_1"));
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let good = sig(SECRET, T, BODY);
        let ts = T.to_string();
        let tampered = String::from_utf8_lossy(BODY).replace("CREATED", "ACTIVE");
        let cases: Vec<(Result<Event, VerifyError>, VerifyError)> = vec![
            (
                check(T, None, Some(&good), BODY),
                VerifyError::MissingHeader("X-Webhook-Timestamp"),
            ),
            (
                check(T, Some(&ts), None, BODY),
                VerifyError::MissingHeader("X-Webhook-Signature"),
            ),
            (
                check(T, Some("yesterday"), Some(&good), BODY),
                VerifyError::MalformedTimestamp,
            ),
            (
                check(T, Some(&ts), Some("abc"), BODY),
                VerifyError::MalformedSignature,
            ),
            (
                check(T, Some(&ts), Some(&good), tampered.as_bytes()),
                VerifyError::BadSignature,
            ),
            (
                check(T, Some(&ts), Some(&sig("whsec_other", T, BODY)), BODY),
                VerifyError::BadSignature,
            ),
            (
                check(T, Some(&(T + 1).to_string()), Some(&good), BODY),
                VerifyError::BadSignature,
            ),
            (
                check(T + 301, Some(&ts), Some(&good), BODY),
                VerifyError::TooOld { age_secs: 301 },
            ),
            (
                check(T - 301, Some(&ts), Some(&good), BODY),
                VerifyError::TooNew { ahead_secs: 301 },
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got.expect_err("must fail"), want);
        }
        let not_json = b"not json";
        let s = sig(SECRET, T, not_json);
        assert!(matches!(
            check(T, Some(&ts), Some(&s), not_json),
            Err(VerifyError::BadJson(_))
        ));
    }

    #[test]
    fn the_tolerance_is_inclusive_and_adjustable() {
        let good = sig(SECRET, T, BODY);
        let ts = T.to_string();
        assert!(check(T + 300, Some(&ts), Some(&good), BODY).is_ok());
        assert!(check(T - 300, Some(&ts), Some(&good), BODY).is_ok());
        let strict = Verifier::new(SECRET).with_tolerance(Duration::from_secs(10));
        assert!(strict
            .verify_at(T + 11, Some(&ts), Some(&good), BODY)
            .is_err());
    }

    #[test]
    fn a_standard_webhooks_request_verifies_by_its_own_headers() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let key = standard_webhooks::key(secret).expect("base64");
        let sig = standard_webhooks::sign(&key, "evt_1", T, BODY);
        let ts = T.to_string();
        let verifier = Verifier::new(secret).with_scheme(Scheme::StandardWebhooks);
        let headers = |name: &str| match name {
            "webhook-id" => Some("evt_1"),
            "webhook-timestamp" => Some(ts.as_str()),
            "webhook-signature" => Some(sig.as_str()),
            _ => None,
        };
        assert!(verifier.verify_request_at(T, headers, BODY).is_ok());
        assert_eq!(
            verifier.check_request_at(T, headers, b"{}"),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verifier.check_request_at(T + 301, headers, BODY),
            Err(VerifyError::TooOld { age_secs: 301 })
        );
        assert_eq!(
            verifier.check_request_at(T, |_| None, BODY),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
    }

    #[test]
    fn during_a_rotation_either_secret_verifies_either_header() {
        let (old, new) = ("whsec_old", "whsec_new");
        let ts = T.to_string();
        let (by_old, by_new) = (sig(old, T, BODY), sig(new, T, BODY));
        let headers = |name: &str| match name {
            "x-webhook-timestamp" => Some(ts.as_str()),
            "x-webhook-signature" => Some(by_old.as_str()),
            "x-webhook-signature-next" => Some(by_new.as_str()),
            _ => None,
        };
        assert!(Verifier::new(old)
            .check_request_at(T, headers, BODY)
            .is_ok());
        assert!(Verifier::new(new)
            .check_request_at(T, headers, BODY)
            .is_ok());
        let both = Verifier::new("whsec_other").with_secret(new);
        assert!(both.check_request_at(T, headers, BODY).is_ok());
        assert_eq!(
            Verifier::new("whsec_other").check_request_at(T, headers, BODY),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn only_the_canonical_spelling_of_a_timestamp_is_accepted() {
        let good = sig(SECRET, T, BODY);
        for odd in [
            format!("+{T}"),
            format!("0{T}"),
            format!("{T}.0"),
            String::new(),
        ] {
            assert_eq!(
                check(T, Some(&odd), Some(&good), BODY).expect_err("refused"),
                VerifyError::MalformedTimestamp,
                "{odd}"
            );
        }
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        assert!(!format!("{:?}", Verifier::new(SECRET)).contains(SECRET));
    }
}
