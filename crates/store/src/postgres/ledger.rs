//! [`LedgerStore`] for [`PgStore`].
//!
//! Every decision is made by the database under the account's row lock, in the
//! statement that acts on it: no value read by the application is written back. A
//! reservation is one statement (one round trip; a refusal one more to name its
//! reason), a post one transaction of three round trips (`BEGIN`, its four statements
//! pipelined, `COMMIT`), a call's settlement part of its CDR's statement (see
//! [`cdr`](super::cdr)).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::future::{try_join, try_join4};
use jiff::Timestamp;
use tokio_postgres::IsolationLevel;
use tokio_postgres::Row;

use super::cdr::{Args, get, get_ts_opt, limit_arg, push};
use super::{PgStore, Shared, is_transient, ts_from_us};
use crate::{
    Discrepancy, KindTotal, LedgerQuery, LedgerStore, LedgerTotals, Posted, Problem, Spender,
    StoreError,
};
use sihai_records::{
    Account, AccountStatus, EntryKind, LedgerEntry, Money, NewEntry, OpenReservation, RecoveryInfo,
    Refusal, ReservationOutcome, ReservationRequest,
};

const ENTRY_COLUMNS: &str =
    "id, enterprise, kind, amount, reference, at, actor, note, balance_after";
const ACCOUNT_COLUMNS: &str = "enterprise, balance, reserved, status, status_since, \
     negative_since, low_balance_warned, opened_at";

/// How often a statement PostgreSQL aborted for a concurrent transaction's sake (a
/// deadlock victim) is run again before the error is returned.
const TRANSIENT_RETRIES: usize = 5;

/// Opens the account if it has none (the caller's transaction or autocommit).
const ENSURE_ACCOUNT_SQL: &str = "
INSERT INTO account (enterprise, balance, reserved, status, status_since, negative_since,
                     low_balance_warned, opened_at)
VALUES ($1, 0, 0, 'active', $2, NULL, 0, $2)
ON CONFLICT (enterprise) DO NOTHING";

/// A post, once the account row is locked (so `a.balance` is the latest and stays it):
/// the entry with its `balance_after`, and the account moved by it, only if the key is
/// not posted yet. `negative_since` by the rules every post keeps: set when the balance
/// goes below zero, kept while it stays there, cleared when it recovers.
const POST_SQL: &str = "
WITH entry AS (
    INSERT INTO ledger (enterprise, kind, amount, reference, at, actor, note, balance_after)
    SELECT a.enterprise, $2::text, $3::bigint, $4::text, $5::bigint, $6::text, $7::text,
           a.balance + $3::bigint
    FROM account a WHERE a.enterprise = $1
    ON CONFLICT (enterprise, kind, reference) DO NOTHING
    RETURNING id
), moved AS (
    UPDATE account
    SET balance = balance + $3::bigint,
        negative_since = CASE WHEN balance + $3::bigint < 0
                              THEN COALESCE(negative_since, $5::bigint) ELSE NULL END
    FROM entry
    WHERE account.enterprise = $1
)
SELECT id FROM entry";

/// A reservation as one statement (see [`LedgerStore::reserve`]'s documentation):
/// `cur` locks the account row and, under READ COMMITTED, re-checks the conditions on
/// its latest version after waiting for a concurrent reservation, so two nodes'
/// admissions on one account serialise on its row and never hold more than it has.
/// `$4` is the admission floor, NULL for a renewal (no status or floor condition).
pub(crate) const RESERVE_SQL: &str = "
WITH cur AS (
    SELECT enterprise, LEAST($3::bigint, GREATEST(balance - reserved, 0)) AS granted
    FROM account
    WHERE enterprise = $2
      AND ($4::bigint IS NULL OR (status = 'active' AND balance - reserved >= $4::bigint))
      -- A reservation that arrives after its call's CDR (the caller gave up waiting,
      -- the call was refused and recorded) would hold money nothing releases.
      AND NOT EXISTS (SELECT 1 FROM cdr WHERE call_id = $1::text)
    FOR UPDATE
), acct AS (
    UPDATE account a SET reserved = a.reserved + cur.granted
    FROM cur WHERE a.enterprise = cur.enterprise
    RETURNING cur.granted
)
INSERT INTO reservation AS r (call_id, enterprise, held, number, caller, caller_province,
                              caller_city, tariff, setup_at, answered_at, node)
