//! The receiver's header parsing and verifier, in both schemes: arbitrary headers and
//! bodies never panic and never verify; a request signed with the secret verifies, and
//! the same request with one byte of the body changed does not.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use verihook_receiver::{sequence, signature, standard_webhooks, Scheme, Verifier, VerifyError};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Arbitrary)]
struct Request {
    standard: bool,
    now: i64,
    id: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
    next: Option<String>,
    sequence: String,
    body: Vec<u8>,
    flip: usize,
}

fuzz_target!(|r: Request| {
    if let Some(n) = sequence::parse(&r.sequence) {
        assert_eq!(sequence::parse(&n.to_string()), Some(n));
    }
    let scheme = if r.standard {
        Scheme::StandardWebhooks
    } else {
        Scheme::Verihook
    };
    let verifier = Verifier::new(SECRET).with_scheme(scheme);
    let forged = verifier.check_request_at(r.now, |name| header(&r, name), &r.body);
    assert!(forged.is_err(), "arbitrary headers verified");
    // Signed for real, at the receiver's clock.
    let now = r.now.rem_euclid(4_000_000_000);
    let id = r.id.clone().unwrap_or_default();
    let signed = match scheme {
        Scheme::StandardWebhooks => {
            let key = standard_webhooks::key(SECRET).expect("a base64 secret");
            standard_webhooks::sign(&key, &id, now, &r.body)
        }
        _ => signature::sign(SECRET.as_bytes(), now, &r.body),
    };
    let stamp = now.to_string();
    let headers = |name: &str| match name {
        "webhook-id" => Some(id.as_str()),
        "x-webhook-timestamp" | "webhook-timestamp" => Some(stamp.as_str()),
        "x-webhook-signature" | "webhook-signature" => Some(signed.as_str()),
        _ => None,
    };
    assert_eq!(verifier.check_request_at(now, headers, &r.body), Ok(()));
    if !r.body.is_empty() {
        let mut body = r.body.clone();
        let i = r.flip % body.len();
        body[i] ^= 1;
        assert_eq!(
            verifier.check_request_at(now, headers, &body),
            Err(VerifyError::BadSignature)
        );
    }
});

fn header<'r>(r: &'r Request, name: &str) -> Option<&'r str> {
    match name {
        "webhook-id" => r.id.as_deref(),
        "x-webhook-timestamp" | "webhook-timestamp" => r.timestamp.as_deref(),
        "x-webhook-signature" | "webhook-signature" => r.signature.as_deref(),
        "x-webhook-signature-next" => r.next.as_deref(),
        _ => None,
    }
}
