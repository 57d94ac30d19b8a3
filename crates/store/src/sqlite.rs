//! The embedded SQLite store.

mod access;
mod analytics;
mod audio;
mod book;
mod ledger;
mod schema;
mod tenant;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{
    Cdr, CdrFilter, CdrStore, MissedCallAlert, NewAlert, PhoneAttempt, StoreError, WriterStats,
};
use book::Book;
use sihai_records::Money;
use writer::Msg;

pub use writer::ALIVE_TICK;

pub use schema::SCHEMA_VERSION;

/// The default for [`StoreOptions::commit_interval`]: 50 ms.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(50);

/// The default for [`StoreOptions::max_batch`].
pub const DEFAULT_MAX_BATCH: usize = 1024;

/// The default for [`StoreOptions::busy_timeout`]: 5 s.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How hard SQLite syncs a commit to the disk (`PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `FULL`: the WAL is fsynced at every commit. A committed CDR survives a process
    /// kill, an OS crash and a power loss. Costs one fsync per batch, off the hot path.
    #[default]
    Full,
    /// `NORMAL`: the WAL is fsynced only at checkpoints. A committed CDR survives a
    /// process kill (SIGKILL, panic, OOM kill: the commit is already in the OS), but the
    /// last commits before an OS crash or power loss may be rolled back.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Tuning for [`SqliteStore::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// The longest a recorded CDR waits for others to share its commit. A store idle
    /// for this long commits the next CDR at once; under load, commits happen at most
    /// once per interval. `Duration::ZERO` commits whenever the writer is free.
    pub commit_interval: Duration,
    /// A batch this large commits at once, whatever the interval.
    pub max_batch: usize,
    /// How hard each commit is synced.
    pub synchronous: Synchronous,
    /// How long a statement waits for another connection's (or process's) write lock
    /// before failing with "database is locked".
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            max_batch: DEFAULT_MAX_BATCH,
            synchronous: Synchronous::default(),
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
        }
    }
}

