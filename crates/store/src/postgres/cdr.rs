//! [`CdrStore`] for [`PgStore`], and the writer task that commits CDRs in batches.
//!
//! # The writer
//! `record` and `mark_answered` send their item down an unbounded channel to a task on
//! the store's runtime and return: a call never waits for the database. The task
//! batches like the SQLite writer (see [`SqliteStore`](crate::SqliteStore)): a batch
//! commits when its first item has waited `commit_interval` since the previous commit
//! (an idle store commits at once), at `max_batch`, or on `flush`; a failed batch stays
//! queued and is retried with backoff (100 ms doubling to 5 s).
//!
//! # Round trips
//! A batch is one transaction: `BEGIN` (one round trip), then every item's statement
//! pipelined (one round trip for the whole batch, however many CDRs: tokio-postgres
//! sends the queries of futures polled together without waiting for each answer, and
//! the server still runs them in order), then `COMMIT` (one round trip). So a batch of
//! `n` calls costs 3 round trips, and a call alone in its batch (an idle store) 3; per
//! CDR, one statement ([`RECORD_SQL`]) does the CDR, its attempts, its alert, the
//! release of its reservation and its charge. Statements are prepared once per pooled
//! connection.
//!
//! # Several nodes
//! A batch's CDRs are written in enterprise order, so that two nodes' batches lock the
//! accounts they charge in the same order (they queue behind each other instead of
//! deadlocking); should PostgreSQL still pick a batch as a deadlock victim, it is run
//! again at once. A CDR recorded on two nodes (the same `call_id`) is stored and charged
//! once: the second insert finds the first and does nothing, and is reported by `flush`
//! as a rejection.
//!
//! # The spool
//! With [`PgOptions::spool`](super::PgOptions::spool), a batch whose commit failed
//! because the database could not be reached (see [`is_unreachable`]) is also written to
//! a file in that directory (see `spool.rs`), fsynced, before its waiters are answered:
//! from then on its records are durable on this node, so `wait_committed` (the daemon's
//! durability gate) returns `Ok`, while `flush`, which promises a commit, still returns
//! the error. The batch stays queued and is retried as before; once it commits, its
//! files are removed. During the outage, a `wait_committed` waiter does not wait for the
//! next retry: the new part of the batch is spooled at once. Whatever a run leaves in
//! the spool (it was killed, or closed during the outage) is replayed by the next
//! [`PgStore::open`] before the writer takes new work.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::try_join_all;
use jiff::Timestamp;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, error::TryRecvError};
use tokio::time::{Instant, timeout_at};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use super::spool;
use super::{PgStore, Shared, block, dup_error, is_transient, is_unreachable, ts_from_us};
use crate::{
    ALIVE_TICK, Cdr, CdrFilter, CdrStore, MissedCallAlert, NewAlert, PhoneAttempt, Rejection,
    StoreError,
};
use sihai_records::Money;

/// First wait before retrying a failed commit; doubles up to [`MAX_RETRY_DELAY`].
const INITIAL_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Rejections kept for the next `flush` to report (all are logged).
const MAX_KEPT_REJECTIONS: usize = 1000;
/// How often a batch chosen as a deadlock victim is run again at once before it is
/// left to the ordinary backoff.
const TRANSIENT_RETRIES: usize = 5;
/// How long an alert handed out by `due_alerts` is this node's to deliver: another
/// node's worker sees it due again only after this, so a node that dies mid-delivery
/// delays its alerts by this much and loses none.
pub(crate) const ALERT_LEASE: Duration = Duration::from_secs(60);

/// One CDR, its phone attempts, its alert, and the call's settlement, as one statement
/// (every part sees the same snapshot and they commit or fail together):
///
/// - `ins`: the CDR, unless its `call_id` is stored (a duplicate: nothing else of it is
///   written, it charges nothing, and the final `SELECT` says so);
/// - `attempts`, `alert`: only with a new CDR;
/// - `released`: the call's reservation, whatever happened to the CDR (the call is over);
/// - `charged`: with a new CDR costing more than zero whose call is not charged yet,
///   the account's balance (opening the account if it has none, as a post does),
///   `reserved` less what the call held, and `negative_since` by the same rules as a
///   post; the new balance is the entry's `balance_after` (`entry`);
/// - `freed`: otherwise, `reserved` less what the call held.
///
/// `charged` and `freed` never touch the same row (a statement may change a row only
/// once). No `ON CONFLICT` on the ledger insert: `charged` already checked the key, and
/// should a concurrent post take it anyway, a failed statement is better than a balance
/// moved without its entry.
///
/// `$1..$21` the CDR's columns, `$22`/`$23` its attempts' phones and results, `$24..$26`
/// the alert's enterprise, URL and payload (NULL: no alert), `$27` now, `$28` the
/// CDR's `customer_id` (a column added after the others were numbered).
pub(crate) const RECORD_SQL: &str = "
WITH ins AS (
    INSERT INTO cdr (call_id, number, enterprise, caller, caller_province, caller_city,
                     answered_by, setup_at, ring_at, answer_at, end_at, talk_seconds,
                     outcome, hangup_side, hangup_cause, recording, menu_path,
                     announcement, billed_seconds, cost, tariff, customer_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
            $18, $19, $20, $21, $28)
    ON CONFLICT (call_id) DO NOTHING
    RETURNING id
), attempts AS (
    INSERT INTO cdr_attempt (cdr_id, seq, phone, result)
    SELECT ins.id, t.seq - 1, t.phone, t.result
    FROM ins, unnest($22::text[], $23::text[]) WITH ORDINALITY AS t (phone, result, seq)
), alert AS (
    INSERT INTO alert_outbox (call_id, enterprise, url, payload, attempts,
                              next_attempt_at, state, created_at)
    SELECT $1, $24::text, $25::text, $26::text, 0, $11::bigint, 'pending', $27::bigint
    FROM ins
    WHERE $24::text IS NOT NULL
), released AS (
    DELETE FROM reservation WHERE call_id = $1 RETURNING enterprise, held
), charged AS (
    INSERT INTO account AS a (enterprise, balance, reserved, status, status_since,
                              negative_since, low_balance_warned, opened_at)
    SELECT $3, -$20::bigint, 0, 'active', $11::bigint, $11::bigint, 0, $11::bigint
    FROM ins
    WHERE $20::bigint > 0
      AND NOT EXISTS (SELECT 1 FROM ledger l
                      WHERE l.enterprise = $3 AND l.kind = 'call_charge'
                        AND l.reference = $1)
    ON CONFLICT (enterprise) DO UPDATE
    SET balance = a.balance + excluded.balance,
        reserved = a.reserved - COALESCE((SELECT r.held FROM released r
                                          WHERE r.enterprise = a.enterprise), 0),
        negative_since = CASE WHEN a.balance + excluded.balance < 0
                              THEN COALESCE(a.negative_since, excluded.negative_since)
                              ELSE NULL END
    RETURNING a.balance
), entry AS (
    INSERT INTO ledger (enterprise, kind, amount, reference, at, actor, note, balance_after)
    SELECT $3, 'call_charge', -$20::bigint, $1, $11::bigint, 'system', NULL, balance
    FROM charged
), freed AS (
    UPDATE account a SET reserved = a.reserved - r.held
    FROM released r
    WHERE a.enterprise = r.enterprise
      AND NOT (r.enterprise = $3 AND EXISTS (SELECT 1 FROM charged))
)
SELECT EXISTS (SELECT 1 FROM ins)";

