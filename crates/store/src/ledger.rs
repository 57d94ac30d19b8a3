//! The prepaid ledger seam: accounts, their append-only entries, and the balance
//! reservations of calls in progress.

use std::fmt;

use jiff::Timestamp;

use crate::StoreError;
use sihai_records::{
    Account, AccountStatus, EntryKind, LedgerEntry, Money, NewEntry, OpenReservation,
    ReservationOutcome, ReservationRequest,
};

/// A bounded read of one enterprise's ledger: the API's pages, and the entries of a
/// statement other than its call charges, however many calls the month had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerQuery {
    /// Entries at or after this instant.
    pub since: Option<Timestamp>,
    /// Entries strictly before this instant.
    pub until: Option<Timestamp>,
    /// Keyset pagination: only the entries after this one in the (at, id) order, given
    /// as its `(at, id)` (the last entry of the previous page).
    pub after: Option<(Timestamp, i64)>,
    /// Leave the call charges out (a statement lists the calls instead).
    pub without_call_charges: bool,
    /// At most this many entries (the oldest); 0 means no limit.
    pub limit: usize,
}

/// A period of one account in figures, computed by the store whatever the number of
/// entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTotals {
    /// The `balance_after` of the last entry before the period, or zero.
    pub opening: Money,
    /// The `balance_after` of the period's last entry, or the opening balance.
    pub closing: Money,
    /// Per kind with at least one entry in the period: how many and their sum.
    pub by_kind: Vec<KindTotal>,
}

/// One kind of entry over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindTotal {
    pub kind: EntryKind,
    pub entries: u64,
    pub amount: Money,
}

/// Accounts, the ledger and reservations: SQLite now, PostgreSQL later.
///
/// Object safe: the daemon holds an `Arc<dyn LedgerStore>` next to its
/// `Arc<dyn CdrStore>` (the same [`SqliteStore`](crate::SqliteStore) behind both).
///
/// # The rules every backend keeps
/// - A balance is the sum of the account's ledger entries; entries are never changed.
/// - Posting is idempotent on (enterprise, kind, reference).
/// - A call is settled through [`CdrStore::record`](crate::CdrStore::record): the CDR,
///   its `CallCharge` of `-cost` (reference: the call id, at: the call's end, actor
///   `system`) and the release of its reservation commit in one transaction. A call is
///   charged at most once, however often its CDR is recorded.
/// - Reservations are durable rows, so a daemon killed with SIGKILL finds the calls it
///   had open with [`open_reservations`](LedgerStore::open_reservations) and settles each
///   by recording its CDR.
///
/// # PostgreSQL
/// Each operation maps onto one transaction of atomic statements, with no
/// read-decide-write in the application (documented on each method); the SQLite
/// store's in-memory book is only its way of answering [`reserve`](LedgerStore::reserve)
/// without a round trip to the disk.
pub trait LedgerStore: Send + Sync {
    /// Opens the enterprise's account (active, balance zero, status since `at`), or
    /// returns the existing one unchanged. Durable when it returns.
    ///
    /// PostgreSQL: `INSERT INTO account … ON CONFLICT (enterprise) DO NOTHING`, then
    /// `SELECT`.
    fn open_account(&self, enterprise: &str, at: Timestamp) -> Result<Account, StoreError>;

    /// The enterprise's account as last committed, if it has one. `reserved` lags the
    /// reservations granted within the last commit interval.
    fn account(&self, enterprise: &str) -> Result<Option<Account>, StoreError>;

    /// Every account, by enterprise, as last committed.
    fn accounts(&self) -> Result<Vec<Account>, StoreError>;

    /// Posts an entry: appends it to the ledger and moves the account's balance by its
    /// amount in the same transaction (opening the account if it has none), maintaining
    /// `negative_since`. Durable when it returns.
    ///
    /// Idempotent on (enterprise, kind, reference): posting the same key again changes
    /// nothing and returns [`Posted::Already`] with the first entry; the same key with a
    /// different amount is [`StoreError::ConflictingEntry`].
    ///
    /// PostgreSQL: `SELECT … FROM account WHERE enterprise = $1 FOR UPDATE` (serialises
    /// an account's posts), `INSERT INTO ledger … ON CONFLICT DO NOTHING RETURNING id`
    /// (nothing returned: already posted), `UPDATE account SET balance = balance + $2
    /// … RETURNING balance` and the entry's `balance_after` from it.
    fn post(&self, entry: NewEntry) -> Result<Posted, StoreError>;