/// CDRs and the alert outbox in one SQLite database file, for a single node.
///
/// # Writing
/// [`record`](CdrStore::record) only sends the CDR down a channel; a dedicated writer
/// thread (`sihai-cdr-writer`) owns the write connection and commits queued CDRs in one
/// transaction per batch. The SIP threads never wait for the disk.
///
/// A batch commits when the first CDR in it has waited `commit_interval` since the
/// previous commit (so an idle store commits a CDR as soon as it arrives, and a busy
/// store commits at most once per interval, each commit carrying everything that
/// arrived meanwhile), when it reaches `max_batch`, or when someone calls
/// [`flush`](CdrStore::flush). Under load this turns thousands of CDRs per second into
/// ~20 transactions per second (with the default 50 ms) instead of thousands.
///
/// # Durability, and its trade-off
/// A CDR is durable once its batch has committed. Between the end of a call and that
/// commit there is a window of at most `commit_interval` plus one commit (~0 ms when
/// the store was idle, up to ~50 ms under load by default) in which a kill of the
/// process loses the CDR. A smaller interval narrows the window at the price of more,
/// smaller transactions; whoever must be certain (shutdown, tests, `sihai cdr` after a
/// load run) calls `flush`, which commits at once and returns when it is done.
///
/// The database is in WAL mode. With the default [`Synchronous::Full`] every commit
/// fsyncs the WAL, so a committed CDR also survives an OS crash or power loss: CDRs are
/// what enterprises are billed from, and batching makes this one fsync per batch on
/// the writer thread, never on a call. [`Synchronous::Normal`] skips that fsync; a
/// SIGKILL still loses nothing committed (the WAL frames are already in the OS page
/// cache when the commit returns), only a power loss can.
///
/// If a commit fails (disk full, I/O error) the batch stays queued and is retried with
/// backoff (100 ms doubling to 5 s); `flush` reports the error. A CDR that can never be
/// written (a duplicate `call_id`) is dropped from its batch, logged, and reported by
/// the next `flush` as [`StoreError::Rejected`]; the rest of the batch commits.
///
/// Dropping the store (or [`close`](SqliteStore::close)) commits what is queued and
/// stops the writer.
///
/// # Checkpoints
/// Commits never checkpoint: SQLite's automatic checkpoint runs inside the commit that
/// fills the WAL to 1,000 pages, copying them into the database file and syncing it,
/// and every ended call's final response waits for that commit (the durability gate).
/// A thread of its own checkpoints instead (`PRAGMA wal_checkpoint(PASSIVE)`, which
/// never blocks the writer) every [`CHECKPOINT_INTERVAL`] and once more at shutdown.
///
/// # Ledger
/// The writer is the only writer of the ledger too. Account operations
/// ([`post`](crate::LedgerStore::post), `open_account`, `set_status`, ...) are messages
/// it runs at once, each in its own transaction, answered once committed.
///
/// [`reserve`](crate::LedgerStore::reserve) decides on the caller's thread from an
/// in-memory book (balances, statuses, holds, and settlements queued but not yet
/// committed) loaded at open, then queues the reservation row for the next batch; it
/// never waits for a commit or an fsync (~6 µs, `benches/ledger.rs`). Another process's
/// changes (the CLI's recharge) reach the book at the next `reserve`: `PRAGMA
/// data_version` on the book's own connection says whether anyone else committed, and
/// `node_clock.book_epoch`, bumped by every account change other than a settlement,
/// whether the accounts must be reloaded. `record` settles (see
/// [`LedgerStore`](crate::LedgerStore)) in the CDR's batch transaction; a duplicate CDR
/// is rejected, releases its reservation and charges nothing.
///
/// A daemon that reserves stamps `node_clock.alive_at` in every batch commit, and by
/// an otherwise empty commit every [`ALIVE_TICK`] while its reservations are open. Other
/// processes (the CLI) never stamp it. `open_reservations` reports it as found at open,
/// so recovery charges calls up to the previous run's last sign of life, not the
/// restart.
///
/// # Tenant data
/// [`apply_tenant`](crate::TenantStore::apply_tenant) is a message to the writer like a
/// post: one IMMEDIATE transaction, whose write lock makes the stale check and the
/// writes atomic against every other connection and process, answered once committed.
/// [`tenant`](crate::TenantStore::tenant) reads one snapshot on the reading connection.
///
/// # Access
/// The writes of [`AccessStore`](crate::AccessStore) (users, sessions, API keys, the
/// audit log) are messages to the writer too, each in its own transaction and answered
/// once committed; its reads use the reading connection, which sees every commit that
/// finished before the read began (WAL), so a session created or ended a moment ago is
/// found or not found accordingly.
///
/// # Reading
/// Queries and the outbox operations use a second connection; WAL lets them read while
/// the writer writes. Other processes (`sihai cdr`) may open the same file.
pub struct SqliteStore {
    path: PathBuf,
    tx: mpsc::Sender<Msg>,
    reader: Mutex<Connection>,
    /// What `reserve` decides from (see the "Ledger" section above).
    book: Arc<Mutex<Book>>,
    /// `node_clock.alive_at` as found at open: when the previous run was last known
    /// alive, for crash recovery.
    previous_alive: Option<Timestamp>,
    writer: Option<JoinHandle<()>>,
    /// The writer's queue and commits (the writer keeps them).
    writer_stats: Arc<WriterStats>,
    /// Dropping the sender stops the checkpointer.
    checkpointer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

/// How often the checkpointer copies the WAL into the database file: often enough that
/// the WAL stays a few MB at thousands of CDRs per second.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

impl SqliteStore {
    /// Opens (creating if needed, with its parent directories) the database at `path`,
    /// brings its schema up to [`SCHEMA_VERSION`] and starts the writer thread, with
    /// default options but `commit_interval`.
    pub fn open(path: &Path, commit_interval: Duration) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(
            path,
            StoreOptions {
                commit_interval,
                ..StoreOptions::default()
            },
        )
    }

    /// [`open`](SqliteStore::open) with every option.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: path.clone(),
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let mut write_conn = connect(&path, &options)?;
        schema::migrate(&mut write_conn, &path)?;
        let previous_alive = write_conn
            .query_row("SELECT alive_at FROM node_clock WHERE id = 1", [], |row| {
                row.get::<_, Option<i64>>(0)
            })
            .optional()
            .map_err(|source| StoreError::Sqlite {
                path: path.clone(),
                context: "reading when the daemon was last alive",
                source,
            })?
            .flatten()
            .map(ts_from_us)
            .transpose()
            .map_err(|d| StoreError::Corrupt {
                path: path.clone(),
                table: "node_clock",
                rowid: 1,
                detail: d.0,
            })?;
        let reader = connect(&path, &options)?;
        let book = Arc::new(Mutex::new(Book::load(connect(&path, &options)?, &path)?));
        let checkpointer = spawn_checkpointer(&path, &options)?;

