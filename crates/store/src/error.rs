//! What can go wrong, always naming the database (its file, or its URL).

use std::path::PathBuf;
use std::sync::Arc;

/// A store failure. Every variant names the database file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database's directory could not be created.
    #[error("{}: cannot create the directory {}: {source}", path.display(), dir.display())]
    CreateDir {
        /// The database file.
        path: PathBuf,
        /// The directory that could not be created.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// A PostgreSQL operation failed (the server refused a statement, the connection
    /// broke). `path` is the database's URL without its password.
    #[error("{}: {context}: {source}", path.display())]
    Postgres {
        /// The database's URL, without its password.
        path: PathBuf,
        /// What the store was doing.
        context: &'static str,
        /// The driver's error (shared: one failed batch answers every waiter).
        source: Arc<tokio_postgres::Error>,
    },

    /// The PostgreSQL server could not be reached (no connection could be made or
    /// taken from the pool in time).
    #[error("{}: {context}: the database is unreachable: {detail}", path.display())]
    Unreachable {
        /// The database's URL, without its password.
        path: PathBuf,
        /// What the store was doing.
        context: &'static str,
        /// Why.
        detail: String,
    },

    /// The writer or the checkpointer thread could not be started.
    #[error("{}: cannot start the CDR {thread} thread: {source}", path.display())]
    SpawnWriter {
        /// The database file.
        path: PathBuf,
        /// Which: "writer" or "checkpoint".
        thread: &'static str,
        /// Why.
        source: std::io::Error,
    },

    /// An SQLite operation failed.
    #[error("{}: {context}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What the store was doing, e.g. "opening the database".
        context: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },

    /// Committing a batch of CDRs failed. The batch stays queued and is retried; it is
    /// lost only if the store is closed while the failure persists.
    #[error("{}: committing {pending} queued CDR(s) failed (will retry): {source}", path.display())]
    Commit {
        /// The database file.
        path: PathBuf,
        /// CDRs waiting to be committed, including the failed batch.
        pending: usize,
        /// SQLite's error (shared by every waiter on the batch).
        source: Arc<rusqlite::Error>,
    },

    /// The database was written by a newer sihai.
    #[error("{}: schema version {found} is newer than this sihai supports ({supported})", path.display())]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },

    /// SQLite refused to switch the database to WAL mode (e.g. on a network filesystem).
    #[error("{}: cannot use write-ahead logging: journal mode is {mode:?}", path.display())]
    NotWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },

    /// CDRs that can never be written, e.g. because their `call_id` is already stored.
    /// They were dropped (and logged); the rest of their batch was committed.
    #[error("{}: {} CDR(s) rejected: {}", path.display(), rejected.len(), summary(rejected))]
    Rejected {
        /// The database file.
        path: PathBuf,
        /// Each rejected CDR.
        rejected: Vec<Rejection>,
    },

    /// A stored row could not be read back (an unknown outcome name, a bad number).
    #[error("{}: corrupt {table} row {rowid}: {detail}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The row's id.
        rowid: i64,
        /// What is wrong.
        detail: String,
    },

    /// No pending or dead alert has this id (already delivered, or never existed).
    #[error("{}: no missed-call alert with id {id}", path.display())]
    AlertNotFound {
        /// The database file.
        path: PathBuf,
        /// The id asked for.
        id: i64,
    },

    /// The enterprise has no account (an operation that needs one, e.g. a status change).
    #[error("{}: enterprise {enterprise:?} has no account", path.display())]
    NoAccount {
        /// The database file.
        path: PathBuf,
        /// The enterprise asked for.
        enterprise: String,
    },

    /// An entry with this (enterprise, kind, reference) is already posted with a
    /// different amount: posting is idempotent, so the same key must mean the same entry.
    #[error("{}: {kind} {reference:?} of {enterprise:?} is already posted as {} (asked: {})",
        path.display(), posted.exact(), asked.exact())]
    ConflictingEntry {
        /// The database file.
        path: PathBuf,
        /// The account.
        enterprise: String,
        /// The entry's kind.
        kind: sihai_records::EntryKind,
        /// The entry's reference.
        reference: String,
        /// The amount already posted.
        posted: sihai_records::Money,
        /// The amount asked for now.
        asked: sihai_records::Money,
    },

    /// A tenant change was refused because entries it touches changed since the
    /// revision the editor's copy was taken at. Nothing was written: the editor reloads
    /// (or forces the change) and applies again.
    #[error("{}: the tenant data changed since revision {base}: {}", path.display(), stale_summary(changed))]
    StaleTenant {
        /// The database file.
        path: PathBuf,
        /// The revision the change was based on.
        base: i64,
        /// Each entry changed since `base`: (section, key, its revision now), by
        /// section and key.
        changed: Vec<(String, String, i64)>,
    },

    /// A user with this login already exists.
    #[error("{}: a user with login {login:?} already exists", path.display())]
    UserExists {
        /// The database file.
        path: PathBuf,
        /// The login asked for.
        login: String,
    },

    /// No user has this id (never added, or removed).
    #[error("{}: no user with id {id}", path.display())]
    UserNotFound {
        /// The database file.
        path: PathBuf,
        /// The id asked for.
        id: i64,
    },

    /// A user that cannot be added as given: an empty login, an enterprise role
    /// without an enterprise, an operator with one.
    #[error("{}: user {login:?}: {reason}", path.display())]
    InvalidUser {
        /// The database file.
        path: PathBuf,
        /// The login asked for.
        login: String,
        /// What is wrong.
        reason: String,
    },

    /// The PostgreSQL store's local spool (CDRs kept on this node while the database
    /// is unreachable) could not be read or written.
    #[error("{}: {context} {}: {source}", path.display(), file.display())]
    Spool {
        /// The database's URL, without its password.
        path: PathBuf,
        /// The spool file or directory concerned.
        file: PathBuf,
        /// What the store was doing, e.g. "writing the spool file".
        context: &'static str,
        /// Why.
        source: std::io::Error,
    },

    /// The writer thread has stopped (the store was closed, or the thread panicked), so
    /// nothing more can be recorded.
    #[error("{}: the CDR writer has stopped", path.display())]
    WriterStopped {
        /// The database file.
        path: PathBuf,
    },
}

