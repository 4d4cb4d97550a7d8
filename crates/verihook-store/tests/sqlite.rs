//! The storage suite on real SQLite files.

mod suite;

use sqlx::Connection;
use std::sync::Arc;
use verihook_store::sqlite::SqliteStore;
use verihook_store::Store;
use verihook_testkit::TestDatabase;

struct Sqlite {
    db: TestDatabase,
    store: Arc<dyn Store>,
}

impl suite::Backend for Sqlite {
    async fn fresh() -> Self {
        let db = TestDatabase::sqlite();
        let store = SqliteStore::open(db.url()).await.expect("opened");
        Self {
            db,
            store: Arc::new(store),
        }
    }

    fn store(&self) -> Arc<dyn Store> {
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
        let store = SqliteStore::open(self.db.url()).await.expect("reopened");
        self.store = Arc::new(store);
    }

    async fn upgraded_from_first_schema(seed: &str) -> Self {
        let db = TestDatabase::sqlite();
        // `mode=rwc`: create the file.
        let url = format!("{}?mode=rwc", db.url());
        suite::first_schema_with::<sqlx::Sqlite>(&url, "sqlite", seed).await;
        let store = SqliteStore::open(db.url())
            .await
            .expect("opened and upgraded");
        Self {
            db,
            store: Arc::new(store),
        }
    }

    const DIGEST_LITERAL: &'static str =
        "X'0707070707070707070707070707070707070707070707070707070707070707'";
}

store_suite!(Sqlite);
