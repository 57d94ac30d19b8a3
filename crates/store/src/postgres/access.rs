//! [`AccessStore`] for [`PgStore`]: each write one statement or one short transaction
//! on a pooled connection, committed (durable, and seen by every node) when it returns.
//!
//! Where SQLite checks first inside its IMMEDIATE transaction (a taken login, a missing
//! user), this backend lets the database's constraints decide, so that two nodes racing
//! cannot both pass a check: a unique violation on the login is
//! [`StoreError::UserExists`], a foreign-key violation on the user
//! [`StoreError::UserNotFound`], a CHECK violation on the user
//! [`StoreError::InvalidUser`] (the same rules are checked before, as in SQLite).

use std::future::Future;
use std::sync::Arc;

use deadpool_postgres::Object;
use jiff::Timestamp;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::{PgStore, Shared, ts_from_us};
use crate::{AccessStore, ApiKey, AuditEntry, NewAudit, NewUser, Session, StoreError, User};

/// A user's columns, as [`user_from_row`] decodes them from `offset` on.
const USER_COLUMNS: &str = "u.id, u.login, u.role, u.enterprise, u.created_at, \
     u.password_changed_at";
const AUDIT_COLUMNS: &str = "id, at, actor, source, enterprise, action, target, before, after";

/// Why a row could not be decoded.
fn detail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Decodes the user selected as [`USER_COLUMNS`] starting at column `offset`.
fn user_from_row(shared: &Shared, row: &Row, offset: usize) -> Result<User, StoreError> {
    let id: i64 = row
        .try_get(offset)
        .map_err(|e| shared.corrupt("app_user", 0, format!("id: {e}")))?;
    let decoded = (|| -> Result<User, String> {
        let role: String = row.try_get(offset + 2).map_err(detail)?;
        let created_at: i64 = row.try_get(offset + 4).map_err(detail)?;
        let changed_at: i64 = row.try_get(offset + 5).map_err(detail)?;
        Ok(User {
            id,
            login: row.try_get(offset + 1).map_err(detail)?,
            role: role.parse().map_err(detail)?,
            enterprise: row.try_get(offset + 3).map_err(detail)?,
            created_at: ts_from_us(created_at).map_err(|e| format!("created_at: {e}"))?,
            password_changed_at: ts_from_us(changed_at)
                .map_err(|e| format!("password_changed_at: {e}"))?,
        })
    })();
    decoded.map_err(|d| shared.corrupt("app_user", id, d))
}

fn audit_from_row(shared: &Shared, row: &Row) -> Result<AuditEntry, StoreError> {
    let id: i64 = row
        .try_get(0)
        .map_err(|e| shared.corrupt("audit", 0, format!("id: {e}")))?;
    let decoded = (|| -> Result<AuditEntry, String> {
        let at: i64 = row.try_get(1).map_err(detail)?;
        Ok(AuditEntry {
            id,
            at: ts_from_us(at)?,
            actor: row.try_get(2).map_err(detail)?,
            source: row.try_get(3).map_err(detail)?,
            enterprise: row.try_get(4).map_err(detail)?,
            action: row.try_get(5).map_err(detail)?,
            target: row.try_get(6).map_err(detail)?,
            before: row.try_get(7).map_err(detail)?,
            after: row.try_get(8).map_err(detail)?,
        })
    })();
    decoded.map_err(|d| shared.corrupt("audit", id, d))
}

/// Whether `e` is the database refusing a row for breaking constraint `state`.
fn violates(e: &tokio_postgres::Error, state: &SqlState) -> bool {
    e.code() == Some(state)
}

impl PgStore {
    /// Runs `op` with a pooled connection on the store's runtime.
    pub(super) fn with_client<T, F, Fut>(
        &self,
        context: &'static str,
        op: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>, Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let shared = self.shared.clone();
        self.run(async move {
            let client = shared.client(context).await?;
            op(shared, client).await
        })
    }
}