/// One CDR the writer could not store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The CDR's `call_id`.
    pub call_id: String,
    /// SQLite's reason, e.g. a UNIQUE constraint failure.
    pub reason: String,
}

fn summary(rejected: &[Rejection]) -> String {
    let mut out = String::new();
    for (i, r) in rejected.iter().take(3).enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&format!("call {:?}: {}", r.call_id, r.reason));
    }
    if rejected.len() > 3 {
        out.push_str(&format!("; and {} more", rejected.len() - 3));
    }
    out
}

fn stale_summary(changed: &[(String, String, i64)]) -> String {
    let mut out = String::new();
    for (i, (section, key, revision)) in changed.iter().take(5).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("{section} {key:?} (revision {revision})"));
    }
    if changed.len() > 5 {
        out.push_str(&format!(" and {} more", changed.len() - 5));
    }
    out
}

impl StoreError {
    /// The database file the error concerns.
    pub fn path(&self) -> &std::path::Path {
        match self {
            StoreError::CreateDir { path, .. }
            | StoreError::SpawnWriter { path, .. }
            | StoreError::Sqlite { path, .. }
            | StoreError::Postgres { path, .. }
            | StoreError::Unreachable { path, .. }
            | StoreError::Commit { path, .. }
            | StoreError::SchemaTooNew { path, .. }
            | StoreError::NotWal { path, .. }
            | StoreError::Rejected { path, .. }
            | StoreError::Corrupt { path, .. }
            | StoreError::AlertNotFound { path, .. }
            | StoreError::NoAccount { path, .. }
            | StoreError::ConflictingEntry { path, .. }
            | StoreError::StaleTenant { path, .. }
            | StoreError::UserExists { path, .. }
            | StoreError::UserNotFound { path, .. }
            | StoreError::InvalidUser { path, .. }
            | StoreError::Spool { path, .. }
            | StoreError::WriterStopped { path } => path,
        }
    }
}
