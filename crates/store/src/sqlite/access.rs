//! Access's SQL: the writer's side of [`AccessStore`]'s writes (admin operations, each
//! in its own IMMEDIATE transaction, durable when answered) and its reads on the
//! reading connection.

use std::path::Path;
use std::sync::mpsc::{self, Sender};

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::writer::{Admin, Msg};
use super::{DecodeError, SqliteStore, collect, sql_limit, ts_from_us};
use crate::{AccessStore, ApiKey, AuditEntry, NewAudit, NewUser, Session, StoreError, User};

type Reply<T> = Sender<Result<T, StoreError>>;

/// A write of [`AccessStore`], run by the writer.
pub(crate) enum AccessOp {
    AddUser(NewUser, Reply<User>),
    SetPassword {
        user_id: i64,
        password_hash: String,
        at: Timestamp,
        keep_session: Option<String>,
        reply: Reply<()>,
    },
    RemoveUser(i64, Reply<bool>),
    CreateSession {
        token_hash: String,
        user_id: i64,
        csrf_token: String,
        expires_at: Timestamp,
        source: Option<String>,
        at: Timestamp,
        reply: Reply<()>,
    },
    EndSession(String, Reply<()>),
    AddApiKey {
        key_hash: String,
        user_id: i64,
        name: String,
        at: Timestamp,
        reply: Reply<i64>,
    },
    RemoveApiKey {
        user_id: i64,
        key_id: i64,
        reply: Reply<bool>,
    },
    Audit(NewAudit, Reply<i64>),
}

/// A user's columns, as [`user_from_row`] decodes them from `offset` on.
const USER_COLUMNS: &str = "u.id, u.login, u.role, u.enterprise, u.created_at, \
     u.password_changed_at";
const AUDIT_COLUMNS: &str = "id, at, actor, source, enterprise, action, target, before, after";