impl AccessStore for PgStore {
    fn add_user(&self, user: NewUser) -> Result<User, StoreError> {
        const CONTEXT: &str = "adding a user";
        if let Some(reason) = crate::access::invalid(&user) {
            return Err(StoreError::InvalidUser {
                path: self.shared.path.clone(),
                login: user.login,
                reason,
            });
        }
        self.with_client(CONTEXT, move |shared, client| async move {
            let st = client
                .prepare_cached(
                    "INSERT INTO app_user (login, password_hash, role, enterprise, created_at,
                                           password_changed_at)
                     VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let at = user.at.as_microsecond();
            let inserted = client
                .query_one(
                    &st,
                    &[
                        &user.login,
                        &user.password_hash,
                        &user.role.as_str(),
                        &user.enterprise,
                        &at,
                    ],
                )
                .await;
            let row = match inserted {
                Ok(row) => row,
                // The login's UNIQUE: another node may have added it a moment ago, so
                // the constraint, not a SELECT before, is what decides.
                Err(e)
                    if violates(&e, &SqlState::UNIQUE_VIOLATION)
                        && e.as_db_error().and_then(|d| d.constraint())
                            == Some("app_user_login_key") =>
                {
                    return Err(StoreError::UserExists {
                        path: shared.path.clone(),
                        login: user.login,
                    });
                }
                Err(e) if violates(&e, &SqlState::CHECK_VIOLATION) => {
                    let reason = e
                        .as_db_error()
                        .map(|d| d.message().to_owned())
                        .unwrap_or_else(|| e.to_string());
                    return Err(StoreError::InvalidUser {
                        path: shared.path.clone(),
                        login: user.login,
                        reason,
                    });
                }
                Err(e) => return Err(shared.err(CONTEXT)(e)),
            };
            let id: i64 = row
                .try_get(0)
                .map_err(|e| shared.corrupt("app_user", 0, format!("id: {e}")))?;
            Ok(User {
                id,
                login: user.login,
                role: user.role,
                enterprise: user.enterprise,
                created_at: user.at,
                password_changed_at: user.at,
            })
        })
    }