        let (tx, rx) = mpsc::channel();
        let writer_stats = Arc::new(WriterStats::default());
        let writer = writer::Writer::new(
            write_conn,
            path.clone(),
            rx,
            options,
            Arc::clone(&book),
            Arc::clone(&writer_stats),
        );
        let handle = std::thread::Builder::new()
            .name("sihai-cdr-writer".into())
            .spawn(move || writer.run())
            .map_err(|source| StoreError::SpawnWriter {
                path: path.clone(),
                thread: "writer",
                source,
            })?;
        Ok(SqliteStore {
            path,
            tx,
            reader: Mutex::new(reader),
            book,
            previous_alive,
            writer: Some(handle),
            checkpointer: Some(checkpointer),
            writer_stats,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits everything queued, stops the writer and reports the last commit's result.
    /// Dropping the store does the same, logging instead of returning a failure.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    /// Alerts given up on ([`alert_failed`](CdrStore::alert_failed) with `give_up`),
    /// most recent call first, at most `limit` (0: all). For operators.
    pub fn dead_alerts(&self, limit: usize) -> Result<Vec<MissedCallAlert>, StoreError> {
        let conn = self.reader();
        let mut st = conn
            .prepare_cached(
                "SELECT id, call_id, enterprise, url, payload, attempts, next_attempt_at
                 FROM alert_outbox WHERE state = 'dead' ORDER BY id DESC LIMIT ?1",
            )
            .map_err(self.err("reading dead alerts"))?;
        let rows = st
            .query_map([sql_limit(limit)], |row| self.alert_from_row(row))
            .map_err(self.err("reading dead alerts"))?;
        collect(rows, self.err("reading dead alerts"))
    }

    /// Stops the store as a SIGKILL would: the writer exits without committing what is
    /// queued (CDRs, settlements, reservation rows) and nothing is flushed. What was
    /// committed stays. For crash-recovery tests; a daemon never calls it.
    #[doc(hidden)]
    pub fn simulate_kill(mut self) {
        if let Some(handle) = self.writer.take() {
            let _ = self.tx.send(Msg::Abandon);
            let _ = handle.join();
        }
        if let Some((stop, checkpointer)) = self.checkpointer.take() {
            drop(stop);
            let _ = checkpointer.join();
        }
    }

    /// The in-memory book's view of an account, `(balance including queued
    /// settlements, reserved)`: what the next `reserve` would decide from (so it first
    /// catches up with other connections' changes, as `reserve` does). For tests.
    #[doc(hidden)]
    pub fn book_view(&self, enterprise: &str) -> Result<Option<(Money, Money)>, StoreError> {
        let mut book = self.book();
        book.refresh()?;
        Ok(book.view(enterprise))
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // The book is consistent between statements; a panic mid-update is a bug
        // either way, and refusing every call after it would be worse.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        let Some(handle) = self.writer.take() else {
            return Ok(());
        };
        let (reply, result) = mpsc::channel();
        let _ = self.tx.send(Msg::Shutdown(reply));
        let _ = handle.join();
        // After the writer's last commit, so that the final checkpoint has it.
        if let Some((stop, checkpointer)) = self.checkpointer.take() {
            drop(stop);
            let _ = checkpointer.join();
        }
        // No reply means the writer died (panicked) before the final commit.
        result.recv().unwrap_or_else(|_| {
            Err(StoreError::WriterStopped {
                path: self.path.clone(),
            })
        })
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable.
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(&self, context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            context,
            source,
        }
    }

    fn corrupt(&self, table: &'static str, rowid: i64, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            table,
            rowid,
            detail,
        }
    }

    /// Decodes one `alert_outbox` row; decode problems become a conversion error that
    /// `collect` turns into [`StoreError::Corrupt`].
    fn alert_from_row(
        &self,
        row: &Row<'_>,
    ) -> rusqlite::Result<Result<MissedCallAlert, StoreError>> {
        let id: i64 = row.get(0)?;
        let attempts: i64 = row.get(5)?;
        let next: i64 = row.get(6)?;
        let decoded = (|| -> Result<MissedCallAlert, DecodeError> {
            Ok(MissedCallAlert {
                id,
                call_id: row.get(1)?,
                enterprise: row.get(2)?,
                url: row.get(3)?,
                payload: row.get(4)?,
                attempts: u32::try_from(attempts).map_err(|_| format!("attempts {attempts}"))?,
                next_attempt_at: ts_from_us(next)?,
            })
        })();
        Ok(decoded.map_err(|d| self.corrupt("alert_outbox", id, d.0)))
    }

