//! The embedded SQLite store: one file, WAL mode, `synchronous=FULL` (a commit is on disk
//! before anyone is told it happened), all through one driver (rusqlite). Writes run on one
//! writer thread (group commit, see `crate::writer`); reads on a few reader connections
//! beside it, which WAL allows. The single writer serializes every change, so no row locks
//! are needed.

mod conn;
mod migrate;
mod ops;
mod vfs;

use crate::database::{merged, Backend, Database};
use crate::rows::{Row, Value};
use crate::secrets::{seal_stored, Sealer, SecretKey};
use crate::writer::{Shape, Writer};
use crate::{Storage, StoreError};
use rusqlite::Connection;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;

const READERS: usize = 4;

pub(crate) struct Sqlite {
    readers: conn::Readers,
    writer: Writer<Connection>,
}

/// Opens (creating if missing) the database at `url` (`sqlite://PATH`, or `sqlite:PATH`;
/// a `?query` is ignored) and applies pending migrations.
pub async fn open(url: &str) -> Result<Storage, StoreError> {
    open_with(url, None).await
}

/// [`open`], sealing webhook secrets with `key` (see [`crate::secrets`]).
pub async fn open_with(url: &str, key: Option<&SecretKey>) -> Result<Storage, StoreError> {
    let path = path_of(url)?;
    let sealer = Sealer::new(key);
    let opening = sealer.clone();
    let backend = tokio::task::spawn_blocking(move || Sqlite::open(&path, &opening)).await??;
    Ok(Storage::over(Database::new(
        backend,
        Arc::new(Notify::new()),
        Arc::new(tokio::sync::watch::Sender::new(0)),
        sealer,
    )))
}

fn path_of(url: &str) -> Result<PathBuf, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Config("a SQLite URL starts with sqlite://".into()))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        // The writer and the readers are separate connections: each would get its own
        // empty in-memory database.
        return Err(StoreError::Config(
            "in-memory SQLite is not supported; give a file path (sqlite://PATH)".into(),
        ));
    }
    Ok(PathBuf::from(path))
}

/// The database and its `-wal`/`-shm` companions readable and writable by their owner
/// only: they hold every customer's personal data and the webhook secrets. A new file is
/// created so (SQLite gives its companions the database file's mode); an existing one is
/// narrowed.
#[cfg(unix)]
fn owner_only(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| StoreError::Config(format!("{}: {e}", path.display()));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_: &Path) -> Result<(), StoreError> {
    Ok(())
}

impl Sqlite {
    fn open(path: &Path, sealer: &Sealer) -> Result<Self, StoreError> {
        owner_only(path)?;
        let mut writer = conn::open(path)?;
        incremental_vacuum(&writer)?;
        migrate::run(&mut writer)?;
        // What a write replaces is zeroed in its page (at no extra I/O), so a secret sealed
        // in place leaves no plaintext behind in the file.
        writer.pragma_update(None, "secure_delete", "FAST")?;
        seal_in_place(&mut writer, sealer)?;
        // An 8 MiB page cache instead of the default 2 MiB: the customers' indexes are
        // keyed by random ids. 32 MiB (from when every key was random; the outbox and
        // the attempt log are now keyed by `seq`, the ids time-ordered) bought no
        // throughput and cost 25 MB of memory, 40–50 MB with a million events waiting.
        writer.pragma_update(None, "cache_size", -8_192)?;
        // Every job but a batch's first runs in a savepoint, and a statement that may fail
        // half-way keeps a journal too: the earlier images of the pages they change. SQLite
        // keeps that journal in memory up to 64 KiB, then in a temporary file (unlinked as
        // it is made). A job stays well under it; one statement that moves 100,000 rows
        // (an organization's first endpoint adopting its backlog) does not, and with the
        // journal all in memory (`MEMORY`) it took the process from 40 to 100 MB.
        writer.pragma_update(None, "temp_store", "FILE")?;
        Ok(Self {
            readers: conn::Readers::open(path, READERS)?,
            writer: Writer::spawn_thread(writer, "verihook-sqlite-writer", merged::<Self>())?,
        })
    }
}

