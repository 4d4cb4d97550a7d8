//! A dead endpoint holds at most its own share of the sending slots.

use crate::helpers::*;
use std::time::{Duration, Instant};
use verihook_server::delivery::Limits;
use verihook_testkit::{Receiver, Reply, TestPki};

#[tokio::test]
async fn a_dead_endpoint_does_not_hold_up_a_healthy_one() {
    let pki = TestPki::new();
    let (dead, healthy) = (Receiver::https(&pki).await, Receiver::https(&pki).await);
    dead.always(Reply::Delay(Duration::from_secs(30), 200));
    // Few slots, so that a dead endpoint taking them all would show at once.
    let limits = Limits {
        in_flight: 8,
        per_endpoint: 4,
        ..Limits::default()
    };
    // Long enough that the dead endpoint's first attempts are still hanging when the
    // healthy deliveries finish even on a loaded machine; the test ends long before it.
    let timeout = Duration::from_secs(20);
    let app = TestApp::delivering_with(&pki, "1s", |c| c.delivery_timeout = timeout, limits).await;
    let (stuck, _) = app.org_sending_to(&dead.url).await;
    let (fine, _) = app.org_sending_to(&healthy.url).await;
    for _ in 0..20 {
        app.customer(&stuck).await;
    }
    dead.wait_for(4, Duration::from_secs(5)).await;
    let started = Instant::now();
    for _ in 0..20 {
        app.customer(&fine).await;
    }
    // All of them arrive while the dead endpoint's attempts are still hanging.
    healthy.wait_for(20, timeout).await;
    let took = started.elapsed();
    assert!(took < timeout, "healthy deliveries took {took:?}");
    assert_eq!(
        dead.received().len(),
        4,
        "the dead endpoint never gets more than its share"
    );
}

#[tokio::test]
async fn a_saturated_endpoint_is_claimed_again_when_one_of_its_slots_frees() {
    let pki = TestPki::new();
    let slow = Receiver::https(&pki).await;
    slow.always(Reply::Delay(Duration::from_millis(50), 200));
    // Two slots for six deliveries: three rounds, the last two started once slots free,
    // with no poll to fall back on (an hour) and within the probes' first 5 s.
    let limits = Limits {
        in_flight: 8,
        per_endpoint: 2,
        poll: Duration::from_secs(3_600),
        ..Limits::default()
    };
    let app = TestApp::delivering_with(&pki, "1s", |_| {}, limits).await;
    let (org, _) = app.org_sending_to(&slow.url).await;
    for _ in 0..6 {
        app.customer(&org).await;
    }
    slow.wait_for(6, Duration::from_secs(4)).await;
}
