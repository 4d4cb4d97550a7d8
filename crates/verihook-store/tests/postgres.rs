//! The storage suite on a real PostgreSQL server, a fresh database per test.

mod suite;

use sqlx::Connection;
use suite::RecordOne;
use verihook_store::postgres;
use verihook_store::Storage;
use verihook_testkit::TestDatabase;

struct Postgres {
    // Declared first so the store (and its connections) go before the database is dropped.
    store: Storage,
    db: TestDatabase,
}

impl suite::Backend for Postgres {
    async fn available(test: &str) -> bool {
        verihook_testkit::postgres_available(test).await
    }

    async fn fresh() -> Self {
        let db = TestDatabase::postgres().await;
        let store = postgres::open(db.url()).await.expect("opened");
        Self { store, db }
    }

    fn store(&self) -> Storage {
        self.store.clone()
    }

    async fn fail_event_inserts(&self) {
        let mut conn = sqlx::PgConnection::connect(self.db.url())
            .await
            .expect("connected");
        sqlx::raw_sql(
            "CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER fail_events BEFORE INSERT ON events \
             FOR EACH ROW EXECUTE FUNCTION fail_insert();",
        )
        .execute(&mut conn)
        .await
        .expect("trigger created");
    }

    async fn refuse_customer(&self, id: &str) {
        let check = format!("ALTER TABLE customers ADD CONSTRAINT refused CHECK (id <> '{id}')");
        self.run_sql(&check).await;
    }

    async fn run_sql(&self, sql: &str) {
        let mut conn = sqlx::PgConnection::connect(self.db.url())
            .await
            .expect("connected");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect("ran");
    }

    async fn count(&self, sql: &str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(self.db.url())
            .await
            .expect("connected");
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("counted")
    }

    async fn stored_bytes(&self) -> Vec<u8> {
        let mut conn = sqlx::PgConnection::connect(self.db.url())
            .await
            .expect("connected");
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut conn)
                .await
                .expect("tables");
        let mut bytes = Vec::new();
        for table in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                    .fetch_all(&mut conn)
                    .await
                    .expect("rows");
            for row in rows {
                bytes.extend(row.into_bytes());
            }
        }
        bytes
    }

    async fn another_node(&self) -> Storage {
        postgres::open(self.db.url()).await.expect("second node")
    }

    async fn reopen(&mut self) {
        self.store = postgres::open(self.db.url()).await.expect("reopened");
    }

    async fn upgraded_from_first_schema(seed: &str) -> Self {
        let db = TestDatabase::postgres().await;
        suite::first_schema_with::<sqlx::Postgres>(db.url(), "postgres", seed).await;
        let store = postgres::open(db.url()).await.expect("opened and upgraded");
        Self { store, db }
    }

    const DIGEST_LITERAL: &'static str = "decode(repeat('07', 32), 'hex')";
}

store_suite!(Postgres);

/// Lease expiry is judged by the database's clock, not by each node's: here the database's
/// clock runs an hour ahead of this process's, and a claim's lease still ends 30 s after
/// the database's now (so a node whose clock lags cannot outlive a lease it holds, and one
/// whose clock runs ahead cannot take a lease early).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_run_on_the_database_clock() {
    if !verihook_testkit::postgres_available("leases_run_on_the_database_clock").await {
        return;
    }
    let db = TestDatabase::postgres().await;
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connected");
    // Every later connection to this database resolves clock_timestamp() to this one.
    sqlx::raw_sql(
        "CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE sql \
         AS $$ SELECT pg_catalog.clock_timestamp() + interval '1 hour' $$; \
         DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = public, pg_catalog', \
         current_database()); END $$;",
    )
    .execute(&mut conn)
    .await
    .expect("clock moved");
    let store = postgres::open(db.url()).await.expect("opened");
    let org = suite::with_webhook(&store).await;
    suite::customer(&store, &org).await;
    let request = verihook_store::ClaimRequest {
        lease: std::time::Duration::from_secs(30),
        limit: 10,
        per_endpoint: 10,
        in_flight: Vec::new(),
    };
    let claimed = store.outbox.claim(request.clone()).await.expect("claimed");
    assert_eq!(claimed.len(), 1, "due by either clock");
    let lease_end: i64 = sqlx::query_scalar("SELECT due_at FROM deliveries")
        .fetch_one(&mut conn)
        .await
        .expect("read");
    let ahead = lease_end - verihook_core::Timestamp::now().unix_micros();
    let expected = (3_600 + 30) * 1_000_000;
    assert!(
        (ahead - expected).abs() < 5_000_000,
        "the lease ends {ahead} µs from this process's now, not ~{expected}"
    );
    assert!(
        store.outbox.claim(request).await.expect("claim").is_empty(),
        "the lease holds"
    );
}

