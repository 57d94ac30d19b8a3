//! The database schema, versioned with `PRAGMA user_version`.
//!
//! The migrations are the store's one source of truth (`crate::migrations`, shared with
//! PostgreSQL). Each runs in the same IMMEDIATE transaction as
//! the `user_version` bump, so a crash mid-migration leaves the old version intact and
//! two processes opening a new file at once do not both create it.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;
use crate::migrations::MIGRATIONS;
pub use crate::migrations::SCHEMA_VERSION;

/// Brings the database at `path` up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = |context| {
        move |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            context,
            source,
        }
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err("starting the schema migration"))?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(err("reading the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.execute_batch(sql).map_err(err("migrating the schema"))?;
        tracing::info!(path = %path.display(), from, to = from + 1, "migrated the CDR store schema");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(err("setting the schema version"))?;
    tx.commit().map_err(err("committing the schema migration"))
}
