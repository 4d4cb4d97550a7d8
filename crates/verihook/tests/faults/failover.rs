//! PostgreSQL failover: a primary whose commits wait for a synchronous standby, two
//! nodes given both servers in one URL (`target_session_attrs=read-write`), the primary
//! killed under load and the standby promoted. Every change the API acknowledged was
//! committed on the standby too, so none is lost; the nodes find the new primary by
//! themselves and take changes again.

use crate::harness::{self, await_deliveries, check, node_vars, spawn_load, ADMIN};
use crate::support::{org_sending_to, start, wait_ready};
use sqlx::Connection;
use std::time::{Duration, Instant};
use verihook_testkit::{PostgresSetup, PrivatePostgres, Receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_fails_over_to_its_synchronous_standby_and_loses_nothing() {
    let (rate, before, after) = if harness::long() {
        (200, Duration::from_secs(20), Duration::from_secs(40))
    } else {
        (100, Duration::from_secs(3), Duration::from_secs(6))
    };
    let setup = PostgresSetup {
        synchronous_primary: true,
        ..PostgresSetup::default()
    };
    let Some(primary) = PrivatePostgres::start_with("failover", &setup) else {
        assert!(
            !harness::required(),
            "VERIHOOK_REQUIRE_FAULTS=1 but no PostgreSQL"
        );
        return;
    };
    let standby = PrivatePostgres::standby_of(&primary);
    await_synchronous_standby(&primary.url()).await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let receiver = Receiver::http().await;
    let vars = node_vars(url);
    let (a, b) = (start(&vars), start(&vars));
    let client = reqwest::Client::new();
    wait_ready(&client, &a.base).await;
    wait_ready(&client, &b.base).await;
    let org = org_sending_to(&client, &a.base, ADMIN, &receiver.url).await;

    let loads = [
        spawn_load(&a.base, &org.key, rate / 2, before + after),
        spawn_load(&b.base, &org.key, rate / 2, before + after),
    ];
    tokio::time::sleep(before).await;
    primary.stop();
    let killed = Instant::now();
    // A failover manager's reaction time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    standby.promote();
    let promoted = killed.elapsed();
    let mut sent = harness::Sent::default();
    for load in loads {
        sent = sent.merge(load.await.expect("the load ran"));
    }
    await_deliveries(&sent, &receiver, Duration::from_secs(60)).await;
    let report = check(&sent, &receiver.received());
    let refused_late = sent
        .refused
        .iter()
        .filter(|r| r.at > killed + promoted + Duration::from_secs(15))
        .count();
    eprintln!(
        "failover ({rate}/s over two nodes): {report}; refused {} (all 503: {}); \
         standby promoted {promoted:?} after the kill, changes taken again {:?} after it",
        sent.refused.len(),
        sent.refused.iter().all(|r| r.status == 503),
        sent.recovered_after(killed),
    );
    assert!(report.lost.is_empty(), "lost: {:?}", report.lost);
    assert!(
        sent.recovered_after(killed).is_some(),
        "never took a change again"
    );
    assert_eq!(refused_late, 0, "still refusing 15 s after the promotion");
    for refusal in &sent.refused {
        assert_eq!(refusal.status, 503, "{refusal:?}");
    }
}

/// Waits until the primary reports a standby streaming in `sync` state.
async fn await_synchronous_standby(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = sqlx::PgConnection::connect(url).await.expect("primary");
    loop {
        let synced: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_replication");
        if synced > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never became synchronous"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
