//! The ledger's SQL: posting, settling, reservation rows (run by the writer inside its
//! transactions), and the read side of [`LedgerStore`] for [`SqliteStore`].

use std::collections::HashMap;
use std::sync::mpsc;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::book::ReserveWrite;
use super::writer::{Admin, Msg};
use super::{DecodeError, SqliteStore, collect, ts_from_us};
use crate::{
    Discrepancy, KindTotal, LedgerQuery, LedgerStore, LedgerTotals, Posted, Problem, Spender,
    StoreError,
};
use sihai_records::{
    Account, AccountStatus, Cdr, EntryKind, LedgerEntry, Money, NewEntry, OpenReservation,
    RecoveryInfo, ReservationOutcome, ReservationRequest,
};

/// The actor of entries the store posts itself (call charges).
pub(crate) const SYSTEM_ACTOR: &str = "system";

const ENTRY_COLUMNS: &str =
    "id, enterprise, kind, amount, reference, at, actor, note, balance_after";
const ACCOUNT_COLUMNS: &str = "enterprise, balance, reserved, status, status_since, \
     negative_since, low_balance_warned, rowid, opened_at";

/// Why a post did not happen.
pub(crate) enum PostError {
    /// The key is already posted with this other amount.
    Conflict {
        posted: Money,
    },
    /// A stored row could not be decoded.
    Corrupt {
        table: &'static str,
        rowid: i64,
        detail: String,
    },
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for PostError {
    fn from(e: rusqlite::Error) -> Self {
        PostError::Sql(e)
    }
}

pub(crate) struct PostOutcome {
    pub entry: LedgerEntry,
    pub new: bool,
}

/// Posts `e` inside the caller's (IMMEDIATE) transaction: idempotent on its key, moves
/// the balance and `negative_since`, and records `balance_after`. SQLite's write lock
/// makes the read-then-write safe; PostgreSQL would lock the account row first.
pub(crate) fn post_in(conn: &Connection, e: &NewEntry) -> Result<PostOutcome, PostError> {
    let existing = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger WHERE enterprise = ?1 AND kind = ?2 AND reference = ?3"
        ))?
        .query_row(params![e.enterprise, e.kind.as_str(), e.reference], |row| {
            Ok(entry_from_row(row))
        })
        .optional()?;
    if let Some(found) = existing {
        let entry = found.map_err(|(rowid, detail)| PostError::Corrupt {
            table: "ledger",
            rowid,
            detail,
        })?;
        if entry.amount != e.amount {
            return Err(PostError::Conflict {
                posted: entry.amount,
            });
        }
        return Ok(PostOutcome { entry, new: false });
    }
    // Opened or not, the caller bumps the book epoch for every post.
    ensure_account(conn, &e.enterprise, e.at)?;
    let at = e.at.as_microsecond();
    // Both SET expressions read the old balance (SQL's rule, PostgreSQL's too).
    let balance_after: i64 = conn
        .prepare_cached(
            "UPDATE account
             SET balance = balance + ?2,
                 negative_since = CASE WHEN balance + ?2 < 0
                                       THEN COALESCE(negative_since, ?3) ELSE NULL END
             WHERE enterprise = ?1
             RETURNING balance",
        )?
        .query_row(params![e.enterprise, e.amount.units(), at], |row| {
            row.get(0)
        })?;
    conn.prepare_cached(
        "INSERT INTO ledger (enterprise, kind, amount, reference, at, actor, note, balance_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        e.enterprise,
        e.kind.as_str(),
        e.amount.units(),
        e.reference,
        at,
        e.actor,
        e.note,
        balance_after
    ])?;
    Ok(PostOutcome {
        entry: LedgerEntry {
            id: conn.last_insert_rowid(),
            enterprise: e.enterprise.clone(),
            kind: e.kind,
            amount: e.amount,
            reference: e.reference.clone(),
            // As stored: to the microsecond.
            at: Timestamp::from_microsecond(at).unwrap_or(e.at),
            actor: e.actor.clone(),
            note: e.note.clone(),
            balance_after: Money::from_units(balance_after),
        },
        new: true,
    })
}

