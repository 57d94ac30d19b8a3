//! The tenant data seam: enterprises, numbers, plans, groups, schedules, prompts, menus,
//! extensions and tariffs, kept as revisioned entries so that concurrent editors never
//! lose each other's updates.

use crate::StoreError;

/// One entry of the tenant document (the one type the configuration crate splits and
/// renders): the store keeps it as it is, without interpreting its body.
pub use sihai_records::TenantEntry;

/// An entry as stored, with the revision of the change that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry.
    pub entry: TenantEntry,
    /// The revision of the change that last inserted or replaced it.
    pub revision: i64,
}

/// All the tenant data, as of one revision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantData {
    /// The revision of the latest change to any entry (0: never changed).
    pub revision: i64,
    /// Every entry, by section (byte order), and within a section in the order the
    /// entries were first written (a file's order, for the entries it added): what
    /// depends on order (which bound phones a fee includes) stays as written.
    pub entries: Vec<StoredEntry>,
}

/// A change to the tenant data, applied as one transaction by
/// [`TenantStore::apply_tenant`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantChange {
    /// Entries to insert or replace (same section+key replaces). Listed twice, the
    /// later one counts.
    pub upserts: Vec<TenantEntry>,
    /// (section, key) pairs to delete. A key both upserted and removed is removed.
    pub removals: Vec<(String, String)>,
    /// The revision the editor's copy was taken at: the apply is refused if any entry it
    /// upserts or removes has a stored revision greater than this (changed since).
    /// None = forced (no check).
    pub base_revision: Option<i64>,
    /// When the change comes from a configuration file: its origin and digest, recorded
    /// in tenant_source with the resulting revision in the same transaction.
    pub source: Option<(String, String)>,
    /// Who makes the change (a user's login, `cli`, the configuration file): each
    /// entry written is audited under this name, in the same transaction.
    pub actor: String,
    /// Where from (the API client's address), for the audit log.
    pub actor_source: Option<String>,
    /// When, for the audit log.
    pub at: jiff::Timestamp,
}

/// What [`TenantStore::apply_tenant`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The tenant data's revision after the change (unchanged if nothing changed).
    pub revision: i64,
    /// Entries inserted, replaced or deleted (0: the store already held the change).
    pub changed: usize,
}

/// Tenant data: SQLite now, PostgreSQL later.
///
/// Object safe: the daemon and the CLI hold an `Arc<dyn TenantStore>` (the same
/// [`SqliteStore`](crate::SqliteStore) as its CDRs and ledger).
///
/// # Revisions
/// The data has one revision, that of its latest change (0 for none). Each change that
/// writes anything bumps it by one and stamps every entry it inserts or replaces with
/// the new revision; deleted entries leave nothing behind. An editor reads the data
/// ([`tenant`](TenantStore::tenant)), edits its copy, and applies the difference with
/// `base_revision` set to the revision it read: if another editor changed one of the
/// same entries meanwhile, the apply is refused with [`StoreError::StaleTenant`]
/// naming them, and nothing is written. Changes to other entries do not conflict.
///
/// A deleted entry leaves no revision behind, so an editor re-creating an entry that
/// another one deleted since its base is not refused.
///
/// # PostgreSQL
/// `apply_tenant` is one transaction: `SELECT revision FROM tenant_meta WHERE id = 1
/// FOR UPDATE` serialises the changes; then the stored rows of the keys touched
/// (`SELECT … FROM tenant_entry WHERE (section, key) IN …`), the stale check, `INSERT …
/// ON CONFLICT (section, key) DO UPDATE`, `DELETE`, `UPDATE tenant_meta`, and `INSERT
/// INTO tenant_source … ON CONFLICT (origin) DO UPDATE`. `tenant` reads in one
/// REPEATABLE READ snapshot, ordered `COLLATE "C"` for byte order.
pub trait TenantStore: Send + Sync {
    /// Every entry, and the revision, as last committed (from one snapshot).
    fn tenant(&self) -> Result<TenantData, StoreError>;

    /// The revision of the latest change, as last committed: one row, cheap enough to
    /// poll for changes made by another process.
    fn tenant_revision(&self) -> Result<i64, StoreError>;

    /// Applies `change` in one transaction, durable when it returns.
    ///
    /// An upsert whose enterprise and body equal the stored entry's, or a removal of an
    /// entry that is not stored, changes nothing. If anything changes, the revision
    /// becomes the previous one plus one and every entry written gets it. With
    /// `base_revision: Some(b)`, an entry that would change (or be deleted) whose stored
    /// revision is greater than `b` refuses the whole change with
    /// [`StoreError::StaleTenant`]. The `source`, if any, is recorded with the resulting
    /// revision even when nothing else changed.
    fn apply_tenant(&self, change: TenantChange) -> Result<Applied, StoreError>;

    /// What the configuration file `origin` last applied: its digest and the revision
    /// after that apply. `None` if it never applied anything.
    fn tenant_source(&self, origin: &str) -> Result<Option<(String, i64)>, StoreError>;

    /// Pushes the tenant revision whenever a change is committed by any node or door
    /// (PostgreSQL: `LISTEN sihai_tenant`, which every `apply_tenant` notifies in its
    /// transaction), so that a node picks up another node's change at once; `None` when
    /// the store has no such push (SQLite), and the daemon polls
    /// [`tenant_revision`](TenantStore::tenant_revision). A push may be missed (a
    /// broken connection): the daemon polls as well, less often.
    fn tenant_changes(&self) -> Option<tokio::sync::watch::Receiver<i64>> {
        None
    }
}
