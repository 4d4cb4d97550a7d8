//! A fresh database per test: a SQLite file in a temporary directory, or a PostgreSQL
//! database created on the server of `VERIHOOK_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`) and dropped when the test ends, even by a panic.

use sqlx::{Connection, PgConnection};

/// The PostgreSQL server tests create their databases on.
pub fn postgres_server() -> String {
    std::env::var("VERIHOOK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// Which backend the API and delivery tests run on: `VERIHOOK_TEST_DATABASE=postgres`
/// selects PostgreSQL; anything else, SQLite.
pub fn postgres_selected() -> bool {
    std::env::var("VERIHOOK_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// Whether a PostgreSQL test can run here. On a machine without a server (a newcomer's
/// laptop) it says that the test is skipped and why, and the test passes; with
/// `VERIHOOK_REQUIRE_POSTGRES=1` (CI sets it) a missing server fails the test instead.
pub async fn postgres_available(test: &str) -> bool {
    let server = postgres_server();
    match PgConnection::connect(&format!("{server}/postgres")).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(e) => {
            let required = std::env::var("VERIHOOK_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "VERIHOOK_REQUIRE_POSTGRES=1 but PostgreSQL at {server} is unreachable: {e}"
            );
            eprintln!(
                "{test} skipped: no PostgreSQL at {server} ({e}); set VERIHOOK_TEST_POSTGRES_URL \
                 to a server's URL, or VERIHOOK_REQUIRE_POSTGRES=1 to fail instead"
            );
            false
        }
    }
}

pub enum TestDatabase {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        name: String,
    },
}

impl TestDatabase {
    /// The backend `VERIHOOK_TEST_DATABASE` selects.
    pub async fn from_env() -> Self {
        if postgres_selected() {
            Self::postgres().await
        } else {
            Self::sqlite()
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("verihook.db").display());
        Self::Sqlite { url, _dir: dir }
    }

    /// A fresh PostgreSQL database, or `None` (and a line saying so) where no server is
    /// reachable and `VERIHOOK_REQUIRE_POSTGRES` is not set: see [`postgres_available`].
    pub async fn postgres_or_skip(test: &str) -> Option<Self> {
        if postgres_available(test).await {
            Some(Self::postgres().await)
        } else {
            None
        }
    }

    pub async fn postgres() -> Self {
        let server = postgres_server();
        let name = format!("verihook_test_{}", suffix());
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .expect("PostgreSQL reachable (VERIHOOK_TEST_POSTGRES_URL)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("test database created");
        Self::Postgres {
            url: format!("{server}/{name}"),
            name,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }
}

/// Unique across the processes and threads of a test run.
fn suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}_{n}_{}", std::process::id(), nanos % 1_000_000_000)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Self::Postgres { name, .. } = self else {
            return;
        };
        let name = name.clone();
        // Drop may run inside a runtime (or during a panic): use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&format!("{}/postgres", postgres_server()))
                    .await
                    .map_err(std::io::Error::other)?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database");
        }
    }
}