/// Opens the account if it has none; true if it did.
pub(crate) fn ensure_account(
    conn: &Connection,
    enterprise: &str,
    at: Timestamp,
) -> rusqlite::Result<bool> {
    let at = at.as_microsecond();
    let n = conn
        .prepare_cached(
            "INSERT INTO account (enterprise, balance, reserved, status, status_since,
                                  negative_since, low_balance_warned, opened_at)
             VALUES (?1, 0, 0, 'active', ?2, NULL, 0, ?2)
             ON CONFLICT (enterprise) DO NOTHING",
        )?
        .execute(params![enterprise, at])?;
    Ok(n > 0)
}

/// Tells every book (this process's and others') to reload the accounts.
pub(crate) fn bump_epoch(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE node_clock SET book_epoch = book_epoch + 1 WHERE id = 1")?
        .execute([])?;
    Ok(())
}

/// Stamps the moment the daemon was last known running.
pub(crate) fn stamp_alive(conn: &Connection, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE node_clock SET alive_at = ?1 WHERE id = 1")?
        .execute([now])?;
    Ok(())
}

/// What a settlement changed, for the book once the transaction commits.
pub(crate) struct Charged {
    pub enterprise: String,
    pub balance: i64,
    pub entry_id: i64,
}

/// What one batch transaction does to the accounts it touches, written once per account
/// when the batch ends instead of once per call: a batch of a thousand settlements on one
/// account is a thousand ledger rows and one `UPDATE account`.
///
/// Exact because the batch runs inside the writer's IMMEDIATE transaction: nothing else
/// writes an account between the first read of its balance and the final update. The
/// ledger rows' `balance_after` and the account's `negative_since` follow the same rules
/// as [`post_in`], entry by entry. PostgreSQL would do the same under `SELECT … FOR
/// UPDATE` of the accounts a batch touches.
#[derive(Debug, Default, Clone)]
pub(crate) struct BatchAccounts {
    accounts: HashMap<String, BatchAccount>,
}

#[derive(Debug, Clone, Default)]
struct BatchAccount {
    /// The balance after the batch's entries so far; `None` until a charge needs it.
    balance: Option<(i64, Option<i64>)>,
    /// How much the batch moved `reserved`.
    reserved: i64,
}

impl BatchAccounts {
    fn account(&mut self, enterprise: &str) -> &mut BatchAccount {
        if !self.accounts.contains_key(enterprise) {
            self.accounts
                .insert(enterprise.to_owned(), BatchAccount::default());
        }
        self.accounts
            .get_mut(enterprise)
            .expect("inserted just above")
    }

    /// The account's balance and `negative_since` as the batch has left them so far,
    /// opening the account if it has none.
    fn balance(
        &mut self,
        conn: &Connection,
        enterprise: &str,
        at: Timestamp,
    ) -> rusqlite::Result<(i64, Option<i64>)> {
        if let Some(balance) = self.account(enterprise).balance {
            return Ok(balance);
        }
        if ensure_account(conn, enterprise, at)? {
            bump_epoch(conn)?;
        }
        let read: (i64, Option<i64>) = conn
            .prepare_cached("SELECT balance, negative_since FROM account WHERE enterprise = ?1")?
            .query_row([enterprise], |row| Ok((row.get(0)?, row.get(1)?)))?;
        self.account(enterprise).balance = Some(read);
        Ok(read)
    }

    /// Writes what the batch did to each account it touched.
    pub(crate) fn write(&self, conn: &Connection) -> rusqlite::Result<()> {
        for (enterprise, account) in &self.accounts {
            match account.balance {
                Some((balance, negative_since)) => {
                    conn.prepare_cached(
                        "UPDATE account SET balance = ?2, negative_since = ?3,
                                            reserved = reserved + ?4
                         WHERE enterprise = ?1",
                    )?
                    .execute(params![
                        enterprise,
                        balance,
                        negative_since,
                        account.reserved
                    ])?;
                }
                None if account.reserved != 0 => {
                    conn.prepare_cached(
                        "UPDATE account SET reserved = reserved + ?2 WHERE enterprise = ?1",
                    )?
                    .execute(params![enterprise, account.reserved])?;
                }
                None => {}
            }
        }
        Ok(())
    }
}

