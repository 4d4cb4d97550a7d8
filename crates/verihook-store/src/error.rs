//! The storage layer's one error type.

use std::sync::Arc;
use verihook_core::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist (or lies outside the caller's scope).
    #[error("not found")]
    NotFound,
    /// The organization already has as many endpoints as it may.
    #[error("an organization has at most {0} endpoints")]
    LimitReached(u32),
    /// The page cursor names no item of the listing.
    #[error("the cursor names no item of this listing")]
    UnknownCursor,
    /// The domain refused the change; nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database URL or options are unusable, or the schema is not this build's.
    #[error("{0}")]
    Config(String),
    /// A stored value no longer parses: the database was changed outside verihook.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The write did not run: its batch was cut short (the connection was lost; the
    /// writer reconnects) or the process is shutting down. Nothing was written; retry.
    #[error("the write did not complete (database connection lost, or shutting down)")]
    WriterStopped,
    /// The database did not answer the write in time. A write that had not started when
    /// the deadline passed is dropped; one that had may or may not commit.
    #[error("the database did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The transaction holding this change failed to commit; nothing was written.
    #[error("commit failed: {0}")]
    CommitFailed(#[source] Arc<StoreError>),
    /// Recording the attempt outcomes merged into one write failed; none was recorded.
    #[error("recording the outcomes failed: {0}")]
    RecordFailed(#[source] Arc<StoreError>),
    /// PostgreSQL (sqlx).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite (rusqlite).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A task running database work panicked or was cancelled.
    #[error("a database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl StoreError {
    /// Whether the database could not be reached or did not answer in time (as opposed
    /// to refusing the request): worth a 503 and a retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::WriterStopped | Self::Timeout(_) => true,
            Self::CommitFailed(e) | Self::RecordFailed(e) => e.is_unavailable(),
            Self::Database(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|code| server_unavailable(&code))
            }
            Self::Database(e) => matches!(
                e,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
            ),
            _ => false,
        }
    }

    /// Whether the database's disk (or its quota) is full: the write did not happen, and
    /// one made once space is freed will.
    pub fn is_storage_full(&self) -> bool {
        // PostgreSQL's class 53, insufficient resources: disk full, out of memory, too
        // many connections.
        const DISK_FULL: &str = "53100";
        match self {
            Self::CommitFailed(e) | Self::RecordFailed(e) => e.is_storage_full(),
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            Self::Database(sqlx::Error::Database(e)) => e.code().is_some_and(|c| c == DISK_FULL),
            _ => false,
        }
    }

    /// Whether another transaction held what this one needed (a row lock not free at once,
    /// a deadlock, a serialization failure): nothing of the job was written, and running
    /// it again once the other has committed succeeds.
    pub(crate) fn is_conflict(&self) -> bool {
        const LOCK_NOT_AVAILABLE: &str = "55P03";
        const DEADLOCK: &str = "40P01";
        const SERIALIZATION: &str = "40001";
        match self {
            Self::Database(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|c| [LOCK_NOT_AVAILABLE, DEADLOCK, SERIALIZATION].contains(&&*c)),
            _ => false,
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }
}

/// PostgreSQL's answers of a server that cannot take the write now, though another (or
/// this one, soon) can: a connection failure (class 08), a shutdown or a server still
/// starting (57P01–57P03), a standby (25006: read-only transaction, as a failover leaves a
/// demoted primary).
fn server_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "25006")
}