/// A CDR that could not be written at all (the isolating retry, see
/// [`Writer::try_commit`]): the call is over, so its reservation is released anyway.
const RELEASE_SQL: &str = "
WITH released AS (
    DELETE FROM reservation WHERE call_id = $1 RETURNING enterprise, held
)
UPDATE account a SET reserved = a.reserved - r.held
FROM released r WHERE a.enterprise = r.enterprise";

const ANSWERED_SQL: &str = "UPDATE reservation SET answered_at = $2 WHERE call_id = $1";

/// This node's last sign of life, in every batch once it reserves.
const STAMP_SQL: &str = "
INSERT INTO node_alive (node, alive_at) VALUES ($1, $2)
ON CONFLICT (node) DO UPDATE SET alive_at = excluded.alive_at";

/// The idle tick's stamp: only while the node has calls open (nothing to recover
/// otherwise, and a node whose calls all ended keeps the moment of the last).
const TICK_SQL: &str = "
INSERT INTO node_alive (node, alive_at)
SELECT $1::text, $2::bigint WHERE EXISTS (SELECT 1 FROM reservation WHERE node = $1)
ON CONFLICT (node) DO UPDATE SET alive_at = excluded.alive_at";

type Reply = std::sync::mpsc::SyncSender<Result<(), StoreError>>;

enum Msg {
    Record(Box<(Cdr, Option<NewAlert>)>),
    Answered(String, Timestamp),
    /// Commit everything queued so far, then reply.
    Flush(Reply),
    /// Reply once everything queued so far has committed, in its own time.
    WaitCommitted(Reply),
    /// Commit everything queued, reply with the result, and stop.
    Shutdown(Reply),
    /// Stop at once without committing what is queued, as a SIGKILL would (tests).
    Abandon,
    /// This store has just reserved for the first time: stamp `alive_at` now (the
    /// reservation is committed already) rather than at the next batch or tick.
    Stamp,
}

/// One queued write of a batch.
// Boxing the CDR would cost an allocation per call to save memory only while a batch
// waits.
#[allow(clippy::large_enum_variant)]
pub(super) enum Op {
    Record { cdr: Cdr, alert: Option<NewAlert> },
    Answered(String, Timestamp),
}

/// The writer task's handle: what the store sends it.
pub(crate) struct WriterHandle {
    tx: UnboundedSender<Msg>,
    path: PathBuf,
}

impl WriterHandle {
    /// Replays what a previous run left in the spool (if the store has one), then starts
    /// the writer task on `handle`. Fails, leaving the spool as it was, if the replay
    /// cannot be committed.
    pub(crate) fn start(
        shared: &Arc<Shared>,
        handle: &tokio::runtime::Handle,
    ) -> Result<WriterHandle, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut writer = Writer {
            shared: Arc::clone(shared),
            rx,
            batch: Vec::new(),
            waiters: Vec::new(),
            patient: Vec::new(),
            stop: false,
            abandon: false,
            stamp_due: false,
            last_stamp: None,
            rejected: Vec::new(),
            last_commit: None,
            retry_at: None,
            retry_delay: INITIAL_RETRY_DELAY,
            in_doubt: HashSet::new(),
            spool_seq: 0,
            spooled: 0,
            spool_files: Vec::new(),
            spooled_records: 0,
            outage: false,
            spool_warned: false,
            spool_dir: None,
            _spool_lock: None,
        };
        if let Some(dir) = &shared.options.spool
            && let Some(lock) = spool::lock(&shared.path, dir)?
        {
            writer.spool_dir = Some(dir.clone());
            writer._spool_lock = Some(lock);
            let leftover = spool::read(&shared.path, dir)?;
            if !leftover.files.is_empty() || !leftover.corrupt.is_empty() {
                writer = block(handle, &shared.path, async move {
                    let replayed = writer.replay(leftover).await;
                    replayed.map(|()| writer)
                })?;
            }
        }
        handle.spawn(writer.run());
        Ok(WriterHandle {
            tx,
            path: shared.path.clone(),
        })
    }

    fn stopped(&self) -> StoreError {
        StoreError::WriterStopped {
            path: self.path.clone(),
        }
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        self.tx.send(msg).map_err(|lost| {
            if let Msg::Record(item) = lost.0 {
                tracing::error!(path = %self.path.display(), cdr = ?item.0, alert = ?item.1,
                    "CDR writer has stopped; CDR not recorded");
            }
            self.stopped()
        })
    }

    /// Sends a request and waits for its answer on this thread (a std channel: this
    /// works from any thread, a tokio runtime's included).
    fn ask(&self, make: impl FnOnce(Reply) -> Msg) -> Result<(), StoreError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.send(make(reply))?;
        answer.recv().map_err(|_| self.stopped())?
    }

    /// Stops the writer without writing what is queued (a simulated SIGKILL).
    pub(crate) fn abandon(&mut self) {
        let _ = self.tx.send(Msg::Abandon);
    }

    /// Commits what is queued and stops the writer.
    pub(crate) fn shut_down(
        &mut self,
        _handle: &tokio::runtime::Handle,
        _path: &Path,
    ) -> Result<(), StoreError> {
        self.ask(Msg::Shutdown)
    }
}