/// [`settle`] within a batch: the charge's ledger row now, the account's balance with
/// the batch's others (see [`BatchAccounts`]).
pub(crate) fn settle_batched(
    conn: &Connection,
    cdr: &Cdr,
    accounts: &mut BatchAccounts,
    charged: &mut Vec<Charged>,
) -> rusqlite::Result<()> {
    if let Some(cost) = cdr.cost.filter(|c| c.units() > 0) {
        let amount = -cost.units();
        let at = cdr.end_at.as_microsecond();
        let (balance, negative_since) = accounts.balance(conn, &cdr.enterprise, cdr.end_at)?;
        let after = balance.saturating_add(amount);
        // Idempotent on the ledger's key: a call already charged (its CDR recorded twice)
        // inserts nothing.
        let inserted = conn
            .prepare_cached(
                "INSERT INTO ledger (enterprise, kind, amount, reference, at, actor, note,
                                     balance_after)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)
                 ON CONFLICT (enterprise, kind, reference) DO NOTHING",
            )?
            .execute(params![
                cdr.enterprise,
                EntryKind::CallCharge.as_str(),
                amount,
                cdr.call_id,
                at,
                SYSTEM_ACTOR,
                after
            ])?;
        if inserted == 1 {
            let negative_since = if after < 0 {
                negative_since.or(Some(at))
            } else {
                None
            };
            accounts.account(&cdr.enterprise).balance = Some((after, negative_since));
            charged.push(Charged {
                enterprise: cdr.enterprise.clone(),
                balance: after,
                entry_id: conn.last_insert_rowid(),
            });
        } else {
            let posted: Option<i64> = conn
                .prepare_cached(
                    "SELECT amount FROM ledger WHERE enterprise = ?1 AND kind = ?2 AND reference = ?3",
                )?
                .query_row(
                    params![cdr.enterprise, EntryKind::CallCharge.as_str(), cdr.call_id],
                    |row| row.get(0),
                )
                .optional()?;
            if posted != Some(amount) {
                tracing::error!(call_id = %cdr.call_id, enterprise = %cdr.enterprise,
                    posted = ?posted, cost = %cost.exact(),
                    "call already charged a different amount; not charged again");
            }
        }
    }
    release_batched(conn, &cdr.call_id, accounts)
}

