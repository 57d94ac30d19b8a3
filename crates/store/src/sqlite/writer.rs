//! The writer thread: owns the write connection and commits queued CDRs, their
//! settlements and reservation rows in batches; runs account operations in
//! transactions of their own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};

use super::access::AccessOp;
use super::book::{Book, ReserveWrite};
use super::ledger::{self as sql, Charged};
use super::{SqliteStore, StoreOptions};
use crate::{Applied, Cdr, NewAlert, Posted, Rejection, StoreError, TenantChange, WriterStats};
use sihai_records::{Account, AccountStatus, NewEntry};

/// First wait before retrying a failed commit; doubles up to [`MAX_RETRY_DELAY`].
const INITIAL_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// While a batch gathers, the writer sleeps in slices this long between looks at its
/// queue: what a flush may wait beyond its own commit.
const GATHER_SLICE: Duration = Duration::from_millis(5);
/// Rejections kept for the next `flush` to report (all are logged).
const MAX_KEPT_REJECTIONS: usize = 1000;
/// A commit slower than this holds back every ended call's final messages as long (the
/// durability gate waits for it), long enough for UDP peers to retransmit: worth a
/// warning that names the disk.
const SLOW_COMMIT: Duration = Duration::from_millis(200);
/// While reservations are open, `node_clock.alive_at` is stamped at least this often
/// (by an otherwise empty commit when the store is idle), so that a restart after a kill
/// charges the calls it finds open up to within this much of the kill.
pub const ALIVE_TICK: Duration = Duration::from_secs(1);

type Reply = Sender<Result<(), StoreError>>;

/// An account, tenant data or access operation: run at once in its own transaction, durable
/// when answered.
pub(crate) enum Admin {
    Post(NewEntry, Sender<Result<Posted, StoreError>>),
    OpenAccount(String, Timestamp, Sender<Result<Account, StoreError>>),
    SetStatus(String, AccountStatus, Timestamp, Reply),
    SetWarned(String, bool, Reply),
    ApplyTenant(TenantChange, Sender<Result<Applied, StoreError>>),
    /// A write of users, sessions, API keys or the audit log.
    Access(AccessOp),
    /// An uploaded recording: (digest, WAV, when).
    PutAudio(String, Vec<u8>, Timestamp, Reply),
    /// Deletes the uploaded recordings no prompt names, stored before (µs).
    SweepAudio(i64, Sender<Result<usize, StoreError>>),
    /// Merges a pass of CDRs folded after the analytics watermark into the rollups.
    RollUp(
        Box<super::analytics::FoldedPass>,
        Sender<Result<crate::RolledUp, StoreError>>,
    ),
}

/// One queued write of a batch.
// Boxing the CDR would cost an allocation per call to save memory only while a batch
// (at most `max_batch` ops) waits.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Op {
    /// A CDR, its alert, and the call's settlement. `pending` is the charge the book
    /// counted as pending for it, cleared once the batch commits.
    Record {
        cdr: Cdr,
        alert: Option<NewAlert>,
        pending: i64,
    },
    Reserve(ReserveWrite),
    Answered(String, Timestamp),
}

pub(crate) enum Msg {
    Record(Box<(Cdr, Option<NewAlert>, i64)>),
    Reserve(Box<ReserveWrite>),
    Answered(String, Timestamp),
    Admin(Admin),
    /// Stop at once without committing what is queued, as a SIGKILL would (tests).
    Abandon,
    /// Commit everything queued so far, then reply.
    Flush(Reply),
    /// Reply once everything queued so far has committed, in its own time.
    WaitCommitted(Reply),
    /// Commit everything queued, reply with the result, and stop.
    Shutdown(Reply),
}