struct Writer {
    shared: Arc<Shared>,
    rx: UnboundedReceiver<Msg>,
    /// Queued writes, in arrival order; kept across failed commits.
    batch: Vec<Op>,
    /// Flushes waiting for the next commit, which they hurry.
    waiters: Vec<Reply>,
    /// Callers waiting for the next commit, which they do not hurry.
    patient: Vec<Reply>,
    /// Set once a shutdown arrives (or every sender is gone).
    stop: bool,
    /// Set by [`Msg::Abandon`]: exit without committing.
    abandon: bool,
    /// The idle tick is due: stamp `alive_at` if calls are open.
    stamp_due: bool,
    last_stamp: Option<Instant>,
    /// Rejected CDRs not yet reported by a flush.
    rejected: Vec<Rejection>,
    last_commit: Option<Instant>,
    retry_at: Option<Instant>,
    retry_delay: Duration,
    /// Call ids of a batch whose `COMMIT` failed without an answer (the connection
    /// broke): it may have committed. When the retried batch finds one of them stored,
    /// that is its own earlier commit, not a duplicate to report.
    in_doubt: HashSet<String>,
    /// Numbers this run's spool files.
    spool_seq: u64,
    /// How many ops at the head of `batch` are in spool files: a prefix, since the batch
    /// only grows between commits (and is emptied by one).
    spooled: usize,
    /// The spool files holding those ops: removed once the batch commits.
    spool_files: Vec<PathBuf>,
    /// The CDRs among those ops, for the log.
    spooled_records: usize,
    /// The last commit failed because the database could not be reached: waiters are
    /// answered from the spool without waiting for the retry.
    outage: bool,
    /// "spooling" has been logged at warn for this outage.
    spool_warned: bool,
    /// [`PgOptions::spool`](super::PgOptions::spool), once this store holds its lock.
    spool_dir: Option<PathBuf>,
    /// The spool directory's lock, held for the writer's life (released by the OS if the
    /// process dies): another process opening the store (the CLI beside the daemon)
    /// neither replays nor spools into this store's directory.
    _spool_lock: Option<std::fs::File>,
}

impl Writer {
    async fn run(mut self) {
        loop {
            self.wait_for_work().await;
            self.gather().await;
            if self.abandon {
                return;
            }
            // A failed batch waits for its retry time unless someone asks for it.
            let backing_off = self.retry_at.is_some_and(|t| Instant::now() < t)
                && self.waiters.is_empty()
                && !self.stop;
            if !backing_off {
                self.commit_and_reply().await;
            } else if self.outage && !self.patient.is_empty() && self.spool_tail().await {
                // During an outage a call's final response need not wait for the next
                // retry (up to 5 s): its CDR is durable on this node once spooled.
                for waiter in self.patient.drain(..) {
                    let _ = waiter.send(Ok(()));
                }
            }
            if self.stop {
                // The final commit failed. What is spooled is replayed by the next start;
                // the rest exists only in the log from here on.
                if self.spooled > 0 {
                    tracing::warn!(path = %self.shared.path.display(),
                        spool = %self.spool_dir_display(), cdrs = self.spooled_records,
                        "stopping with CDRs in the spool; the next start replays them");
                }
                for op in &self.batch[self.spooled..] {
                    if let Op::Record { cdr, alert } = op {
                        tracing::error!(path = %self.shared.path.display(), ?cdr, ?alert,
                            "CDR lost at shutdown");
                    }
                }
                return;
            }
        }
    }

    fn accept(&mut self, msg: Option<Msg>) {
        match msg {
            Some(Msg::Record(item)) => {
                let (cdr, alert) = *item;
                self.batch.push(Op::Record { cdr, alert });
            }
            Some(Msg::Answered(call_id, at)) => self.batch.push(Op::Answered(call_id, at)),
            Some(Msg::Flush(reply)) => self.waiters.push(reply),
            Some(Msg::WaitCommitted(reply)) => {
                // Durable already: committed, or (during an outage) all in the spool.
                let durable = if self.batch.is_empty() {
                    self.retry_at.is_none()
                } else {
                    self.spooled == self.batch.len()
                };
                if durable {
                    let _ = reply.send(Ok(()));
                } else {
                    self.patient.push(reply);
                }
            }
            Some(Msg::Shutdown(reply)) => {
                // Answered, like a flush, by the final commit.
                self.waiters.push(reply);
                self.stop = true;
            }
            Some(Msg::Abandon) => {
                self.abandon = true;
                self.stop = true;
            }
            Some(Msg::Stamp) => self.stamp_due = true,
            None => self.stop = true,
        }
    }

    /// Waits until there is a message, a failed batch is due for retry, or (while this
    /// node reserves) the alive tick is due.
    async fn wait_for_work(&mut self) {
        if self.stop {
            return;
        }
        let reserving = self.shared.reserving.load(Ordering::Relaxed);
        match self.retry_at {
            Some(at) if !self.batch.is_empty() => {
                if Instant::now() < at
                    && let Ok(msg) = timeout_at(at, self.rx.recv()).await
                {
                    self.accept(msg);
                }
            }
            _ if reserving => {
                let due = self
                    .last_stamp
                    .map_or_else(Instant::now, |t| t + ALIVE_TICK);
                match timeout_at(due, self.rx.recv()).await {
                    Ok(msg) => self.accept(msg),
                    Err(_) => self.stamp_due = true,
                }
            }
            _ => {
                let msg = self.rx.recv().await;
                self.accept(msg);
            }
        }
    }

