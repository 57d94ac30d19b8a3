//! sihai's system of record: call detail records (CDRs), the missed-call alert outbox,
//! prepaid billing's accounts, ledger and balance reservations, and the tenant data.
//!
//! The daemon calls [`CdrStore::record`] once per call, when the call ends (PRODUCT.md
//! step 11), passing a [`NewAlert`] as well when nobody answered or the call came after
//! hours (step 13). The CDR and its alert are committed in the same transaction, so an
//! alert never exists without its CDR and a CDR of a missed call never exists without
//! its alert. A delivery worker drains the outbox with [`CdrStore::due_alerts`],
//! [`CdrStore::alert_delivered`] and [`CdrStore::alert_failed`]. `sihai cdr` reads with
//! [`CdrStore::query`] and prints with [`report::format_table`] / [`report::format_csv`];
//! `sihai account ledger` and `sihai bill` print with [`statement`].
//!
//! [`CdrStore`], [`LedgerStore`], [`TenantStore`], [`AccessStore`], [`AudioStore`] and
//! [`AnalyticsStore`] are the seams:
//! [`SqliteStore`] is the embedded single-node store; a PostgreSQL store for several
//! nodes implements the same traits later (each operation is documented with its
//! PostgreSQL statements).
//!
//! Durability in one paragraph (details on [`SqliteStore`]): `record` never touches the
//! disk on the caller's thread. It queues the CDR for a dedicated writer thread, which
//! commits in batches, at most `commit_interval` (50 ms by default) after the CDR was
//! queued, and at once when the store has been idle for that long. A CDR is durable once
//! its batch commits, or once a later [`CdrStore::flush`] returns `Ok`. The writer
//! syncs the WAL on every commit (`synchronous=FULL`), so a committed CDR survives a
//! power loss, not only a SIGKILL.
//!
//! Prepaid billing in one paragraph (details on [`LedgerStore`] and [`SqliteStore`]):
//! [`LedgerStore::reserve`] holds balance for a call at admission and on renewal,
//! answered from an in-memory book without waiting for the disk; the reservation row
//! joins the next batch commit. The call is settled by `record`ing its CDR with its
//! `cost`: the CDR, its `CallCharge` (idempotent on the call id) and the release of its
//! reservation commit in one transaction. Reservations are durable, so after a SIGKILL
//! [`LedgerStore::open_reservations`] lists the calls to settle, with the moment the
//! killed daemon was last known alive. Posts (recharges, fees) are durable on return.
//!
//! Tenant data in one paragraph (details on [`TenantStore`]): enterprises, numbers,
//! plans, groups, schedules, prompts, menus, extensions and tariffs are stored as
//! [`TenantEntry`]s, one per item of the tenant document's arrays of tables (a section,
//! a key, the enterprise it belongs to, and the item's TOML text, opaque to the store).
//! [`TenantStore::apply_tenant`] writes a [`TenantChange`] in one transaction, durable
//! on return, and bumps the data's revision when anything changed. An editor (`sihai
//! apply`, the HTTP API) passes the revision its copy was read at, and is refused with
//! [`StoreError::StaleTenant`] if another editor changed one of the same entries since:
//! no update is lost. A change from a configuration file also records the file's digest
//! ([`TenantStore::tenant_source`]), so the daemon can tell whether it was edited since.
//!
//! Access in one paragraph (details on [`AccessStore`]): the admin HTTP API's users
//! (with a [`Role`], an enterprise role tied to its enterprise), their login sessions
//! and API keys (kept as hashes of the tokens, which the API generates), and the
//! append-only audit log of what they did. Writes are durable on return; reads see them
//! at once.
//!
//! Uploaded recordings in one paragraph (details on [`AudioStore`]): the 8 kHz mono WAV
//! an upload was converted to, kept by its SHA-256 ([`audio_digest`]), written once;
//! a `[[prompt]]` entry names it with `audio = "sha256:…"`.
//!
//! Traffic analysis in one paragraph (details on [`AnalyticsStore`]): a background job
//! ([`AnalyticsStore::roll_up`]) folds the CDRs after a watermark into rollups per
//! enterprise, number and day, in one transaction with the watermark's move; a report
//! ([`AnalyticsStore::analysis`]) merges the range's rollups and folds the CDRs after
//! the watermark live, so it is exact without reading the range's CDRs.

mod access;
mod analytics;
mod audio;
mod error;
mod ledger;
mod migrations;
mod postgres;
pub mod report;
mod sqlite;
pub mod statement;
mod tenant;