pub(crate) struct Writer {
    conn: Connection,
    path: PathBuf,
    rx: Receiver<Msg>,
    options: StoreOptions,
    book: Arc<Mutex<Book>>,
    /// Queued writes, in arrival order; kept across failed commits.
    batch: Vec<Op>,
    /// The next commit stamps `alive_at` even if the batch is empty.
    stamp_due: bool,
    last_stamp: Option<Instant>,
    /// Set by [`Msg::Abandon`]: exit without committing.
    abandon: bool,
    /// This process has reserved: it is the daemon that keeps `alive_at`. Other
    /// processes on the same file (the CLI) never stamp it, nor does a restarted daemon
    /// before it admits its first call.
    reserving: bool,
    /// Flushes waiting for the next commit, which they hurry.
    waiters: Vec<Reply>,
    /// Callers waiting for the next commit, which they do not hurry.
    patient: Vec<Reply>,
    /// Set once a shutdown arrives (or every sender is gone).
    stop: bool,
    /// Where each call's reservation write sits in `batch`, so that its answer joins it.
    reserves: HashMap<String, usize>,
    /// Rejected CDRs not yet reported by a flush.
    rejected: Vec<Rejection>,
    last_commit: Option<Instant>,
    retry_at: Option<Instant>,
    retry_delay: Duration,
    stats: Arc<WriterStats>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        path: PathBuf,
        rx: Receiver<Msg>,
        options: StoreOptions,
        book: Arc<Mutex<Book>>,
        stats: Arc<WriterStats>,
    ) -> Writer {
        Writer {
            conn,
            path,
            rx,
            options,
            book,
            batch: Vec::new(),
            stamp_due: false,
            last_stamp: None,
            abandon: false,
            reserving: false,
            waiters: Vec::new(),
            patient: Vec::new(),
            stop: false,
            reserves: HashMap::new(),
            rejected: Vec::new(),
            last_commit: None,
            retry_at: None,
            retry_delay: INITIAL_RETRY_DELAY,
            stats,
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            self.wait_for_work();
            self.gather();
            if self.abandon {
                return;
            }
            // A failed batch waits for its retry time unless someone asks for it.
            let backing_off = self.retry_at.is_some_and(|t| Instant::now() < t)
                && self.waiters.is_empty()
                && !self.stop;
            if !backing_off {
                self.commit_and_reply();
            }
            if self.stop {
                // The final commit failed: these CDRs exist only in the log from here on.
                for op in &self.batch {
                    if let Op::Record { cdr, alert, .. } = op {
                        tracing::error!(path = %self.path.display(), ?cdr, ?alert, "CDR lost at shutdown");
                    }
                }
                return;
            }
        }
    }

    fn accept(&mut self, msg: Result<Msg, ()>) {
        match msg {
            Ok(Msg::Record(item)) => {
                let (cdr, alert, pending) = *item;
                self.batch.push(Op::Record {
                    cdr,
                    alert,
                    pending,
                });
            }
            Ok(Msg::Reserve(write)) => {
                self.reserving = true;
                self.reserves
                    .insert(write.request.call_id.clone(), self.batch.len());
                self.batch.push(Op::Reserve(*write));
            }
            Ok(Msg::Answered(call_id, at)) => {
                // A call answered within the batch that reserved for it (the usual case:
                // phones answer in seconds, batches commit every 50 ms or so under
                // load, but the admission and the answer of a quick call often meet):
                // the answer goes into the reservation's row, one write instead of two.
                match self
                    .reserves
                    .get(&call_id)
                    .and_then(|&i| self.batch.get_mut(i))
                {
                    Some(Op::Reserve(w)) => w.request.recovery.answered_at = Some(at),
                    _ => self.batch.push(Op::Answered(call_id, at)),
                }
            }
            Ok(Msg::Admin(op)) => SqliteStore::run_admin(&mut self.conn, &self.path, op),
            Ok(Msg::Abandon) => {
                self.abandon = true;
                self.stop = true;
            }
            Ok(Msg::Flush(reply)) => self.waiters.push(reply),
            Ok(Msg::WaitCommitted(reply)) => {
                if self.batch.is_empty() && self.retry_at.is_none() {
                    let _ = reply.send(Ok(()));
                } else {
                    self.patient.push(reply);
                }
            }
            Ok(Msg::Shutdown(reply)) => {
                // Answered, like a flush, by the final commit.
                self.waiters.push(reply);
                self.stop = true;
            }
            Err(()) => self.stop = true,
        }
    }

    /// Blocks until there is a message, or a failed batch is due for retry.
    fn wait_for_work(&mut self) {
        match self.retry_at {
            Some(at) if !self.batch.is_empty() => {
                let now = Instant::now();
                if now < at {
                    match self.rx.recv_timeout(at - now) {
                        Ok(msg) => self.accept(Ok(msg)),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => self.accept(Err(())),
                    }
                }
            }
            _ if self.reserving && self.lock_book().has_open_reservations() => {
                // Calls are in progress: wake up to stamp `alive_at` when it is due.
                let due = self.last_stamp.map_or(Instant::now(), |t| t + ALIVE_TICK);
                let wait = due.saturating_duration_since(Instant::now());
                match self.rx.recv_timeout(wait) {
                    Ok(msg) => self.accept(Ok(msg)),
                    Err(RecvTimeoutError::Timeout) => self.stamp_due = true,
                    Err(RecvTimeoutError::Disconnected) => self.accept(Err(())),
                }
            }
            _ => {
                let msg = self.rx.recv().map_err(|_| ());
                self.accept(msg);
            }
        }
    }

    fn lock_book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Collects more work until the batch is due: `commit_interval` after the previous
    /// commit, a full batch, a flush or a shutdown. Then takes whatever is already
    /// queued, up to a full batch, for free.
    fn gather(&mut self) {
        let due = self.last_commit.map(|t| t + self.options.commit_interval);
        while self.retry_at.is_none()
            && self.waiters.is_empty()
            && !self.stop
            && !self.stamp_due
            && self.batch.len() < self.options.max_batch
        {
            let now = Instant::now();
            let Some(due) = due.filter(|&d| d > now) else {
                break;
            };
            // Sleep, then take what came, rather than wait on the channel: a receiver
            // blocked on it is woken by every send, which under load costs the sending
            // event loop a futex wake-up and this thread a context switch per message
            // (three per billed call). A flush or a shutdown waits at most one slice.
            std::thread::sleep((due - now).min(GATHER_SLICE));
            loop {
                match self.rx.try_recv() {
                    Ok(msg) => self.accept(Ok(msg)),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.accept(Err(()));
                        break;
                    }
                }
                if !self.waiters.is_empty()
                    || self.stop
                    || self.batch.len() >= self.options.max_batch
                {
                    break;
                }
            }
        }
        while !self.stop && self.batch.len() < self.options.max_batch {
            match self.rx.try_recv() {
                Ok(msg) => self.accept(Ok(msg)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.accept(Err(())),
            }
        }
    }

    fn commit_and_reply(&mut self) {
        let started = Instant::now();
        // Only a real commit stamps `alive_at` (an account operation or a wait wakes
        // the writer without one): the next stamp is due a tick after the last written.
        let stamps = self.reserving && (!self.batch.is_empty() || self.stamp_due);
        // Only a batch written paces the next: an account or tenant operation (run in its
        // own transaction) or a wait that found nothing queued leaves the store idle, so
        // the next CDR still commits at once.
        let writes = !self.batch.is_empty() || self.stamp_due;
        let result = if !writes {
            Ok((Vec::new(), Vec::new()))
        } else {
            self.commit()
        };
        let took = started.elapsed();
        if took > SLOW_COMMIT {
            tracing::warn!(path = %self.path.display(), writes = self.batch.len(),
                took_ms = took.as_millis() as u64,
                "slow CDR commit: the disk held back the final responses of ended calls");
        }
        match &result {
            Ok(_) if writes => {
                let records = self
                    .batch
                    .iter()
                    .filter(|op| matches!(op, Op::Record { .. }))
                    .count();
                self.stats.committed(records, took);
            }
            Ok(_) => {}
            Err(_) => self.stats.commit_failed(),
        }
        match result {
            Ok((rejected, charged)) => {
                self.after_commit(charged);
                self.batch.clear();
                self.reserves.clear();
                self.stamp_due = false;
                if stamps {
                    self.last_stamp = Some(Instant::now());
                }
                if writes {
                    self.last_commit = Some(Instant::now());
                }
                self.retry_at = None;
                self.retry_delay = INITIAL_RETRY_DELAY;
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
                                path: self.path.clone(),
                                rejected: rejected.clone(),
                            })
                        };
                        let _ = waiter.send(reply);
                    }
                }
            }
            Err(source) => {
                let source = Arc::new(source);
                tracing::error!(path = %self.path.display(), pending = self.batch.len(),
                    retry_in_ms = self.retry_delay.as_millis() as u64, error = %source,
                    "committing CDRs failed; will retry");
                self.retry_at = Some(Instant::now() + self.retry_delay);
                self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY_DELAY);
                for waiter in self.waiters.drain(..).chain(self.patient.drain(..)) {
                    let _ = waiter.send(Err(StoreError::Commit {
                        path: self.path.clone(),
                        pending: self.batch.len(),
                        source: Arc::clone(&source),
                    }));
                }
            }
        }
    }

    /// The book learns what the commit did: each settlement's charge stops being
    /// pending, and the balances the transaction produced become the committed ones.
    fn after_commit(&mut self, charged: Vec<Charged>) {
        let mut book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        for op in &self.batch {
            match op {
                Op::Record { cdr, pending, .. } if *pending != 0 => {
                    book.settled(&cdr.enterprise, *pending);
                }
                _ => {}
            }
        }
        for c in charged {
            book.committed(&c.enterprise, c.balance, c.entry_id);
        }
    }

    /// Writes the batch in one transaction, and stamps `alive_at` (once reserving). A CDR that violates a
    /// constraint (a duplicate `call_id`) is rolled back alone and returned as rejected
    /// (its reservation is still released; it is never charged); any other error rolls
    /// back the whole batch.
    fn commit(&mut self) -> rusqlite::Result<(Vec<Rejection>, Vec<Charged>)> {
        // Constraint violations are rare, and a savepoint per CDR costs about a third of
        // the insert: try the batch plainly first and only isolate CDRs when one fails.
        match self.commit_plainly() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation =>
            {
                self.commit_isolating_rejects()
            }
            other => other.map(|charged| (Vec::new(), charged)),
        }
    }

    /// The whole batch in one transaction, rolled back whole on any error.
    fn commit_plainly(&mut self) -> rusqlite::Result<Vec<Charged>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = Timestamp::now().as_microsecond();
        let mut charged = Vec::new();
        let mut accounts = sql::BatchAccounts::default();
        for op in &self.batch {
            match op {
                Op::Record { cdr, alert, .. } => {
                    insert(&tx, cdr, alert.as_ref(), now)?;
                    sql::settle_batched(&tx, cdr, &mut accounts, &mut charged)?;
                }
                Op::Reserve(w) => sql::write_reservation_batched(&tx, w, &mut accounts)?,
                Op::Answered(call_id, at) => sql::mark_answered(&tx, call_id, *at)?,
            }
        }
        accounts.write(&tx)?;
        if self.reserving {
            sql::stamp_alive(&tx, now)?;
        }
        tx.commit()?;
        Ok(charged)
    }

    /// The batch with a savepoint around each CDR and its settlement, so a CDR that
    /// violates a constraint is rolled back alone.
    fn commit_isolating_rejects(&mut self) -> rusqlite::Result<(Vec<Rejection>, Vec<Charged>)> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = Timestamp::now().as_microsecond();
        let mut rejected = Vec::new();
        let mut charged = Vec::new();
        let mut accounts = sql::BatchAccounts::default();
        for op in &self.batch {
            let (cdr, alert) = match op {
                Op::Record { cdr, alert, .. } => (cdr, alert),
                Op::Reserve(w) => {
                    sql::write_reservation_batched(&tx, w, &mut accounts)?;
                    continue;
                }
                Op::Answered(call_id, at) => {
                    sql::mark_answered(&tx, call_id, *at)?;
                    continue;
                }
            };
            let sp = tx.savepoint()?;
            let mut mine = Vec::new();
            // What the CDR's settlement does to the accounts is undone with its savepoint.
            let before = accounts.clone();
            let result = insert(&sp, cdr, alert.as_ref(), now)
                .and_then(|()| sql::settle_batched(&sp, cdr, &mut accounts, &mut mine));
            match result {
                Ok(()) => {
                    sp.commit()?;
                    charged.append(&mut mine);
                }
                Err(rusqlite::Error::SqliteFailure(e, msg))
                    if e.code == ErrorCode::ConstraintViolation =>
                {
                    drop(sp); // rolls back to the savepoint
                    accounts = before;
                    // The call is over either way: release what it held, charge nothing
                    // (a duplicate CDR's call was charged with its first CDR).
                    sql::release_batched(&tx, &cdr.call_id, &mut accounts)?;
                    let reason = msg.unwrap_or_else(|| e.to_string());
                    tracing::error!(path = %self.path.display(), call_id = %cdr.call_id, %reason,
                        ?cdr, "CDR rejected by the database");
                    rejected.push(Rejection {
                        call_id: cdr.call_id.clone(),
                        reason,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        accounts.write(&tx)?;
        if self.reserving {
            sql::stamp_alive(&tx, now)?;
        }
        tx.commit()?;
        Ok((rejected, charged))
    }
}

fn insert(
    conn: &Connection,
    cdr: &Cdr,
    alert: Option<&NewAlert>,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO cdr (call_id, number, enterprise, caller, caller_province, caller_city,
                          answered_by, setup_at, ring_at, answer_at, end_at, talk_seconds,
                          outcome, hangup_side, hangup_cause, recording, menu_path,
                          announcement, billed_seconds, cost, tariff, customer_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22)",
    )?
    .execute(params![
        cdr.call_id,
        cdr.number,
        cdr.enterprise,
        cdr.caller,
        cdr.caller_province,
        cdr.caller_city,
        cdr.answered_by,
        cdr.setup_at.as_microsecond(),
        cdr.ring_at.map(|t| t.as_microsecond()),
        cdr.answer_at.map(|t| t.as_microsecond()),
        cdr.end_at.as_microsecond(),
        cdr.talk_seconds,
        cdr.outcome.as_str(),
        cdr.hangup_side.map(|s| s.as_str()),
        cdr.hangup_cause,
        cdr.recording,
        cdr.menu_path,
        cdr.announcement,
        cdr.billed_seconds,
        cdr.cost.map(|c| c.units()),
        cdr.tariff,
        cdr.customer_id,
    ])?;
    let id = conn.last_insert_rowid();
    if !cdr.attempts.is_empty() {
        let mut st = conn.prepare_cached(
            "INSERT INTO cdr_attempt (cdr_id, seq, phone, result) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (seq, a) in cdr.attempts.iter().enumerate() {
            st.execute(params![id, seq as i64, a.phone, a.result])?;
        }
    }
    if let Some(alert) = alert {
        conn.prepare_cached(
            "INSERT INTO alert_outbox (call_id, enterprise, url, payload, attempts, next_attempt_at,
                                       state, created_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, 'pending', ?6)",
        )?
        .execute(params![
            cdr.call_id,
            alert.enterprise,
            alert.url,
            alert.payload,
            cdr.end_at.as_microsecond(),
            now,
        ])?;
    }
    Ok(())
}
