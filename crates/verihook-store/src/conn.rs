//! One database connection, as the shared code drives it: statements with `$n`
//! parameters, results as owned [`Row`]s. Each backend implements it on its driver's
//! connection (rusqlite for SQLite, sqlx for PostgreSQL), so that every write whose SQL is
//! the same on both is written once, in `crate::database`.

use crate::rows::{Row, Value};
use crate::StoreError;
use std::future::Future;

pub(crate) trait Conn: Send + 'static {
    /// Opens a write batch's transaction (SQLite takes the write lock at once).
    const BEGIN: &'static str;
    /// Opens a transaction, for a batch of one job, whose commit need not wait for the
    /// disk (see [`crate::writer::Shape::Relaxed`]).
    const BEGIN_RELAXED: &'static str;

    /// Runs statements without parameters, several separated by `;`, in one round trip.
    fn batch(&mut self, sql: &'static str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Runs one statement; answers the number of rows it changed.
    fn execute(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Runs one statement; answers its rows.
    fn query(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;
}