pub use access::{AccessStore, ApiKey, AuditEntry, NewAudit, NewUser, Role, Session, User};
pub use analytics::{AnalyticsStore, RolledUp};
pub use audio::{AUDIO_DIGEST_PREFIX, AudioStore, audio_digest};
pub use error::{Rejection, StoreError};
pub use ledger::{
    Discrepancy, KindTotal, LedgerQuery, LedgerStore, LedgerTotals, Posted, Problem, Spender,
};
pub use postgres::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE, LOCK_LIFECYCLE, LOCK_ROLLUPS, PgOptions, PgStore,
    redact as redact_url,
};
pub use sihai_records::{
    Account, AccountStatus, Cdr, CdrFilter, EntryKind, HangupSide, LedgerEntry, MissedCallAlert,
    Money, NewAlert, NewEntry, OpenReservation, Outcome, ParseEnumError, PhoneAttempt,
    RecoveryInfo, Refusal, ReservationOutcome, ReservationRequest,
};
pub use sqlite::{
    ALIVE_TICK, DEFAULT_BUSY_TIMEOUT, DEFAULT_COMMIT_INTERVAL, DEFAULT_MAX_BATCH, SCHEMA_VERSION,
    SqliteStore, StoreOptions, Synchronous,
};
pub use tenant::{Applied, StoredEntry, TenantChange, TenantData, TenantEntry, TenantStore};

/// Every seam at once: what a daemon opens, whichever the backend.
pub trait Store:
    CdrStore + LedgerStore + TenantStore + AccessStore + AudioStore + AnalyticsStore + Exclusive
{
}

impl<T> Store for T where
    T: CdrStore
        + LedgerStore
        + TenantStore
        + AccessStore
        + AudioStore
        + AnalyticsStore
        + Exclusive
        + ?Sized
{
}

/// A job that one node at a time runs for every node sharing the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// The billing lifecycle: fees, month-end minimums, suspension, day fees, reclaim,
    /// low-balance warnings.
    Lifecycle,
    /// The traffic analysis rollups.
    Rollups,
}

/// Jobs run once across the nodes sharing a store, however many nodes run the loop
/// that starts them.
pub trait Exclusive: Send + Sync {
    /// Runs `work` unless another node is running `job` right now; returns whether it
    /// ran. A node that dies while running it lets the others take over (PostgreSQL
    /// releases a dead session's advisory lock); the jobs' writes are idempotent, so a
    /// pass cut short is finished by the next.
    ///
    /// SQLite (one node): always runs it.
    fn exclusively(&self, job: Job, work: &mut dyn FnMut()) -> Result<bool, StoreError>;
}

/// The system-of-record seam: SQLite for one node, PostgreSQL for several.
///
/// Object safe: the daemon holds an `Arc<dyn CdrStore>`.
pub trait CdrStore: Send + Sync {
    /// Queues `cdr` (and its missed-call `alert`, if any) to be written; both are
    /// committed in the same transaction.
    ///
    /// Does not wait for the disk: the record is durable once its batch commits (within
    /// the store's commit interval) or once a later [`flush`](CdrStore::flush) returns
    /// `Ok`. Fails only when the store can no longer accept records (its writer has
    /// stopped); problems found while committing are reported by `flush`.
    fn record(&self, cdr: Cdr, alert: Option<NewAlert>) -> Result<(), StoreError>;

    /// Waits until everything recorded before this call is committed.
    ///
    /// Returns the commit's error if the batch could not be committed (it stays queued
    /// and is retried), or [`StoreError::Rejected`] listing CDRs that could never be
    /// written (such as a duplicate `call_id`) since the last report.
    fn flush(&self) -> Result<(), StoreError>;

    /// Waits until everything recorded before this call is committed, like
    /// [`flush`](CdrStore::flush), but without hurrying the commit: the records go in the
    /// store's next regular batch (within its commit interval), so under load many
    /// callers share one commit and one fsync. Returns at once if nothing is pending.
    ///
    /// Errors as `flush`, except that rejected CDRs are left for `flush` to report.
    ///
    /// PostgreSQL with a spool ([`PgOptions::spool`]): while the database is unreachable,
    /// also returns `Ok` once the records are durable in the node's spool (they are
    /// committed when the database is back, or replayed by the next open); `flush` still
    /// reports the commit's error then.
    fn wait_committed(&self) -> Result<(), StoreError> {
        self.flush()
    }