SELECT $1::text, $2::text, granted, $5::text, $6::text, $7::text, $8::text, $9::text,
       $10::bigint, $11::bigint, $12::text
FROM acct
ON CONFLICT (call_id) DO UPDATE
SET held = r.held + excluded.held,
    answered_at = COALESCE(excluded.answered_at, r.answered_at)
RETURNING (SELECT granted FROM acct), r.held";

/// This node's last sign of life as stored, read at open before this run stamps it.
pub(crate) async fn previous_alive(shared: &Shared) -> Result<Option<Timestamp>, StoreError> {
    const CONTEXT: &str = "reading when this node was last alive";
    let client = shared.client(CONTEXT).await?;
    let row = client
        .query_opt(
            "SELECT alive_at FROM node_alive WHERE node = $1",
            &[&shared.node],
        )
        .await
        .map_err(shared.err(CONTEXT))?;
    row.map(|row| get::<i64>(&row, 0).and_then(ts_from_us))
        .transpose()
        .map_err(|d| shared.corrupt("node_alive", 0, format!("node {:?}: {d}", shared.node)))
}

fn entry_from_row(shared: &Shared, row: &Row) -> Result<LedgerEntry, StoreError> {
    let id: i64 = row.try_get(0).unwrap_or(0);
    let decoded = (|| -> Result<LedgerEntry, String> {
        let kind: String = get(row, 2)?;
        Ok(LedgerEntry {
            id,
            enterprise: get(row, 1)?,
            kind: kind.parse().map_err(|e| format!("{e}"))?,
            amount: Money::from_units(get(row, 3)?),
            reference: get(row, 4)?,
            at: ts_from_us(get(row, 5)?)?,
            actor: get(row, 6)?,
            note: get(row, 7)?,
            balance_after: Money::from_units(get(row, 8)?),
        })
    })();
    decoded.map_err(|d| shared.corrupt("ledger", id, d))
}

fn account_from_row(shared: &Shared, row: &Row) -> Result<Account, StoreError> {
    let decoded = (|| -> Result<Account, String> {
        let status: String = get(row, 3)?;
        let warned: i64 = get(row, 6)?;
        Ok(Account {
            enterprise: get(row, 0)?,
            balance: Money::from_units(get(row, 1)?),
            reserved: Money::from_units(get(row, 2)?),
            status: status.parse().map_err(|e| format!("{e}"))?,
            status_since: ts_from_us(get(row, 4)?)?,
            negative_since: get_ts_opt(row, 5)?,
            low_balance_warned: warned != 0,
            opened_at: ts_from_us(get(row, 7)?)?,
        })
    })();
    // The table has no row id: the enterprise names the row.
    decoded.map_err(|d| {
        let enterprise: Option<String> = row.try_get(0).ok();
        shared.corrupt("account", 0, format!("enterprise {enterprise:?}: {d}"))
    })
}

/// Runs `attempt` again (at most [`TRANSIENT_RETRIES`] times) while PostgreSQL aborts it
/// for a concurrent transaction's sake.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if is_transient(&e) && tries < TRANSIENT_RETRIES => tries += 1,
            other => return other,
        }
    }
}

