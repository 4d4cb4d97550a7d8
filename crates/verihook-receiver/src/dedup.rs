//! Duplicate suppression by `eventId`. verihook delivers at least once, so an event can
//! arrive twice (a retry after a lost 200, a redelivery). Ask [`Deduplicator::first_sighting`]
//! before acting on an event; call [`Deduplicator::forget`] if processing then fails, so the
//! next delivery is processed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[cfg(feature = "sqlite")]
    #[error("dedup store: {0}")]
    Sqlite(#[from] sqlx::Error),
}

pub trait Deduplicator: Send + Sync {
    /// `true` the first time `event_id` is seen (and marks it seen), `false` afterwards.
    fn first_sighting(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<bool, DedupError>> + Send;
    /// Forgets `event_id`, so that its next delivery counts as a first sighting.
    fn forget(&self, event_id: &str) -> impl Future<Output = Result<(), DedupError>> + Send;
}

/// Remembers event ids in memory for a time-to-live (retries and redeliveries of one event
/// come within hours; a day is a safe default).
pub struct MemoryDeduplicator {
    ttl: Duration,
    seen: Mutex<Seen>,
}

struct Seen {
    ids: HashMap<String, Instant>,
    last_sweep: Instant,
}

impl MemoryDeduplicator {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            seen: Mutex::new(Seen {
                ids: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryDeduplicator {
    fn default() -> Self {
        Self::new(Duration::from_secs(24 * 3600))
    }
}

impl Deduplicator for MemoryDeduplicator {
    async fn first_sighting(&self, event_id: &str) -> Result<bool, DedupError> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        // Sweeping at most once per TTL/10 keeps each call O(1) amortized.
        if now.duration_since(seen.last_sweep) > self.ttl / 10 {
            let ttl = self.ttl;
            seen.ids.retain(|_, at| now.duration_since(*at) < ttl);
            seen.last_sweep = now;
        }
        let fresh = match seen.ids.get(event_id) {
            Some(at) => now.duration_since(*at) >= self.ttl,
            None => true,
        };
        if fresh {
            seen.ids.insert(event_id.to_owned(), now);
        }
        Ok(fresh)
    }

    async fn forget(&self, event_id: &str) -> Result<(), DedupError> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .remove(event_id);
        Ok(())
    }
}

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteDeduplicator;

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::{DedupError, Deduplicator};
    use crate::verifier::now_unix as now;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool};
    use std::path::Path;
    use std::time::Duration;

    /// Remembers event ids in a SQLite file, across restarts, for a time-to-live.
    pub struct SqliteDeduplicator {
        pool: SqlitePool,
        ttl: Duration,
    }

    impl SqliteDeduplicator {
        /// Opens (creating if needed) the file at `path`.
        pub async fn open(path: impl AsRef<Path>, ttl: Duration) -> Result<Self, DedupError> {
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal);
            let pool = SqlitePool::connect_with(options).await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS seen_events (\
                 event_id TEXT PRIMARY KEY NOT NULL, seen_at INTEGER NOT NULL)",
            )
            .execute(&pool)
            .await?;
            Ok(Self { pool, ttl })
        }
    }

    impl Deduplicator for SqliteDeduplicator {
        async fn first_sighting(&self, event_id: &str) -> Result<bool, DedupError> {
            let now = now();
            let horizon = now - i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
            sqlx::query("DELETE FROM seen_events WHERE event_id = ? AND seen_at < ?")
                .bind(event_id)
                .bind(horizon)
                .execute(&self.pool)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO seen_events (event_id, seen_at) VALUES (?, ?) \
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(event_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(inserted.rows_affected() == 1)
        }

        async fn forget(&self, event_id: &str) -> Result<(), DedupError> {
            sqlx::query("DELETE FROM seen_events WHERE event_id = ?")
                .bind(event_id)
                .execute(&self.pool)
                .await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_sees_each_id_once_within_the_ttl() {
        let d = MemoryDeduplicator::new(Duration::from_millis(200));
        assert!(d.first_sighting("evt_1").await.expect("ok"));
        assert!(!d.first_sighting("evt_1").await.expect("ok"));
        assert!(d.first_sighting("evt_2").await.expect("ok"));
        d.forget("evt_2").await.expect("ok");
        assert!(d.first_sighting("evt_2").await.expect("ok"));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            d.first_sighting("evt_1").await.expect("ok"),
            "expired after the TTL"
        );
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_remembers_across_reopening() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("seen.db");
        let ttl = Duration::from_secs(3600);
        let d = SqliteDeduplicator::open(&path, ttl).await.expect("open");
        assert!(d.first_sighting("evt_1").await.expect("ok"));
        assert!(!d.first_sighting("evt_1").await.expect("ok"));
        drop(d);
        let d = SqliteDeduplicator::open(&path, ttl).await.expect("reopen");
        assert!(
            !d.first_sighting("evt_1").await.expect("ok"),
            "survives a restart"
        );
        d.forget("evt_1").await.expect("ok");
        assert!(d.first_sighting("evt_1").await.expect("ok"));
    }
}
