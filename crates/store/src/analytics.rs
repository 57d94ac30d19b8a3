//! The traffic analysis seam: rollups of the CDRs per enterprise, 400 number and
//! Asia/Shanghai day, kept by a background job, so that a month's figures are read
//! from a few hundred rows rather than folded from a million CDRs, and still exact to
//! the last call.

use jiff::civil::Date;
use sihai_analytics::{Analysis, DayRange};

use crate::StoreError;

/// What one [`AnalyticsStore::roll_up`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RolledUp {
    /// CDRs folded by this pass (0: the rollups had caught up).
    pub folded: usize,
    /// The watermark after the pass: the highest CDR id folded so far.
    pub through_cdr: i64,
    /// How long the store's writer (which the next CDR commit waits for) spent on the
    /// pass: the merge only; reading and folding the CDRs happens beside it.
    pub writer_time: std::time::Duration,
}

/// Traffic analysis rollups, on either backend.
///
/// The store keeps a `sihai_analytics::DayRollup` per (enterprise, number, day), each
/// day's and each calendar month's distinct callers per number, and a watermark: the highest CDR id folded into
/// them. [`roll_up`](AnalyticsStore::roll_up) folds the CDRs after the watermark
/// (a bounded batch, in id order) into the rollups and callers and moves the
/// watermark, all in one transaction: a crash before its commit leaves everything as
/// it was, after it everything is done, so no CDR is counted twice or lost.
/// [`analysis`](AnalyticsStore::analysis) reads, in one snapshot, the range's rollups
/// and callers (the month sets for the months it covers whole, the day sets for the
/// rest) and the CDRs after the watermark, and folds those live: the figures are
/// exact whether the job has caught up or not (only slower when it has not).
///
/// # PostgreSQL
/// The same tables (`rollup` TEXT or JSONB) and statements: `INSERT … ON CONFLICT
/// (enterprise, number, day) DO UPDATE SET rollup = excluded.rollup`, callers with `ON
/// CONFLICT DO NOTHING`, the watermark row updated in the same transaction (`SELECT …
/// FOR UPDATE` on it serialises two jobs). One difference: SQLite has one writer, so a
/// CDR id is committed only after every smaller one and "after the watermark" misses
/// nothing; PostgreSQL's sequence hands ids to concurrent transactions that may commit
/// out of order, so its job folds only the CDRs up to a horizon below which every id is
/// settled (`LOCK TABLE cdr IN SHARE MODE` waits for the transactions inserting CDRs,
/// then `max(id)`: see `postgres/analytics.rs`), and its readers fold the rest live as
/// here.
pub trait AnalyticsStore: Send + Sync {
    /// Folds up to `max` CDRs after the watermark into the rollups, in one
    /// transaction. Durable when it returns; `folded` below `max` means caught up.
    fn roll_up(&self, max: usize) -> Result<RolledUp, StoreError>;

    /// The traffic analysis of `enterprise` (only the calls to `number`, if given)
    /// over `range`: the range's rollups merged, the CDRs after the watermark folded,
    /// and the range's distinct callers; ready for `callers_before` and `finish`.
    fn analysis(
        &self,
        enterprise: &str,
        number: Option<&str>,
        range: DayRange,
    ) -> Result<Analysis, StoreError>;
}

/// `YYYY-MM`, the key of `analytics_month_caller`.
pub(crate) fn month_of(day: Date) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

/// Where a range's distinct callers are read from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A calendar month the range covers whole (`YYYY-MM`).
    Month(String),
    /// Days of a month it covers in part, first to last (`YYYY-MM-DD`).
    Days(String, String),
}

/// The range cut at month boundaries: its whole months, and its other days (both
/// backends read a range's distinct callers this way).
pub(crate) fn caller_pieces(range: DayRange) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut day = range.first;
    while day <= range.last {
        let month_last = day.last_of_month();
        let piece_last = month_last.min(range.last);
        if day == day.first_of_month() && piece_last == month_last {
            pieces.push(Piece::Month(month_of(day)));
        } else {
            pieces.push(Piece::Days(day.to_string(), piece_last.to_string()));
        }
        match piece_last.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn a_range_reads_its_whole_months_whole_and_the_rest_by_day() {
        let pieces = |first, last| caller_pieces(DayRange::new(first, last).unwrap());
        let days = |a: &str, b: &str| Piece::Days(a.into(), b.into());
        assert_eq!(
            pieces(date(2026, 3, 1), date(2026, 3, 31)),
            [Piece::Month("2026-03".into())]
        );
        assert_eq!(
            pieces(date(2026, 2, 15), date(2026, 4, 2)),
            [
                days("2026-02-15", "2026-02-28"),
                Piece::Month("2026-03".into()),
                days("2026-04-01", "2026-04-02"),
            ]
        );
        assert_eq!(
            pieces(date(2026, 3, 2), date(2026, 3, 3)),
            [days("2026-03-02", "2026-03-03")]
        );
        assert_eq!(
            pieces(date(2024, 2, 1), date(2024, 2, 29)),
            [Piece::Month("2024-02".into())]
        );
        assert_eq!(
            pieces(date(2026, 1, 31), date(2026, 2, 1)),
            [
                days("2026-01-31", "2026-01-31"),
                days("2026-02-01", "2026-02-01")
            ]
        );
    }
}
