//! Traffic analysis rollups' SQL: the rollup job's pass (the CDRs read and folded on the
//! reading connection, the result merged in one transaction by the writer, like an
//! account operation) and the reads of a report, in one snapshot on the reading
//! connection.

use std::path::Path;
use std::str::FromStr;
use std::sync::mpsc;

use jiff::civil::Date;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeSet;

use sihai_analytics::{Analysis, DayRange, DayRollup, RollupKey, Rollups};

use crate::analytics::{Piece, caller_pieces, month_of};

use super::writer::{Admin, Msg};
use super::{CDR_COLUMNS, SqliteStore, cdr_from_row, collect, load_attempts, sql_limit};
use crate::{AnalyticsStore, Cdr, RolledUp, StoreError};

fn sqlite_err<'a>(
    path: &'a Path,
    context: &'static str,
) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        context,
        source,
    }
}

/// Reads the CDRs of `sql` (selecting [`CDR_COLUMNS`]) with their attempts.
fn read_cdrs(
    conn: &Connection,
    path: &Path,
    context: &'static str,
    sql: &str,
    args: Vec<Value>,
) -> Result<Vec<(i64, Cdr)>, StoreError> {
    let mut cdrs = {
        let mut st = conn
            .prepare_cached(sql)
            .map_err(sqlite_err(path, context))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |row| {
                cdr_from_row(row, path)
            })
            .map_err(sqlite_err(path, context))?;
        collect(rows, sqlite_err(path, context))?
    };
    load_attempts(conn, &mut cdrs).map_err(sqlite_err(path, context))?;
    Ok(cdrs)
}

fn read_watermark(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT through_cdr FROM analytics_watermark WHERE id = 1",
        [],
        |row| row.get(0),
    )
    .map_err(sqlite_err(path, "reading the analytics watermark"))
}

fn corrupt_rollup(path: &Path, rowid: i64, detail: String) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        table: "analytics_day",
        rowid,
        detail,
    }
}

/// A pass of the rollup job folded off the writer: the CDRs after watermark `from`
/// through `through`, as rollups and callers per (enterprise, number, day).
pub(crate) struct FoldedPass {
    from: i64,
    through: i64,
    folded: usize,
    days: Vec<(RollupKey, DayRollup, BTreeSet<String>)>,
}

/// The reading side of [`AnalyticsStore::roll_up`]: the CDRs after the watermark (at
/// most `max`, with their attempts) read and folded on the reading connection, so the
/// writer, which the next CDR commit waits for, only merges the result.
fn fold_pass(
    conn: &mut Connection,
    path: &Path,
    max: usize,
) -> Result<Option<FoldedPass>, StoreError> {
    const CONTEXT: &str = "reading CDRs to roll up for traffic analysis";
    let tx = conn.transaction().map_err(sqlite_err(path, CONTEXT))?;
    let from = read_watermark(&tx, path)?;
    let cdrs = read_cdrs(
        &tx,
        path,
        CONTEXT,
        &format!("SELECT {CDR_COLUMNS} FROM cdr WHERE id > ?1 ORDER BY id LIMIT ?2"),
        vec![Value::Integer(from), Value::Integer(sql_limit(max.max(1)))],
    )?;
    let Some(through) = cdrs.last().map(|(id, _)| *id) else {
        return Ok(None);
    };
    let mut rollups = Rollups::new();
    for (_, cdr) in &cdrs {
        rollups.add(cdr);
    }
    let days = rollups
        .into_days()
        .into_iter()
        .map(|(key, (rollup, callers))| (key, rollup, callers))
        .collect();
    Ok(Some(FoldedPass {
        from,
        through,
        folded: cdrs.len(),
        days,
    }))
}