    /// Committed CDRs matching `filter`, newest (latest `setup_at`) first.
    fn query(&self, filter: &CdrFilter) -> Result<Vec<Cdr>, StoreError>;

    /// Which of `callers` called the enterprise before `before` (any outcome): the
    /// returning callers of a traffic analysis.
    fn callers_before(
        &self,
        enterprise: &str,
        callers: &[String],
        before: jiff::Timestamp,
    ) -> Result<std::collections::HashSet<String>, StoreError>;

    /// The enterprise's charged calls (cost above zero) set up in `since <= setup_at <
    /// until`: how many, and what they cost together. Counted by the store, so a
    /// month's bill of a million calls reads two numbers, not a million rows.
    fn charged_calls(
        &self,
        enterprise: &str,
        since: jiff::Timestamp,
        until: jiff::Timestamp,
    ) -> Result<(u64, sihai_records::Money), StoreError>;

    /// Queues a notice that belongs to no call (an account suspended, a low balance)
    /// in the outbox, under `reference` (shown where a call's id would be), due at
    /// `due`. Durable when it returns.
    fn queue_alert(
        &self,
        reference: &str,
        alert: NewAlert,
        due: jiff::Timestamp,
    ) -> Result<(), StoreError>;

    /// Pending alerts whose `next_attempt_at` is at or before `now`, soonest first, at
    /// most `limit`.
    ///
    /// SQLite (one node) does not claim them: run one delivery worker per store; the
    /// same alerts come back until delivered or rescheduled. PostgreSQL (several nodes,
    /// each with its worker on one outbox) claims what it returns: each alert's
    /// `next_attempt_at` is pushed a lease (60 s after `now`) into the future in the
    /// same statement, under row locks other nodes skip, so no two nodes deliver one
    /// alert; an alert whose node died mid-delivery is due again when its lease ends.
    /// Either way the alerts come back as they were due, and
    /// [`alert_delivered`](CdrStore::alert_delivered) or
    /// [`alert_failed`](CdrStore::alert_failed) settles each.
    fn due_alerts(
        &self,
        now: jiff::Timestamp,
        limit: usize,
    ) -> Result<Vec<MissedCallAlert>, StoreError>;

    /// Alerts in the outbox still to be delivered (due now or later): the backlog the
    /// metrics endpoint shows.
    fn pending_alerts(&self) -> Result<u64, StoreError>;

    /// The CDR writer's queue and commits, for the metrics endpoint.
    fn writer_stats(&self) -> std::sync::Arc<WriterStats>;

    /// The alert was delivered: removes it from the outbox.
    fn alert_delivered(&self, id: i64) -> Result<(), StoreError>;

    /// A delivery attempt failed: counts the attempt and retries at `next_attempt_at`,
    /// or, with `give_up`, marks the alert dead (kept for inspection, never due again).
    fn alert_failed(
        &self,
        id: i64,
        next_attempt_at: jiff::Timestamp,
        give_up: bool,
    ) -> Result<(), StoreError>;
}

/// What a store's CDR writer is doing, for the metrics endpoint: atomics the writer and
/// [`CdrStore::record`] bump, read by a scrape without a lock.
#[derive(Debug)]
pub struct WriterStats {
    /// CDRs handed to [`CdrStore::record`] and not committed yet (on PostgreSQL, those
    /// spooled to disk during an outage included: they still wait for the database).
    pub queued: std::sync::atomic::AtomicU64,
    /// How long each commit of a batch took (the final responses of ended calls wait
    /// for it).
    pub commits: sihai_metrics::LatencyHistogram,
    /// Commits that failed (each is retried).
    pub commit_failures: std::sync::atomic::AtomicU64,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            queued: std::sync::atomic::AtomicU64::new(0),
            commits: sihai_metrics::LatencyHistogram::with_bounds(sihai_metrics::COMMIT_BOUNDS),
            commit_failures: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl WriterStats {
    pub(crate) fn queued_one(&self) {
        self.queued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// A commit that took `took` wrote (or spooled) `records` CDRs.
    pub(crate) fn committed(&self, records: usize, took: std::time::Duration) {
        let records = u64::try_from(records).unwrap_or(u64::MAX);
        // Saturating: a record counted after its commit began cannot make it negative.
        let _ = self.queued.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |q| Some(q.saturating_sub(records)),
        );
        self.commits.observe(took);
    }

    pub(crate) fn commit_failed(&self) {
        self.commit_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