    fn user_by_login(&self, login: &str) -> Result<Option<(User, String)>, StoreError> {
        const CONTEXT: &str = "reading a user";
        let login = login.to_owned();
        self.with_client(CONTEXT, move |shared, client| async move {
            let st = client
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS}, u.password_hash FROM app_user u WHERE u.login = $1"
                ))
                .await
                .map_err(shared.err(CONTEXT))?;
            let Some(row) = client
                .query_opt(&st, &[&login])
                .await
                .map_err(shared.err(CONTEXT))?
            else {
                return Ok(None);
            };
            let user = user_from_row(&shared, &row, 0)?;
            let hash: String = row
                .try_get(6)
                .map_err(|e| shared.corrupt("app_user", user.id, format!("password_hash: {e}")))?;
            Ok(Some((user, hash)))
        })
    }

    fn users(&self, enterprise: Option<&str>) -> Result<Vec<User>, StoreError> {
        const CONTEXT: &str = "reading users";
        let enterprise = enterprise.map(str::to_owned);
        self.with_client(CONTEXT, move |shared, client| async move {
            // COLLATE "C": by login in byte order, as SQLite orders them.
            let st = client
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM app_user u
                     WHERE $1::text IS NULL OR u.enterprise = $1
                     ORDER BY u.login COLLATE \"C\""
                ))
                .await
                .map_err(shared.err(CONTEXT))?;
            let rows = client
                .query(&st, &[&enterprise])
                .await
                .map_err(shared.err(CONTEXT))?;
            rows.iter()
                .map(|row| user_from_row(&shared, row, 0))
                .collect()
        })
    }

    fn set_password(
        &self,
        user_id: i64,
        password_hash: &str,
        at: Timestamp,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        const CONTEXT: &str = "setting a user's password";
        let password_hash = password_hash.to_owned();
        let keep_session = keep_session.map(str::to_owned);
        self.with_client(CONTEXT, move |shared, mut client| async move {
            let err = shared.err(CONTEXT);
            let tx = client.transaction().await.map_err(&err)?;
            let st = tx
                .prepare_cached(
                    "UPDATE app_user SET password_hash = $2, password_changed_at = $3
                     WHERE id = $1",
                )
                .await
                .map_err(&err)?;
            let n = tx
                .execute(&st, &[&user_id, &password_hash, &at.as_microsecond()])
                .await
                .map_err(&err)?;
            if n == 0 {
                return Err(StoreError::UserNotFound {
                    path: shared.path.clone(),
                    id: user_id,
                });
            }
            // IS DISTINCT FROM: with no session to keep ($2 NULL), every one goes (a
            // plain `<>` with NULL would keep them all).
            let st = tx
                .prepare_cached(
                    "DELETE FROM app_session
                     WHERE user_id = $1 AND token_hash IS DISTINCT FROM $2",
                )
                .await
                .map_err(&err)?;
            tx.execute(&st, &[&user_id, &keep_session])
                .await
                .map_err(&err)?;
            tx.commit().await.map_err(&err)
        })
    }

    fn remove_user(&self, user_id: i64) -> Result<bool, StoreError> {
        const CONTEXT: &str = "removing a user";
        self.with_client(CONTEXT, move |shared, client| async move {
            // Sessions and keys go by ON DELETE CASCADE, which PostgreSQL always
            // enforces.
            let st = client
                .prepare_cached("DELETE FROM app_user WHERE id = $1")
                .await
                .map_err(shared.err(CONTEXT))?;
            let n = client
                .execute(&st, &[&user_id])
                .await
                .map_err(shared.err(CONTEXT))?;
            Ok(n > 0)
        })
    }

    fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: Timestamp,
        source: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        const CONTEXT: &str = "creating a session";
        let token_hash = token_hash.to_owned();
        let csrf_token = csrf_token.to_owned();
        let source = source.map(str::to_owned);
        self.with_client(CONTEXT, move |shared, mut client| async move {
            let err = shared.err(CONTEXT);
            let tx = client.transaction().await.map_err(&err)?;
            // The user's expired sessions go: the table holds live sessions only (plus
            // those of users who never log in again, until they do).
            let st = tx
                .prepare_cached("DELETE FROM app_session WHERE user_id = $1 AND expires_at <= $2")
                .await
                .map_err(&err)?;
            tx.execute(&st, &[&user_id, &at.as_microsecond()])
                .await
                .map_err(&err)?;
            let st = tx
                .prepare_cached(
                    "INSERT INTO app_session (token_hash, user_id, csrf_token, created_at,
                                              expires_at, source)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await
                .map_err(&err)?;
            let inserted = tx
                .execute(
                    &st,
                    &[
                        &token_hash,
                        &user_id,
                        &csrf_token,
                        &at.as_microsecond(),
                        &expires_at.as_microsecond(),
                        &source,
                    ],
                )
                .await;
            match inserted {
                Ok(_) => {}
                // The user's foreign key: no such user (or removed meanwhile by
                // another node).
                Err(e) if violates(&e, &SqlState::FOREIGN_KEY_VIOLATION) => {
                    return Err(StoreError::UserNotFound {
                        path: shared.path.clone(),
                        id: user_id,
                    });
                }
                Err(e) => return Err(err(e)),
            }
            tx.commit().await.map_err(&err)
        })
    }

    fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        const CONTEXT: &str = "reading a session";
        let token_hash = token_hash.to_owned();
        self.with_client(CONTEXT, move |shared, client| async move {
            // Selected whatever its expiry, so that an expiry that is no instant is
            // reported rather than compared.
            let st = client
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at
                     FROM app_session s JOIN app_user u ON u.id = s.user_id
                     WHERE s.token_hash = $1"
                ))
                .await
                .map_err(shared.err(CONTEXT))?;
            let Some(row) = client
                .query_opt(&st, &[&token_hash])
                .await
                .map_err(shared.err(CONTEXT))?
            else {
                return Ok(None);
            };
            let user = user_from_row(&shared, &row, 0)?;
            let decoded = (|| -> Result<(String, Timestamp), String> {
                let expires_at: i64 = row.try_get(7).map_err(detail)?;
                Ok((
                    row.try_get(6).map_err(detail)?,
                    ts_from_us(expires_at).map_err(|e| format!("expires_at: {e}"))?,
                ))
            })();
            // app_session has no row id in PostgreSQL (its key is the token's hash,
            // not to be shown): 0.
            let (csrf_token, expires_at) =
                decoded.map_err(|d| shared.corrupt("app_session", 0, d))?;
            Ok(Some(Session {
                user,
                csrf_token,
                expires_at,
            })
            .filter(|s| s.expires_at > now))
        })
    }

    fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        const CONTEXT: &str = "ending a session";
        let token_hash = token_hash.to_owned();
        self.with_client(CONTEXT, move |shared, client| async move {
            let st = client
                .prepare_cached("DELETE FROM app_session WHERE token_hash = $1")
                .await
                .map_err(shared.err(CONTEXT))?;
            client
                .execute(&st, &[&token_hash])
                .await
                .map(|_| ())
                .map_err(shared.err(CONTEXT))
        })
    }

    fn add_api_key(
        &self,
        key_hash: &str,
        user_id: i64,
        name: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        const CONTEXT: &str = "adding an API key";
        let key_hash = key_hash.to_owned();
        let name = name.to_owned();
        self.with_client(CONTEXT, move |shared, client| async move {
            let st = client
                .prepare_cached(
                    "INSERT INTO api_key (key_hash, user_id, name, created_at)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let row = match client
                .query_one(&st, &[&key_hash, &user_id, &name, &at.as_microsecond()])
                .await
            {
                Ok(row) => row,
                Err(e) if violates(&e, &SqlState::FOREIGN_KEY_VIOLATION) => {
                    return Err(StoreError::UserNotFound {
                        path: shared.path.clone(),
                        id: user_id,
                    });
                }
                Err(e) => return Err(shared.err(CONTEXT)(e)),
            };
            row.try_get(0)
                .map_err(|e| shared.corrupt("api_key", 0, format!("id: {e}")))
        })
    }

    fn user_by_api_key(&self, key_hash: &str) -> Result<Option<User>, StoreError> {
        const CONTEXT: &str = "reading an API key's user";
        let key_hash = key_hash.to_owned();
        self.with_client(CONTEXT, move |shared, client| async move {
            let st = client
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM api_key k JOIN app_user u ON u.id = k.user_id
                     WHERE k.key_hash = $1"
                ))
                .await
                .map_err(shared.err(CONTEXT))?;
            let row = client
                .query_opt(&st, &[&key_hash])
                .await
                .map_err(shared.err(CONTEXT))?;
            row.map(|row| user_from_row(&shared, &row, 0)).transpose()
        })
    }

    fn api_keys(&self, user_id: i64) -> Result<Vec<ApiKey>, StoreError> {
        const CONTEXT: &str = "reading a user's API keys";
        self.with_client(CONTEXT, move |shared, client| async move {
            let st = client
                .prepare_cached(
                    "SELECT id, user_id, name, created_at FROM api_key WHERE user_id = $1
                     ORDER BY created_at, id",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let rows = client
                .query(&st, &[&user_id])
                .await
                .map_err(shared.err(CONTEXT))?;
            rows.iter()
                .map(|row| {
                    let id: i64 = row
                        .try_get(0)
                        .map_err(|e| shared.corrupt("api_key", 0, format!("id: {e}")))?;
                    let decoded = (|| -> Result<ApiKey, String> {
                        let created_at: i64 = row.try_get(3).map_err(detail)?;
                        Ok(ApiKey {
                            id,
                            user_id: row.try_get(1).map_err(detail)?,
                            name: row.try_get(2).map_err(detail)?,
                            created_at: ts_from_us(created_at)?,
                        })
                    })();
                    decoded.map_err(|d| shared.corrupt("api_key", id, d))
                })
                .collect()
        })
    }

    fn remove_api_key(&self, user_id: i64, key_id: i64) -> Result<bool, StoreError> {
        const CONTEXT: &str = "revoking an API key";
        self.with_client(CONTEXT, move |shared, client| async move {
            let st = client
                .prepare_cached("DELETE FROM api_key WHERE id = $1 AND user_id = $2")
                .await
                .map_err(shared.err(CONTEXT))?;
            let n = client
                .execute(&st, &[&key_id, &user_id])
                .await
                .map_err(shared.err(CONTEXT))?;
            Ok(n > 0)
        })
    }

    fn audit(&self, entry: NewAudit) -> Result<i64, StoreError> {
        const CONTEXT: &str = "appending to the audit log";
        self.with_client(CONTEXT, move |shared, client| async move {
            let st = client
                .prepare_cached(
                    "INSERT INTO audit (at, actor, source, enterprise, action, target, before,
                                        after)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let row = client
                .query_one(
                    &st,
                    &[
                        &entry.at.as_microsecond(),
                        &entry.actor,
                        &entry.source,
                        &entry.enterprise,
                        &entry.action,
                        &entry.target,
                        &entry.before,
                        &entry.after,
                    ],
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            row.try_get(0)
                .map_err(|e| shared.corrupt("audit", 0, format!("id: {e}")))
        })
    }

    fn audit_log(
        &self,
        enterprise: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        const CONTEXT: &str = "reading the audit log";
        let enterprise = enterprise.map(str::to_owned);
        // LIMIT NULL is no limit.
        let limit = (limit > 0).then(|| i64::try_from(limit).unwrap_or(i64::MAX));
        self.with_client(CONTEXT, move |shared, client| async move {
            // Two statements rather than `$1 IS NULL OR enterprise = $1`, so that each
            // uses its index (`audit_at`, `audit_enterprise_at`) in the order it
            // returns.
            let rows = match &enterprise {
                None => {
                    let st = client
                        .prepare_cached(&format!(
                            "SELECT {AUDIT_COLUMNS} FROM audit ORDER BY at DESC, id DESC
                             LIMIT $1"
                        ))
                        .await
                        .map_err(shared.err(CONTEXT))?;
                    client.query(&st, &[&limit]).await
                }
                Some(enterprise) => {
                    let st = client
                        .prepare_cached(&format!(
                            "SELECT {AUDIT_COLUMNS} FROM audit WHERE enterprise = $1
                             ORDER BY at DESC, id DESC LIMIT $2"
                        ))
                        .await
                        .map_err(shared.err(CONTEXT))?;
                    client.query(&st, &[enterprise, &limit]).await
                }
            }
            .map_err(shared.err(CONTEXT))?;
            rows.iter()
                .map(|row| audit_from_row(&shared, row))
                .collect()
        })
    }
}
