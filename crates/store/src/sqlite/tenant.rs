//! Tenant data's SQL: the writer's side of [`TenantStore::apply_tenant`] (an admin
//! operation in its own IMMEDIATE transaction, like a post) and the read side of
//! [`TenantStore`] for [`SqliteStore`].

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::writer::Admin;
use super::{DecodeError, SqliteStore, collect};
use crate::{Applied, StoreError, StoredEntry, TenantChange, TenantData, TenantEntry, TenantStore};

/// Why a tenant operation failed, before the database file is attached.
enum Fail {
    Sql(rusqlite::Error),
    Corrupt {
        table: &'static str,
        rowid: i64,
        detail: String,
    },
    /// Entries changed since the change's base: (section, key, revision).
    Stale(Vec<(String, String, i64)>),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl Fail {
    fn into_store(self, path: &Path, context: &'static str, base: Option<i64>) -> StoreError {
        match self {
            Fail::Sql(source) => StoreError::Sqlite {
                path: path.to_path_buf(),
                context,
                source,
            },
            Fail::Corrupt {
                table,
                rowid,
                detail,
            } => StoreError::Corrupt {
                path: path.to_path_buf(),
                table,
                rowid,
                detail,
            },
            Fail::Stale(changed) => StoreError::StaleTenant {
                path: path.to_path_buf(),
                // Only a change with a base is ever stale.
                base: base.unwrap_or_default(),
                changed,
            },
        }
    }
}

/// `tenant_meta.revision`: the revision of the latest change.
fn read_revision(conn: &Connection) -> Result<i64, Fail> {
    let found = conn
        .prepare_cached("SELECT revision FROM tenant_meta WHERE id = 1")?
        .query_row([], |row| {
            Ok(row.get::<_, i64>(0).map_err(|e| format!("revision: {e}")))
        })
        .optional()?;
    let corrupt = |detail: String| Fail::Corrupt {
        table: "tenant_meta",
        rowid: 1,
        detail,
    };
    match found {
        Some(Ok(revision)) => Ok(revision),
        Some(Err(detail)) => Err(corrupt(detail)),
        None => Err(corrupt("the row is missing".to_owned())),
    }
}

/// What a key of a change should become: `None` is deleted.
type Wanted = Option<(Option<String>, String)>;
/// An entry's (section, key).
type Key = (String, String);
/// What a write replaces: the stored entry's owner and body.
type Stored = (Option<String>, String);

/// The writer's side of [`TenantStore::apply_tenant`], in its own IMMEDIATE transaction:
/// SQLite's write lock makes the read-check-write safe; PostgreSQL would lock
/// `tenant_meta`'s row first. A refused change is rolled back (nothing was written).
pub(crate) fn apply(
    conn: &mut Connection,
    path: &Path,
    change: TenantChange,
) -> Result<Applied, StoreError> {
    const CONTEXT: &str = "applying a tenant change";
    let base = change.base_revision;
    apply_in(conn, change).map_err(|e| e.into_store(path, CONTEXT, base))
}

fn apply_in(conn: &mut Connection, change: TenantChange) -> Result<Applied, Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = read_revision(&tx)?;

    // Each key once: the last upsert counts, a removal wins. Written in the order the
    // change gives them, so that new entries keep it (their `position`).
    let mut order: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut wanted: BTreeMap<(String, String), Wanted> = BTreeMap::new();
    for (i, e) in change.upserts.into_iter().enumerate() {
        order.entry((e.section.clone(), e.key.clone())).or_insert(i);
        wanted.insert((e.section, e.key), Some((e.enterprise, e.body)));
    }
    for key in change.removals {
        wanted.insert(key, None);
    }

    // Each write with what it replaces (owner and body), for the audit log.
    let mut writes: Vec<(Key, Wanted, Option<Stored>)> = Vec::new();
    let mut stale = Vec::new();
    {
        let mut st = tx.prepare_cached(
            "SELECT rowid, enterprise, body, revision FROM tenant_entry
             WHERE section = ?1 AND key = ?2",
        )?;
        for (key, want) in wanted {
            let stored = st
                .query_row(params![key.0, key.1], |row| {
                    let rowid: i64 = row.get(0)?;
                    let decoded = (|| -> Result<(Option<String>, String, i64), DecodeError> {
                        Ok((row.get(1)?, row.get(2)?, row.get(3)?))
                    })();
                    Ok(decoded.map_err(|d| (rowid, d.0)))
                })
                .optional()?
                .transpose()
                .map_err(|(rowid, detail)| Fail::Corrupt {
                    table: "tenant_entry",
                    rowid,
                    detail: format!("{} {:?}: {detail}", key.0, key.1),
                })?;
            let changes = match (&stored, &want) {
                (None, None) => false,
                (Some((enterprise, body, _)), Some((new_enterprise, new_body))) => {
                    enterprise != new_enterprise || body != new_body
                }
                _ => true,
            };
            if !changes {
                continue;
            }
            if let (Some(base), Some((_, _, revision))) = (change.base_revision, &stored)
                && *revision > base
            {
                stale.push((key.0.clone(), key.1.clone(), *revision));
            }
            let before = stored.map(|(enterprise, body, _)| (enterprise, body));
            writes.push((key, want, before));
        }
    }
    writes.sort_by_key(|(key, _, _)| order.get(key).copied().unwrap_or(usize::MAX));
    if !stale.is_empty() {
        // Dropping the transaction rolls it back: nothing was written anyway.
        return Err(Fail::Stale(stale));
    }