/// A row that could not be decoded: (table, rowid, what is wrong).
type Bad = (&'static str, i64, String);

/// Decodes the user selected as [`USER_COLUMNS`] starting at column `offset`.
fn user_from_row(row: &Row<'_>, offset: usize) -> rusqlite::Result<Result<User, Bad>> {
    let id: i64 = row.get(offset)?;
    let decoded = (|| -> Result<User, DecodeError> {
        let role: String = row.get(offset + 2)?;
        Ok(User {
            id,
            login: row.get(offset + 1)?,
            role: role.parse().map_err(|e| format!("{e}"))?,
            enterprise: row.get(offset + 3)?,
            created_at: ts_from_us(row.get(offset + 4)?)?,
            password_changed_at: ts_from_us(row.get(offset + 5)?)?,
        })
    })();
    Ok(decoded.map_err(|d| ("app_user", id, d.0)))
}

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<Result<AuditEntry, Bad>> {
    let id: i64 = row.get(0)?;
    let decoded = (|| -> Result<AuditEntry, DecodeError> {
        Ok(AuditEntry {
            id,
            at: ts_from_us(row.get(1)?)?,
            actor: row.get(2)?,
            source: row.get(3)?,
            enterprise: row.get(4)?,
            action: row.get(5)?,
            target: row.get(6)?,
            before: row.get(7)?,
            after: row.get(8)?,
        })
    })();
    Ok(decoded.map_err(|d| ("audit", id, d.0)))
}

/// Runs one access write on the writer's connection and answers it.
pub(crate) fn run(conn: &mut Connection, path: &Path, op: AccessOp) {
    let sql = |context: &'static str| {
        move |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            context,
            source,
        }
    };
    let no_user = |id: i64| StoreError::UserNotFound {
        path: path.to_path_buf(),
        id,
    };
    // Whether the user exists, inside the operation's transaction.
    let exists = |conn: &Connection, id: i64| -> rusqlite::Result<bool> {
        conn.prepare_cached("SELECT 1 FROM app_user WHERE id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
    };
    match op {
        AccessOp::AddUser(user, reply) => {
            const CONTEXT: &str = "adding a user";
            let result = (|| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql(CONTEXT))?;
                let taken = tx
                    .prepare_cached("SELECT 1 FROM app_user WHERE login = ?1")
                    .and_then(|mut st| st.query_row([&user.login], |_| Ok(())).optional())
                    .map_err(sql(CONTEXT))?
                    .is_some();
                if taken {
                    return Err(StoreError::UserExists {
                        path: path.to_path_buf(),
                        login: user.login.clone(),
                    });
                }
                let at = user.at.as_microsecond();
                tx.prepare_cached(
                    "INSERT INTO app_user (login, password_hash, role, enterprise, created_at,
                                           password_changed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        user.login,
                        user.password_hash,
                        user.role.as_str(),
                        user.enterprise,
                        at
                    ])
                })
                .map_err(sql(CONTEXT))?;
                let id = tx.last_insert_rowid();
                tx.commit().map_err(sql(CONTEXT))?;
                Ok(User {
                    id,
                    login: user.login,
                    role: user.role,
                    enterprise: user.enterprise,
                    created_at: user.at,
                    password_changed_at: user.at,
                })
            })();
            let _ = reply.send(result);
        }
        AccessOp::SetPassword {
            user_id,
            password_hash,
            at,
            keep_session,
            reply,
        } => {
            const CONTEXT: &str = "setting a user's password";
            let result = (|| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql(CONTEXT))?;
                let n = tx
                    .prepare_cached(
                        "UPDATE app_user SET password_hash = ?2, password_changed_at = ?3
                         WHERE id = ?1",
                    )
                    .and_then(|mut st| {
                        st.execute(params![user_id, password_hash, at.as_microsecond()])
                    })
                    .map_err(sql(CONTEXT))?;
                if n == 0 {
                    return Err(no_user(user_id));
                }
                // `?2 IS NULL OR`: with no session to keep, every one goes (a NULL
                // comparison would keep them all).
                tx.prepare_cached(
                    "DELETE FROM app_session
                     WHERE user_id = ?1 AND (?2 IS NULL OR token_hash <> ?2)",
                )
                .and_then(|mut st| st.execute(params![user_id, keep_session]))
                .map_err(sql(CONTEXT))?;
                tx.commit().map_err(sql(CONTEXT))
            })();
            let _ = reply.send(result);
        }
        AccessOp::RemoveUser(user_id, reply) => {
            const CONTEXT: &str = "removing a user";
            let result = (|| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql(CONTEXT))?;
                // Spelled out rather than left to ON DELETE CASCADE, which needs
                // `foreign_keys` on the connection (the store's are; a tool's may not).
                for st in [
                    "DELETE FROM app_session WHERE user_id = ?1",
                    "DELETE FROM api_key WHERE user_id = ?1",
                ] {
                    tx.prepare_cached(st)
                        .and_then(|mut st| st.execute([user_id]))
                        .map_err(sql(CONTEXT))?;
                }
                let n = tx
                    .prepare_cached("DELETE FROM app_user WHERE id = ?1")
                    .and_then(|mut st| st.execute([user_id]))
                    .map_err(sql(CONTEXT))?;
                tx.commit().map_err(sql(CONTEXT))?;
                Ok(n > 0)
            })();
            let _ = reply.send(result);
        }
        AccessOp::CreateSession {
            token_hash,
            user_id,
            csrf_token,
            expires_at,
            source,
            at,
            reply,
        } => {
            const CONTEXT: &str = "creating a session";
            let result = (|| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql(CONTEXT))?;
                if !exists(&tx, user_id).map_err(sql(CONTEXT))? {
                    return Err(no_user(user_id));
                }
                // The user's expired sessions go: the table holds live sessions only
                // (plus those of users who never log in again, until they do).
                tx.prepare_cached(
                    "DELETE FROM app_session WHERE user_id = ?1 AND expires_at <= ?2",
                )
                .and_then(|mut st| st.execute(params![user_id, at.as_microsecond()]))
                .map_err(sql(CONTEXT))?;
                tx.prepare_cached(
                    "INSERT INTO app_session (token_hash, user_id, csrf_token, created_at,
                                              expires_at, source)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        token_hash,
                        user_id,
                        csrf_token,
                        at.as_microsecond(),
                        expires_at.as_microsecond(),
                        source
                    ])
                })
                .map_err(sql(CONTEXT))?;
                tx.commit().map_err(sql(CONTEXT))
            })();
            let _ = reply.send(result);
        }
        AccessOp::EndSession(token_hash, reply) => {
            let result = conn
                .prepare_cached("DELETE FROM app_session WHERE token_hash = ?1")
                .and_then(|mut st| st.execute([token_hash]))
                .map(|_| ())
                .map_err(sql("ending a session"));
            let _ = reply.send(result);
        }
        AccessOp::AddApiKey {
            key_hash,
            user_id,
            name,
            at,
            reply,
        } => {
            const CONTEXT: &str = "adding an API key";
            let result = (|| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql(CONTEXT))?;
                if !exists(&tx, user_id).map_err(sql(CONTEXT))? {
                    return Err(no_user(user_id));
                }
                tx.prepare_cached(
                    "INSERT INTO api_key (key_hash, user_id, name, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut st| {
                    st.execute(params![key_hash, user_id, name, at.as_microsecond()])
                })
                .map_err(sql(CONTEXT))?;
                let id = tx.last_insert_rowid();
                tx.commit().map_err(sql(CONTEXT))?;
                Ok(id)
            })();
            let _ = reply.send(result);
        }
        AccessOp::RemoveApiKey {
            user_id,
            key_id,
            reply,
        } => {
            let result = conn
                .prepare_cached("DELETE FROM api_key WHERE id = ?1 AND user_id = ?2")
                .and_then(|mut st| st.execute([key_id, user_id]))
                .map(|n| n > 0)
                .map_err(sql("revoking an API key"));
            let _ = reply.send(result);
        }
        AccessOp::Audit(entry, reply) => {
            // One statement: its own transaction, and `last_insert_rowid` is its row's
            // (only the writer writes on this connection).
            let result = conn
                .prepare_cached(
                    "INSERT INTO audit (at, actor, source, enterprise, action, target, before,
                                        after)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut st| {
                    st.insert(params![
                        entry.at.as_microsecond(),
                        entry.actor,
                        entry.source,
                        entry.enterprise,
                        entry.action,
                        entry.target,
                        entry.before,
                        entry.after
                    ])
                })
                .map_err(sql("appending to the audit log"));
            let _ = reply.send(result);
        }
    }
}