    /// Collects more work until the batch is due: `commit_interval` after the previous
    /// commit, a full batch, a flush or a shutdown. Then takes whatever is already
    /// queued, up to a full batch.
    async fn gather(&mut self) {
        let max_batch = self.shared.options.max_batch.max(1);
        let due = self
            .last_commit
            .map(|t| t + self.shared.options.commit_interval);
        while self.retry_at.is_none()
            && self.waiters.is_empty()
            && !self.stop
            && !self.stamp_due
            && self.batch.len() < max_batch
        {
            let Some(due) = due.filter(|&d| d > Instant::now()) else {
                break;
            };
            match timeout_at(due, self.rx.recv()).await {
                Ok(msg) => self.accept(msg),
                Err(_) => break,
            }
        }
        while !self.stop && self.batch.len() < max_batch {
            match self.rx.try_recv() {
                Ok(msg) => self.accept(Some(msg)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.accept(None),
            }
        }
    }

    async fn commit_and_reply(&mut self) {
        if self.batch.is_empty() {
            // Nothing to write (a flush of an empty queue, or the idle tick): the
            // store stays idle, so the next CDR still commits at once.
            if self.stamp_due {
                self.stamp_tick().await;
            }
            self.answer_committed(Vec::new());
            return;
        }
        let started = Instant::now();
        let result = self.commit().await;
        match &result {
            Ok(_) => {
                let records = self
                    .batch
                    .iter()
                    .filter(|op| matches!(op, Op::Record { .. }))
                    .count();
                self.shared
                    .writer_stats
                    .committed(records, started.elapsed());
            }
            Err(_) => self.shared.writer_stats.commit_failed(),
        }
        match result {
            Ok(rejected) => {
                let now = Instant::now();
                self.batch.clear();
                self.in_doubt.clear();
                if self.shared.reserving.load(Ordering::Relaxed) {
                    self.last_stamp = Some(now);
                }
                self.stamp_due = false;
                self.last_commit = Some(now);
                self.retry_at = None;
                self.retry_delay = INITIAL_RETRY_DELAY;
                self.outage = false;
                self.spool_warned = false;
                self.spooled = 0;
                if !self.spool_files.is_empty() {
                    // Committed: the spool's copy is no longer needed.
                    spool::remove(&std::mem::take(&mut self.spool_files));
                    tracing::info!(path = %self.shared.path.display(),
                        spool = %self.spool_dir_display(),
                        "database reachable again; replayed {} spooled CDRs",
                        self.spooled_records);
                }
                self.spooled_records = 0;
                self.answer_committed(rejected);
            }
            Err(e) => {
                tracing::error!(path = %self.shared.path.display(), pending = self.batch.len(),
                    retry_in_ms = self.retry_delay.as_millis() as u64, error = %e,
                    "committing CDRs failed; will retry");
                self.retry_at = Some(Instant::now() + self.retry_delay);
                self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY_DELAY);
                self.outage = is_unreachable(&e);
                // Only an unreachable database is spooled for: a batch the database
                // refuses would be refused again at replay, and a deadlock is retried.
                let durable = if self.outage {
                    self.spool_tail().await
                } else {
                    self.spooled == self.batch.len()
                };
                // A flush promises a commit: it gets the error even when the batch is
                // spooled. Callers waiting for durability get `Ok` once it is.
                for waiter in self.waiters.drain(..) {
                    let _ = waiter.send(Err(dup_error(&e)));
                }
                for waiter in self.patient.drain(..) {
                    let reply = if durable { Ok(()) } else { Err(dup_error(&e)) };
                    let _ = waiter.send(reply);
                }
            }
        }
    }

