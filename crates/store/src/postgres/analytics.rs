//! [`AnalyticsStore`] for [`PgStore`]: the same rollups, watermark and reads as SQLite's
//! (`sqlite/analytics.rs`), with one difference, the horizon.
//!
//! # The horizon
//! The rollups hold exactly the CDRs with `id <= analytics_watermark.through_cdr`, and
//! a report folds those after it live. In SQLite one writer commits CDRs in id order, so
//! a pass may fold every CDR it sees after the watermark. Here CDR ids come from an
//! identity sequence shared by every node's writer, and transactions commit out of id
//! order: a pass that saw ids 10 and 12 committed, moved the watermark to 12, and then
//! saw 11 commit would never fold 11 (it is below the watermark), and reports would
//! never count it.
//!
//! So a pass first finds a safe horizon, in a short transaction of its own: `LOCK TABLE
//! cdr IN SHARE MODE` waits for every transaction that has inserted into `cdr` (every
//! one that holds a CDR id: an INSERT takes its ROW EXCLUSIVE lock before it draws an
//! id) to commit or roll back, and keeps new inserts out for as long as it is held; it
//! reads `max(id)` as H and commits at once (writers wait an instant). Every id up to H
//! has then been committed or rolled back, and every id drawn afterwards is above H
//! (the identity's sequence is not cached per session: `CACHE 1`, the default). The
//! pass folds only `watermark < id <= H`, so the watermark never passes an id whose
//! CDR may still appear.
//!
//! Two nodes' passes may run at once: both read the same watermark, fold the same
//! CDRs, and the second to lock the watermark row finds it moved and writes nothing
//! (the conditional `UPDATE … WHERE through_cdr = $old` refuses it too), so no CDR is
//! counted twice.
//!
//! A report reads in one REPEATABLE READ snapshot: the watermark, the rollups through
//! it (committed in the same transaction as its move), and the committed CDRs after it;
//! every CDR at or below the watermark is folded, so each CDR it sees is counted once.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use jiff::civil::Date;
use sihai_analytics::{Analysis, DayRange, DayRollup, RollupKey, Rollups};
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};

use super::{PgStore, Shared, ts_from_us};
use crate::analytics::{Piece, caller_pieces, month_of};
use crate::{AnalyticsStore, Cdr, Money, PhoneAttempt, RolledUp, StoreError};

/// The columns [`cdr_from_row`] decodes, in its order.
const CDR_COLUMNS: &str = "id, call_id, number, enterprise, caller, caller_province,
    caller_city, answered_by, setup_at, ring_at, answer_at, end_at, talk_seconds, outcome,
    hangup_side, hangup_cause, recording, menu_path, announcement, billed_seconds, cost, tariff,
    customer_id";