/// Puts the file in incremental vacuum mode, so that the retention's purges give their
/// pages back (`PRAGMA incremental_vacuum`) instead of leaving the file at its largest. A
/// new file takes the mode at once; one made before needs a full VACUUM, once.
fn incremental_vacuum(writer: &Connection) -> Result<(), StoreError> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = writer.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    writer.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    let tables: i64 = writer.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables > 0 {
        tracing::info!("converting the database to incremental vacuum (once; a full VACUUM)");
        writer.execute_batch("VACUUM")?;
    }
    Ok(())
}

/// Seals the plaintext secrets (see [`seal_stored`]), then empties the WAL, which still
/// holds the pages as they were.
fn seal_in_place(writer: &mut Connection, sealer: &Sealer) -> Result<(), StoreError> {
    use futures_util::FutureExt;
    // The connection's futures are ready at once: SQLite's calls block.
    let sealed = seal_stored(writer, sealer)
        .now_or_never()
        .ok_or_else(|| StoreError::Config("sealing secrets did not complete".into()))??;
    if sealed > 0 {
        writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        tracing::info!(sealed, "webhook secrets sealed with the secret key");
    }
    Ok(())
}

impl Backend for Sqlite {
    type Conn = Connection;
    const LOCK_FOR_UPDATE: &'static str = "";
    const LOCK_OR_FAIL: &'static str = "";
    const LOCK_SKIP_LOCKED: &'static str = "";
    const RECLAIM_SPACE: Option<&'static str> = Some("PRAGMA incremental_vacuum");
    const ANNOUNCE: Option<&'static str> = None;
    const SAVE_CHANGE: Shape = Shape::Several;
    // One writer: commit order is `seq` order, and every committed event is settled.
    const STREAM_START: &'static str = "\
        SELECT COALESCE(MAX(seq), 0) AS txid, COALESCE(MAX(seq), 0) AS seq, NULL AS id \
        FROM events WHERE $1 = $1";
    const STREAM_POSITION: &'static str =
        "SELECT seq AS txid, seq FROM events WHERE id = $1 AND organization_id = $2";
    const STREAM_EVENTS: &'static str = "\
        SELECT seq AS txid, seq, id, organization_id, customer_id, event_type, occurred_at, \
        sequence, body FROM events WHERE organization_id = $1 AND seq > $3 ORDER BY seq LIMIT $4";
    const CLAIM: Shape = Shape::Several;
    const ONE_WRITER: bool = true;

    fn migrations(&self) -> usize {
        migrate::embedded()
    }

    #[allow(unsafe_code)]
    fn memory_in_process(&self) -> Option<u64> {
        // SQLite counts every allocation it makes (SQLITE_DEFAULT_MEMSTATUS is on in the
        // bundled build), over all connections of the process.
        // SAFETY: reads a counter SQLite keeps under its own mutex; no pointer is involved.
        let used = unsafe { rusqlite::ffi::sqlite3_memory_used() };
        u64::try_from(used).ok()
    }

    fn read(
        &self,
        sql: String,
        params: Vec<Value<'static>>,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send {
        self.readers.read(sql, params)
    }

    fn writer(&self) -> &Writer<Connection> {
        &self.writer
    }

    /// One after another: statements cost no round trip here.
    fn save_changes<'c>(
        conn: &'c mut Connection,
        changes: &'c [crate::database::Change<'c>],
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'c {
        std::future::ready(
            changes
                .iter()
                .try_for_each(|(customer, events)| ops::save_change(conn, customer, events)),
        )
    }

    fn claim<'c>(
        conn: &'c mut Connection,
        request: &'c crate::ClaimRequest,
    ) -> impl Future<Output = Result<Vec<crate::ClaimedDelivery>, StoreError>> + Send + 'c {
        std::future::ready(ops::claim(conn, request))
    }

    fn record<'c>(
        conn: &'c mut Connection,
        outcomes: &'c [crate::AttemptOutcome],
    ) -> impl Future<Output = Result<Vec<crate::Recorded>, StoreError>> + Send + 'c {
        std::future::ready(outcomes.iter().map(|o| ops::record(conn, o)).collect())
    }
}