/// A redelivery that commits while an attempt's outcome is being recorded (after the
/// recording statement took its snapshot, before it reached the row) is neither lost nor
/// mistaken for a lost lease: the outcome is recorded and the event falls due again. The
/// redelivery is held open in a transaction until the recording waits on its row lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_committed_during_recording_sends_again() {
    if !verihook_testkit::postgres_available("a_redelivery_committed_during_recording_sends_again")
        .await
    {
        return;
    }
    let db = TestDatabase::postgres().await;
    let store = postgres::open(db.url()).await.expect("opened");
    let org = suite::with_webhook(&store).await;
    suite::customer(&store, &org).await;
    let running = store
        .outbox
        .claim(suite::claim(10))
        .await
        .expect("claimed")
        .remove(0);
    let outcome = suite::outcome(&running, verihook_store::NextStep::Delivered, Some(200));
    let redelivery = "UPDATE deliveries SET requeued = TRUE, budget_used = 0";
    let (recorded, _) = record_while_held(&db, &store, redelivery, outcome).await;
    assert!(
        recorded,
        "the outcome is recorded, not taken for a lost lease"
    );
    let again = suite::claim_when_due(&store, suite::claim(10)).await;
    assert_eq!(again[0].event.id, running.event.id, "sent again");
    assert_eq!((again[0].attempt, again[0].budget_used), (2, 0));
}

/// Two batches of outcomes that end one incident, recorded at once on two connections:
/// one recovered alert, not two. The first batch is played by a transaction that closes
/// the incident and is held open until the second waits on the endpoint's row; the second
/// must then read the endpoint as the first left it (no incident), and alert nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_ending_one_incident_alert_once() {
    if !verihook_testkit::postgres_available("two_batches_ending_one_incident_alert_once").await {
        return;
    }
    let db = TestDatabase::postgres().await;
    let store = postgres::open(db.url()).await.expect("opened");
    let org = suite::with_webhook(&store).await;
    suite::customer(&store, &org).await;
    suite::attempt_next(&store, verihook_store::NextStep::Failed, 503).await;
    suite::customer(&store, &org).await;
    let running = store
        .outbox
        .claim(suite::claim(10))
        .await
        .expect("claimed")
        .remove(0);
    let first = "UPDATE endpoints SET failing_since = NULL, failed_events = 0 \
         WHERE failing_since IS NOT NULL";
    let outcome = suite::outcome(&running, verihook_store::NextStep::Delivered, Some(200));
    let (recorded, mut first) = record_while_held(&db, &store, first, outcome).await;
    assert!(recorded);
    let recovered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM alerts WHERE kind = 'webhook.endpoint_recovered'")
            .fetch_one(&mut first)
            .await
            .expect("read");
    assert_eq!(recovered, 0, "the incident was already over");
}

/// An event whose transaction took its `seq` first but commits last is not skipped by a
/// stream that read on meanwhile: the later event waits until the earlier one is settled,
/// and both come in the order of their transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_never_skips_an_event_committed_late() {
    if !verihook_testkit::postgres_available("the_stream_never_skips_an_event_committed_late").await
    {
        return;
    }
    let db = TestDatabase::postgres().await;
    let store = postgres::open(db.url()).await.expect("opened");
    let org = suite::organization(&store).await;
    let c = suite::customer(&store, &org).await;
    let (start, already) = store.stream.stream_start(&org.id).await.expect("start");
    let late = verihook_core::EventId::generate();
    let mut session = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connected");
    sqlx::raw_sql(&format!(
        "BEGIN; INSERT INTO events (id, organization_id, customer_id, event_type, \
         occurred_at, body) VALUES ('{late}', '{}', '{}', 'customer.updated', 0, '{{}}')",
        org.id.as_str(),
        c.id.as_str()
    ))
    .execute(&mut session)
    .await
    .expect("late transaction begun");
    suite::customer(&store, &org).await;
    // Let the later event commit and be read if it could be: it must not.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let early = store
        .stream
        .stream_events(&org.id, start, 100)
        .await
        .expect("read");
    assert!(
        early.iter().all(|(_, e)| already.contains(&e.id)),
        "nothing new settled while the earlier transaction runs"
    );
    sqlx::raw_sql("COMMIT")
        .execute(&mut session)
        .await
        .expect("committed");
    let settled: Vec<_> = suite::settled(&store, &org, start, already.len() + 2)
        .await
        .into_iter()
        .map(|(_, e)| e.id)
        .filter(|id| !already.contains(id))
        .collect();
    assert_eq!(settled.len(), 2);
    assert_eq!(settled[0], late, "the earlier transaction's event first");
}