/// Decodes one `cdr` row of [`CDR_COLUMNS`] (its attempts are read apart).
fn cdr_from_row(shared: &Shared, row: &Row) -> Result<(i64, Cdr), StoreError> {
    let id: i64 = row
        .try_get(0)
        .map_err(|e| shared.corrupt("cdr", 0, format!("id: {e}")))?;
    let decoded = (|| -> Result<Cdr, String> {
        let e = |e: tokio_postgres::Error| e.to_string();
        let instant = |us: Option<i64>| us.map(ts_from_us).transpose();
        let outcome: String = row.try_get(13).map_err(e)?;
        let side: Option<String> = row.try_get(14).map_err(e)?;
        let talk: i64 = row.try_get(12).map_err(e)?;
        let billed: i64 = row.try_get(19).map_err(e)?;
        Ok(Cdr {
            call_id: row.try_get(1).map_err(e)?,
            number: row.try_get(2).map_err(e)?,
            enterprise: row.try_get(3).map_err(e)?,
            caller: row.try_get(4).map_err(e)?,
            caller_province: row.try_get(5).map_err(e)?,
            caller_city: row.try_get(6).map_err(e)?,
            answered_by: row.try_get(7).map_err(e)?,
            attempts: Vec::new(),
            setup_at: ts_from_us(row.try_get(8).map_err(e)?)?,
            ring_at: instant(row.try_get(9).map_err(e)?)?,
            answer_at: instant(row.try_get(10).map_err(e)?)?,
            end_at: ts_from_us(row.try_get(11).map_err(e)?)?,
            talk_seconds: u32::try_from(talk).map_err(|_| format!("talk_seconds {talk}"))?,
            outcome: outcome.parse().map_err(|e| format!("{e}"))?,
            hangup_side: side
                .map(|s| s.parse())
                .transpose()
                .map_err(|e| format!("{e}"))?,
            hangup_cause: row.try_get(15).map_err(e)?,
            recording: row.try_get(16).map_err(e)?,
            menu_path: row.try_get(17).map_err(e)?,
            announcement: row.try_get(18).map_err(e)?,
            billed_seconds: u32::try_from(billed)
                .map_err(|_| format!("billed_seconds {billed}"))?,
            cost: row
                .try_get::<_, Option<i64>>(20)
                .map_err(e)?
                .map(Money::from_units),
            tariff: row.try_get(21).map_err(e)?,
            customer_id: row.try_get(22).map_err(e)?,
        })
    })();
    decoded
        .map(|cdr| (id, cdr))
        .map_err(|d| shared.corrupt("cdr", id, d))
}

/// Reads the CDRs of `sql` (selecting [`CDR_COLUMNS`]) with their phone attempts, in
/// two statements. `cached`: prepared once per connection; otherwise planned for these
/// parameters (see `analysis`).
async fn read_cdrs(
    shared: &Shared,
    client: &impl deadpool_postgres::GenericClient,
    context: &'static str,
    sql: &str,
    args: &[&(dyn ToSql + Sync)],
    cached: bool,
) -> Result<Vec<(i64, Cdr)>, StoreError> {
    let err = shared.err(context);
    let rows = if cached {
        let st = client.prepare_cached(sql).await.map_err(&err)?;
        client.query(&st, args).await.map_err(&err)?
    } else {
        client.query(sql, args).await.map_err(&err)?
    };
    let mut cdrs = rows
        .iter()
        .map(|row| cdr_from_row(shared, row))
        .collect::<Result<Vec<_>, _>>()?;
    if cdrs.is_empty() {
        return Ok(cdrs);
    }
    let position: HashMap<i64, usize> = cdrs
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let ids: Vec<i64> = cdrs.iter().map(|(id, _)| *id).collect();
    let st = client
        .prepare_cached(
            "SELECT cdr_id, phone, result FROM cdr_attempt
             WHERE cdr_id = ANY($1) ORDER BY cdr_id, seq",
        )
        .await
        .map_err(&err)?;
    for row in client.query(&st, &[&ids]).await.map_err(&err)? {
        let decoded = (|| -> Result<(i64, PhoneAttempt), tokio_postgres::Error> {
            Ok((
                row.try_get(0)?,
                PhoneAttempt {
                    phone: row.try_get(1)?,
                    result: row.try_get(2)?,
                },
            ))
        })();
        let (id, attempt) = decoded.map_err(|e| shared.corrupt("cdr_attempt", 0, e.to_string()))?;
        if let Some(&i) = position.get(&id) {
            cdrs[i].1.attempts.push(attempt);
        }
    }
    Ok(cdrs)
}

async fn read_watermark(
    shared: &Shared,
    client: &impl deadpool_postgres::GenericClient,
    lock: bool,
) -> Result<i64, StoreError> {
    const CONTEXT: &str = "reading the analytics watermark";
    let sql = if lock {
        "SELECT through_cdr FROM analytics_watermark WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT through_cdr FROM analytics_watermark WHERE id = 1"
    };
    let st = client
        .prepare_cached(sql)
        .await
        .map_err(shared.err(CONTEXT))?;
    client
        .query_opt(&st, &[])
        .await
        .map_err(shared.err(CONTEXT))?
        .ok_or_else(|| shared.corrupt("analytics_watermark", 1, "the row is missing".into()))?
        .try_get(0)
        .map_err(|e| shared.corrupt("analytics_watermark", 1, format!("through_cdr: {e}")))
}

