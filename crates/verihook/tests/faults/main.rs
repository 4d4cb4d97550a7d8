//! Fault scenarios (issue 17): the release binary under a fault, a steady load through
//! the real API, a counting receiver, and a check afterwards that every change the API
//! acknowledged (2xx) was delivered at least once. Each scenario runs in a short form
//! here (CI) and in a long form by hand (`VERIHOOK_FAULTS_LONG=1`); the figures of the
//! long runs are in docs/reliability.md.

mod failover;
mod full_disk;
mod harness;
mod misbehaving;
mod netns;
mod partition;
#[path = "../process/support.rs"]
#[allow(dead_code)]
mod support;
