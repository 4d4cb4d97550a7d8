//! A network partition between a node and PostgreSQL: node A runs in a network namespace
//! whose database link is cut (packets dropped, as a real partition does) while node B
//! keeps its own. A answers 503 within its write deadline instead of hanging; what A had
//! claimed, B delivers once A's leases run out; B's own changes flow throughout; when
//! the link returns, A takes changes again by itself.

use crate::harness::{self, await_deliveries, check, node_vars, steady_load, ADMIN};
use crate::netns::Namespace;
use crate::support::{org_sending_to, start, start_within, wait_ready};
use std::process::Stdio;
use std::time::{Duration, Instant};
use verihook_testkit::{PostgresSetup, PrivatePostgres, Receiver, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_postgresql_answers_503_and_the_other_takes_over() {
    // The cut outlasts a lease (the delivery timeout, 2 s, and 10 s), so that B takes
    // over what A held.
    let (rate, before, cut, after) = if harness::long() {
        (
            200,
            Duration::from_secs(20),
            Duration::from_secs(60),
            Duration::from_secs(30),
        )
    } else {
        (
            60,
            Duration::from_secs(3),
            Duration::from_secs(16),
            Duration::from_secs(5),
        )
    };
    let ns = match Namespace::create() {
        Ok(ns) => ns,
        Err(e) => {
            assert!(!harness::required(), "VERIHOOK_REQUIRE_FAULTS=1 but {e}");
            eprintln!("partition scenario skipped: no network namespace here ({e})");
            return;
        }
    };
    let setup = PostgresSetup {
        also_listen: Some(ns.host_db),
        ..PostgresSetup::default()
    };
    let Some(pg) = PrivatePostgres::start_with("partition", &setup) else {
        assert!(
            !harness::required(),
            "VERIHOOK_REQUIRE_FAULTS=1 but no PostgreSQL"
        );
        return;
    };
    // A receiver both nodes reach, slow enough that A has deliveries in flight at the cut.
    let receiver = Receiver::http_at(ns.host_api).await;
    receiver.always(Reply::Delay(Duration::from_millis(200), 200));
    let node = |database: String, listen: String| {
        let mut vars = node_vars(database);
        vars.extend([
            ("VERIHOOK_LISTEN", listen),
            ("VERIHOOK_DELIVERY_TIMEOUT", "2s".into()),
        ]);
        vars
    };
    let a_url = format!("postgres://postgres@{}:{}/postgres", ns.host_db, pg.port);
    let a = start_within(
        &ns.wrapper(),
        &node(a_url, format!("{}:0", ns.inside_api)),
        Stdio::null(),
    );
    let b = start(&node(pg.url(), "127.0.0.1:0".into()));
    let client = reqwest::Client::new();
    wait_ready(&client, &a.base).await;
    wait_ready(&client, &b.base).await;
    let org = org_sending_to(&client, &b.base, ADMIN, &receiver.url).await;
    let both = |rate: u32, duration: Duration| {
        let (a, b, key) = (a.base.clone(), b.base.clone(), org.key.clone());
        async move {
            let (on_a, on_b) = tokio::join!(
                steady_load(&a, &key, rate / 2, duration),
                steady_load(&b, &key, rate / 2, duration)
            );
            (on_a, on_b)
        }
    };

    let (a1, b1) = both(rate, before).await;
    ns.cut_database().expect("link cut");
    let cut_at = Instant::now();
    let (probe, (a2, b2)) = tokio::join!(answer_time(&client, &a.base, &org.key), both(rate, cut));
    assert!(
        a2.acknowledged.is_empty(),
        "A acknowledged a change it could not store"
    );
    // Before the link returns, everything acknowledged so far has arrived: B delivered
    // what A held when its leases ran out, and its own changes meanwhile.
    let so_far = a1.merge(b1).merge(b2);
    await_deliveries(&so_far, &receiver, Duration::from_secs(20)).await;
    let during = check(&so_far, &receiver.received());
    ns.restore_database().expect("link restored");
    let restored = Instant::now();
    let (a3, b3) = both(rate, after).await;
    let a_back = a3.recovered_after(restored);
    let sent = so_far.merge(a2).merge(a3).merge(b3);
    await_deliveries(&sent, &receiver, Duration::from_secs(60)).await;
    let report = check(&sent, &receiver.received());
    eprintln!(
        "partition ({rate}/s over two nodes, cut {cut:?}): {report}; while cut: A answered \
         {probe:?}, B's and the earlier changes {} of {} delivered before the link \
         returned; A took changes again {a_back:?} after it (the cut began {:?} earlier); \
         the longest gap began {:?} s after the cut",
        during.delivered,
        during.acknowledged,
        restored.saturating_duration_since(cut_at),
        report.gap_after(cut_at),
    );
    let (status, took) = probe;
    assert_eq!(status, 503, "A's answer while cut off");
    assert!(took < Duration::from_secs(10), "A took {took:?} to answer");
    assert!(
        during.lost.is_empty(),
        "not taken over before the link returned: {during}"
    );
    assert!(a_back.is_some(), "A never took a change again");
    assert!(report.lost.is_empty(), "lost: {:?}", report.lost);
    drop((a, b, pg));
}

/// One creation on `base` a second into the cut: its status and how long it took.
async fn answer_time(client: &reqwest::Client, base: &str, key: &str) -> (u16, Duration) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let began = Instant::now();
    let body = serde_json::json!({
        "type": "INDIVIDUAL", "email": "probe@example.com",
        "firstName": "Probe", "lastName": "Partition"
    });
    let answer = client
        .post(format!("{base}/v1/customers"))
        .bearer_auth(key)
        .json(&body)
        .timeout(Duration::from_secs(60))
        .send()
        .await;
    (answer.map_or(0, |r| r.status().as_u16()), began.elapsed())
}