/// A stored rollup that cannot be read. analytics_day has no row id in PostgreSQL: 0,
/// with its key in the detail.
fn corrupt_rollup(shared: &Shared, key: &str, detail: String) -> StoreError {
    shared.corrupt("analytics_day", 0, format!("{key}: {detail}"))
}

/// The highest CDR id below which every id is settled (committed or rolled back): see
/// the module's "The horizon".
async fn horizon(shared: &Shared) -> Result<i64, StoreError> {
    const CONTEXT: &str = "finding the CDRs settled for traffic analysis";
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    let tx = client.transaction().await.map_err(&err)?;
    tx.batch_execute("LOCK TABLE cdr IN SHARE MODE")
        .await
        .map_err(&err)?;
    let st = tx
        .prepare_cached("SELECT COALESCE(max(id), 0) FROM cdr")
        .await
        .map_err(&err)?;
    let h: i64 = tx
        .query_one(&st, &[])
        .await
        .map_err(&err)?
        .try_get(0)
        .map_err(|e| shared.corrupt("cdr", 0, format!("max(id): {e}")))?;
    // Committed at once: the lock is what keeps the writers waiting.
    tx.commit().await.map_err(&err)?;
    Ok(h)
}

/// A pass's CDRs folded: watermark `from`, through id `through`.
struct FoldedPass {
    from: i64,
    through: i64,
    folded: usize,
    days: Vec<(RollupKey, DayRollup, BTreeSet<String>)>,
}