async fn post(shared: &Shared, e: &NewEntry) -> Result<Posted, StoreError> {
    const CONTEXT: &str = "posting a ledger entry";
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    let ensure_st = client
        .prepare_cached(ENSURE_ACCOUNT_SQL)
        .await
        .map_err(&err)?;
    let lock_st = client
        .prepare_cached("SELECT 1 FROM account WHERE enterprise = $1 FOR UPDATE")
        .await
        .map_err(&err)?;
    let post_st = client.prepare_cached(POST_SQL).await.map_err(&err)?;
    let read_st = client
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger
             WHERE enterprise = $1 AND kind = $2 AND reference = $3"
        ))
        .await
        .map_err(&err)?;
    let at = e.at.as_microsecond();
    let kind = e.kind.as_str();
    let amount = e.amount.units();
    let tx = client.transaction().await.map_err(&err)?;
    // Pipelined, run in this order: open the account if need be, lock its row (an
    // account's posts and settlements queue here), post unless the key is posted, and
    // read the key's entry back (the new one, or the first).
    let (_, _, inserted, found) = try_join4(
        tx.execute(&ensure_st, &[&e.enterprise, &at]),
        tx.query_one(&lock_st, &[&e.enterprise]),
        tx.query_opt(
            &post_st,
            &[
                &e.enterprise,
                &kind,
                &amount,
                &e.reference,
                &at,
                &e.actor,
                &e.note,
            ],
        ),
        tx.query_opt(&read_st, &[&e.enterprise, &kind, &e.reference]),
    )
    .await
    .map_err(&err)?;
    let entry = found
        .as_ref()
        .map(|row| entry_from_row(shared, row))
        .transpose()?
        .ok_or_else(|| {
            shared.corrupt(
                "ledger",
                0,
                format!("{kind} {:?} posted but not found", e.reference),
            )
        })?;
    if inserted.is_some() {
        tx.commit().await.map_err(&err)?;
        return Ok(Posted::New(entry));
    }
    // Nothing was written: dropping the transaction rolls it back.
    if entry.amount != e.amount {
        return Err(StoreError::ConflictingEntry {
            path: shared.path.clone(),
            enterprise: e.enterprise.clone(),
            kind: e.kind,
            reference: e.reference.clone(),
            posted: entry.amount,
            asked: e.amount,
        });
    }
    Ok(Posted::Already(entry))
}

pub(crate) async fn reserve(
    shared: &Shared,
    request: &ReservationRequest,
) -> Result<ReservationOutcome, StoreError> {
    const CONTEXT: &str = "reserving balance for a call";
    let err = shared.err(CONTEXT);
    let client = shared.client(CONTEXT).await?;
    let st = client.prepare_cached(RESERVE_SQL).await.map_err(&err)?;
    let rec = &request.recovery;
    let want = request.want.units().max(0);
    let floor = request.floor.map(|f| f.units());
    let row = client
        .query_opt(
            &st,
            &[
                &request.call_id,
                &request.enterprise,
                &want,
                &floor,
                &rec.number,
                &rec.caller,
                &rec.caller_province,
                &rec.caller_city,
                &rec.tariff,
                &rec.setup_at.as_microsecond(),
                &rec.answered_at.map(|t| t.as_microsecond()),
                &shared.node,
            ],
        )
        .await
        .map_err(&err)?;
    if let Some(row) = row {
        let corrupt =
            |d| shared.corrupt("reservation", 0, format!("call {:?}: {d}", request.call_id));
        let granted: i64 = get(&row, 0).map_err(corrupt)?;
        let held: i64 = get(&row, 1).map_err(corrupt)?;
        return Ok(ReservationOutcome::Granted {
            granted: Money::from_units(granted),
            held: Money::from_units(held),
        });
    }
    // Refused: name the reason from the account as it is now. (Had it changed since,
    // between the two statements, the reason may be stale; the refusal stands.)
    let status = client
        .query_opt(
            "SELECT status FROM account WHERE enterprise = $1",
            &[&request.enterprise],
        )
        .await
        .map_err(&err)?;
    let status: Option<String> = match status {
        Some(row) => Some(get(&row, 0).map_err(|d| {
            shared.corrupt(
                "account",
                0,
                format!("enterprise {:?}: {d}", request.enterprise),
            )
        })?),
        None => None,
    };
    refusal_of(shared, &request.enterprise, status.as_ref()).map(ReservationOutcome::Refused)
}

/// Why a reservation the statement did not grant was refused, from the account's
/// status (`None`: no account).
pub(crate) fn refusal_of(
    shared: &Shared,
    enterprise: &str,
    status: Option<&String>,
) -> Result<Refusal, StoreError> {
    let Some(status) = status else {
        return Ok(Refusal::NoAccount);
    };
    match status.parse::<AccountStatus>() {
        Ok(AccountStatus::Suspended) => Ok(Refusal::Suspended),
        Ok(AccountStatus::Reclaimed) => Ok(Refusal::Reclaimed),
        Ok(AccountStatus::Active) => Ok(Refusal::InsufficientBalance),
        Err(e) => Err(shared.corrupt("account", 0, format!("enterprise {enterprise:?}: {e}"))),
    }
}