    /// Writes the part of the batch not yet in the spool to a new spool file; returns
    /// whether the whole batch is now in the spool (false without a spool, or if the
    /// file could not be written: that is logged, and the next attempt tries again).
    async fn spool_tail(&mut self) -> bool {
        let Some(dir) = self.spool_dir.clone() else {
            return false;
        };
        if self.spooled == self.batch.len() {
            return true;
        }
        let tail = &self.batch[self.spooled..];
        let records = tail
            .iter()
            .filter(|op| matches!(op, Op::Record { .. }))
            .count();
        let text = match spool::encode(tail) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(path = %self.shared.path.display(), spool = %dir.display(),
                    error = %e, "cannot encode CDRs for the spool; they stay in memory only");
                return false;
            }
        };
        let path = self.shared.path.clone();
        let mut seq = self.spool_seq;
        // File I/O and two fsyncs: off the runtime's worker threads, which also answer
        // reservations.
        let written = tokio::task::spawn_blocking(move || {
            let written = spool::write(&path, &dir, &mut seq, &text);
            (written, seq)
        })
        .await;
        let file = match written {
            Ok((written, seq)) => {
                self.spool_seq = seq;
                written
            }
            Err(e) => {
                tracing::error!(path = %self.shared.path.display(), error = %e,
                    "the spool writer task failed; CDRs stay in memory only");
                return false;
            }
        };
        match file {
            Ok(file) => {
                self.spool_files.push(file);
                self.spooled = self.batch.len();
                self.spooled_records += records;
                if self.spool_warned {
                    tracing::debug!(path = %self.shared.path.display(), cdrs = records,
                        total = self.spooled_records, "spooled more CDRs");
                } else {
                    self.spool_warned = true;
                    tracing::warn!(path = %self.shared.path.display(), cdrs = records,
                        "database unreachable; spooling CDRs to {}", self.spool_dir_display());
                }
                true
            }
            Err(e) => {
                tracing::error!(path = %self.shared.path.display(), error = %e,
                    "cannot write the spool; CDRs stay in memory only until the database is back");
                false
            }
        }
    }

    fn spool_dir_display(&self) -> String {
        self.spool_dir
            .as_ref()
            .map_or_else(|| "(no spool)".to_owned(), |d| d.display().to_string())
    }

    /// Commits what a previous run left in the spool, in batches of at most
    /// `max_batch`, then removes its files (and sets aside the unreadable ones). Every
    /// replayed call id is in doubt: a CDR already stored (the earlier commit did
    /// happen) is the same record, not a duplicate to report, and its statement charges
    /// nothing again.
    async fn replay(&mut self, leftover: spool::Leftover) -> Result<(), StoreError> {
        let records = leftover
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Record { .. }))
            .count();
        tracing::info!(path = %self.shared.path.display(), spool = %self.spool_dir_display(),
            files = leftover.files.len() + leftover.corrupt.len(), cdrs = records,
            "replaying CDRs a previous run left in the spool");
        for op in &leftover.ops {
            if let Op::Record { cdr, .. } = op {
                self.in_doubt.insert(cdr.call_id.clone());
            }
        }
        let max_batch = self.shared.options.max_batch.max(1);
        let mut ops = leftover.ops.into_iter();
        loop {
            self.batch.extend(ops.by_ref().take(max_batch));
            if self.batch.is_empty() {
                break;
            }
            let committed = self.commit().await;
            self.batch.clear();
            // On failure the files stay for the next start; open fails.
            let rejected = committed?;
            let room = MAX_KEPT_REJECTIONS.saturating_sub(self.rejected.len());
            self.rejected.extend(rejected.into_iter().take(room));
        }
        self.in_doubt.clear();
        spool::remove(&leftover.files);
        for (file, problem) in &leftover.corrupt {
            spool::set_aside(file, problem);
        }
        tracing::info!(path = %self.shared.path.display(), spool = %self.spool_dir_display(),
            "replayed {records} spooled CDRs");
        Ok(())
    }

    /// Answers the waiters of a successful commit: flushes with the rejections not yet
    /// reported.
    fn answer_committed(&mut self, rejected: Vec<Rejection>) {
        let room = MAX_KEPT_REJECTIONS.saturating_sub(self.rejected.len());
        self.rejected.extend(rejected.into_iter().take(room));
        for waiter in self.patient.drain(..) {
            let _ = waiter.send(Ok(()));
        }
        if !self.waiters.is_empty() {
            let rejected = std::mem::take(&mut self.rejected);
            for waiter in self.waiters.drain(..) {
                let reply = if rejected.is_empty() {
                    Ok(())
                } else {
                    Err(StoreError::Rejected {
                        path: self.shared.path.clone(),
                        rejected: rejected.clone(),
                    })
                };
                let _ = waiter.send(reply);
            }
        }
    }

    /// The idle tick: one autocommit statement. A failure is only logged (the next
    /// tick tries again); it never holds back the CDRs.
    async fn stamp_tick(&mut self) {
        const CONTEXT: &str = "stamping this node's alive_at";
        self.stamp_due = false;
        self.last_stamp = Some(Instant::now());
        let shared = &self.shared;
        let result = async {
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached(TICK_SQL)
                .await
                .map_err(shared.err(CONTEXT))?;
            client
                .execute(&st, &[&shared.node, &Timestamp::now().as_microsecond()])
                .await
                .map_err(shared.err(CONTEXT))
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(path = %shared.path.display(), error = %e,
                "stamping this node's last sign of life failed; will retry");
        }
    }

    /// Writes the batch, running it again at once if PostgreSQL aborted it for a
    /// concurrent transaction's sake, and one CDR at a time if a CDR cannot be written.
    async fn commit(&mut self) -> Result<Vec<Rejection>, StoreError> {
        let mut transient = 0;
        let mut isolate = false;
        loop {
            match self.try_commit(isolate).await {
                Err(e) if is_transient(&e) && transient < TRANSIENT_RETRIES => {
                    transient += 1;
                    tracing::info!(path = %self.shared.path.display(), error = %e,
                        "CDR batch aborted for a concurrent transaction; running it again");
                }
                Err(e) if !isolate && is_bad_data(&e) => isolate = true,
                other => return other,
            }
        }
    }

    /// The batch in one transaction: `BEGIN`, every statement pipelined, `COMMIT`.
    ///
    /// With `isolate`, each CDR runs alone under a savepoint, so that a CDR the database
    /// refuses (a value it cannot store: class 22 or 23, which the plain attempt
    /// reported for the whole batch) is rolled back alone, released, and rejected while
    /// the rest commits, as the SQLite writer does.
    async fn try_commit(&mut self, isolate: bool) -> Result<Vec<Rejection>, StoreError> {
        const CONTEXT: &str = "committing queued CDRs (will retry)";
        let shared = Arc::clone(&self.shared);
        let err = shared.err(CONTEXT);
        let now = Timestamp::now().as_microsecond();
        let reserving = shared.reserving.load(Ordering::Relaxed);

        // In enterprise order: concurrent batches (another node's) lock accounts in the
        // same order. Answers touch only reservation rows; they go last.
        let mut records: Vec<(&Cdr, Option<&NewAlert>)> = Vec::new();
        let mut answers: Vec<(&String, i64)> = Vec::new();
        for op in &self.batch {
            match op {
                Op::Record { cdr, alert } => records.push((cdr, alert.as_ref())),
                Op::Answered(call_id, at) => answers.push((call_id, at.as_microsecond())),
            }
        }
        records.sort_by(|a, b| a.0.enterprise.cmp(&b.0.enterprise));
        let params: Vec<RecordParams<'_>> = records
            .iter()
            .map(|(cdr, alert)| RecordParams::new(cdr, *alert, now))
            .collect();
        let record_args: Vec<Vec<&(dyn ToSql + Sync)>> =
            params.iter().map(RecordParams::args).collect();
        let answer_args: Vec<[&(dyn ToSql + Sync); 2]> = answers
            .iter()
            .map(|(call_id, at)| [*call_id as &(dyn ToSql + Sync), at])
            .collect();
        let stamp_args: [&(dyn ToSql + Sync); 2] = [&shared.node, &now];

        let mut client = shared.client(CONTEXT).await?;
        let record_st = client.prepare_cached(RECORD_SQL).await.map_err(&err)?;
        let answered_st = client.prepare_cached(ANSWERED_SQL).await.map_err(&err)?;
        let stamp_st = client.prepare_cached(STAMP_SQL).await.map_err(&err)?;
        let mut tx = client.transaction().await.map_err(&err)?;

        let mut inserted: Vec<Option<bool>> = Vec::with_capacity(records.len());
        let mut rejected = Vec::new();
        if isolate {
            let release_st = tx.prepare(RELEASE_SQL).await.map_err(&err)?;
            for (args, (cdr, _)) in record_args.iter().zip(&records) {
                let sp = tx.savepoint("cdr").await.map_err(&err)?;
                match sp.query_one(&record_st, args).await {
                    Ok(row) => {
                        sp.commit().await.map_err(&err)?;
                        inserted.push(Some(row.try_get(0).map_err(&err)?));
                    }
                    Err(e) if is_bad_data_code(&e) => {
                        sp.rollback().await.map_err(&err)?;
                        tx.execute(&release_st, &[&cdr.call_id])
                            .await
                            .map_err(&err)?;
                        let reason = e
                            .as_db_error()
                            .map_or_else(|| e.to_string(), |d| d.message().to_owned());
                        tracing::error!(path = %shared.path.display(), call_id = %cdr.call_id,
                            %reason, ?cdr, "CDR rejected by the database");
                        rejected.push(Rejection {
                            call_id: cdr.call_id.clone(),
                            reason,
                        });
                        inserted.push(None);
                    }
                    Err(e) => return Err(err(e)),
                }
            }
            let mut rest = Vec::new();
            for args in &answer_args {
                rest.push(tx.query(&answered_st, args));
            }
            if reserving {
                rest.push(tx.query(&stamp_st, &stamp_args));
            }
            try_join_all(rest).await.map_err(&err)?;
        } else {
            let mut all = Vec::with_capacity(record_args.len() + answer_args.len() + 1);
            for args in &record_args {
                all.push(tx.query(&record_st, args));
            }
            for args in &answer_args {
                all.push(tx.query(&answered_st, args));
            }
            if reserving {
                all.push(tx.query(&stamp_st, &stamp_args));
            }
            let results = try_join_all(all).await.map_err(&err)?;
            for rows in results.iter().take(records.len()) {
                let row = rows.first().ok_or_else(|| {
                    shared.corrupt("cdr", 0, "the CDR statement returned no row".into())
                })?;
                inserted.push(Some(row.try_get(0).map_err(&err)?));
            }
        }

        if let Err(e) = tx.commit().await {
            // Sent but unanswered (the connection broke), the COMMIT may have happened:
            // the retry must not call this batch's own CDRs duplicates.
            self.in_doubt
                .extend(records.iter().map(|(c, _)| c.call_id.clone()));
            return Err(err(e));
        }
        for ((cdr, _), inserted) in records.iter().zip(inserted) {
            if inserted == Some(false) && !self.in_doubt.contains(&cdr.call_id) {
                let reason = "a CDR with this call_id is already stored".to_owned();
                tracing::error!(path = %shared.path.display(), call_id = %cdr.call_id,
                    %reason, ?cdr, "CDR rejected by the database");
                rejected.push(Rejection {
                    call_id: cdr.call_id.clone(),
                    reason,
                });
            }
        }
        Ok(rejected)
    }
}

