//! The storage suite on real SQLite files.

mod suite;

use sqlx::Connection;
use std::sync::Arc;
use tempfile::TempDir;
use verihook_store::sqlite::SqliteStore;
use verihook_store::Store;

struct Sqlite {
    dir: TempDir,
    store: Arc<dyn Store>,
}

impl Sqlite {
    fn url(dir: &TempDir) -> String {
        format!("sqlite://{}", dir.path().join("verihook.db").display())
    }
}

impl suite::Backend for Sqlite {
    async fn fresh() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&Self::url(&dir)).await.expect("opened");
        Self {
            dir,
            store: Arc::new(store),
        }
    }

    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn fail_event_inserts(&self) {
        let mut conn = sqlx::SqliteConnection::connect(&Self::url(&self.dir))
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
        let store = SqliteStore::open(&Self::url(&self.dir))
            .await
            .expect("reopened");
        self.store = Arc::new(store);
    }
}

store_suite!(Sqlite);