    let revision = if writes.is_empty() {
        current
    } else {
        current.saturating_add(1)
    };
    let at = change.at.as_microsecond();
    for ((section, key), want, before) in &writes {
        // Who changed what, in the same transaction as the change: never one without
        // the other.
        let owner = want
            .as_ref()
            .and_then(|(enterprise, _)| enterprise.clone())
            .or_else(|| {
                before
                    .as_ref()
                    .and_then(|(enterprise, _)| enterprise.clone())
            });
        tx.prepare_cached(
            "INSERT INTO audit (at, actor, source, enterprise, action, target, before, after)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            at,
            change.actor,
            change.actor_source,
            owner,
            if want.is_some() { "put" } else { "delete" },
            format!("{section}/{key}"),
            before.as_ref().map(|(_, body)| body),
            want.as_ref().map(|(_, body)| body),
        ])?;
        match want {
            Some((enterprise, body)) => {
                tx.prepare_cached(
                    "INSERT INTO tenant_entry (section, key, enterprise, body, revision, position)
                     VALUES (?1, ?2, ?3, ?4, ?5,
                             (SELECT COALESCE(MAX(position), 0) + 1 FROM tenant_entry))
                     ON CONFLICT (section, key) DO UPDATE
                     SET enterprise = excluded.enterprise, body = excluded.body,
                         revision = excluded.revision",
                )?
                .execute(params![section, key, enterprise, body, revision])?;
            }
            None => {
                tx.prepare_cached("DELETE FROM tenant_entry WHERE section = ?1 AND key = ?2")?
                    .execute(params![section, key])?;
            }
        }
    }
    if !writes.is_empty() {
        tx.prepare_cached("UPDATE tenant_meta SET revision = ?1 WHERE id = 1")?
            .execute([revision])?;
    }
    if let Some((origin, digest)) = &change.source {
        tx.prepare_cached(
            "INSERT INTO tenant_source (origin, digest, revision) VALUES (?1, ?2, ?3)
             ON CONFLICT (origin) DO UPDATE
             SET digest = excluded.digest, revision = excluded.revision",
        )?
        .execute(params![origin, digest, revision])?;
    }
    tx.commit()?;
    Ok(Applied {
        revision,
        changed: writes.len(),
    })
}

/// Decodes a `tenant_entry` row selected as `rowid, section, key, enterprise, body,
/// revision`.
fn stored_from_row(row: &Row<'_>) -> rusqlite::Result<Result<StoredEntry, (i64, String)>> {
    let rowid: i64 = row.get(0)?;
    let decoded = (|| -> Result<StoredEntry, DecodeError> {
        Ok(StoredEntry {
            entry: TenantEntry {
                section: row.get(1)?,
                key: row.get(2)?,
                enterprise: row.get(3)?,
                body: row.get(4)?,
            },
            revision: row.get(5)?,
        })
    })();
    Ok(decoded.map_err(|d| (rowid, d.0)))
}

impl SqliteStore {
    fn tenant_error(&self, context: &'static str) -> impl Fn(Fail) -> StoreError + '_ {
        move |e| e.into_store(&self.path, context, None)
    }
}

impl TenantStore for SqliteStore {
    fn tenant(&self) -> Result<TenantData, StoreError> {
        const CONTEXT: &str = "reading the tenant data";
        let mut conn = self.reader();
        // One snapshot: the revision and the entries agree.
        let tx = conn.transaction().map_err(self.err(CONTEXT))?;
        let revision = read_revision(&tx).map_err(self.tenant_error(CONTEXT))?;
        let entries = {
            let mut st = tx
                .prepare_cached(
                    "SELECT rowid, section, key, enterprise, body, revision
                     FROM tenant_entry ORDER BY section, position",
                )
                .map_err(self.err(CONTEXT))?;
            let rows = st
                .query_map([], |row| {
                    Ok(stored_from_row(row)?
                        .map_err(|(rowid, d)| self.corrupt("tenant_entry", rowid, d)))
                })
                .map_err(self.err(CONTEXT))?;
            collect(rows, self.err(CONTEXT))?
        };
        tx.finish().map_err(self.err(CONTEXT))?;
        Ok(TenantData { revision, entries })
    }

    fn tenant_revision(&self) -> Result<i64, StoreError> {
        let conn = self.reader();
        read_revision(&conn).map_err(self.tenant_error("reading the tenant revision"))
    }

    fn apply_tenant(&self, change: TenantChange) -> Result<Applied, StoreError> {
        self.admin(|reply| Admin::ApplyTenant(change, reply))
    }

    fn tenant_source(&self, origin: &str) -> Result<Option<(String, i64)>, StoreError> {
        const CONTEXT: &str = "reading a tenant source";
        let conn = self.reader();
        let found = conn
            .prepare_cached("SELECT rowid, digest, revision FROM tenant_source WHERE origin = ?1")
            .and_then(|mut st| {
                st.query_row([origin], |row| {
                    let rowid: i64 = row.get(0)?;
                    let decoded = (|| -> Result<(String, i64), DecodeError> {
                        Ok((row.get(1)?, row.get(2)?))
                    })();
                    Ok(decoded.map_err(|d| (rowid, d.0)))
                })
                .optional()
            })
            .map_err(self.err(CONTEXT))?;
        found.transpose().map_err(|(rowid, detail)| {
            self.corrupt(
                "tenant_source",
                rowid,
                format!("origin {origin:?}: {detail}"),
            )
        })
    }
}