impl SqliteStore {
    /// Sends an access write to the writer and waits for its (durable) answer. Unlike
    /// [`admin`](SqliteStore::admin), leaves the billing book alone: no account changed.
    fn access<T>(&self, make: impl FnOnce(Reply<T>) -> AccessOp) -> Result<T, StoreError> {
        let (reply, result) = mpsc::channel();
        let stopped = || StoreError::WriterStopped {
            path: self.path.clone(),
        };
        self.tx
            .send(Msg::Admin(Admin::Access(make(reply))))
            .map_err(|_| stopped())?;
        result.recv().map_err(|_| stopped())?
    }

    fn bad(&self, (table, rowid, detail): Bad) -> StoreError {
        self.corrupt(table, rowid, detail)
    }
}

impl AccessStore for SqliteStore {
    fn add_user(&self, user: NewUser) -> Result<User, StoreError> {
        if let Some(reason) = crate::access::invalid(&user) {
            return Err(StoreError::InvalidUser {
                path: self.path.clone(),
                login: user.login,
                reason,
            });
        }
        self.access(|reply| AccessOp::AddUser(user, reply))
    }

    fn user_by_login(&self, login: &str) -> Result<Option<(User, String)>, StoreError> {
        const CONTEXT: &str = "reading a user";
        let conn = self.reader();
        let found = conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS}, u.password_hash FROM app_user u WHERE u.login = ?1"
            ))
            .and_then(|mut st| {
                st.query_row([login], |row| {
                    let hash: rusqlite::Result<String> = row.get(6);
                    Ok(user_from_row(row, 0)?.and_then(|user| match hash {
                        Ok(hash) => Ok((user, hash)),
                        Err(e) => Err(("app_user", user.id, format!("password_hash: {e}"))),
                    }))
                })
                .optional()
            })
            .map_err(self.err(CONTEXT))?;
        found.transpose().map_err(|bad| self.bad(bad))
    }

    fn users(&self, enterprise: Option<&str>) -> Result<Vec<User>, StoreError> {
        const CONTEXT: &str = "reading users";
        let conn = self.reader();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM app_user u
                 WHERE ?1 IS NULL OR u.enterprise = ?1 ORDER BY u.login"
            ))
            .map_err(self.err(CONTEXT))?;
        let rows = st
            .query_map([enterprise], |row| {
                Ok(user_from_row(row, 0)?.map_err(|bad| self.bad(bad)))
            })
            .map_err(self.err(CONTEXT))?;
        collect(rows, self.err(CONTEXT))
    }

    fn set_password(
        &self,
        user_id: i64,
        password_hash: &str,
        at: Timestamp,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        self.access(|reply| AccessOp::SetPassword {
            user_id,
            password_hash: password_hash.to_owned(),
            at,
            keep_session: keep_session.map(str::to_owned),
            reply,
        })
    }

    fn remove_user(&self, user_id: i64) -> Result<bool, StoreError> {
        self.access(|reply| AccessOp::RemoveUser(user_id, reply))
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
        self.access(|reply| AccessOp::CreateSession {
            token_hash: token_hash.to_owned(),
            user_id,
            csrf_token: csrf_token.to_owned(),
            expires_at,
            source: source.map(str::to_owned),
            at,
            reply,
        })
    }

    fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        const CONTEXT: &str = "reading a session";
        let conn = self.reader();
        // Selected whatever its expiry, so that a corrupt expiry is reported rather than
        // compared (SQLite orders any text after every integer).
        let found = conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS}, s.rowid, s.csrf_token, s.expires_at
                 FROM app_session s JOIN app_user u ON u.id = s.user_id
                 WHERE s.token_hash = ?1"
            ))
            .and_then(|mut st| {
                st.query_row([token_hash], |row| {
                    let rowid: i64 = row.get(6)?;
                    let session = (|| -> Result<(String, Timestamp), DecodeError> {
                        Ok((row.get(7)?, ts_from_us(row.get(8)?)?))
                    })();
                    Ok(user_from_row(row, 0)?.and_then(|user| match session {
                        Ok((csrf_token, expires_at)) => Ok(Session {
                            user,
                            csrf_token,
                            expires_at,
                        }),
                        Err(d) => Err(("app_session", rowid, d.0)),
                    }))
                })
                .optional()
            })
            .map_err(self.err(CONTEXT))?;
        let session = found.transpose().map_err(|bad| self.bad(bad))?;
        Ok(session.filter(|s| s.expires_at > now))
    }

    fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.access(|reply| AccessOp::EndSession(token_hash.to_owned(), reply))
    }

    fn add_api_key(
        &self,
        key_hash: &str,
        user_id: i64,
        name: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        self.access(|reply| AccessOp::AddApiKey {
            key_hash: key_hash.to_owned(),
            user_id,
            name: name.to_owned(),
            at,
            reply,
        })
    }

    fn user_by_api_key(&self, key_hash: &str) -> Result<Option<User>, StoreError> {
        const CONTEXT: &str = "reading an API key's user";
        let conn = self.reader();
        let found = conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM api_key k JOIN app_user u ON u.id = k.user_id
                 WHERE k.key_hash = ?1"
            ))
            .and_then(|mut st| {
                st.query_row([key_hash], |row| user_from_row(row, 0))
                    .optional()
            })
            .map_err(self.err(CONTEXT))?;
        found.transpose().map_err(|bad| self.bad(bad))
    }

    fn api_keys(&self, user_id: i64) -> Result<Vec<ApiKey>, StoreError> {
        const CONTEXT: &str = "reading a user's API keys";
        let conn = self.reader();
        let mut st = conn
            .prepare_cached(
                "SELECT id, user_id, name, created_at FROM api_key WHERE user_id = ?1
                 ORDER BY created_at, id",
            )
            .map_err(self.err(CONTEXT))?;
        let rows = st
            .query_map([user_id], |row| {
                let id: i64 = row.get(0)?;
                let decoded = (|| -> Result<ApiKey, DecodeError> {
                    Ok(ApiKey {
                        id,
                        user_id: row.get(1)?,
                        name: row.get(2)?,
                        created_at: ts_from_us(row.get(3)?)?,
                    })
                })();
                Ok(decoded.map_err(|d| self.bad(("api_key", id, d.0))))
            })
            .map_err(self.err(CONTEXT))?;
        collect(rows, self.err(CONTEXT))
    }

    fn remove_api_key(&self, user_id: i64, key_id: i64) -> Result<bool, StoreError> {
        self.access(|reply| AccessOp::RemoveApiKey {
            user_id,
            key_id,
            reply,
        })
    }

    fn audit(&self, entry: NewAudit) -> Result<i64, StoreError> {
        self.access(|reply| AccessOp::Audit(entry, reply))
    }

    fn audit_log(
        &self,
        enterprise: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        const CONTEXT: &str = "reading the audit log";
        let conn = self.reader();
        // Two statements rather than `?1 IS NULL OR enterprise = ?1`, so that each uses
        // its index (`audit_at`, `audit_enterprise_at`) in the order it returns.
        let mut st = match enterprise {
            None => conn.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit ORDER BY at DESC, id DESC LIMIT ?2"
            )),
            Some(_) => conn.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE enterprise = ?1
                 ORDER BY at DESC, id DESC LIMIT ?2"
            )),
        }
        .map_err(self.err(CONTEXT))?;
        let rows = st
            .query_map(params![enterprise, sql_limit(limit)], |row| {
                Ok(audit_from_row(row)?.map_err(|bad| self.bad(bad)))
            })
            .map_err(self.err(CONTEXT))?;
        collect(rows, self.err(CONTEXT))
    }
}