/// Records `outcome` while `held` runs in a transaction of its own, committed once the
/// recording waits on one of its row locks; answers whether the outcome moved its
/// delivery, and the held session (to read from).
async fn record_while_held(
    db: &TestDatabase,
    store: &Storage,
    held: &str,
    outcome: verihook_store::AttemptOutcome,
) -> (bool, sqlx::PgConnection) {
    let mut session = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connected");
    sqlx::raw_sql(&format!("BEGIN; {held}"))
        .execute(&mut session)
        .await
        .expect("held transaction begun");
    let recording = tokio::spawn({
        let store = store.clone();
        async move { store.outbox.record_one(outcome).await }
    });
    wait_for_a_lock_wait(db.url()).await;
    sqlx::raw_sql("COMMIT")
        .execute(&mut session)
        .await
        .expect("held transaction committed");
    let recorded = recording.await.expect("joined").expect("recorded");
    (recorded, session)
}

/// Polls (from a session of its own: one in a transaction sees a frozen activity view)
/// until a session of this database waits on a lock.
async fn wait_for_a_lock_wait(url: &str) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connected");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("read");
        if waiting > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the recording never waited on the row"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The partition (by `seq`) a stored event is in.
async fn partition_of(conn: &mut sqlx::PgConnection, event: &verihook_core::EventId) -> String {
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM events WHERE id = $1")
        .bind(event.as_str())
        .fetch_one(conn)
        .await
        .expect("stored")
}

/// New events go to a range of the day's; past the day's cut, to the next range. A range
/// whose events have all expired is dropped whole with its attempts, but not while one of
/// its events is still in the outbox; later ranges are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_days_are_dropped_whole_once_delivered() {
    use verihook_core::Timestamp;
    use verihook_store::{NextStep, Purged, Scope};
    if !verihook_testkit::postgres_available("expired_days_are_dropped_whole_once_delivered").await
    {
        return;
    }
    let db = TestDatabase::postgres().await;
    let store = postgres::open(db.url()).await.expect("opened");
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connected");
    let org = suite::with_webhook(&store).await;
    suite::customer(&store, &org).await;
    suite::customer(&store, &org).await;
    let first = store
        .outbox
        .claim(suite::claim(1))
        .await
        .expect("claimed")
        .remove(0);
    let done = suite::outcome(&first, NextStep::Delivered, Some(200));
    assert!(store.outbox.record_one(done).await.expect("recorded"));
    let (long_ago, soon) = (
        Timestamp::from_unix_micros(0),
        Timestamp::from_unix_micros(Timestamp::now().unix_micros() + 1_000_000),
    );
    let cut = store
        .retention
        .maintain(long_ago, soon)
        .await
        .expect("cut over");
    assert_eq!(cut, Purged::default(), "nothing expired");
    suite::customer(&store, &org).await;
    let all = verihook_store::EventFilter::default();
    let page = verihook_store::PageRequest {
        limit: 10,
        after: None,
    };
    let listed = store.events.list_events(Scope::All, &all, page);
    let events = listed.await.expect("listed").items;
    let (newest, oldest) = (&events[0].event.id, &events[2].event.id);
    let new_range = partition_of(&mut conn, newest).await;
    let old_range = partition_of(&mut conn, oldest).await;
    assert_ne!(
        new_range, old_range,
        "the next day's events go to the next range"
    );

    let kept = store
        .retention
        .maintain(soon, long_ago)
        .await
        .expect("maintained");
    assert_eq!(
        kept,
        Purged::default(),
        "one of its events is still in the outbox"
    );
    let second = store
        .outbox
        .claim(suite::claim(1))
        .await
        .expect("claimed")
        .remove(0);
    assert_eq!(partition_of(&mut conn, &second.event.id).await, old_range);
    let done = suite::outcome(&second, NextStep::Delivered, Some(200));
    assert!(store.outbox.record_one(done).await.expect("recorded"));
    let dropped = store
        .retention
        .maintain(soon, long_ago)
        .await
        .expect("maintained");
    assert_eq!(
        dropped,
        Purged {
            events: 2,
            attempts: 2
        }
    );
    for gone in [&first.event.id, &second.event.id] {
        let read = store.events.event(Scope::All, gone).await.expect("read");
        assert!(read.is_none(), "{gone} went with its range");
    }
    let kept = store.events.event(Scope::All, newest).await.expect("read");
    assert!(kept.is_some(), "the next range is untouched");
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&old_range)
        .fetch_one(&mut conn)
        .await
        .expect("asked");
    assert!(!exists, "{old_range} was dropped");
}
