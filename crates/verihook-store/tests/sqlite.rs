//! The storage suite on real SQLite files.

mod suite;

use sqlx::Connection;
use verihook_store::sqlite;
use verihook_store::Storage;
use verihook_testkit::TestDatabase;

struct Sqlite {
    db: TestDatabase,
    store: Storage,
}

impl suite::Backend for Sqlite {
    async fn fresh() -> Self {
        let db = TestDatabase::sqlite();
        let store = sqlite::open(db.url()).await.expect("opened");
        Self { db, store }
    }

    fn store(&self) -> Storage {
        self.store.clone()
    }

    async fn fail_event_inserts(&self) {
        let mut conn = sqlx::SqliteConnection::connect(self.db.url())
            .await
            .expect("connected");
        sqlx::query(
            "CREATE TRIGGER fail_events BEFORE INSERT ON events \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .execute(&mut conn)
        .await
        .expect("trigger created");
    }

    async fn reopen(&mut self) {
        self.store = sqlite::open(self.db.url()).await.expect("reopened");
    }

    async fn upgraded_from_first_schema(seed: &str) -> Self {
        let db = TestDatabase::sqlite();
        // `mode=rwc`: create the file.
        let url = format!("{}?mode=rwc", db.url());
        suite::first_schema_with::<sqlx::Sqlite>(&url, "sqlite", seed).await;
        let store = sqlite::open(db.url()).await.expect("opened and upgraded");
        Self { db, store }
    }

    const DIGEST_LITERAL: &'static str =
        "X'0707070707070707070707070707070707070707070707070707070707070707'";
}

store_suite!(Sqlite);
