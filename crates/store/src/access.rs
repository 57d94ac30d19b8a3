//! The access seam of the admin HTTP API: its users, their login sessions and API keys,
//! and the audit log of what they changed.
//!
//! The store keeps only hashes: passwords are hashed, and session tokens and API keys
//! generated and hashed, by the API. A session's CSRF token is kept as it is (the API
//! compares it with the one the browser sends back).

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{ParseEnumError, StoreError};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the node: every enterprise, the node's settings. Belongs to no enterprise.
    Operator,
    /// Administers one enterprise's data.
    EnterpriseAdmin,
    /// Reads one enterprise's data and records.
    EnterpriseViewer,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 3] = [
        Role::Operator,
        Role::EnterpriseAdmin,
        Role::EnterpriseViewer,
    ];

    /// The stable name stored in the database, e.g. `"enterprise_admin"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::EnterpriseAdmin => "enterprise_admin",
            Role::EnterpriseViewer => "enterprise_viewer",
        }
    }

    /// Whether a user with this role belongs to an enterprise (and must name it).
    pub fn is_enterprise(self) -> bool {
        !matches!(self, Role::Operator)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "role",
                value: s.to_owned(),
            })
    }
}

/// A user of the admin API (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The store's id for the user.
    pub id: i64,
    /// What the user logs in with; unique.
    pub login: String,
    /// What the user may do.
    pub role: Role,
    /// The enterprise an enterprise role belongs to; `None` for an operator.
    pub enterprise: Option<String>,
    /// When the user was added.
    pub created_at: Timestamp,
    /// When the password was last set (at first, when the user was added).
    pub password_changed_at: Timestamp,
}

/// A user to add with [`AccessStore::add_user`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// What the user logs in with; must not be taken.
    pub login: String,
    /// The password's hash, as the API computed it.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// Required for an enterprise role, absent for an operator.
    pub enterprise: Option<String>,
    /// When the user is added (also its first password change).
    pub at: Timestamp,
}

/// A live login session, as found by [`AccessStore::session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Whose session it is, as the user is now (role and enterprise included).
    pub user: User,
    /// The session's CSRF token, for the API to compare with the request's.
    pub csrf_token: String,
    /// When the session stops being valid.
    pub expires_at: Timestamp,
}

/// An API key of a user, as listed (the key itself is never kept, only its hash, which
/// is not listed either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The store's id for the key: what revoking it names.
    pub id: i64,
    /// Whose key it is.
    pub user_id: i64,
    /// What its owner called it, e.g. `"crm-sync"`.
    pub name: String,
    /// When it was made.
    pub created_at: Timestamp,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The store's id for the entry: increasing in the order entries were appended.
    pub id: i64,
    /// When the action happened.
    pub at: Timestamp,
    /// Who did it (a login, or e.g. `"cli"`).
    pub actor: String,
    /// Where from (an address), if known.
    pub source: Option<String>,
    /// The enterprise concerned; `None` for the node's own settings.
    pub enterprise: Option<String>,
    /// What was done, e.g. `"tenant.apply"`, `"user.add"`.
    pub action: String,
    /// What it was done to, e.g. `"group/sales"`.
    pub target: String,
    /// The target before (text as the API renders it), if it existed.
    pub before: Option<String>,
    /// The target after, if it still exists.
    pub after: Option<String>,
}

/// An entry to append to the audit log with [`AccessStore::audit`]: an
/// [`AuditEntry`] without its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// When the action happened.
    pub at: Timestamp,
    /// Who did it.
    pub actor: String,
    /// Where from, if known.
    pub source: Option<String>,
    /// The enterprise concerned; `None` for the node's own settings.
    pub enterprise: Option<String>,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// The target before, if it existed.
    pub before: Option<String>,
    /// The target after, if it still exists.
    pub after: Option<String>,
}