async fn verify(shared: &Shared) -> Result<Vec<Discrepancy>, StoreError> {
    const CONTEXT: &str = "verifying the ledger";
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    // One snapshot for every check.
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(&err)?;
    let (sums, running) = try_join(
        tx.query(
            "SELECT a.enterprise, a.balance, a.reserved,
                    COALESCE((SELECT SUM(l.amount) FROM ledger l
                              WHERE l.enterprise = a.enterprise), 0)::bigint,
                    COALESCE((SELECT SUM(r.held) FROM reservation r
                              WHERE r.enterprise = a.enterprise), 0)::bigint
             FROM account a ORDER BY a.enterprise COLLATE \"C\"",
            &[],
        ),
        // Each account's running sum in posting order (ids increase in the order an
        // account's entries were posted: each is numbered under the account's lock).
        tx.query(
            "SELECT id, enterprise, balance_after, running FROM (
                 SELECT id, enterprise, balance_after,
                        (SUM(amount) OVER (PARTITION BY enterprise ORDER BY id))::bigint
                            AS running
                 FROM ledger
             ) s
             WHERE running <> balance_after
             ORDER BY id",
            &[],
        ),
    )
    .await
    .map_err(&err)?;
    tx.commit().await.map_err(&err)?;
    let corrupt = |d| shared.corrupt("ledger", 0, d);
    let mut found = Vec::new();
    for row in &sums {
        let enterprise: String = get(row, 0).map_err(corrupt)?;
        let balance: i64 = get(row, 1).map_err(corrupt)?;
        let reserved: i64 = get(row, 2).map_err(corrupt)?;
        let ledger_sum: i64 = get(row, 3).map_err(corrupt)?;
        let held_sum: i64 = get(row, 4).map_err(corrupt)?;
        found.extend(Discrepancy::of_sums(
            enterprise, balance, reserved, ledger_sum, held_sum,
        ));
    }
    for row in &running {
        let entry_id: i64 = get(row, 0).map_err(corrupt)?;
        let enterprise: String = get(row, 1).map_err(corrupt)?;
        let stored: i64 = get(row, 2).map_err(corrupt)?;
        let expected: i64 = get(row, 3).map_err(corrupt)?;
        found.push(Discrepancy {
            enterprise,
            problem: Problem::BalanceAfter {
                entry_id,
                stored: Money::from_units(stored),
                expected: Money::from_units(expected),
            },
        });
    }
    Ok(found)
}

/// Runs a read of ledger entries.
fn read_entries(
    store: &PgStore,
    context: &'static str,
    sql: String,
    args: Args,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let shared = Arc::clone(&store.shared);
    store.run(async move {
        let client = shared.client(context).await?;
        let st = client
            .prepare_cached(&sql)
            .await
            .map_err(shared.err(context))?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| &**a as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let rows = client
            .query(&st, &refs)
            .await
            .map_err(shared.err(context))?;
        rows.iter()
            .map(|row| entry_from_row(&shared, row))
            .collect()
    })
}

