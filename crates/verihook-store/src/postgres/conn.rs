//! [`Conn`] on an sqlx PostgreSQL connection, and reads on the pool: parameters bound by
//! their type, rows decoded into owned cells by the column's type.

use crate::conn::Conn;
use crate::rows::{Row, Value};
use crate::StoreError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Column, Executor, PgConnection, Postgres, Row as _, TypeInfo};
use std::borrow::Cow;
use std::sync::Arc;

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

pub(super) fn bind<'q>(sql: &'q str, params: &'q [Value<'_>]) -> PgQuery<'q> {
    params
        .iter()
        .fold(sqlx::query(sql), |q, value| match value {
            Value::Int(v) => q.bind(*v),
            Value::Text(t) => q.bind(t.as_deref()),
            Value::Bytes(b) => q.bind(b.as_ref()),
        })
}

/// Binds `rows`, all of one shape, column by column, each column one array (typed by its
/// values, which the statement's casts must match): a statement over `UNNEST` of them
/// writes any number of rows in one round trip.
pub(super) fn bind_columns<'q>(query: PgQuery<'q>, rows: &'q [Vec<Value<'_>>]) -> PgQuery<'q> {
    let width = rows.first().map_or(0, Vec::len);
    (0..width).fold(query, |q, i| {
        let cells = rows.iter().filter_map(move |row| row.get(i));
        match rows.first().and_then(|row| row.get(i)) {
            Some(Value::Int(_)) => q.bind(cells.map(Value::as_int).collect::<Vec<_>>()),
            Some(Value::Bytes(_)) => q.bind(cells.map(Value::as_bytes).collect::<Vec<_>>()),
            _ => q.bind(cells.map(Value::as_text).collect::<Vec<_>>()),
        }
    })
}

fn cell(row: &PgRow, i: usize, type_name: &str) -> Result<Value<'static>, StoreError> {
    Ok(match type_name {
        "INT8" => Value::Int(row.try_get::<Option<i64>, _>(i)?),
        "INT4" => Value::Int(row.try_get::<Option<i32>, _>(i)?.map(i64::from)),
        "INT2" => Value::Int(row.try_get::<Option<i16>, _>(i)?.map(i64::from)),
        "BOOL" => Value::Int(row.try_get::<Option<bool>, _>(i)?.map(i64::from)),
        "BYTEA" => match row.try_get::<Option<Vec<u8>>, _>(i)? {
            Some(b) => Value::Bytes(Cow::Owned(b)),
            None => Value::Int(None),
        },
        _ => Value::Text(row.try_get::<Option<String>, _>(i)?.map(Cow::Owned)),
    })
}

pub(super) fn rows(found: &[PgRow]) -> Result<Vec<Row>, StoreError> {
    let Some(first) = found.first() else {
        return Ok(Vec::new());
    };
    let columns: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let types: Vec<String> = first
        .columns()
        .iter()
        .map(|c| c.type_info().name().to_owned())
        .collect();
    found
        .iter()
        .map(|row| {
            let cells = types
                .iter()
                .enumerate()
                .map(|(i, t)| cell(row, i, t))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Row::new(columns.clone(), cells))
        })
        .collect()
}

impl Conn for PgConnection {
    const BEGIN: &'static str = "BEGIN";
    const BEGIN_RELAXED: &'static str = "BEGIN; SET LOCAL synchronous_commit = off";

    async fn batch(&mut self, sql: &'static str) -> Result<(), StoreError> {
        // A bare string without arguments goes by the simple query protocol: several
        // statements, one round trip.
        Executor::execute(&mut *self, sql).await?;
        Ok(())
    }

    async fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        Ok(bind(sql, params).execute(self).await?.rows_affected())
    }

    async fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        rows(&bind(sql, params).fetch_all(self).await?)
    }
}