    fn cdr_from_row(&self, row: &Row<'_>) -> rusqlite::Result<Result<(i64, Cdr), StoreError>> {
        cdr_from_row(row, &self.path)
    }
}

impl crate::Exclusive for SqliteStore {
    /// One node: nobody else runs the job.
    fn exclusively(&self, _job: crate::Job, work: &mut dyn FnMut()) -> Result<bool, StoreError> {
        work();
        Ok(true)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "closing the CDR store");
        }
    }
}

impl CdrStore for SqliteStore {
    fn record(&self, cdr: Cdr, alert: Option<NewAlert>) -> Result<(), StoreError> {
        // The settlement reaches the book when it is queued, under the book's lock (so
        // after the call's last reservation write): its hold is released and its charge
        // counted as pending until the batch commits.
        let mut book = self.book();
        let cost = cdr.cost.map_or(0, |c| c.units());
        let pending = book.apply_settle(&cdr.call_id, &cdr.enterprise, cost);
        self.writer_stats.queued_one();
        self.tx
            .send(Msg::Record(Box::new((cdr, alert, pending))))
            .map_err(|lost| {
                if let Msg::Record(item) = lost.0 {
                    tracing::error!(path = %self.path.display(), cdr = ?item.0, alert = ?item.1,
                    "CDR writer has stopped; CDR not recorded");
                }
                StoreError::WriterStopped {
                    path: self.path.clone(),
                }
            })
    }

    fn flush(&self) -> Result<(), StoreError> {
        let (reply, result) = mpsc::channel();
        let stopped = || StoreError::WriterStopped {
            path: self.path.clone(),
        };
        self.tx.send(Msg::Flush(reply)).map_err(|_| stopped())?;
        result.recv().map_err(|_| stopped())?
    }

    fn wait_committed(&self) -> Result<(), StoreError> {
        let (reply, result) = mpsc::channel();
        let stopped = || StoreError::WriterStopped {
            path: self.path.clone(),
        };
        self.tx
            .send(Msg::WaitCommitted(reply))
            .map_err(|_| stopped())?;
        result.recv().map_err(|_| stopped())?
    }

