//! The delivery engine against real HTTPS receivers on loopback (a CA generated per test).

mod endpoints;
mod failures;
mod guard;
mod health;
mod incidents;
mod isolation;
mod overload;
mod recovery;
mod rotation;
mod signing;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 computed here, independently of verihook's signing code.
pub fn expected_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}