impl LedgerStore for PgStore {
    fn open_account(&self, enterprise: &str, at: Timestamp) -> Result<Account, StoreError> {
        const CONTEXT: &str = "opening an account";
        let shared = Arc::clone(&self.shared);
        let enterprise = enterprise.to_owned();
        self.run(async move {
            let err = shared.err(CONTEXT);
            let client = shared.client(CONTEXT).await?;
            let ensure = client
                .prepare_cached(ENSURE_ACCOUNT_SQL)
                .await
                .map_err(&err)?;
            let read = client
                .prepare_cached(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM account WHERE enterprise = $1"
                ))
                .await
                .map_err(&err)?;
            // Two autocommit statements, pipelined: the read runs after the insert has
            // committed (or found the account), in a snapshot of its own that sees a
            // concurrent opener's row too.
            let (_, row) = try_join(
                client.execute(&ensure, &[&enterprise, &at.as_microsecond()]),
                client.query_opt(&read, &[&enterprise]),
            )
            .await
            .map_err(&err)?;
            match row {
                Some(row) => account_from_row(&shared, &row),
                None => Err(StoreError::NoAccount {
                    path: shared.path.clone(),
                    enterprise,
                }),
            }
        })
    }

    fn account(&self, enterprise: &str) -> Result<Option<Account>, StoreError> {
        const CONTEXT: &str = "reading an account";
        let shared = Arc::clone(&self.shared);
        let enterprise = enterprise.to_owned();
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM account WHERE enterprise = $1"
                ))
                .await
                .map_err(shared.err(CONTEXT))?;
            let row = client
                .query_opt(&st, &[&enterprise])
                .await
                .map_err(shared.err(CONTEXT))?;
            row.map(|row| account_from_row(&shared, &row)).transpose()
        })
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        const CONTEXT: &str = "reading accounts";
        let shared = Arc::clone(&self.shared);
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            // Byte order, as SQLite sorts.
            let st = client
                .prepare_cached(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM account ORDER BY enterprise COLLATE \"C\""
                ))
                .await
                .map_err(shared.err(CONTEXT))?;
            let rows = client.query(&st, &[]).await.map_err(shared.err(CONTEXT))?;
            rows.iter()
                .map(|row| account_from_row(&shared, row))
                .collect()
        })
    }

    fn post(&self, entry: NewEntry) -> Result<Posted, StoreError> {
        let shared = Arc::clone(&self.shared);
        self.run(async move { retrying(|| post(&shared, &entry)).await })
    }

    fn ledger(
        &self,
        enterprise: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut args: Args = Vec::new();
        push(&mut args, enterprise.to_owned());
        push(&mut args, since.map_or(i64::MIN, |t| t.as_microsecond()));
        push(&mut args, until.map_or(i64::MAX, |t| t.as_microsecond()));
        read_entries(
            self,
            "reading the ledger",
            format!(
                "SELECT {ENTRY_COLUMNS} FROM ledger
                 WHERE enterprise = $1 AND at >= $2 AND at < $3
                 ORDER BY at, id"
            ),
            args,
        )
    }

    fn ledger_entries(
        &self,
        enterprise: &str,
        query: &LedgerQuery,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger WHERE enterprise = $1 AND at >= $2 AND at < $3"
        );
        let mut args: Args = Vec::new();
        push(&mut args, enterprise.to_owned());
        push(
            &mut args,
            query.since.map_or(i64::MIN, |t| t.as_microsecond()),
        );
        push(
            &mut args,
            query.until.map_or(i64::MAX, |t| t.as_microsecond()),
        );
        if let Some((at, id)) = query.after {
            let a = push(&mut args, at.as_microsecond());
            let i = push(&mut args, id);
            sql.push_str(&format!(" AND (at, id) > (${a}, ${i})"));
        }
        if query.without_call_charges {
            sql.push_str(" AND kind <> 'call_charge'");
        }
        sql.push_str(" ORDER BY at, id");
        if query.limit > 0 {
            let n = push(&mut args, limit_arg(query.limit));
            sql.push_str(&format!(" LIMIT ${n}"));
        }
        read_entries(self, "reading the ledger", sql, args)
    }

    fn ledger_totals(
        &self,
        enterprise: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<LedgerTotals, StoreError> {
        const CONTEXT: &str = "totalling the ledger";
        let shared = Arc::clone(&self.shared);
        let enterprise = enterprise.to_owned();
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            // One statement, so one snapshot: the balances and the sums agree.
            let st = client
                .prepare_cached(
                    "WITH k AS (
                         SELECT kind, count(*) AS n, SUM(amount)::bigint AS s FROM ledger
                         WHERE enterprise = $1 AND at >= $2 AND at < $3
                         GROUP BY kind
                     )
                     SELECT (SELECT balance_after FROM ledger
                             WHERE enterprise = $1 AND at < $2
                             ORDER BY at DESC, id DESC LIMIT 1),
                            (SELECT balance_after FROM ledger
                             WHERE enterprise = $1 AND at < $3
                             ORDER BY at DESC, id DESC LIMIT 1),
                            ARRAY(SELECT kind FROM k ORDER BY kind COLLATE \"C\"),
                            ARRAY(SELECT n FROM k ORDER BY kind COLLATE \"C\"),
                            ARRAY(SELECT s FROM k ORDER BY kind COLLATE \"C\")",
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
            let corrupt = |d| shared.corrupt("ledger", 0, d);
            let opening: Option<i64> = get(&row, 0).map_err(corrupt)?;
            let closing: Option<i64> = get(&row, 1).map_err(corrupt)?;
            let kinds: Vec<String> = get(&row, 2).map_err(corrupt)?;
            let counts: Vec<i64> = get(&row, 3).map_err(corrupt)?;
            let sums: Vec<i64> = get(&row, 4).map_err(corrupt)?;
            let mut by_kind = Vec::with_capacity(kinds.len());
            for ((kind, entries), amount) in kinds.into_iter().zip(counts).zip(sums) {
                by_kind.push(KindTotal {
                    kind: kind
                        .parse::<EntryKind>()
                        .map_err(|e| corrupt(format!("{e}")))?,
                    entries: u64::try_from(entries).unwrap_or(0),
                    amount: Money::from_units(amount),
                });
            }
            let opening = opening.map_or(Money::ZERO, Money::from_units);
            // With no entry in the period, the closing balance is the opening one.
            let closing = if by_kind.is_empty() {
                opening
            } else {
                closing.map_or(Money::ZERO, Money::from_units)
            };
            Ok(LedgerTotals {
                opening,
                closing,
                by_kind,
            })
        })
    }

    fn set_status(
        &self,
        enterprise: &str,
        status: AccountStatus,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        const CONTEXT: &str = "changing an account's status";
        let shared = Arc::clone(&self.shared);
        let enterprise = enterprise.to_owned();
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            // `status_since` moves only with the status (both SET expressions read the
            // old row).
            let st = client
                .prepare_cached(
                    "UPDATE account
                     SET status = $2,
                         status_since = CASE WHEN status = $2 THEN status_since ELSE $3 END
                     WHERE enterprise = $1",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let n = client
                .execute(&st, &[&enterprise, &status.as_str(), &at.as_microsecond()])
                .await
                .map_err(shared.err(CONTEXT))?;
            if n == 0 {
                return Err(StoreError::NoAccount {
                    path: shared.path.clone(),
                    enterprise,
                });
            }
            Ok(())
        })
    }

    fn set_low_balance_warned(&self, enterprise: &str, warned: bool) -> Result<(), StoreError> {
        const CONTEXT: &str = "setting an account's low-balance warning";
        let shared = Arc::clone(&self.shared);
        let enterprise = enterprise.to_owned();
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached("UPDATE account SET low_balance_warned = $2 WHERE enterprise = $1")
                .await
                .map_err(shared.err(CONTEXT))?;
            let n = client
                .execute(&st, &[&enterprise, &i64::from(warned)])
                .await
                .map_err(shared.err(CONTEXT))?;
            if n == 0 {
                return Err(StoreError::NoAccount {
                    path: shared.path.clone(),
                    enterprise,
                });
            }
            Ok(())
        })
    }

    fn reserve(&self, request: ReservationRequest) -> Result<ReservationOutcome, StoreError> {
        let shared = Arc::clone(&self.shared);
        // From now on this process keeps the node's `alive_at` (see `Shared::reserving`);
        // set before the reservation exists, so that every batch from then on stamps.
        let first = !shared.reserving.swap(true, Ordering::Relaxed);
        let outcome = self.run(async move { retrying(|| reserve(&shared, &request)).await })?;
        if first {
            // The writer may be asleep with nothing queued: the first stamp must not
            // wait for the first CDR.
            self.stamp_soon()?;
        }
        Ok(outcome)
    }

    /// The statement runs on the store's runtime, in a group of the reservations that
    /// arrive together (one transaction, one WAL flush: `reserver.rs`), and `answer` is
    /// called from there: the caller's thread (the daemon's event loop) never waits for
    /// the database. An answer that takes longer than the connect timeout is
    /// [`StoreError::Unreachable`]; should the statement still commit later, the call's
    /// CDR (a refused call is recorded too) releases what it reserved, or, once that CDR
    /// exists, the statement reserves nothing.
    fn reserve_then(
        &self,
        request: ReservationRequest,
        answer: Box<dyn FnOnce(Result<ReservationOutcome, StoreError>) + Send>,
    ) {
        if !self.shared.reserving.swap(true, Ordering::Relaxed)
            && let Err(e) = self.stamp_soon()
        {
            answer(Err(e));
            return;
        }
        self.reserver.submit(request, answer, &self.shared.path);
    }

    fn mark_answered(&self, call_id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.queue_answered(call_id, at)
    }

    fn open_reservations(&self) -> Result<(Option<Timestamp>, Vec<OpenReservation>), StoreError> {
        const CONTEXT: &str = "reading open reservations";
        let shared = Arc::clone(&self.shared);
        let open = self.run(async move {
            let client = shared.client(CONTEXT).await?;
            // This node's only: another node's calls are its own to settle.
            let st = client
                .prepare_cached(
                    "SELECT call_id, enterprise, held, number, caller, caller_province,
                            caller_city, tariff, setup_at, answered_at
                     FROM reservation WHERE node = $1 ORDER BY setup_at, call_id",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let rows = client
                .query(&st, &[&shared.node])
                .await
                .map_err(shared.err(CONTEXT))?;
            rows.iter()
                .map(|row| {
                    let decoded = (|| -> Result<OpenReservation, String> {
                        Ok(OpenReservation {
                            call_id: get(row, 0)?,
                            enterprise: get(row, 1)?,
                            held: Money::from_units(get(row, 2)?),
                            recovery: RecoveryInfo {
                                number: get(row, 3)?,
                                caller: get(row, 4)?,
                                caller_province: get(row, 5)?,
                                caller_city: get(row, 6)?,
                                tariff: get(row, 7)?,
                                setup_at: ts_from_us(get(row, 8)?)?,
                                answered_at: get_ts_opt(row, 9)?,
                            },
                        })
                    })();
                    decoded.map_err(|d| {
                        let call_id: Option<String> = row.try_get(0).ok();
                        shared.corrupt("reservation", 0, format!("call {call_id:?}: {d}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        // As found at open: this run stamps `alive_at` too once it admits calls.
        Ok((self.previous_alive, open))
    }

    fn spent(
        &self,
        spender: Spender<'_>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Money, StoreError> {
        const CONTEXT: &str = "summing call charges";
        let (sql, key) = match spender {
            Spender::Enterprise(e) => (
                "SELECT COALESCE(SUM(-amount), 0)::bigint FROM ledger
                 WHERE enterprise = $1 AND kind = 'call_charge' AND at >= $2 AND at < $3",
                e,
            ),
            // A charge's reference is its call's id.
            Spender::Number(n) => (
                "SELECT COALESCE(SUM(-l.amount), 0)::bigint
                 FROM cdr c JOIN ledger l
                   ON l.enterprise = c.enterprise AND l.kind = 'call_charge'
                  AND l.reference = c.call_id
                 WHERE c.number = $1 AND l.at >= $2 AND l.at < $3",
                n,
            ),
        };
        let shared = Arc::clone(&self.shared);
        let key = key.to_owned();
        self.run(async move {
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached(sql)
                .await
                .map_err(shared.err(CONTEXT))?;
            let row = client
                .query_one(
                    &st,
                    &[&key, &since.as_microsecond(), &until.as_microsecond()],
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let units: i64 = get(&row, 0).map_err(|d| shared.corrupt("ledger", 0, d))?;
            Ok(Money::from_units(units))
        })
    }

    fn verify(&self) -> Result<Vec<Discrepancy>, StoreError> {
        let shared = Arc::clone(&self.shared);
        self.run(async move { verify(&shared).await })
    }
}