/// A statement refused for its data (class 22, data exception, or 23, integrity
/// constraint violation): running it again fails again.
fn is_bad_data(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres { source, .. } if is_bad_data_code(source))
}

fn is_bad_data_code(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"))
}

/// [`RECORD_SQL`]'s arguments that are not the CDR's own fields.
struct RecordParams<'a> {
    cdr: &'a Cdr,
    setup_at: i64,
    ring_at: Option<i64>,
    answer_at: Option<i64>,
    end_at: i64,
    talk_seconds: i64,
    outcome: &'static str,
    hangup_side: Option<&'static str>,
    billed_seconds: i64,
    cost: Option<i64>,
    phones: Vec<&'a str>,
    results: Vec<&'a str>,
    alert_enterprise: Option<&'a str>,
    alert_url: Option<&'a str>,
    alert_payload: Option<&'a str>,
    now: i64,
}

impl<'a> RecordParams<'a> {
    fn new(cdr: &'a Cdr, alert: Option<&'a NewAlert>, now: i64) -> RecordParams<'a> {
        RecordParams {
            cdr,
            setup_at: cdr.setup_at.as_microsecond(),
            ring_at: cdr.ring_at.map(|t| t.as_microsecond()),
            answer_at: cdr.answer_at.map(|t| t.as_microsecond()),
            end_at: cdr.end_at.as_microsecond(),
            talk_seconds: i64::from(cdr.talk_seconds),
            outcome: cdr.outcome.as_str(),
            hangup_side: cdr.hangup_side.map(|s| s.as_str()),
            billed_seconds: i64::from(cdr.billed_seconds),
            cost: cdr.cost.map(|c| c.units()),
            phones: cdr.attempts.iter().map(|a| a.phone.as_str()).collect(),
            results: cdr.attempts.iter().map(|a| a.result.as_str()).collect(),
            alert_enterprise: alert.map(|a| a.enterprise.as_str()),
            alert_url: alert.map(|a| a.url.as_str()),
            alert_payload: alert.map(|a| a.payload.as_str()),
            now,
        }
    }

    fn args(&self) -> Vec<&(dyn ToSql + Sync)> {
        let c = self.cdr;
        vec![
            &c.call_id,
            &c.number,
            &c.enterprise,
            &c.caller,
            &c.caller_province,
            &c.caller_city,
            &c.answered_by,
            &self.setup_at,
            &self.ring_at,
            &self.answer_at,
            &self.end_at,
            &self.talk_seconds,
            &self.outcome,
            &self.hangup_side,
            &c.hangup_cause,
            &c.recording,
            &c.menu_path,
            &c.announcement,
            &self.billed_seconds,
            &self.cost,
            &c.tariff,
            &self.phones,
            &self.results,
            &self.alert_enterprise,
            &self.alert_url,
            &self.alert_payload,
            &self.now,
            &c.customer_id,
        ]
    }
}

/// A column of `row`, or what is wrong with it.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, String> {
    row.try_get(idx).map_err(|e| format!("column {idx}: {e}"))
}

/// An optional instant column.
pub(crate) fn get_ts_opt(row: &Row, idx: usize) -> Result<Option<Timestamp>, String> {
    get::<Option<i64>>(row, idx)?.map(ts_from_us).transpose()
}

/// The columns [`cdr_from_row`] decodes, in its order: the CDR's, then its attempts'
/// phones and results (arrays in `seq` order, from the same statement and so the same
/// snapshot).
const CDR_SELECT: &str = "SELECT id, call_id, number, enterprise, caller, caller_province,
        caller_city, answered_by, setup_at, ring_at, answer_at, end_at, talk_seconds,
        outcome, hangup_side, hangup_cause, recording, menu_path, announcement,
        billed_seconds, cost, tariff,
        ARRAY(SELECT a.phone FROM cdr_attempt a WHERE a.cdr_id = cdr.id ORDER BY a.seq),
        ARRAY(SELECT a.result FROM cdr_attempt a WHERE a.cdr_id = cdr.id ORDER BY a.seq),
        customer_id
    FROM cdr WHERE TRUE";

