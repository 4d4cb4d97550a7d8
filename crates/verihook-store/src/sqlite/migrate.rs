//! The SQLite schema migrations, embedded in the binary and applied at start.
//!
//! They are kept in sqlx's table (`_sqlx_migrations`: version, description, SHA-384
//! checksum) and applied the way sqlx applies them, each in its own transaction with its
//! row, so that a database created by an earlier verihook (which migrated through sqlx)
//! carries on where it stopped, and one migrated here would still open there.

use crate::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha384};
use std::time::Instant;

/// A migration: its version, its description (the file name's words) and its SQL.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $file:literal, $description:literal) => {
        Migration {
            version: $version,
            description: $description,
            sql: include_str!(concat!("../../migrations/sqlite/", $file)),
        }
    };
}

/// In order; a new migration is a new file and a new line here.
const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_init.sql", "init"),
    migration!(2, "0002_outbox_keyed_by_seq.sql", "outbox keyed by seq"),
    migration!(
        3,
        "0003_delivery_status_derived.sql",
        "delivery status derived"
    ),
    migration!(
        4,
        "0004_redelivery_during_attempt.sql",
        "redelivery during attempt"
    ),
    // 5 is PostgreSQL's alone (its foreign keys); the numbers stay shared.
    migration!(6, "0006_endpoints.sql", "endpoints"),
    migration!(7, "0007_rotation_overlap.sql", "rotation overlap"),
    migration!(
        8,
        "0008_idempotency_and_api_keys.sql",
        "idempotency and api keys"
    ),
    migration!(9, "0009_endpoint_health.sql", "endpoint health"),
    migration!(10, "0010_incident_alerts.sql", "incident alerts"),
    migration!(11, "0011_recoveries.sql", "recoveries"),
    migration!(12, "0012_probes.sql", "probes"),
    migration!(13, "0013_recovery_pace.sql", "recovery pace"),
    // 14 is PostgreSQL's alone (the stream's transaction ids).
    migration!(15, "0015_customer_sequence.sql", "customer sequence"),
    migration!(16, "0016_customer_erasure.sql", "customer erasure"),
    migration!(17, "0017_retention.sql", "retention"),
    // 18 is PostgreSQL's alone (its partitions).
    migration!(19, "0019_adoption_in_slices.sql", "adoption in slices"),
];

pub(super) fn embedded() -> usize {
    MIGRATIONS.len()
}

/// Applies the migrations the database lacks; refuses a database whose applied
/// migrations differ from this build's or that a failed migration left behind.
pub(super) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations ( \
            version BIGINT PRIMARY KEY, \
            description TEXT NOT NULL, \
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
            success BOOLEAN NOT NULL, \
            checksum BLOB NOT NULL, \
            execution_time BIGINT NOT NULL)",
    )?;
    for migration in MIGRATIONS {
        let checksum = Sha384::digest(migration.sql.as_bytes()).to_vec();
        let applied: Option<(bool, Vec<u8>)> = conn
            .query_row(
                "SELECT success, checksum FROM _sqlx_migrations WHERE version = ?1",
                params![migration.version],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        match applied {
            Some((true, stored)) if stored == checksum => continue,
            Some((true, _)) => {
                return Err(StoreError::Config(format!(
                    "migration {} was changed after it was applied to this database",
                    migration.version
                )))
            }
            Some((false, _)) => {
                return Err(StoreError::Config(format!(
                    "migration {} failed part way in an earlier run; restore a backup",
                    migration.version
                )))
            }
            None => apply(conn, migration, &checksum)?,
        }
    }
    Ok(())
}

fn apply(conn: &mut Connection, migration: &Migration, checksum: &[u8]) -> Result<(), StoreError> {
    let started = Instant::now();
    let tx = conn.transaction()?;
    tx.execute_batch(migration.sql)?;
    let nanos = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (?1, ?2, TRUE, ?3, ?4)",
        params![migration.version, migration.description, checksum, nanos],
    )?;
    tx.commit()?;
    tracing::info!(
        version = migration.version,
        description = migration.description,
        "migration applied"
    );
    Ok(())
}