/// [`release`] within a batch.
pub(crate) fn release_batched(
    conn: &Connection,
    call_id: &str,
    accounts: &mut BatchAccounts,
) -> rusqlite::Result<()> {
    let released: Option<(String, i64)> = conn
        .prepare_cached("DELETE FROM reservation WHERE call_id = ?1 RETURNING enterprise, held")?
        .query_row([call_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((enterprise, held)) = released {
        let account = accounts.account(&enterprise);
        account.reserved = account.reserved.saturating_sub(held);
    }
    Ok(())
}

/// [`write_reservation`] within a batch: the row now, the account's `reserved` with the
/// batch's others, by the difference the book recorded.
pub(crate) fn write_reservation_batched(
    conn: &Connection,
    w: &ReserveWrite,
    accounts: &mut BatchAccounts,
) -> rusqlite::Result<()> {
    let r = &w.request;
    let rec = &r.recovery;
    conn.prepare_cached(
        "INSERT INTO reservation (call_id, enterprise, held, number, caller, caller_province,
                                  caller_city, tariff, setup_at, answered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (call_id) DO UPDATE
         SET held = excluded.held,
             answered_at = COALESCE(excluded.answered_at, reservation.answered_at)",
    )?
    .execute(params![
        r.call_id,
        r.enterprise,
        w.held.units(),
        rec.number,
        rec.caller,
        rec.caller_province,
        rec.caller_city,
        rec.tariff,
        rec.setup_at.as_microsecond(),
        rec.answered_at.map(|t| t.as_microsecond()),
    ])?;
    let delta = w.held.units().saturating_sub(w.previous.units());
    if delta != 0 {
        let account = accounts.account(&r.enterprise);
        account.reserved = account.reserved.saturating_add(delta);
    }
    Ok(())
}

/// Records the answer time on the call's reservation.
pub(crate) fn mark_answered(
    conn: &Connection,
    call_id: &str,
    at: Timestamp,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE reservation SET answered_at = ?2 WHERE call_id = ?1")?
        .execute(params![call_id, at.as_microsecond()])?;
    Ok(())
}

/// Decodes a ledger row selected with [`ENTRY_COLUMNS`]; a decode problem is
/// `(rowid, detail)`.
fn entry_from_row(row: &Row<'_>) -> Result<LedgerEntry, (i64, String)> {
    let id: i64 = row.get(0).map_err(|e| (0, e.to_string()))?;
    let decoded = (|| -> Result<LedgerEntry, DecodeError> {
        let kind: String = row.get(2)?;
        Ok(LedgerEntry {
            id,
            enterprise: row.get(1)?,
            kind: kind.parse().map_err(|e| format!("{e}"))?,
            amount: Money::from_units(row.get(3)?),
            reference: row.get(4)?,
            at: ts_from_us(row.get(5)?)?,
            actor: row.get(6)?,
            note: row.get(7)?,
            balance_after: Money::from_units(row.get(8)?),
        })
    })();
    decoded.map_err(|d| (id, d.0))
}

/// Decodes an account row selected with [`ACCOUNT_COLUMNS`].
fn account_from_row(row: &Row<'_>) -> Result<Account, (i64, String)> {
    let rowid: i64 = row.get(7).map_err(|e| (0, e.to_string()))?;
    let decoded = (|| -> Result<Account, DecodeError> {
        let status: String = row.get(3)?;
        let warned: i64 = row.get(6)?;
        Ok(Account {
            enterprise: row.get(0)?,
            balance: Money::from_units(row.get(1)?),
            reserved: Money::from_units(row.get(2)?),
            status: status.parse().map_err(|e| format!("{e}"))?,
            status_since: ts_from_us(row.get(4)?)?,
            negative_since: row.get::<_, Option<i64>>(5)?.map(ts_from_us).transpose()?,
            low_balance_warned: warned != 0,
            opened_at: ts_from_us(row.get(8)?)?,
        })
    })();
    decoded.map_err(|d| (rowid, d.0))
}

pub(crate) fn read_account(
    conn: &Connection,
    enterprise: &str,
) -> Result<Option<Account>, PostError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM account WHERE enterprise = ?1"
        ))?
        .query_row([enterprise], |row| Ok(account_from_row(row)))
        .optional()?;
    found
        .transpose()
        .map_err(|(rowid, detail)| PostError::Corrupt {
            table: "account",
            rowid,
            detail,
        })
}

impl SqliteStore {
    fn read_error(&self, context: &'static str, e: PostError) -> StoreError {
        match e {
            PostError::Corrupt {
                table,
                rowid,
                detail,
            } => self.corrupt(table, rowid, detail),
            PostError::Sql(source) => StoreError::Sqlite {
                path: self.path.clone(),
                context,
                source,
            },
            // Reads never post.
            PostError::Conflict { .. } => unreachable!("a read reported a posting conflict"),
        }
    }

    /// Sends an account (or tenant data) operation to the writer and waits for its
    /// (durable) answer.
    pub(super) fn admin<T>(
        &self,
        make: impl FnOnce(mpsc::Sender<Result<T, StoreError>>) -> Admin,
    ) -> Result<T, StoreError> {
        let (reply, result) = mpsc::channel();
        let stopped = || StoreError::WriterStopped {
            path: self.path.clone(),
        };
        self.tx
            .send(Msg::Admin(make(reply)))
            .map_err(|_| stopped())?;
        let result = result.recv().map_err(|_| stopped())?;
        // This process's own change: the next reservation looks at once.
        self.book().invalidate();
        result
    }

