//! The storage suite on a real PostgreSQL server, a fresh database per test.

mod suite;

use sqlx::Connection;
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