/// Why `user` cannot be stored as it is, if it cannot (checked the same way by both
/// backends, before the database's CHECK, which is the last line).
pub(crate) fn invalid(user: &NewUser) -> Option<String> {
    if user.login.is_empty() {
        return Some("the login is empty".to_owned());
    }
    match (&user.enterprise, user.role.is_enterprise()) {
        (None, true) => Some(format!("role {} needs an enterprise", user.role)),
        (Some(e), true) if e.is_empty() => Some("the enterprise is empty".to_owned()),
        (Some(e), false) => Some(format!(
            "role {} belongs to no enterprise (given {e:?})",
            user.role
        )),
        _ => None,
    }
}

/// Users, sessions, API keys and the audit log: SQLite now, PostgreSQL later.
///
/// Object safe: the API holds an `Arc<dyn AccessStore>` (the same
/// [`SqliteStore`](crate::SqliteStore) as the rest of the data).
///
/// Every write is durable when it returns, and every read sees every write that
/// returned before it, in this process or another.
///
/// # PostgreSQL
/// Each write is one statement or one short transaction: `add_user` is `INSERT …
/// RETURNING id` (a unique violation on `login` is [`StoreError::UserExists`]);
/// `set_password` an `UPDATE` and a `DELETE FROM app_session … AND token_hash IS
/// DISTINCT FROM $keep` in one transaction; `remove_api_key` a `DELETE … WHERE id AND
/// user_id`;
/// `remove_user` a `DELETE` (sessions and keys go by `ON DELETE CASCADE`).
pub trait AccessStore: Send + Sync {
    /// Adds a user and returns it with its id.
    ///
    /// Refused with [`StoreError::UserExists`] if the login is taken, and with
    /// [`StoreError::InvalidUser`] if the login is empty, an enterprise role names no
    /// enterprise (or an empty one), or an operator names one.
    fn add_user(&self, user: NewUser) -> Result<User, StoreError>;

    /// The user with this login, and its password hash.
    fn user_by_login(&self, login: &str) -> Result<Option<(User, String)>, StoreError>;

    /// The users of `enterprise`, or every user with `None`, by login.
    fn users(&self, enterprise: Option<&str>) -> Result<Vec<User>, StoreError>;

    /// Sets the user's password hash and `password_changed_at`, and ends every session
    /// of the user but `keep_session` (the token hash of the session that changed it,
    /// if one did), in one transaction. [`StoreError::UserNotFound`] if there is no
    /// such user.
    fn set_password(
        &self,
        user_id: i64,
        password_hash: &str,
        at: Timestamp,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Removes the user, its sessions and its API keys. `false` if there was no such
    /// user. Its audit entries stay.
    fn remove_user(&self, user_id: i64) -> Result<bool, StoreError>;

    /// Records a session of the user under the hash of its token, valid until
    /// `expires_at`. Also forgets the user's sessions that expired by `at`.
    /// [`StoreError::UserNotFound`] if there is no such user.
    fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: Timestamp,
        source: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The session with this token hash, unless it is unknown, ended, or expired by
    /// `now` (expired at or before it).
    fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>, StoreError>;

    /// Ends the session with this token hash (nothing if there is none).
    fn end_session(&self, token_hash: &str) -> Result<(), StoreError>;

    /// Records an API key of the user under its hash, named `name`; returns the key's
    /// id. [`StoreError::UserNotFound`] if there is no such user.
    fn add_api_key(
        &self,
        key_hash: &str,
        user_id: i64,
        name: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError>;

    /// The user whose API key has this hash.
    fn user_by_api_key(&self, key_hash: &str) -> Result<Option<User>, StoreError>;

    /// The user's API keys, oldest first.
    fn api_keys(&self, user_id: i64) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes the user's key `key_id`: it stops working at once. `false` if the user
    /// has no such key (another user's key is not touched).
    fn remove_api_key(&self, user_id: i64, key_id: i64) -> Result<bool, StoreError>;

    /// Appends an entry to the audit log; returns its id. Durable when it returns.
    fn audit(&self, entry: NewAudit) -> Result<i64, StoreError>;

    /// The latest audit entries, newest (latest `at`, then latest appended) first, at
    /// most `limit` (0: all): every entry with `None`, only those of the enterprise
    /// with `Some`.
    fn audit_log(
        &self,
        enterprise: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}