    /// The writer's side of an account operation, in its own IMMEDIATE transaction.
    pub(crate) fn run_admin(conn: &mut Connection, path: &std::path::Path, op: Admin) {
        let sql = |context: &'static str| {
            move |source| StoreError::Sqlite {
                path: path.to_path_buf(),
                context,
                source,
            }
        };
        let corrupt = |e: PostError, context: &'static str| match e {
            PostError::Corrupt {
                table,
                rowid,
                detail,
            } => StoreError::Corrupt {
                path: path.to_path_buf(),
                table,
                rowid,
                detail,
            },
            PostError::Sql(source) => StoreError::Sqlite {
                path: path.to_path_buf(),
                context,
                source,
            },
            // Only a post conflicts; mapped where the entry is known.
            PostError::Conflict { .. } => StoreError::Sqlite {
                path: path.to_path_buf(),
                context,
                source: rusqlite::Error::InvalidQuery,
            },
        };
        let no_account = |enterprise: &str| StoreError::NoAccount {
            path: path.to_path_buf(),
            enterprise: enterprise.to_owned(),
        };
        match op {
            Admin::Post(entry, reply) => {
                const CONTEXT: &str = "posting a ledger entry";
                let result = (|| {
                    let tx = conn
                        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                        .map_err(sql(CONTEXT))?;
                    let out = match post_in(&tx, &entry) {
                        Ok(out) => out,
                        Err(PostError::Conflict { posted }) => {
                            return Err(StoreError::ConflictingEntry {
                                path: path.to_path_buf(),
                                enterprise: entry.enterprise.clone(),
                                kind: entry.kind,
                                reference: entry.reference.clone(),
                                posted,
                                asked: entry.amount,
                            });
                        }
                        Err(e) => return Err(corrupt(e, CONTEXT)),
                    };
                    if out.new {
                        bump_epoch(&tx).map_err(sql(CONTEXT))?;
                    }
                    tx.commit().map_err(sql(CONTEXT))?;
                    Ok(if out.new {
                        Posted::New(out.entry)
                    } else {
                        Posted::Already(out.entry)
                    })
                })();
                let _ = reply.send(result);
            }
            Admin::OpenAccount(enterprise, at, reply) => {
                const CONTEXT: &str = "opening an account";
                let result = (|| {
                    let tx = conn
                        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                        .map_err(sql(CONTEXT))?;
                    if ensure_account(&tx, &enterprise, at).map_err(sql(CONTEXT))? {
                        bump_epoch(&tx).map_err(sql(CONTEXT))?;
                    }
                    let account = read_account(&tx, &enterprise)
                        .map_err(|e| corrupt(e, CONTEXT))?
                        .ok_or_else(|| no_account(&enterprise))?;
                    tx.commit().map_err(sql(CONTEXT))?;
                    Ok(account)
                })();
                let _ = reply.send(result);
            }
            Admin::SetStatus(enterprise, status, at, reply) => {
                const CONTEXT: &str = "changing an account's status";
                let result = (|| {
                    let tx = conn
                        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                        .map_err(sql(CONTEXT))?;
                    let current: Option<String> = tx
                        .query_row(
                            "SELECT status FROM account WHERE enterprise = ?1",
                            [&enterprise],
                            |row| row.get(0),
                        )
                        .optional()
                        .map_err(sql(CONTEXT))?;
                    let Some(current) = current else {
                        return Err(no_account(&enterprise));
                    };
                    if current != status.as_str() {
                        tx.execute(
                            "UPDATE account SET status = ?2, status_since = ?3 WHERE enterprise = ?1",
                            params![enterprise, status.as_str(), at.as_microsecond()],
                        )
                        .map_err(sql(CONTEXT))?;
                        bump_epoch(&tx).map_err(sql(CONTEXT))?;
                    }
                    tx.commit().map_err(sql(CONTEXT))
                })();
                let _ = reply.send(result);
            }
            Admin::SetWarned(enterprise, warned, reply) => {
                const CONTEXT: &str = "setting an account's low-balance warning";
                // Not in the book: no epoch bump.
                let result = conn
                    .execute(
                        "UPDATE account SET low_balance_warned = ?2 WHERE enterprise = ?1",
                        params![enterprise, warned],
                    )
                    .map_err(sql(CONTEXT))
                    .and_then(|n| {
                        if n == 0 {
                            Err(no_account(&enterprise))
                        } else {
                            Ok(())
                        }
                    });
                let _ = reply.send(result);
            }
            Admin::ApplyTenant(change, reply) => {
                let _ = reply.send(super::tenant::apply(conn, path, change));
            }
            Admin::Access(op) => super::access::run(conn, path, op),
            Admin::PutAudio(digest, wav, at, reply) => {
                let _ = reply.send(super::audio::put(conn, path, &digest, &wav, at));
            }
            Admin::SweepAudio(before, reply) => {
                let _ = reply.send(super::audio::sweep(conn, path, before));
            }
            Admin::RollUp(pass, reply) => {
                let _ = reply.send(super::analytics::apply_pass(conn, path, *pass));
            }
        }
    }
}