    fn callers_before(
        &self,
        enterprise: &str,
        callers: &[String],
        before: Timestamp,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        const CONTEXT: &str = "looking for callers' earlier calls";
        // A chunk's callers are each one seek on (caller, setup_at).
        const CHUNK: usize = 500;
        let conn = self.reader();
        let mut seen = std::collections::HashSet::new();
        for chunk in callers.chunks(CHUNK) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("?{}", i + 3)).collect();
            let sql = format!(
                "SELECT DISTINCT caller FROM cdr
                 WHERE enterprise = ?1 AND setup_at < ?2 AND caller IN ({})",
                placeholders.join(", ")
            );
            let mut args: Vec<Value> = vec![
                Value::Text(enterprise.to_owned()),
                Value::Integer(before.as_microsecond()),
            ];
            args.extend(chunk.iter().map(|c| Value::Text(c.clone())));
            let mut st = conn.prepare_cached(&sql).map_err(self.err(CONTEXT))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(args), |row| {
                    row.get::<_, String>(0)
                })
                .map_err(self.err(CONTEXT))?;
            for caller in rows {
                seen.insert(caller.map_err(self.err(CONTEXT))?);
            }
        }
        Ok(seen)
    }

    fn charged_calls(
        &self,
        enterprise: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<(u64, Money), StoreError> {
        const CONTEXT: &str = "counting charged calls";
        let conn = self.reader();
        let (count, cost): (i64, i64) = conn
            .prepare_cached(
                "SELECT count(*), COALESCE(SUM(cost), 0) FROM cdr
                 WHERE enterprise = ?1 AND setup_at >= ?2 AND setup_at < ?3 AND cost > 0",
            )
            .and_then(|mut st| {
                st.query_row(
                    params![enterprise, since.as_microsecond(), until.as_microsecond()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
            })
            .map_err(self.err(CONTEXT))?;
        Ok((u64::try_from(count).unwrap_or(0), Money::from_units(cost)))
    }

    fn query(&self, filter: &CdrFilter) -> Result<Vec<Cdr>, StoreError> {
        const CONTEXT: &str = "querying CDRs";
        let mut sql = String::from(
            "SELECT id, call_id, number, enterprise, caller, caller_province, caller_city,
                    answered_by, setup_at, ring_at, answer_at, end_at, talk_seconds, outcome,
                    hangup_side, hangup_cause, recording, menu_path, announcement,
                    billed_seconds, cost, tariff, customer_id
             FROM cdr WHERE 1 = 1",
        );
        let mut args: Vec<Value> = Vec::new();
        let mut and = |clause: &str, value: Value| {
            args.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(id) = &filter.call_id {
            and("call_id =", Value::Text(id.clone()));
        }
        if let Some(n) = &filter.number {
            and("number =", Value::Text(n.clone()));
        }
        if let Some(e) = &filter.enterprise {
            and("enterprise =", Value::Text(e.clone()));
        }
        if let Some(c) = &filter.caller {
            and("caller =", Value::Text(c.clone()));
        }
        if let Some(t) = filter.since {
            and("setup_at >=", Value::Integer(t.as_microsecond()));
        }
        if let Some(t) = filter.until {
            and("setup_at <", Value::Integer(t.as_microsecond()));
        }
        if let Some(o) = filter.outcome {
            and("outcome =", Value::Text(o.as_str().to_owned()));
        }
        if !filter.outcomes.is_empty() {
            let mut placeholders = Vec::with_capacity(filter.outcomes.len());
            for o in &filter.outcomes {
                args.push(Value::Text(o.as_str().to_owned()));
                placeholders.push(format!("?{}", args.len()));
            }
            sql.push_str(&format!(" AND outcome IN ({})", placeholders.join(", ")));
        }
        if let Some((setup_at, call_id)) = &filter.before {
            // After (setup_at, id) of the given call in the (setup_at DESC, id DESC)
            // order; its id from its call_id (unique, indexed).
            args.push(Value::Integer(setup_at.as_microsecond()));
            let at = args.len();
            args.push(Value::Text(call_id.clone()));
            let call = args.len();
            sql.push_str(&format!(
                " AND (setup_at < ?{at} OR (setup_at = ?{at} AND \
                 id < (SELECT id FROM cdr WHERE call_id = ?{call})))"
            ));
        }
        sql.push_str(" ORDER BY setup_at DESC, id DESC");
        if filter.limit > 0 {
            args.push(Value::Integer(sql_limit(filter.limit)));
            sql.push_str(&format!(" LIMIT ?{}", args.len()));
        }

        let mut conn = self.reader();
        // One read transaction: the CDRs and their attempts come from the same snapshot.
        let tx = conn.transaction().map_err(self.err(CONTEXT))?;
        let mut cdrs = {
            let mut st = tx.prepare_cached(&sql).map_err(self.err(CONTEXT))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(args), |row| {
                    self.cdr_from_row(row)
                })
                .map_err(self.err(CONTEXT))?;
            collect(rows, self.err(CONTEXT))?
        };
        load_attempts(&tx, &mut cdrs).map_err(self.err(CONTEXT))?;
        tx.finish().map_err(self.err(CONTEXT))?;
        Ok(cdrs.into_iter().map(|(_, cdr)| cdr).collect())
    }

    fn due_alerts(&self, now: Timestamp, limit: usize) -> Result<Vec<MissedCallAlert>, StoreError> {
        const CONTEXT: &str = "reading due missed-call alerts";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.reader();
        let mut st = conn
            .prepare_cached(
                "SELECT id, call_id, enterprise, url, payload, attempts, next_attempt_at
                 FROM alert_outbox
                 WHERE state = 'pending' AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at, id LIMIT ?2",
            )
            .map_err(self.err(CONTEXT))?;
        let rows = st
            .query_map(params![now.as_microsecond(), sql_limit(limit)], |row| {
                self.alert_from_row(row)
            })
            .map_err(self.err(CONTEXT))?;
        collect(rows, self.err(CONTEXT))
    }

    fn pending_alerts(&self) -> Result<u64, StoreError> {
        const CONTEXT: &str = "counting pending alerts";
        let conn = self.reader();
        let count: i64 = conn
            .prepare_cached("SELECT count(*) FROM alert_outbox WHERE state = 'pending'")
            .and_then(|mut st| st.query_row([], |row| row.get(0)))
            .map_err(self.err(CONTEXT))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    fn writer_stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.writer_stats)
    }

    fn queue_alert(
        &self,
        reference: &str,
        alert: NewAlert,
        due: Timestamp,
    ) -> Result<(), StoreError> {
        let conn = self.reader();
        conn.prepare_cached(
            "INSERT INTO alert_outbox (call_id, enterprise, url, payload, attempts,
                                       next_attempt_at, state, created_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, 'pending', ?6)",
        )
        .and_then(|mut st| {
            st.execute(params![
                reference,
                alert.enterprise,
                alert.url,
                alert.payload,
                due.as_microsecond(),
                Timestamp::now().as_microsecond(),
            ])
        })
        .map_err(self.err("queueing an account alert"))?;
        Ok(())
    }

    fn alert_delivered(&self, id: i64) -> Result<(), StoreError> {
        let conn = self.reader();
        let n = conn
            .prepare_cached("DELETE FROM alert_outbox WHERE id = ?1")
            .and_then(|mut st| st.execute([id]))
            .map_err(self.err("removing a delivered missed-call alert"))?;
        if n == 0 {
            return Err(StoreError::AlertNotFound {
                path: self.path.clone(),
                id,
            });
        }
        Ok(())
    }

    fn alert_failed(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        give_up: bool,
    ) -> Result<(), StoreError> {
        let conn = self.reader();
        let n = conn
            .prepare_cached(
                "UPDATE alert_outbox
                 SET attempts = attempts + 1,
                     next_attempt_at = ?2,
                     state = CASE WHEN ?3 THEN 'dead' ELSE state END
                 WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![id, next_attempt_at.as_microsecond(), give_up]))
            .map_err(self.err("rescheduling a failed missed-call alert"))?;
        if n == 0 {
            return Err(StoreError::AlertNotFound {
                path: self.path.clone(),
                id,
            });
        }
        Ok(())
    }
}

