//! The Standard Webhooks scheme (standardwebhooks.com), which an endpoint may choose
//! instead of verihook's own: headers `webhook-id`, `webhook-timestamp` and
//! `webhook-signature`, the last a space-separated list of `v1,<base64 of
//! HMAC-SHA256(key, id + "." + timestamp + "." + body)>`, where the key is the base64
//! decoding of the secret after its `whsec_` prefix. The official `standardwebhooks` and
//! `svix` libraries verify these requests with the secret as given.
//!
//! ```
//! use verihook_receiver::standard_webhooks::{key, sign, verify};
//! let key = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("base64");
//! let sig = sign(&key, "evt_1", 1_699_104_000, br#"{"a":1}"#);
//! assert!(sig.starts_with("v1,"));
//! assert!(verify(&key, "evt_1", 1_699_104_000, br#"{"a":1}"#, &sig));
//! assert!(!verify(&key, "evt_1", 1_699_104_000, br#"{"a":2}"#, &sig));
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header names of the scheme.
pub mod headers {
    pub const ID: &str = "webhook-id";
    pub const TIMESTAMP: &str = "webhook-timestamp";
    pub const SIGNATURE: &str = "webhook-signature";
}

const SECRET_PREFIX: &str = "whsec_";

/// The HMAC key of a secret: the base64 decoding of what follows `whsec_` (the prefix is
/// optional, as in the official libraries). `None` when that is not base64.
pub fn key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(encoded).ok()
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One `v1,<base64>` signature of `body` with message id `id` sent at `timestamp`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// Whether any `v1` signature of the space-separated `header` signs `body`. Each MAC is
/// compared in constant time; other versions are skipped, as the specification asks.
pub fn verify(key: &[u8], id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let expected = mac(key, id, timestamp, body);
    header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|tag| expected.clone().verify_slice(&tag).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification's reference libraries
    // (`standardwebhooks`, Python and JavaScript test suites).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_reference_libraries_vector() {
        let key = key(SECRET).expect("base64");
        assert_eq!(sign(&key, ID, TS, BODY), EXPECTED);
        assert!(verify(&key, ID, TS, BODY, EXPECTED));
    }

    #[test]
    fn any_listed_v1_signature_counts_and_others_are_skipped() {
        let key = key(SECRET).expect("base64");
        let listed = format!("v2,abc v1,bm90IGl0 {EXPECTED}");
        assert!(verify(&key, ID, TS, BODY, &listed));
        assert!(!verify(&key, ID, TS, BODY, "v1,bm90IGl0"));
        assert!(!verify(&key, ID, TS + 1, BODY, EXPECTED));
        assert!(!verify(&key, "msg_other", TS, BODY, EXPECTED));
        assert!(!verify(&key, ID, TS, br#"{"test": 2432232315}"#, EXPECTED));
    }

    #[test]
    fn the_prefix_is_optional_and_bad_base64_has_no_key() {
        assert_eq!(key(SECRET), key(&SECRET[6..]));
        assert_eq!(key("whsec_not base64!"), None);
    }
}