impl LedgerStore for SqliteStore {
    fn open_account(&self, enterprise: &str, at: Timestamp) -> Result<Account, StoreError> {
        self.admin(|reply| Admin::OpenAccount(enterprise.to_owned(), at, reply))
    }

    fn account(&self, enterprise: &str) -> Result<Option<Account>, StoreError> {
        let conn = self.reader();
        read_account(&conn, enterprise).map_err(|e| self.read_error("reading an account", e))
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        const CONTEXT: &str = "reading accounts";
        let conn = self.reader();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM account ORDER BY enterprise"
            ))
            .map_err(self.err(CONTEXT))?;
        let rows = st
            .query_map([], |row| {
                Ok(account_from_row(row).map_err(|(rowid, d)| self.corrupt("account", rowid, d)))
            })
            .map_err(self.err(CONTEXT))?;
        collect(rows, self.err(CONTEXT))
    }

    fn post(&self, entry: NewEntry) -> Result<Posted, StoreError> {
        self.admin(|reply| Admin::Post(entry, reply))
    }

    fn ledger(
        &self,
        enterprise: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        const CONTEXT: &str = "reading the ledger";
        let conn = self.reader();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM ledger
                 WHERE enterprise = ?1 AND at >= ?2 AND at < ?3
                 ORDER BY at, id"
            ))
            .map_err(self.err(CONTEXT))?;
        let since = since.map_or(i64::MIN, |t| t.as_microsecond());
        let until = until.map_or(i64::MAX, |t| t.as_microsecond());
        let rows = st
            .query_map(params![enterprise, since, until], |row| {
                Ok(entry_from_row(row).map_err(|(rowid, d)| self.corrupt("ledger", rowid, d)))
            })
            .map_err(self.err(CONTEXT))?;
        collect(rows, self.err(CONTEXT))
    }

    fn ledger_entries(
        &self,
        enterprise: &str,
        query: &LedgerQuery,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        const CONTEXT: &str = "reading the ledger";
        let mut sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger WHERE enterprise = ?1 AND at >= ?2 AND at < ?3"
        );
        let mut args: Vec<rusqlite::types::Value> = vec![
            enterprise.to_owned().into(),
            query.since.map_or(i64::MIN, |t| t.as_microsecond()).into(),
            query.until.map_or(i64::MAX, |t| t.as_microsecond()).into(),
        ];
        if let Some((at, id)) = query.after {
            args.push(at.as_microsecond().into());
            args.push(id.into());
            sql.push_str(" AND (at > ?4 OR (at = ?4 AND id > ?5))");
        }
        if query.without_call_charges {
            sql.push_str(" AND kind <> 'call_charge'");
        }
        sql.push_str(" ORDER BY at, id");
        if query.limit > 0 {
            args.push(i64::try_from(query.limit).unwrap_or(i64::MAX).into());
            sql.push_str(&format!(" LIMIT ?{}", args.len()));
        }
        let conn = self.reader();
        let mut st = conn.prepare_cached(&sql).map_err(self.err(CONTEXT))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |row| {
                Ok(entry_from_row(row).map_err(|(rowid, d)| self.corrupt("ledger", rowid, d)))
            })
            .map_err(self.err(CONTEXT))?;
        collect(rows, self.err(CONTEXT))
    }

    fn ledger_totals(
        &self,
        enterprise: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<LedgerTotals, StoreError> {
        const CONTEXT: &str = "totalling the ledger";
        let (since, until) = (since.as_microsecond(), until.as_microsecond());
        let mut conn = self.reader();
        // One snapshot: the balances and the sums agree with each other.
        let tx = conn.transaction().map_err(self.err(CONTEXT))?;
        let balance_before = |tx: &rusqlite::Transaction<'_>, instant: i64| {
            tx.prepare_cached(
                "SELECT balance_after FROM ledger WHERE enterprise = ?1 AND at < ?2
                 ORDER BY at DESC, id DESC LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row(params![enterprise, instant], |row| row.get::<_, i64>(0))
                    .optional()
            })
        };
        let opening = balance_before(&tx, since)
            .map_err(self.err(CONTEXT))?
            .map_or(Money::ZERO, Money::from_units);
        let closing = balance_before(&tx, until)
            .map_err(self.err(CONTEXT))?
            .map_or(Money::ZERO, Money::from_units);
        let mut by_kind = Vec::new();
        {
            let mut st = tx
                .prepare_cached(
                    "SELECT kind, count(*), SUM(amount) FROM ledger
                     WHERE enterprise = ?1 AND at >= ?2 AND at < ?3 GROUP BY kind",
                )
                .map_err(self.err(CONTEXT))?;
            let mut rows = st
                .query(params![enterprise, since, until])
                .map_err(self.err(CONTEXT))?;
            while let Some(row) = rows.next().map_err(self.err(CONTEXT))? {
                let kind: String = row.get(0).map_err(self.err(CONTEXT))?;
                let entries: i64 = row.get(1).map_err(self.err(CONTEXT))?;
                let amount: i64 = row.get(2).map_err(self.err(CONTEXT))?;
                let kind = kind
                    .parse::<EntryKind>()
                    .map_err(|e| self.corrupt("ledger", 0, format!("{e}")))?;
                by_kind.push(KindTotal {
                    kind,
                    entries: u64::try_from(entries).unwrap_or(0),
                    amount: Money::from_units(amount),
                });
            }
        }
        tx.finish().map_err(self.err(CONTEXT))?;
        // With no entry in the period, the closing balance is the opening one.
        let closing = if by_kind.is_empty() { opening } else { closing };
        Ok(LedgerTotals {
            opening,
            closing,
            by_kind,
        })
    }

    fn set_status(
        &self,
        enterprise: &str,
        status: AccountStatus,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.admin(|reply| Admin::SetStatus(enterprise.to_owned(), status, at, reply))
    }

    fn set_low_balance_warned(&self, enterprise: &str, warned: bool) -> Result<(), StoreError> {
        self.admin(|reply| Admin::SetWarned(enterprise.to_owned(), warned, reply))
    }

    fn reserve(&self, request: ReservationRequest) -> Result<ReservationOutcome, StoreError> {
        let mut book = self.book();
        book.refresh()?;
        let (outcome, write) = book.decide(&request);
        if let Some(write) = write {
            // Sent under the book's lock: the writer's queue is in the book's order.
            self.tx
                .send(Msg::Reserve(Box::new(write.clone())))
                .map_err(|_| StoreError::WriterStopped {
                    path: self.path.clone(),
                })?;
            book.apply_reserve(&write);
        }
        Ok(outcome)
    }

    fn mark_answered(&self, call_id: &str, at: Timestamp) -> Result<(), StoreError> {
        // Under the book's lock, so it is queued after the call's reservation.
        let _book = self.book();
        self.tx
            .send(Msg::Answered(call_id.to_owned(), at))
            .map_err(|_| StoreError::WriterStopped {
                path: self.path.clone(),
            })
    }

    fn open_reservations(&self) -> Result<(Option<Timestamp>, Vec<OpenReservation>), StoreError> {
        const CONTEXT: &str = "reading open reservations";
        let mut conn = self.reader();
        let tx = conn.transaction().map_err(self.err(CONTEXT))?;
        let open = {
            let mut st = tx
                .prepare_cached(
                    // No rowid (the table is WITHOUT ROWID): a bad row is named by its
                    // call id in the detail.
                    "SELECT 0, call_id, enterprise, held, number, caller, caller_province,
                            caller_city, tariff, setup_at, answered_at
                     FROM reservation ORDER BY setup_at, call_id",
                )
                .map_err(self.err(CONTEXT))?;
            let rows = st
                .query_map([], |row| {
                    let rowid: i64 = row.get(0)?;
                    let decoded = (|| -> Result<OpenReservation, DecodeError> {
                        Ok(OpenReservation {
                            call_id: row.get(1)?,
                            enterprise: row.get(2)?,
                            held: Money::from_units(row.get(3)?),
                            recovery: RecoveryInfo {
                                number: row.get(4)?,
                                caller: row.get(5)?,
                                caller_province: row.get(6)?,
                                caller_city: row.get(7)?,
                                tariff: row.get(8)?,
                                setup_at: ts_from_us(row.get(9)?)?,
                                answered_at: row
                                    .get::<_, Option<i64>>(10)?
                                    .map(ts_from_us)
                                    .transpose()?,
                            },
                        })
                    })();
                    let call_id: Option<String> = row.get(1).ok();
                    Ok(decoded.map_err(|d| {
                        self.corrupt("reservation", rowid, format!("call {call_id:?}: {}", d.0))
                    }))
                })
                .map_err(self.err(CONTEXT))?;
            collect(rows, self.err(CONTEXT))?
        };
        tx.finish().map_err(self.err(CONTEXT))?;
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
                "SELECT COALESCE(SUM(-amount), 0) FROM ledger
                 WHERE enterprise = ?1 AND kind = 'call_charge' AND at >= ?2 AND at < ?3",
                e,
            ),
            // A charge's reference is its call's id.
            Spender::Number(n) => (
                "SELECT COALESCE(SUM(-l.amount), 0)
                 FROM cdr c JOIN ledger l
                   ON l.enterprise = c.enterprise AND l.kind = 'call_charge'
                  AND l.reference = c.call_id
                 WHERE c.number = ?1 AND l.at >= ?2 AND l.at < ?3",
                n,
            ),
        };
        let conn = self.reader();
        let units: i64 = conn
            .prepare_cached(sql)
            .and_then(|mut st| {
                st.query_row(
                    params![key, since.as_microsecond(), until.as_microsecond()],
                    |row| row.get(0),
                )
            })
            .map_err(self.err(CONTEXT))?;
        Ok(Money::from_units(units))
    }

    fn verify(&self) -> Result<Vec<Discrepancy>, StoreError> {
        const CONTEXT: &str = "verifying the ledger";
        let mut conn = self.reader();
        // One snapshot for every check.
        let tx = conn.transaction().map_err(self.err(CONTEXT))?;
        let mut found = Vec::new();
        let sums: Vec<(String, i64, i64, i64, i64)> = {
            let mut st = tx
                .prepare_cached(
                    "SELECT a.enterprise, a.balance, a.reserved,
                            COALESCE((SELECT SUM(amount) FROM ledger l
                                      WHERE l.enterprise = a.enterprise), 0),
                            COALESCE(r.held, 0)
                     FROM account a
                     LEFT JOIN (SELECT enterprise, SUM(held) AS held FROM reservation
                                GROUP BY enterprise) r ON r.enterprise = a.enterprise
                     ORDER BY a.enterprise",
                )
                .map_err(self.err(CONTEXT))?;
            let rows = st
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(self.err(CONTEXT))?;
            rows.collect::<Result<_, _>>().map_err(self.err(CONTEXT))?
        };
        for (enterprise, balance, reserved, ledger_sum, held_sum) in sums {
            found.extend(Discrepancy::of_sums(
                enterprise, balance, reserved, ledger_sum, held_sum,
            ));
        }
        {
            // Each account's running sum, in posting order.
            let mut running: HashMap<String, i64> = HashMap::new();
            let mut st = tx
                .prepare_cached(
                    "SELECT id, enterprise, amount, balance_after FROM ledger ORDER BY id",
                )
                .map_err(self.err(CONTEXT))?;
            let mut rows = st.query([]).map_err(self.err(CONTEXT))?;
            while let Some(row) = rows.next().map_err(self.err(CONTEXT))? {
                let id: i64 = row.get(0).map_err(self.err(CONTEXT))?;
                let enterprise: String = row.get(1).map_err(self.err(CONTEXT))?;
                let amount: i64 = row.get(2).map_err(self.err(CONTEXT))?;
                let after: i64 = row.get(3).map_err(self.err(CONTEXT))?;
                let sum = running.entry(enterprise.clone()).or_insert(0);
                *sum = sum.saturating_add(amount);
                if *sum != after {
                    found.push(Discrepancy {
                        enterprise,
                        problem: Problem::BalanceAfter {
                            entry_id: id,
                            stored: Money::from_units(after),
                            expected: Money::from_units(*sum),
                        },
                    });
                }
            }
        }
        tx.finish().map_err(self.err(CONTEXT))?;
        Ok(found)
    }
}
