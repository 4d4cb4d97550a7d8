//! The shared test vectors (tests/vectors/vectors.json), generated with Python's hmac and
//! also checked by verify.py and verify.mjs: our signing and verification agree with them.

use serde::Deserialize;
use verihook_receiver::{signature, Verifier, VerifyError};

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    secret: String,
    timestamp: i64,
    body: String,
    signature: String,
    valid: bool,
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/vectors.json");
    let text = std::fs::read_to_string(path).expect("vectors.json");
    serde_json::from_str::<Vectors>(&text)
        .expect("vectors parse")
        .cases
}

#[test]
fn signing_reproduces_every_valid_vector() {
    for c in cases().iter().filter(|c| c.valid) {
        let ours = signature::sign(c.secret.as_bytes(), c.timestamp, c.body.as_bytes());
        assert_eq!(ours, c.signature, "{}", c.name);
    }
}

#[test]
fn verification_agrees_with_every_vector() {
    for c in cases() {
        let ok = signature::verify(
            c.secret.as_bytes(),
            c.timestamp,
            c.body.as_bytes(),
            &c.signature,
        );
        assert_eq!(ok, c.valid, "{}", c.name);
        let checked = Verifier::new(&c.secret).check_at(
            c.timestamp,
            Some(&c.timestamp.to_string()),
            Some(&c.signature),
            c.body.as_bytes(),
        );
        let expected = if c.valid {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        };
        assert_eq!(checked, expected, "{}", c.name);
    }
}

#[test]
fn the_vectors_cover_the_awkward_cases() {
    let cases = cases();
    assert!(cases.iter().any(|c| c.body.is_empty()));
    assert!(cases.iter().any(|c| c.body.len() >= 64 * 1024));
    assert!(cases.iter().any(|c| !c.body.is_ascii()));
    assert!(cases.iter().any(|c| !c.secret.is_ascii()));
    assert!(cases
        .iter()
        .any(|c| c.body.contains("\\u001f") && c.body.contains('/')));
    assert!(cases.iter().any(|c| !c.valid));
}
