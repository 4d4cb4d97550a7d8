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

    async fn refuse_customer(&self, id: &str) {
        let trigger = format!(
            "CREATE TRIGGER refused BEFORE INSERT ON customers WHEN NEW.id = '{id}' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        );
        self.run_sql(&trigger).await;
    }

    async fn run_sql(&self, sql: &str) {
        let mut conn = sqlx::SqliteConnection::connect(self.db.url())
            .await
            .expect("connected");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect("ran");
    }

    async fn count(&self, sql: &str) -> i64 {
        let mut conn = sqlx::SqliteConnection::connect(self.db.url())
            .await
            .expect("connected");
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("counted")
    }

    async fn stored_bytes(&self) -> Vec<u8> {
        let path = self.db.url().trim_start_matches("sqlite://").to_owned();
        let conn = rusqlite::Connection::open(&path).expect("opened");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpointed");
        let mut bytes = std::fs::read(&path).expect("read the file");
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        bytes
    }

    async fn another_node(&self) -> Storage {
        self.store.clone()
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

/// The database file and its `-wal`/`-shm` companions are readable and writable by their
/// owner only, however permissive the process's umask, and an existing file is narrowed.
#[cfg(unix)]
#[tokio::test]
async fn the_database_files_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("private.db");
    let mode = |suffix: &str| {
        let file = format!("{}{suffix}", path.display());
        std::fs::metadata(file)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    let store = verihook_store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("opened");
    let org = verihook_core::Organization::new(
        "Acme",
        verihook_core::Mode::Live,
        verihook_core::Timestamp::now(),
    )
    .expect("valid");
    store
        .organizations
        .create_organization(
            &org,
            &verihook_store::NewApiKey::of(
                &verihook_core::ApiKey::generate(),
                verihook_core::Timestamp::now(),
            ),
        )
        .await
        .expect("written");
    for suffix in ["", "-wal", "-shm"] {
        assert_eq!(mode(suffix), 0o600, "{suffix}");
    }
    drop(store);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let _reopened = verihook_store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("opened");
    assert_eq!(mode(""), 0o600, "an existing file is narrowed");
}

/// A writer thread that died (here, a change whose computation panicked on it) shows in
/// readiness: the database answers reads, but nothing can be written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_writer_thread_is_not_ready() {
    use verihook_store::Scope;
    let b = <Sqlite as suite::Backend>::fresh().await;
    let store = suite::Backend::store(&b);
    store.health.ready().await.expect("ready");
    let org = suite::with_webhook(&store).await;
    let c = suite::customer(&store, &org).await;
    let panicking: verihook_store::Mutation = Box::new(|_| panic!("a bug in a change"));
    let failed = store
        .customers
        .modify_customer(Scope::All, &c.id, panicking)
        .await;
    assert!(failed.is_err());
    assert!(
        store.health.ready().await.is_err(),
        "not ready without a writer"
    );
}