fn cdr_from_row(shared: &Shared, row: &Row) -> Result<Cdr, StoreError> {
    let id: i64 = row.try_get(0).unwrap_or(0);
    let decoded = (|| -> Result<Cdr, String> {
        let outcome: String = get(row, 13)?;
        let side: Option<String> = get(row, 14)?;
        let talk: i64 = get(row, 12)?;
        let billed: i64 = get(row, 19)?;
        let phones: Vec<String> = get(row, 22)?;
        let results: Vec<String> = get(row, 23)?;
        Ok(Cdr {
            call_id: get(row, 1)?,
            number: get(row, 2)?,
            enterprise: get(row, 3)?,
            caller: get(row, 4)?,
            caller_province: get(row, 5)?,
            caller_city: get(row, 6)?,
            answered_by: get(row, 7)?,
            attempts: phones
                .into_iter()
                .zip(results)
                .map(|(phone, result)| PhoneAttempt { phone, result })
                .collect(),
            setup_at: ts_from_us(get(row, 8)?)?,
            ring_at: get_ts_opt(row, 9)?,
            answer_at: get_ts_opt(row, 10)?,
            end_at: ts_from_us(get(row, 11)?)?,
            talk_seconds: u32::try_from(talk).map_err(|_| format!("talk_seconds {talk}"))?,
            outcome: outcome.parse().map_err(|e| format!("{e}"))?,
            hangup_side: side
                .map(|s| s.parse())
                .transpose()
                .map_err(|e| format!("{e}"))?,
            hangup_cause: get(row, 15)?,
            recording: get(row, 16)?,
            menu_path: get(row, 17)?,
            announcement: get(row, 18)?,
            billed_seconds: u32::try_from(billed)
                .map_err(|_| format!("billed_seconds {billed}"))?,
            cost: get::<Option<i64>>(row, 20)?.map(Money::from_units),
            tariff: get(row, 21)?,
            customer_id: get(row, 24)?,
        })
    })();
    decoded.map_err(|d| shared.corrupt("cdr", id, d))
}

/// Decodes `id, call_id, enterprise, url, payload, attempts, next_attempt_at`.
fn alert_from_row(shared: &Shared, row: &Row) -> Result<MissedCallAlert, StoreError> {
    let id: i64 = row.try_get(0).unwrap_or(0);
    let decoded = (|| -> Result<MissedCallAlert, String> {
        let attempts: i64 = get(row, 5)?;
        Ok(MissedCallAlert {
            id,
            call_id: get(row, 1)?,
            enterprise: get(row, 2)?,
            url: get(row, 3)?,
            payload: get(row, 4)?,
            attempts: u32::try_from(attempts).map_err(|_| format!("attempts {attempts}"))?,
            next_attempt_at: ts_from_us(get(row, 6)?)?,
        })
    })();
    decoded.map_err(|d| shared.corrupt("alert_outbox", id, d))
}