/// The writer's side of [`AnalyticsStore::roll_up`]: one IMMEDIATE transaction that
/// merges a folded pass into the stored rollups, adds its callers and moves the
/// watermark — unless the watermark moved since the pass read it (then nothing: the next
/// pass reads from where it is now), so no CDR is ever counted twice.
pub(crate) fn apply_pass(
    conn: &mut Connection,
    path: &Path,
    pass: FoldedPass,
) -> Result<RolledUp, StoreError> {
    const CONTEXT: &str = "rolling up CDRs for traffic analysis";
    let started = std::time::Instant::now();
    let err = sqlite_err(path, CONTEXT);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    let through = read_watermark(&tx, path)?;
    if through != pass.from {
        return Ok(RolledUp {
            folded: 0,
            through_cdr: through,
            writer_time: started.elapsed(),
        });
    }
    for (key, rollup, callers) in pass.days {
        let day = key.day.to_string();
        let stored: Option<(i64, String)> = tx
            .prepare_cached(
                "SELECT rowid, rollup FROM analytics_day
                 WHERE enterprise = ?1 AND number = ?2 AND day = ?3",
            )
            .and_then(|mut st| {
                st.query_row(params![key.enterprise, key.number, day], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
            })
            .map_err(&err)?;
        let merged = match stored {
            Some((rowid, text)) => {
                let mut merged = DayRollup::from_json(&text)
                    .map_err(|e| corrupt_rollup(path, rowid, e.to_string()))?;
                merged.merge(&rollup);
                merged
            }
            None => rollup,
        };
        tx.prepare_cached(
            "INSERT INTO analytics_day (enterprise, number, day, rollup) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (enterprise, number, day) DO UPDATE SET rollup = excluded.rollup",
        )
        .and_then(|mut st| st.execute(params![key.enterprise, key.number, day, merged.to_json()]))
        .map_err(&err)?;
        let month = month_of(key.day);
        let mut of_day = tx
            .prepare_cached(
                "INSERT INTO analytics_caller (enterprise, number, day, caller)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )
            .map_err(&err)?;
        let mut of_month = tx
            .prepare_cached(
                "INSERT INTO analytics_month_caller (enterprise, number, month, caller)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )
            .map_err(&err)?;
        for caller in &callers {
            of_day
                .execute(params![key.enterprise, key.number, day, caller])
                .map_err(&err)?;
            of_month
                .execute(params![key.enterprise, key.number, month, caller])
                .map_err(&err)?;
        }
    }
    tx.execute(
        "UPDATE analytics_watermark SET through_cdr = ?1 WHERE id = 1",
        [pass.through],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    Ok(RolledUp {
        folded: pass.folded,
        through_cdr: pass.through,
        writer_time: started.elapsed(),
    })
}

impl AnalyticsStore for SqliteStore {
    fn roll_up(&self, max: usize) -> Result<RolledUp, StoreError> {
        let pass = {
            let mut conn = self.reader();
            fold_pass(&mut conn, &self.path, max)?
        };
        let Some(pass) = pass else {
            let conn = self.reader();
            return Ok(RolledUp {
                folded: 0,
                through_cdr: read_watermark(&conn, &self.path)?,
                writer_time: std::time::Duration::ZERO,
            });
        };
        // Not `admin`: nothing here concerns the accounts the book keeps.
        let (reply, result) = mpsc::channel();
        let stopped = || StoreError::WriterStopped {
            path: self.path.clone(),
        };
        self.tx
            .send(Msg::Admin(Admin::RollUp(Box::new(pass), reply)))
            .map_err(|_| stopped())?;
        result.recv().map_err(|_| stopped())?
    }

    fn analysis(
        &self,
        enterprise: &str,
        number: Option<&str>,
        range: DayRange,
    ) -> Result<Analysis, StoreError> {
        const CONTEXT: &str = "reading traffic analysis rollups";
        let path = self.path.as_path();
        let err = sqlite_err(path, CONTEXT);
        let mut conn = self.reader();
        // One snapshot: the watermark, the rollups and callers through it, and the CDRs
        // after it agree, whatever the job commits meanwhile.
        let tx = conn.transaction().map_err(&err)?;
        let through = read_watermark(&tx, path)?;
        let numbers: Vec<String> = match number {
            Some(n) => vec![n.to_owned()],
            // Each number's days are then one seek on the primary key.
            None => {
                let mut st = tx
                    .prepare_cached(
                        "SELECT DISTINCT number FROM analytics_day WHERE enterprise = ?1",
                    )
                    .map_err(&err)?;
                let rows = st
                    .query_map([enterprise], |row| row.get::<_, String>(0))
                    .map_err(&err)?;
                rows.collect::<Result<_, _>>().map_err(&err)?
            }
        };
        let (first, last) = (range.first.to_string(), range.last.to_string());
        let mut analysis = Analysis::new(range);
        for number in &numbers {
            let mut st = tx
                .prepare_cached(
                    "SELECT rowid, day, rollup FROM analytics_day
                     WHERE enterprise = ?1 AND number = ?2 AND day >= ?3 AND day <= ?4",
                )
                .map_err(&err)?;
            let mut rows = st
                .query(params![enterprise, number, first, last])
                .map_err(&err)?;
            while let Some(row) = rows.next().map_err(&err)? {
                let rowid: i64 = row.get(0).map_err(&err)?;
                let day: String = row.get(1).map_err(&err)?;
                let text: String = row
                    .get_ref(2)
                    .map_err(&err)?
                    .as_str()
                    .map_err(|e| corrupt_rollup(path, rowid, e.to_string()))?
                    .to_owned();
                let day = Date::from_str(&day)
                    .map_err(|e| corrupt_rollup(path, rowid, format!("day {day:?}: {e}")))?;
                let rollup = DayRollup::from_json(&text)
                    .map_err(|e| corrupt_rollup(path, rowid, e.to_string()))?;
                analysis.add_rollup(day, &rollup);
            }
            for piece in caller_pieces(range) {
                let (table, sql, args) = match &piece {
                    Piece::Month(month) => (
                        "analytics_month_caller",
                        "SELECT caller FROM analytics_month_caller
                         WHERE enterprise = ?1 AND number = ?2 AND month = ?3",
                        vec![enterprise.to_owned(), number.clone(), month.clone()],
                    ),
                    Piece::Days(from, to) => (
                        "analytics_caller",
                        "SELECT caller FROM analytics_caller
                         WHERE enterprise = ?1 AND number = ?2 AND day >= ?3 AND day <= ?4",
                        vec![
                            enterprise.to_owned(),
                            number.clone(),
                            from.clone(),
                            to.clone(),
                        ],
                    ),
                };
                let mut st = tx.prepare_cached(sql).map_err(&err)?;
                let mut rows = st.query(rusqlite::params_from_iter(args)).map_err(&err)?;
                while let Some(row) = rows.next().map_err(&err)? {
                    let caller = row.get_ref(0).map_err(&err)?.as_str().map_err(|e| {
                        StoreError::Corrupt {
                            path: path.to_path_buf(),
                            table,
                            rowid: 0,
                            detail: e.to_string(),
                        }
                    })?;
                    analysis.add_caller(caller);
                }
            }
        }
        // The CDRs after the watermark, folded live. `NOT INDEXED` keeps SQLite on the
        // rowid range (the few seconds since the last roll-up) rather than the
        // (enterprise, setup_at) index, which would walk the whole range.
        let mut sql = format!(
            "SELECT {CDR_COLUMNS} FROM cdr NOT INDEXED
             WHERE id > ?1 AND enterprise = ?2 AND setup_at >= ?3 AND setup_at < ?4"
        );
        let mut args = vec![
            Value::Integer(through),
            Value::Text(enterprise.to_owned()),
            Value::Integer(range.start().as_microsecond()),
            Value::Integer(range.end().as_microsecond()),
        ];
        if let Some(n) = number {
            sql.push_str(" AND number = ?5");
            args.push(Value::Text(n.to_owned()));
        }
        for (_, cdr) in read_cdrs(&tx, path, CONTEXT, &sql, args)? {
            analysis.add(&cdr);
        }
        tx.finish().map_err(&err)?;
        Ok(analysis)
    }
}