/// Decodes one `cdr` row of [`CDR_COLUMNS`] (its attempts are read apart); decode
/// problems become [`StoreError::Corrupt`].
pub(crate) fn cdr_from_row(
    row: &Row<'_>,
    path: &Path,
) -> rusqlite::Result<Result<(i64, Cdr), StoreError>> {
    let id: i64 = row.get(0)?;
    let decoded = (|| -> Result<Cdr, DecodeError> {
        let outcome: String = row.get(13)?;
        let side: Option<String> = row.get(14)?;
        let talk: i64 = row.get(12)?;
        let billed: i64 = row.get(19)?;
        Ok(Cdr {
            call_id: row.get(1)?,
            number: row.get(2)?,
            enterprise: row.get(3)?,
            caller: row.get(4)?,
            caller_province: row.get(5)?,
            caller_city: row.get(6)?,
            answered_by: row.get(7)?,
            attempts: Vec::new(),
            setup_at: ts_from_us(row.get(8)?)?,
            ring_at: row.get::<_, Option<i64>>(9)?.map(ts_from_us).transpose()?,
            answer_at: row.get::<_, Option<i64>>(10)?.map(ts_from_us).transpose()?,
            end_at: ts_from_us(row.get(11)?)?,
            talk_seconds: u32::try_from(talk).map_err(|_| format!("talk_seconds {talk}"))?,
            outcome: outcome.parse().map_err(|e| format!("{e}"))?,
            hangup_side: side
                .map(|s| s.parse())
                .transpose()
                .map_err(|e| format!("{e}"))?,
            hangup_cause: row.get(15)?,
            recording: row.get(16)?,
            menu_path: row.get(17)?,
            announcement: row.get(18)?,
            billed_seconds: u32::try_from(billed)
                .map_err(|_| format!("billed_seconds {billed}"))?,
            cost: row.get::<_, Option<i64>>(20)?.map(Money::from_units),
            tariff: row.get(21)?,
            customer_id: row.get(22)?,
        })
    })();
    Ok(decoded
        .map(|cdr| (id, cdr))
        .map_err(|d| StoreError::Corrupt {
            path: path.to_path_buf(),
            table: "cdr",
            rowid: id,
            detail: d.0,
        }))
}