    /// The enterprise's entries with `since <= at < until`, oldest first.
    fn ledger(
        &self,
        enterprise: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<LedgerEntry>, StoreError>;

    /// The enterprise's entries the query selects, oldest first by (at, id).
    ///
    /// PostgreSQL: the same `SELECT`, with `(at, id) > ($at, $id)` as a row comparison.
    fn ledger_entries(
        &self,
        enterprise: &str,
        query: &LedgerQuery,
    ) -> Result<Vec<LedgerEntry>, StoreError>;

    /// The enterprise's period `since <= at < until` in figures: opening and closing
    /// balance (in the (at, id) order [`ledger`](LedgerStore::ledger) returns), and the
    /// count and sum per kind, from one read snapshot.
    fn ledger_totals(
        &self,
        enterprise: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<LedgerTotals, StoreError>;

    /// Moves the account to `status` (its `status_since` becomes `at`; unchanged if the
    /// status already is `status`). Durable when it returns; [`StoreError::NoAccount`]
    /// if there is no account.
    fn set_status(
        &self,
        enterprise: &str,
        status: AccountStatus,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Records whether the low-balance warning was sent. Durable when it returns;
    /// [`StoreError::NoAccount`] if there is no account.
    fn set_low_balance_warned(&self, enterprise: &str, warned: bool) -> Result<(), StoreError>;

    /// Holds (more) balance for a call. Fast: called on every admission, it never waits
    /// for the disk.
    ///
    /// - Admission (`floor: Some(f)`): refused with `NoAccount`, `Suspended`,
    ///   `Reclaimed`, or `InsufficientBalance` unless the available balance (balance −
    ///   reserved) is at least `f`; otherwise grants `min(want, available)`.
    /// - Renewal (`floor: None`): grants `min(want, max(available, 0))`, possibly zero
    ///   (whatever the status: a call in progress runs until its money does), and
    ///   records the request's `answered_at`. `NoAccount` without an account.
    ///
    /// The reservation row (with the request's [`RecoveryInfo`](sihai_records::RecoveryInfo))
    /// is durable at the store's next commit, like a CDR.
    ///
    /// PostgreSQL, admission as one statement (a renewal drops the status and floor
    /// conditions; the `FOR UPDATE` re-reads and re-checks the latest row version under
    /// READ COMMITTED, so concurrent admissions on one account serialise on its row):
    /// ```sql
    /// WITH cur AS (
    ///   SELECT enterprise, LEAST($want, GREATEST(balance - reserved, 0)) AS granted
    ///   FROM account
    ///   WHERE enterprise = $1 AND status = 'active' AND balance - reserved >= $floor
    ///   FOR UPDATE
    /// ), acct AS (
    ///   UPDATE account a SET reserved = a.reserved + cur.granted FROM cur
    ///   WHERE a.enterprise = cur.enterprise RETURNING cur.granted
    /// )
    /// INSERT INTO reservation (call_id, enterprise, held, number, caller, …)
    /// SELECT $call_id, $1, granted, $number, $caller, … FROM acct
    /// ON CONFLICT (call_id) DO UPDATE SET held = reservation.held + excluded.held,
    ///     answered_at = COALESCE(excluded.answered_at, reservation.answered_at)
    /// RETURNING (SELECT granted FROM acct), held
    /// ```
    /// No row returned means refused; a plain `SELECT status, balance - reserved` then
    /// names the reason. Settlement is the mirror: in the CDR's transaction, `INSERT INTO
    /// ledger … ON CONFLICT DO NOTHING`, `DELETE FROM reservation WHERE call_id = $1
    /// RETURNING enterprise, held`, `UPDATE account SET balance = balance - $cost,
    /// reserved = reserved - $held`.
    fn reserve(&self, request: ReservationRequest) -> Result<ReservationOutcome, StoreError>;

    /// [`reserve`](LedgerStore::reserve) for a caller that must not wait (the daemon's
    /// event loop): `answer` gets the outcome, at once on this thread when the store
    /// answers from memory (SQLite's book), or later from the store's own thread when
    /// the answer needs a round trip (PostgreSQL), within the store's timeout. Meanwhile
    /// the caller goes on with other calls.
    fn reserve_then(
        &self,
        request: ReservationRequest,
        answer: Box<dyn FnOnce(Result<ReservationOutcome, StoreError>) + Send>,
    ) {
        answer(self.reserve(request))
    }

    /// Records when the call was answered on its reservation, so that a restart can
    /// charge it. Queued like a CDR: never waits for the disk.
    fn mark_answered(&self, call_id: &str, at: Timestamp) -> Result<(), StoreError>;

    /// For crash recovery at start: the last moment the store knew the daemon was
    /// running (`alive_at`), and every reservation still open. Each is a call the
    /// previous run did not settle; the daemon settles it by recording its CDR (with the
    /// cost up to `alive_at`), which releases the reservation.
    fn open_reservations(&self) -> Result<(Option<Timestamp>, Vec<OpenReservation>), StoreError>;

    /// The sum of call charges (as a positive amount) posted with `since <= at < until`
    /// for a number's calls or an enterprise's: what the monthly minimum spend compares.
    fn spent(
        &self,
        spender: Spender<'_>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Money, StoreError>;

    /// Checks the books: every account's balance equals the sum of its entries, its
    /// `reserved` the sum of its open reservations, and each entry's `balance_after`
    /// the running sum. Empty when all is well.
    fn verify(&self) -> Result<Vec<Discrepancy>, StoreError>;
}

/// What [`LedgerStore::post`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// The entry was appended.
    New(LedgerEntry),
    /// The same entry was already posted; nothing changed. The first entry.
    Already(LedgerEntry),
}

impl Posted {
    /// The posted entry, new or not.
    pub fn entry(&self) -> &LedgerEntry {
        match self {
            Posted::New(e) | Posted::Already(e) => e,
        }
    }

    /// Whether this call appended it.
    pub fn is_new(&self) -> bool {
        matches!(self, Posted::New(_))
    }
}

/// Whose spending [`LedgerStore::spent`] sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spender<'a> {
    /// One 400 number's calls (canonical, `4001234567`).
    Number(&'a str),
    /// Every call of the enterprise.
    Enterprise(&'a str),
}

/// An inconsistency [`LedgerStore::verify`] found in one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    pub enterprise: String,
    pub problem: Problem,
}

impl Discrepancy {
    /// What one account's sums say, by the rules every backend's `verify` keeps: its
    /// balance must equal the sum of its ledger, its `reserved` the sum of its open
    /// reservations' holds.
    pub(crate) fn of_sums(
        enterprise: String,
        balance: i64,
        reserved: i64,
        ledger_sum: i64,
        held_sum: i64,
    ) -> Vec<Discrepancy> {
        let mut found = Vec::new();
        if balance != ledger_sum {
            found.push(Discrepancy {
                enterprise: enterprise.clone(),
                problem: Problem::Balance {
                    stored: Money::from_units(balance),
                    ledger_sum: Money::from_units(ledger_sum),
                },
            });
        }
        if reserved != held_sum {
            found.push(Discrepancy {
                enterprise,
                problem: Problem::Reserved {
                    stored: Money::from_units(reserved),
                    held_sum: Money::from_units(held_sum),
                },
            });
        }
        found
    }
}

/// What is off in an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The stored balance is not the sum of the ledger.
    Balance { stored: Money, ledger_sum: Money },
    /// The stored `reserved` is not the sum of the open reservations.
    Reserved { stored: Money, held_sum: Money },
    /// An entry's `balance_after` is not the running sum of the entries up to it.
    BalanceAfter {
        entry_id: i64,
        stored: Money,
        expected: Money,
    },
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.enterprise;
        match &self.problem {
            Problem::Balance { stored, ledger_sum } => write!(
                f,
                "{e}: balance {} but the ledger sums to {}",
                stored.exact(),
                ledger_sum.exact()
            ),
            Problem::Reserved { stored, held_sum } => write!(
                f,
                "{e}: reserved {} but open reservations hold {}",
                stored.exact(),
                held_sum.exact()
            ),
            Problem::BalanceAfter {
                entry_id,
                stored,
                expected,
            } => write!(
                f,
                "{e}: entry {entry_id} says balance after {} but the running sum is {}",
                stored.exact(),
                expected.exact()
            ),
        }
    }
}
