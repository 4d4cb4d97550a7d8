//! Webhook signatures: `hex(HMAC-SHA256(secret, timestamp + "." + body))`, lowercase.
//!
//! The message is built from the exact body bytes; nothing is parsed or re-serialized.
//! verihook's sender signs with this very module, so sender and receiver cannot drift.
//!
//! ```
//! use verihook_receiver::signature::{sign, verify};
//! let sig = sign(b"whsec_x", 1_699_104_000, br#"{"a":1}"#);
//! assert!(verify(b"whsec_x", 1_699_104_000, br#"{"a":1}"#, &sig));
//! assert!(!verify(b"whsec_x", 1_699_104_000, br#"{"a":2}"#, &sig));
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Webhook-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// Whether `signature` (hex, either case) signs `body` at `timestamp`. The comparison of
/// MACs is constant-time; only the length and hex form of the input are checked before it,
/// and they reveal nothing about the expected value.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    match hex::decode(signature.trim()) {
        Ok(bytes) => mac(secret, timestamp, body).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac_vector() {
        // Computed with Python: hmac.new(b"whsec_test", b"1699104000." + body, sha256).
        let body = "{\"type\":\"customer.created\",\"x\":\"é/\"}";
        let expected = "3565c7c51788ae5482cfbd0ba6f8a99b03a38547528d00fd1525eae7adf951ef";
        assert_eq!(
            sign(b"whsec_test", 1_699_104_000, body.as_bytes()),
            expected
        );
        assert!(verify(
            b"whsec_test",
            1_699_104_000,
            body.as_bytes(),
            expected
        ));
    }

    #[test]
    fn rfc_4231_case_2_through_the_same_mac() {
        let mut m = match HmacSha256::new_from_slice(b"Jefe") {
            Ok(m) => m,
            Err(_) => unreachable!(),
        };
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let sig = sign(b"whsec_x", 1_699_104_000, br#"{"a":1}"#);
        assert!(verify(b"whsec_x", 1_699_104_000, br#"{"a":1}"#, &sig));
        assert!(verify(
            b"whsec_x",
            1_699_104_000,
            br#"{"a":1}"#,
            &sig.to_uppercase()
        ));
        assert!(!verify(b"whsec_y", 1_699_104_000, br#"{"a":1}"#, &sig));
        assert!(!verify(b"whsec_x", 1_699_104_001, br#"{"a":1}"#, &sig));
        assert!(!verify(b"whsec_x", 1_699_104_000, br#"{"a":2}"#, &sig));
        assert!(!verify(b"whsec_x", 1_699_104_000, br#"{"a":1}"#, "zz"));
        assert!(!verify(
            b"whsec_x",
            1_699_104_000,
            br#"{"a":1}"#,
            &sig[..62]
        ));
    }
}
