//! [`Conn`] on a rusqlite connection, and the pool of reader connections beside the
//! writer (WAL lets readers run while the writer commits).

use crate::conn::Conn;
use crate::rows::{Row, Value};
use crate::StoreError;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement, ToSql};
use std::borrow::Cow;
use std::future::{ready, Future};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Int(v) => ToSqlOutput::Borrowed(v.map_or(ValueRef::Null, ValueRef::Integer)),
            Value::Text(t) => ToSqlOutput::Borrowed(
                t.as_deref()
                    .map_or(ValueRef::Null, |t| ValueRef::Text(t.as_bytes())),
            ),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// A cell as a [`Value`]. SQLite's types are per value; verihook stores no floats.
fn cell(value: ValueRef<'_>) -> Result<Value<'static>, StoreError> {
    Ok(match value {
        ValueRef::Null => Value::Int(None),
        ValueRef::Integer(i) => Value::Int(Some(i)),
        ValueRef::Text(t) => Value::Text(Some(Cow::Owned(
            std::str::from_utf8(t)
                .map_err(StoreError::corrupt)?
                .to_owned(),
        ))),
        ValueRef::Blob(b) => Value::Bytes(Cow::Owned(b.to_vec())),
        ValueRef::Real(_) => return Err(StoreError::corrupt("a floating-point cell")),
    })
}

/// Binds `params[n - 1]` to the parameter written `$n`. SQLite numbers `$n` parameters in
/// the order they first appear in the text, not by `n`: bound by position, a statement
/// whose `$3` comes before its `$1` would take the wrong values, silently.
fn bind(statement: &mut Statement<'_>, params: &[Value<'_>]) -> Result<(), StoreError> {
    for index in 1..=statement.parameter_count() {
        let number = match statement.parameter_name(index) {
            Some(name) => name
                .strip_prefix(['$', '?'])
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| StoreError::Config(format!("parameter {name} is not $n")))?,
            None => index,
        };
        let value = params
            .get(number - 1)
            .ok_or_else(|| StoreError::Config(format!("no value for parameter ${number}")))?;
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

pub(super) fn execute(
    conn: &Connection,
    sql: &str,
    params: &[Value<'_>],
) -> Result<u64, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, params)?;
    let changed = statement.raw_execute()?;
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

pub(super) fn query(
    conn: &Connection,
    sql: &str,
    params: &[Value<'_>],
) -> Result<Vec<Row>, StoreError> {
    query_each(conn, sql, [params])
}

/// Runs one statement once for each set of parameters, and returns the rows of all the
/// runs in order: prepared (or taken from the cache) and its column names read once.
pub(super) fn query_each<'v, P: AsRef<[Value<'v>]>>(
    conn: &Connection,
    sql: &str,
    runs: impl IntoIterator<Item = P>,
) -> Result<Vec<Row>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let columns: Arc<[String]> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let width = columns.len();
    let mut rows = Vec::new();
    for params in runs {
        bind(&mut statement, params.as_ref())?;
        let mut found = statement.raw_query();
        while let Some(row) = found.next()? {
            let cells = (0..width)
                .map(|i| cell(row.get_ref(i)?))
                .collect::<Result<Vec<_>, StoreError>>()?;
            rows.push(Row::new(columns.clone(), cells));
        }
    }
    Ok(rows)
}

/// rusqlite is synchronous: each future is complete when it is made.
impl Conn for Connection {
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    /// SQLite's durability is the connection's (`synchronous`), not a transaction's.
    const BEGIN_RELAXED: &'static str = "BEGIN IMMEDIATE";

    fn batch(&mut self, sql: &'static str) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(self.execute_batch(sql).map_err(StoreError::from))
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        ready(execute(self, sql, params))
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send {
        ready(query(self, sql, params))
    }
}

/// Opens a connection with the store's settings: WAL, `synchronous=FULL` (a commit is on
/// disk before anyone is told it happened), foreign keys, a patient busy timeout; through
/// the VFS that gathers a commit's WAL frames into a few writes, which relies on `FULL`.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = match super::vfs::name() {
        Some(vfs) => Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs)?,
        None => Connection::open(path)?,
    };
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A few read-only connections; each read runs on tokio's blocking pool, so a slow read
/// never holds up the async workers.
pub(super) struct Readers {
    connections: Vec<Arc<Mutex<Connection>>>,
    next: AtomicUsize,
}

impl Readers {
    pub(super) fn open(path: &Path, count: usize) -> Result<Self, StoreError> {
        let connections = (0..count)
            .map(|_| {
                let conn = open(path)?;
                // A reader never writes, whatever SQL reaches it.
                conn.pragma_update(None, "query_only", true)?;
                Ok(Arc::new(Mutex::new(conn)))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    pub(super) async fn read(
        &self,
        sql: String,
        params: Vec<Value<'static>>,
    ) -> Result<Vec<Row>, StoreError> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let conn = self.connections[turn].clone();
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier read leaves the connection itself usable.
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            query(&conn, &sql, &params)
        })
        .await?
    }
}

#[cfg(test)]
mod binding {
    use super::*;

    #[test]
    fn parameters_are_bound_by_their_number_not_their_place() {
        let conn = Connection::open_in_memory().expect("opened");
        let rows = query(
            &conn,
            "SELECT $2 AS second, $1 AS first, $2 + $1 AS sum",
            &[Value::int(1), Value::int(20)],
        )
        .expect("ran");
        let row = &rows[0];
        assert_eq!(row.int("first").expect("first"), 1);
        assert_eq!(row.int("second").expect("second"), 20);
        assert_eq!(row.int("sum").expect("sum"), 21);
    }
}