/// The columns [`SqliteStore::cdr_from_row`] decodes, in its order.
pub(crate) const CDR_COLUMNS: &str = "id, call_id, number, enterprise, caller, caller_province,
    caller_city, answered_by, setup_at, ring_at, answer_at, end_at, talk_seconds, outcome,
    hangup_side, hangup_cause, recording, menu_path, announcement, billed_seconds, cost, tariff,
    customer_id";

/// Fills in the phone attempts of `cdrs` (by their row ids), a chunk of CDRs in one
/// statement rather than one per CDR: a page of 1,000 is two statements, not 1,001
/// (the CSV export reads whole months this way, the rollup job batches of thousands).
pub(crate) fn load_attempts(conn: &Connection, cdrs: &mut [(i64, Cdr)]) -> rusqlite::Result<()> {
    const ATTEMPT_CHUNK: usize = 500;
    let position: std::collections::HashMap<i64, usize> = cdrs
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    for chunk in cdrs
        .iter()
        .map(|(id, _)| *id)
        .collect::<Vec<_>>()
        .chunks(ATTEMPT_CHUNK)
    {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
        let mut st = conn.prepare_cached(&format!(
            "SELECT cdr_id, phone, result FROM cdr_attempt
             WHERE cdr_id IN ({}) ORDER BY cdr_id, seq",
            placeholders.join(", ")
        ))?;
        let rows = st.query_map(rusqlite::params_from_iter(chunk.iter()), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                PhoneAttempt {
                    phone: row.get(1)?,
                    result: row.get(2)?,
                },
            ))
        })?;
        for row in rows {
            let (id, attempt) = row?;
            if let Some(&i) = position.get(&id) {
                cdrs[i].1.attempts.push(attempt);
            }
        }
    }
    Ok(())
}

/// Opens one connection and sets it up: busy timeout, WAL, synchronous, foreign keys.
fn connect(path: &Path, options: &StoreOptions) -> Result<Connection, StoreError> {
    let err = |context| {
        move |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            context,
            source,
        }
    };
    let conn = Connection::open(path).map_err(err("opening the database"))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(err("setting the busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(err("switching to write-ahead logging"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal {
            path: path.to_path_buf(),
            mode,
        });
    }
    // No connection checkpoints on commit: the checkpointer thread does (see
    // "Checkpoints" on `SqliteStore`).
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
        options.synchronous.pragma()
    ))
    .map_err(err("configuring the connection"))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Starts the thread that checkpoints the WAL every [`CHECKPOINT_INTERVAL`] on a
/// connection of its own, until the returned sender is dropped.
fn spawn_checkpointer(
    path: &Path,
    options: &StoreOptions,
) -> Result<(mpsc::Sender<()>, JoinHandle<()>), StoreError> {
    let conn = connect(path, options)?;
    let (stop, stopped) = mpsc::channel::<()>();
    let shown = path.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("sihai-cdr-checkpoint".into())
        .spawn(move || {
            let checkpoint = || {
                // PASSIVE copies what no reader still needs and never waits for the
                // writer; what it leaves, the next round takes.
                if let Err(err) =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(path = %shown.display(), %err, "WAL checkpoint failed; will retry");
                }
            };
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_INTERVAL)
            {
                checkpoint();
            }
            checkpoint();
        })
        .map_err(|source| StoreError::SpawnWriter {
            path: path.to_path_buf(),
            thread: "checkpoint",
            source,
        })?;
    Ok((stop, handle))
}

/// A decode problem in a stored row.
struct DecodeError(String);

impl From<String> for DecodeError {
    fn from(s: String) -> Self {
        DecodeError(s)
    }
}

impl From<rusqlite::Error> for DecodeError {
    fn from(e: rusqlite::Error) -> Self {
        DecodeError(e.to_string())
    }
}

fn ts_from_us(us: i64) -> Result<Timestamp, DecodeError> {
    Timestamp::from_microsecond(us).map_err(|e| DecodeError(format!("timestamp {us}: {e}")))
}

/// `LIMIT` for SQLite: a negative limit means none.
fn sql_limit(limit: usize) -> i64 {
    if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX)
    }
}

fn collect<T>(
    rows: impl Iterator<Item = rusqlite::Result<Result<T, StoreError>>>,
    err: impl Fn(rusqlite::Error) -> StoreError,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(&err)??);
    }
    Ok(out)
}

// The daemon shares one store between threads.
const _: fn() = || {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<SqliteStore>();
};