/// Reads and folds the CDRs after the watermark, up to `horizon`, at most `max`.
async fn fold_pass(
    shared: &Shared,
    horizon: i64,
    max: usize,
) -> Result<Result<FoldedPass, i64>, StoreError> {
    const CONTEXT: &str = "reading CDRs to roll up for traffic analysis";
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    // One snapshot: the watermark and the CDRs after it.
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(&err)?;
    let from = read_watermark(shared, &tx, false).await?;
    let limit = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
    let cdrs = read_cdrs(
        shared,
        &tx,
        CONTEXT,
        &format!("SELECT {CDR_COLUMNS} FROM cdr WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3"),
        &[&from, &horizon, &limit],
        true,
    )
    .await?;
    tx.commit().await.map_err(&err)?;
    let Some(through) = cdrs.last().map(|(id, _)| *id) else {
        return Ok(Err(from));
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
    Ok(Ok(FoldedPass {
        from,
        through,
        folded: cdrs.len(),
        days,
    }))
}

/// Merges a folded pass into the stored rollups and moves the watermark, in one
/// transaction, unless the watermark moved since the pass read it (another node's pass
/// got there first: then nothing).
async fn apply_pass(shared: &Shared, pass: FoldedPass) -> Result<RolledUp, StoreError> {
    const CONTEXT: &str = "rolling up CDRs for traffic analysis";
    let started = std::time::Instant::now();
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    let tx = client.transaction().await.map_err(&err)?;
    // The watermark row locked first: passes of several nodes queue here, and the one
    // that waited reads the watermark its predecessor committed.
    let through = read_watermark(shared, &tx, true).await?;
    if through != pass.from {
        return Ok(RolledUp {
            folded: 0,
            through_cdr: through,
            writer_time: started.elapsed(),
        });
    }
    let select = tx
        .prepare_cached(
            "SELECT rollup FROM analytics_day
             WHERE enterprise = $1 AND number = $2 AND day = $3",
        )
        .await
        .map_err(&err)?;
    let upsert = tx
        .prepare_cached(
            "INSERT INTO analytics_day (enterprise, number, day, rollup) VALUES ($1, $2, $3, $4)
             ON CONFLICT (enterprise, number, day) DO UPDATE SET rollup = excluded.rollup",
        )
        .await
        .map_err(&err)?;
    // A day's callers in one statement each, rather than one per caller.
    let of_day = tx
        .prepare_cached(
            "INSERT INTO analytics_caller (enterprise, number, day, caller)
             SELECT $1, $2, $3, c FROM unnest($4::text[]) AS c ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(&err)?;
    let of_month = tx
        .prepare_cached(
            "INSERT INTO analytics_month_caller (enterprise, number, month, caller)
             SELECT $1, $2, $3, c FROM unnest($4::text[]) AS c ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(&err)?;
    for (key, rollup, callers) in pass.days {
        let day = key.day.to_string();
        let stored = tx
            .query_opt(&select, &[&key.enterprise, &key.number, &day])
            .await
            .map_err(&err)?;
        let merged = match stored {
            Some(row) => {
                let what = format!("{} {} {day}", key.enterprise, key.number);
                let text: String = row
                    .try_get(0)
                    .map_err(|e| corrupt_rollup(shared, &what, e.to_string()))?;
                let mut merged = DayRollup::from_json(&text)
                    .map_err(|e| corrupt_rollup(shared, &what, e.to_string()))?;
                merged.merge(&rollup);
                merged
            }
            None => rollup,
        };
        tx.execute(
            &upsert,
            &[&key.enterprise, &key.number, &day, &merged.to_json()],
        )
        .await
        .map_err(&err)?;
        let callers: Vec<String> = callers.into_iter().collect();
        tx.execute(&of_day, &[&key.enterprise, &key.number, &day, &callers])
            .await
            .map_err(&err)?;
        let month = month_of(key.day);
        tx.execute(&of_month, &[&key.enterprise, &key.number, &month, &callers])
            .await
            .map_err(&err)?;
    }
    // Conditional on the watermark read: with the row locked above it cannot have
    // moved, but a pass that somehow raced is refused rather than counted twice.
    let moved = tx
        .execute(
            "UPDATE analytics_watermark SET through_cdr = $1 WHERE id = 1 AND through_cdr = $2",
            &[&pass.through, &pass.from],
        )
        .await
        .map_err(&err)?;
    if moved != 1 {
        drop(tx);
        return Ok(RolledUp {
            folded: 0,
            through_cdr: read_watermark(shared, &client, false).await?,
            writer_time: started.elapsed(),
        });
    }
    tx.commit().await.map_err(&err)?;
    Ok(RolledUp {
        folded: pass.folded,
        through_cdr: pass.through,
        writer_time: started.elapsed(),
    })
}

async fn roll_up(shared: Arc<Shared>, max: usize) -> Result<RolledUp, StoreError> {
    let horizon = horizon(&shared).await?;
    match fold_pass(&shared, horizon, max).await? {
        Ok(pass) => apply_pass(&shared, pass).await,
        Err(through) => Ok(RolledUp {
            folded: 0,
            through_cdr: through,
            writer_time: std::time::Duration::ZERO,
        }),
    }
}

async fn analysis(
    shared: Arc<Shared>,
    enterprise: String,
    number: Option<String>,
    range: DayRange,
) -> Result<Analysis, StoreError> {
    const CONTEXT: &str = "reading traffic analysis rollups";
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    // One snapshot: the watermark, the rollups and callers through it, and the CDRs
    // after it agree, whatever a pass commits meanwhile.
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(&err)?;
    let through = read_watermark(&shared, &tx, false).await?;
    let numbers: Vec<String> = match &number {
        Some(n) => vec![n.clone()],
        // Each number's days are then one range scan of the primary key.
        None => {
            let st = tx
                .prepare_cached("SELECT DISTINCT number FROM analytics_day WHERE enterprise = $1")
                .await
                .map_err(&err)?;
            tx.query(&st, &[&enterprise])
                .await
                .map_err(&err)?
                .iter()
                .map(|row| {
                    row.try_get(0)
                        .map_err(|e| corrupt_rollup(&shared, &enterprise, e.to_string()))
                })
                .collect::<Result<_, _>>()?
        }
    };
    let (first, last) = (range.first.to_string(), range.last.to_string());
    let mut analysis = Analysis::new(range);
    let days = tx
        .prepare_cached(
            "SELECT day, rollup FROM analytics_day
             WHERE enterprise = $1 AND number = $2 AND day >= $3 AND day <= $4",
        )
        .await
        .map_err(&err)?;
    let month_callers = tx
        .prepare_cached(
            "SELECT caller FROM analytics_month_caller
             WHERE enterprise = $1 AND number = $2 AND month = $3",
        )
        .await
        .map_err(&err)?;
    let day_callers = tx
        .prepare_cached(
            "SELECT caller FROM analytics_caller
             WHERE enterprise = $1 AND number = $2 AND day >= $3 AND day <= $4",
        )
        .await
        .map_err(&err)?;
    for number in &numbers {
        for row in tx
            .query(&days, &[&enterprise, number, &first, &last])
            .await
            .map_err(&err)?
        {
            let day: String = row
                .try_get(0)
                .map_err(|e| corrupt_rollup(&shared, number, e.to_string()))?;
            let what = format!("{enterprise} {number} {day}");
            let text: String = row
                .try_get(1)
                .map_err(|e| corrupt_rollup(&shared, &what, e.to_string()))?;
            let date = Date::from_str(&day)
                .map_err(|e| corrupt_rollup(&shared, &what, format!("day: {e}")))?;
            let rollup = DayRollup::from_json(&text)
                .map_err(|e| corrupt_rollup(&shared, &what, e.to_string()))?;
            analysis.add_rollup(date, &rollup);
        }
        for piece in caller_pieces(range) {
            let (table, rows) = match &piece {
                Piece::Month(month) => (
                    "analytics_month_caller",
                    tx.query(&month_callers, &[&enterprise, number, month])
                        .await,
                ),
                Piece::Days(from, to) => (
                    "analytics_caller",
                    tx.query(&day_callers, &[&enterprise, number, from, to])
                        .await,
                ),
            };
            for row in rows.map_err(&err)? {
                let caller: &str = row
                    .try_get(0)
                    .map_err(|e| shared.corrupt(table, 0, e.to_string()))?;
                analysis.add_caller(caller);
            }
        }
    }
    // The CDRs after the watermark, folded live. Not a cached statement: planned for
    // these parameters, PostgreSQL sees how few ids lie after the watermark and walks
    // the primary key's range rather than the (enterprise, setup_at) index over the
    // whole range, which a generic plan would not know.
    let start = range.start().as_microsecond();
    let end = range.end().as_microsecond();
    let mut sql = format!(
        "SELECT {CDR_COLUMNS} FROM cdr
         WHERE id > $1 AND enterprise = $2 AND setup_at >= $3 AND setup_at < $4"
    );
    let mut args: Vec<&(dyn ToSql + Sync)> = vec![&through, &enterprise, &start, &end];
    if let Some(n) = &number {
        sql.push_str(" AND number = $5");
        args.push(n);
    }
    for (_, cdr) in read_cdrs(&shared, &tx, CONTEXT, &sql, &args, false).await? {
        analysis.add(&cdr);
    }
    tx.commit().await.map_err(&err)?;
    Ok(analysis)
}

impl AnalyticsStore for PgStore {
    fn roll_up(&self, max: usize) -> Result<RolledUp, StoreError> {
        self.run(roll_up(self.shared.clone(), max))
    }

    fn analysis(
        &self,
        enterprise: &str,
        number: Option<&str>,
        range: DayRange,
    ) -> Result<Analysis, StoreError> {
        self.run(analysis(
            self.shared.clone(),
            enterprise.to_owned(),
            number.map(str::to_owned),
            range,
        ))
    }
}
