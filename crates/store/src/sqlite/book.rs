//! The in-memory book: what [`reserve`](crate::LedgerStore::reserve) decides from, so
//! that an admission never waits for the disk.
//!
//! The database is the truth; the book is a cache of the parts admission needs (each
//! account's balance and status, each open reservation's hold) plus what this process
//! has queued but not yet committed. It is exact because every change to those parts
//! reaches it:
//!
//! - Reservations and settlements made by this process are applied to the book when
//!   they are queued (under the book's lock, and sent to the writer under the same lock,
//!   so the writer's queue is in the book's order). A settlement's charge goes to
//!   `pending` until its batch commits; the writer then moves it into `committed` (with
//!   the balance its transaction returned) and clears `pending` of it.
//! - Everything else that changes a balance or a status (posts, status changes, new
//!   accounts) bumps `node_clock.book_epoch`, in this process or in another one (the
//!   CLI's `sihai account recharge`). Before deciding, `reserve` asks its own read
//!   connection for `PRAGMA data_version`, which changes only when another connection
//!   committed (~1 µs, no I/O beyond the WAL index); only then does it read
//!   `book_epoch`, and only if that moved does it reload the accounts.
//! - `committed` balances carry the id of the newest ledger entry they include, so a
//!   reload and the writer's post-commit update can arrive in either order without an
//!   older balance overwriting a newer one.
//!
//! The one imprecision is conservative: between the writer's commit and its update of
//! the book (microseconds), a reload can count a settlement's charge twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use sihai_records::{AccountStatus, Money, Refusal, ReservationOutcome, ReservationRequest};

use crate::StoreError;

#[derive(Debug, Clone)]
pub(crate) struct BookAccount {
    /// The balance in the database as of `entry_id`.
    committed: i64,
    /// The newest ledger entry `committed` includes (0: none).
    entry_id: i64,
    /// Charges of settlements queued but not yet committed (negative).
    pending: i64,
    /// What this process's open reservations hold.
    reserved: i64,
    status: AccountStatus,
}

impl BookAccount {
    fn available(&self) -> i64 {
        self.committed
            .saturating_add(self.pending)
            .saturating_sub(self.reserved)
    }
}

#[derive(Debug, Clone)]
struct BookCall {
    enterprise: String,
    held: i64,
}

/// What a reservation writes: the reservation row with its new total.
#[derive(Debug, Clone)]
pub(crate) struct ReserveWrite {
    pub request: ReservationRequest,
    /// What the call holds in total after this grant.
    pub held: Money,
    /// What it held before (the book's account of its row), so the writer moves the
    /// account's `reserved` by the difference without reading the row back.
    pub previous: Money,
}

/// How stale the book may be about changes made by other connections (another
/// process's recharge, an account operation): see [`Book::refresh`].
pub(crate) const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

pub(crate) struct Book {
    path: PathBuf,
    /// A read connection of the book's own, for `data_version` and reloads.
    watch: Connection,
    data_version: i64,
    /// When `refresh` last asked SQLite.
    checked: Option<std::time::Instant>,
    epoch: i64,
    accounts: HashMap<String, BookAccount>,
    calls: HashMap<String, BookCall>,
}

