//! The duration, retention and retry-schedule parsers: whatever they accept, they write
//! back in a form that parses to the same value; what an endpoint's schedule accepts
//! stays within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verihook_core::delivery::{format_duration, parse_duration, RetryPolicy};
use verihook_server::config::parse_retention;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_duration(s) {
        assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
    let _ = parse_retention(s);
    if let Ok(policy) = RetryPolicy::parse(s) {
        assert_eq!(RetryPolicy::parse(&policy.to_string()), Ok(policy));
    }
    if let Ok(policy) = RetryPolicy::parse_for_endpoint(s) {
        assert!(policy.waits().len() <= RetryPolicy::MAX_ENDPOINT_WAITS);
        assert!(policy
            .waits()
            .iter()
            .all(|w| *w <= RetryPolicy::MAX_ENDPOINT_WAIT));
    }
});
