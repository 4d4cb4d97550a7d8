//! Log output for tests, off unless asked for: `TEST_LOG=1 cargo test …` prints what the
//! code under test logged (the level from `RUST_LOG`, default `debug`), captured per test
//! by the test harness like any other output, so a failing test shows its own logs.

use std::sync::Once;

/// Installs the test subscriber once per test binary; every test may call it.
pub fn init() {
    static ONCE: Once = Once::new();
    if !std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
        return;
    }
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
        // Another subscriber may already be installed (a test's own): leave it be.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}