impl Book {
    /// Loads every account and open reservation.
    pub(crate) fn load(watch: Connection, path: &Path) -> Result<Book, StoreError> {
        let mut book = Book {
            path: path.to_path_buf(),
            watch,
            data_version: 0,
            checked: None,
            epoch: 0,
            accounts: HashMap::new(),
            calls: HashMap::new(),
        };
        book.data_version = book.read_data_version()?;
        book.reload_accounts()?;
        let calls = {
            let mut st = book
                .watch
                .prepare("SELECT call_id, enterprise, held FROM reservation")
                .map_err(book.err("loading open reservations"))?;
            let rows = st
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        BookCall {
                            enterprise: row.get(1)?,
                            held: row.get(2)?,
                        },
                    ))
                })
                .map_err(book.err("loading open reservations"))?;
            rows.collect::<Result<HashMap<_, _>, _>>()
                .map_err(book.err("loading open reservations"))?
        };
        for call in calls.values() {
            if let Some(a) = book.accounts.get_mut(&call.enterprise) {
                a.reserved = a.reserved.saturating_add(call.held);
            }
        }
        book.calls = calls;
        Ok(book)
    }

    fn err(&self, context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            context,
            source,
        }
    }

    fn read_data_version(&self) -> Result<i64, StoreError> {
        self.watch
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |row| row.get(0)))
            .map_err(self.err("checking for changes by other connections"))
    }

    /// Makes the next [`refresh`](Book::refresh) look, whenever the last one was.
    pub(crate) fn invalidate(&mut self) {
        self.checked = None;
    }

    /// Reloads the accounts if another connection changed one since the last look, at
    /// most once per [`REFRESH_INTERVAL`]: asking SQLite costs a read lock on the WAL
    /// index (a few microseconds), which at thousands of admissions a second is a
    /// measurable share of the event loop, while a recharge or a suspension made
    /// elsewhere need only be seen within a fraction of a second.
    pub(crate) fn refresh(&mut self) -> Result<(), StoreError> {
        let now = std::time::Instant::now();
        if self
            .checked
            .is_some_and(|at| now.saturating_duration_since(at) < REFRESH_INTERVAL)
        {
            return Ok(());
        }
        self.checked = Some(now);
        let version = self.read_data_version()?;
        if version == self.data_version {
            return Ok(());
        }
        self.data_version = version;
        let epoch: i64 = self
            .watch
            .prepare_cached("SELECT book_epoch FROM node_clock WHERE id = 1")
            .and_then(|mut st| st.query_row([], |row| row.get(0)))
            .map_err(self.err("reading the book epoch"))?;
        if epoch != self.epoch {
            self.reload_accounts()?;
        }
        Ok(())
    }

    /// Re-reads every account's balance and status (one snapshot, with the epoch it
    /// belongs to), keeping this process's pending charges and reservations.
    fn reload_accounts(&mut self) -> Result<(), StoreError> {
        const CONTEXT: &str = "reloading accounts into the book";
        let tx = self
            .watch
            .unchecked_transaction()
            .map_err(self.err(CONTEXT))?;
        let epoch: i64 = tx
            .query_row("SELECT book_epoch FROM node_clock WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(self.err(CONTEXT))?;
        let rows: Vec<(String, i64, String, i64)> = {
            let mut st = tx
                .prepare_cached(
                    "SELECT a.enterprise, a.balance, a.status,
                            COALESCE((SELECT MAX(id) FROM ledger l
                                      WHERE l.enterprise = a.enterprise), 0)
                     FROM account a",
                )
                .map_err(self.err(CONTEXT))?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(self.err(CONTEXT))?;
            rows.collect::<Result<_, _>>().map_err(self.err(CONTEXT))?
        };
        tx.finish().map_err(self.err(CONTEXT))?;
        for (enterprise, balance, status, entry_id) in rows {
            let status: AccountStatus = status.parse().map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                table: "account",
                rowid: 0,
                detail: format!("{enterprise}: {e}"),
            })?;
            let a = self
                .accounts
                .entry(enterprise)
                .or_insert_with(|| BookAccount {
                    committed: balance,
                    entry_id,
                    pending: 0,
                    reserved: 0,
                    status,
                });
            if entry_id >= a.entry_id {
                a.committed = balance;
                a.entry_id = entry_id;
            }
            a.status = status;
        }
        self.epoch = epoch;
        Ok(())
    }

    /// Decides a request; returns the outcome and the row to write, if any. Changes
    /// nothing: [`apply_reserve`](Book::apply_reserve) does, once the write is queued.
    pub(crate) fn decide(
        &self,
        request: &ReservationRequest,
    ) -> (ReservationOutcome, Option<ReserveWrite>) {
        let Some(account) = self.accounts.get(&request.enterprise) else {
            return (ReservationOutcome::Refused(Refusal::NoAccount), None);
        };
        let call = self.calls.get(&request.call_id);
        let held_before = call.map_or(0, |c| c.held);
        let available = account.available();
        let want = request.want.units().max(0);
        if let Some(floor) = request.floor {
            match account.status {
                AccountStatus::Active => {}
                AccountStatus::Suspended => {
                    return (ReservationOutcome::Refused(Refusal::Suspended), None);
                }
                AccountStatus::Reclaimed => {
                    return (ReservationOutcome::Refused(Refusal::Reclaimed), None);
                }
            }
            if available < floor.units() {
                return (
                    ReservationOutcome::Refused(Refusal::InsufficientBalance),
                    None,
                );
            }
        }
        let granted = want.min(available.max(0));
        let held = held_before.saturating_add(granted);
        let outcome = ReservationOutcome::Granted {
            granted: Money::from_units(granted),
            held: Money::from_units(held),
        };
        // A renewal that grants nothing still writes: it carries the answer time, and
        // a call the store did not know yet must become recoverable.
        let write = ReserveWrite {
            request: request.clone(),
            held: Money::from_units(held),
            previous: Money::from_units(held_before),
        };
        (outcome, Some(write))
    }

    /// Applies a queued reservation write.
    pub(crate) fn apply_reserve(&mut self, write: &ReserveWrite) {
        let enterprise = &write.request.enterprise;
        let call = self
            .calls
            .entry(write.request.call_id.clone())
            .or_insert_with(|| BookCall {
                enterprise: enterprise.clone(),
                held: 0,
            });
        let delta = write.held.units().saturating_sub(call.held);
        call.held = write.held.units();
        if let Some(a) = self.accounts.get_mut(enterprise) {
            a.reserved = a.reserved.saturating_add(delta);
        }
    }

    /// Applies a queued settlement: releases the call's hold and counts its charge as
    /// pending. Returns the charge counted, for the writer to clear once committed.
    pub(crate) fn apply_settle(&mut self, call_id: &str, enterprise: &str, cost: i64) -> i64 {
        let released = self.calls.remove(call_id);
        if let Some((Some(a), held)) =
            released.map(|c| (self.accounts.get_mut(&c.enterprise), c.held))
        {
            a.reserved = a.reserved.saturating_sub(held);
        }
        match self.accounts.get_mut(enterprise) {
            Some(a) if cost > 0 => {
                a.pending = a.pending.saturating_sub(cost);
                cost
            }
            _ => 0,
        }
    }

    /// After a commit: a settlement's charge of `pending` is no longer pending.
    pub(crate) fn settled(&mut self, enterprise: &str, pending: i64) {
        if let Some(a) = self.accounts.get_mut(enterprise) {
            a.pending = a.pending.saturating_add(pending);
        }
    }

    /// After a commit: the account's balance is `balance` as of ledger entry `entry_id`.
    pub(crate) fn committed(&mut self, enterprise: &str, balance: i64, entry_id: i64) {
        match self.accounts.get_mut(enterprise) {
            Some(a) if entry_id > a.entry_id => {
                a.committed = balance;
                a.entry_id = entry_id;
            }
            _ => {}
        }
    }

    /// Whether any reservation is open (the writer then keeps `alive_at` current).
    pub(crate) fn has_open_reservations(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The book's view of an account: (balance, reserved), for tests.
    pub(crate) fn view(&self, enterprise: &str) -> Option<(Money, Money)> {
        self.accounts.get(enterprise).map(|a| {
            (
                Money::from_units(a.committed.saturating_add(a.pending)),
                Money::from_units(a.reserved),
            )
        })
    }
}