/// A `LIMIT` argument.
pub(crate) fn limit_arg(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A dynamic statement's arguments, owned so that its future can be `'static`.
pub(crate) type Args = Vec<Box<dyn ToSql + Sync + Send>>;

/// Appends an argument; returns its placeholder number.
pub(crate) fn push(args: &mut Args, value: impl ToSql + Sync + Send + 'static) -> usize {
    args.push(Box::new(value));
    args.len()
}

impl CdrStore for PgStore {
    fn record(&self, cdr: Cdr, alert: Option<NewAlert>) -> Result<(), StoreError> {
        self.shared.writer_stats.queued_one();
        self.writer.send(Msg::Record(Box::new((cdr, alert))))
    }

    fn writer_stats(&self) -> Arc<crate::WriterStats> {
        Arc::clone(&self.shared.writer_stats)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.writer.ask(Msg::Flush)
    }

    fn wait_committed(&self) -> Result<(), StoreError> {
        self.writer.ask(Msg::WaitCommitted)
    }

    fn query(&self, filter: &CdrFilter) -> Result<Vec<Cdr>, StoreError> {
        const CONTEXT: &str = "querying CDRs";
        let mut sql = String::from(CDR_SELECT);
        let mut args: Args = Vec::new();
        if let Some(id) = &filter.call_id {
            let n = push(&mut args, id.clone());
            sql.push_str(&format!(" AND call_id = ${n}"));
        }
        if let Some(number) = &filter.number {
            let n = push(&mut args, number.clone());
            sql.push_str(&format!(" AND number = ${n}"));
        }
        if let Some(e) = &filter.enterprise {
            let n = push(&mut args, e.clone());
            sql.push_str(&format!(" AND enterprise = ${n}"));
        }
        if let Some(c) = &filter.caller {
            let n = push(&mut args, c.clone());
            sql.push_str(&format!(" AND caller = ${n}"));
        }
        if let Some(t) = filter.since {
            let n = push(&mut args, t.as_microsecond());
            sql.push_str(&format!(" AND setup_at >= ${n}"));
        }
        if let Some(t) = filter.until {
            let n = push(&mut args, t.as_microsecond());
            sql.push_str(&format!(" AND setup_at < ${n}"));
        }
        if let Some(o) = filter.outcome {
            let n = push(&mut args, o.as_str().to_owned());
            sql.push_str(&format!(" AND outcome = ${n}"));
        }
        if !filter.outcomes.is_empty() {
            let names: Vec<String> = filter
                .outcomes
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect();
            let n = push(&mut args, names);
            sql.push_str(&format!(" AND outcome = ANY(${n})"));
        }
        if let Some((setup_at, call_id)) = &filter.before {
            // After (setup_at, id) of the given call in the (setup_at DESC, id DESC)
            // order; its id from its call_id (unique, indexed).
            let at = push(&mut args, setup_at.as_microsecond());
            let call = push(&mut args, call_id.clone());
            sql.push_str(&format!(
                " AND (setup_at < ${at} OR (setup_at = ${at} AND \
                 id < (SELECT id FROM cdr WHERE call_id = ${call})))"
            ));
        }
        sql.push_str(" ORDER BY setup_at DESC, id DESC");
        if filter.limit > 0 {
            let n = push(&mut args, limit_arg(filter.limit));
            sql.push_str(&format!(" LIMIT ${n}"));
        }
        let shared = Arc::clone(&self.shared);
        self.run(async move {
            // One statement, so one snapshot: the CDRs and their attempts agree.
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached(&sql)
                .await
                .map_err(shared.err(CONTEXT))?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
            let rows = client
                .query(&st, &refs)
                .await
                .map_err(shared.err(CONTEXT))?;
            rows.iter().map(|row| cdr_from_row(&shared, row)).collect()
        })
    }

    fn callers_before(
        &self,
        enterprise: &str,
        callers: &[String],
        before: Timestamp,
    ) -> Result<HashSet<String>, StoreError> {
        const CONTEXT: &str = "looking for callers' earlier calls";
        if callers.is_empty() {
            return Ok(HashSet::new());
        }
        let shared = Arc::clone(&self.shared);
        let enterprise = enterprise.to_owned();
        let callers = callers.to_vec();
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            // Each caller is one seek on (caller, setup_at).
            let st = client
                .prepare_cached(
                    "SELECT DISTINCT caller FROM cdr
                     WHERE enterprise = $1 AND setup_at < $2 AND caller = ANY($3)",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let rows = client
                .query(&st, &[&enterprise, &before.as_microsecond(), &callers])
                .await
                .map_err(shared.err(CONTEXT))?;
            rows.iter()
                .map(|row| get::<String>(row, 0).map_err(|d| shared.corrupt("cdr", 0, d)))
                .collect()
        })
    }

    fn charged_calls(
        &self,
        enterprise: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<(u64, Money), StoreError> {
        const CONTEXT: &str = "counting charged calls";
        let shared = Arc::clone(&self.shared);
        let enterprise = enterprise.to_owned();
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached(
                    "SELECT count(*), COALESCE(SUM(cost), 0)::bigint FROM cdr
                     WHERE enterprise = $1 AND setup_at >= $2 AND setup_at < $3 AND cost > 0",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let row = client
                .query_one(
                    &st,
                    &[
                        &enterprise,
                        &since.as_microsecond(),
                        &until.as_microsecond(),
                    ],
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let count: i64 = get(&row, 0).map_err(|d| shared.corrupt("cdr", 0, d))?;
            let cost: i64 = get(&row, 1).map_err(|d| shared.corrupt("cdr", 0, d))?;
            Ok((u64::try_from(count).unwrap_or(0), Money::from_units(cost)))
        })
    }

    fn queue_alert(
        &self,
        reference: &str,
        alert: NewAlert,
        due: Timestamp,
    ) -> Result<(), StoreError> {
        const CONTEXT: &str = "queueing an account alert";
        let shared = Arc::clone(&self.shared);
        let reference = reference.to_owned();
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached(
                    "INSERT INTO alert_outbox (call_id, enterprise, url, payload, attempts,
                                               next_attempt_at, state, created_at)
                     VALUES ($1, $2, $3, $4, 0, $5, 'pending', $6)",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            // Autocommit: durable when the server answers.
            client
                .execute(
                    &st,
                    &[
                        &reference,
                        &alert.enterprise,
                        &alert.url,
                        &alert.payload,
                        &due.as_microsecond(),
                        &Timestamp::now().as_microsecond(),
                    ],
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            Ok(())
        })
    }

    fn pending_alerts(&self) -> Result<u64, StoreError> {
        const CONTEXT: &str = "counting pending alerts";
        let shared = Arc::clone(&self.shared);
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            let row = client
                .query_one(
                    "SELECT count(*) FROM alert_outbox WHERE state = 'pending'",
                    &[],
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let count: i64 = row.try_get(0).map_err(shared.err(CONTEXT))?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
    }

    fn due_alerts(&self, now: Timestamp, limit: usize) -> Result<Vec<MissedCallAlert>, StoreError> {
        const CONTEXT: &str = "claiming due missed-call alerts";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let shared = Arc::clone(&self.shared);
        let lease_until = (now + ALERT_LEASE).as_microsecond();
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            // Claims what it returns: each node's delivery worker pushes the alerts it
            // takes a lease into the future, under row locks other workers skip, so no
            // two nodes deliver one alert. The caller gets the rows as they were
            // (`next_attempt_at` as due, not as leased).
            let st = client
                .prepare_cached(
                    "WITH due AS (
                         SELECT id, next_attempt_at FROM alert_outbox
                         WHERE state = 'pending' AND next_attempt_at <= $1
                         ORDER BY next_attempt_at, id LIMIT $2
                         FOR UPDATE SKIP LOCKED
                     )
                     UPDATE alert_outbox o SET next_attempt_at = $3
                     FROM due WHERE o.id = due.id
                     RETURNING o.id, o.call_id, o.enterprise, o.url, o.payload, o.attempts,
                               due.next_attempt_at",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let rows = client
                .query(
                    &st,
                    &[&now.as_microsecond(), &limit_arg(limit), &lease_until],
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let mut alerts = rows
                .iter()
                .map(|row| alert_from_row(&shared, row))
                .collect::<Result<Vec<_>, _>>()?;
            // RETURNING has no order: soonest first, as promised.
            alerts.sort_by_key(|a| (a.next_attempt_at, a.id));
            Ok(alerts)
        })
    }

    fn alert_delivered(&self, id: i64) -> Result<(), StoreError> {
        const CONTEXT: &str = "removing a delivered missed-call alert";
        let shared = Arc::clone(&self.shared);
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached("DELETE FROM alert_outbox WHERE id = $1")
                .await
                .map_err(shared.err(CONTEXT))?;
            let n = client
                .execute(&st, &[&id])
                .await
                .map_err(shared.err(CONTEXT))?;
            if n == 0 {
                return Err(StoreError::AlertNotFound {
                    path: shared.path.clone(),
                    id,
                });
            }
            Ok(())
        })
    }

    fn alert_failed(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        give_up: bool,
    ) -> Result<(), StoreError> {
        const CONTEXT: &str = "rescheduling a failed missed-call alert";
        let shared = Arc::clone(&self.shared);
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached(
                    "UPDATE alert_outbox
                     SET attempts = attempts + 1,
                         next_attempt_at = $2,
                         state = CASE WHEN $3 THEN 'dead' ELSE state END
                     WHERE id = $1",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let n = client
                .execute(&st, &[&id, &next_attempt_at.as_microsecond(), &give_up])
                .await
                .map_err(shared.err(CONTEXT))?;
            if n == 0 {
                return Err(StoreError::AlertNotFound {
                    path: shared.path.clone(),
                    id,
                });
            }
            Ok(())
        })
    }
}

impl PgStore {
    /// Has the writer stamp this node's `alive_at` at once (after its first
    /// reservation: a node killed before its first batch is still recoverable).
    pub(crate) fn stamp_soon(&self) -> Result<(), StoreError> {
        self.writer.send(Msg::Stamp)
    }

    /// Queues a call's answer time for its reservation (see
    /// [`LedgerStore::mark_answered`](crate::LedgerStore::mark_answered)).
    pub(crate) fn queue_answered(&self, call_id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.writer.send(Msg::Answered(call_id.to_owned(), at))
    }
}
