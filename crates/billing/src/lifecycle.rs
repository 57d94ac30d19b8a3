//! An account's lifecycle as a pure function of (account, policy, now): suspension,
//! the daily fee while suspended, reclaim, the low-balance warning, and the month-end
//! minimum per number.
//!
//! The daemon calls [`review`] for every account once at start and then every
//! `lifecycle_interval`, and carries out the [`LifecycleAction`]s it returns **in
//! order**, stopping at the first that fails (the next review picks up from there). Each
//! money-posting action carries a ready [`NewEntry`] whose reference is deterministic, so
//! two daemons reviewing the same account, or a review repeated after a crash, post
//! nothing twice: the ledger is idempotent on (enterprise, kind, reference). Once a
//! review's actions are applied, reviewing again at the same instant returns nothing.
//! The status changes and the warning flag are for the daemon to apply as a
//! compare-and-set (`... WHERE status = 'active'`), alerting only when its own write
//! changed the row, so that two daemons alert once.
//!
//! Days and months are Asia/Shanghai's ([`china_time_zone`]).
//!
//! # The rules
//!
//! Thresholds are strict-below: "below X" is `balance < X`, and `balance == X` is not
//! below. The balance judged is the ledger balance (not the available balance: what
//! calls in progress hold is not spent yet), as it will be once this review's own
//! entries are posted ([`Review::balance`]); so a catch-up of day fees can keep an account
//! suspended, or take it below zero, in the same review.
//!
//! - **Suspend** an active account whose balance is below `suspend_below`.
//! - **Resume** a suspended account whose balance is at least `suspend_below`: the issue
//!   says a recharge *above the suspension threshold* resumes at once. Resuming does not
//!   wait for `min_balance`: admission is a separate gate (a call needs an available
//!   balance of at least `min_balance`), so between the two thresholds the numbers are in
//!   service but calls are refused for insufficient balance, without the daily fee. The
//!   daemon runs `review` right after posting a recharge (and so should the CLI that
//!   posts one), so "at once" holds between two lifecycle ticks.
//! - **Daily fee**: `suspended_daily_fee` for each Asia/Shanghai day *that begins while
//!   the account is suspended*, i.e. each day D with `status_since <= 00:00 of D <= now`.
//!   The day of suspension is free unless the suspension happened exactly at its
//!   midnight; a day that starts suspended is owed in full even if a recharge resumes the
//!   account at 00:05. Why: the number of fees equals the number of midnights the
//!   suspension spans, so a suspension of *n* whole days costs *n* fees, never *n + 1*; a
//!   suspension from 23:59 to 00:01 costs one fee and one from 00:01 to 23:59 none; and
//!   a day's fee is due from the instant the day begins, so it can be posted then, not
//!   after the fact. Each fee is its own entry, kind [`EntryKind::SuspensionDayFee`],
//!   amount `-suspended_daily_fee`, reference `suspended-day/2026-12-07`
//!   ([`day_fee_reference`]), dated the day's 00:00. Days missed while the daemon was down
//!   are caught up, oldest first, each with its own reference. Fees continue below zero
//!   (the debt grows until reclaim) and stop at reclaim. A fee of zero (or a negative
//!   one, which configuration should refuse) posts nothing: fees are never positive.
//!   One fee per day at most, even across two suspensions on the same day: the reference
//!   names the day, and `last_day_fee` skips every day up to the last one charged.
//! - **Reclaim** an active or suspended account whose balance has been below zero for at
//!   least `reclaim_after_days` × 24 h (`negative_since + days <= now`; China keeps no
//!   daylight saving time, so that is the same as calendar days). When this review's own
//!   fees take the balance below zero, it is negative from the `at` of the fee that
//!   does; a day that begins at or after the reclaim instant is not charged, so a daemon
//!   that was down charges exactly what a daemon that was up would have. A reclaim from
//!   active (the balance went negative, e.g. by a month-end minimum, while the daemon was
//!   down) posts no fee: only days actually suspended are charged.
//! - **A reclaimed account is left alone**: no action of any kind, whatever its balance.
//!   Reclaiming hands the numbers back (calls get `404`); a recharge alone must not
//!   silently bring them back into service, perhaps months later, for an enterprise that
//!   has moved on. An operator restores the account (to active), and the next review
//!   judges it afresh.
//! - **Low-balance warning**: [`LifecycleAction::WarnLowBalance`] when the balance is
//!   below `low_balance_warning` and `low_balance_warned` is not set;
//!   [`LifecycleAction::ClearLowBalanceWarning`] when it is at least the level again and
//!   the flag is set. So: once per crossing. It is sent even along with a suspension
//!   (the flag must be set either way; the daemon may fold the two alerts into one), but
//!   not along with a reclaim.
//! - **No action for an account already in the target state**: a suspended account is
//!   not suspended again, an active one not resumed.
//!
//! Transitions happen at the review's `now` (the daemon sets `status_since = now`); only
//! the fees of a suspension already recorded are caught up retroactively.
//!
//! # Month end
//!
//! Each number owes `monthly_minimum` per calendar month (Asia/Shanghai): after the month
//! ends (00:00 on the 1st of the next month, i.e. after 24:00 on its last day),
//! [`monthly_minimum`] gives the shortfall `minimum - spent` as one negative entry,
//! reference `monthly-minimum/4001234567/2026-11`, so it runs once per number and month
//! however many daemons run it and however often. [`months_due`] lists the completed
//! months a number still needs the run for: after the month it entered service in (that
//! month is exempt: a number opened on the 28th cannot fairly owe a month's minimum, and
//! pro rata would need a rounding rule for a fraction of a month), after the last month
//! already run, and at most [`MAX_MONTHS_BACK`] back, so a daemon down at midnight
//! catches up at start.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use sihai_rating::{Money, china_time_zone};
use sihai_records::{Account, AccountStatus, EntryKind, NewEntry};

use crate::AccountPolicy;

/// The actor recorded on the entries the lifecycle posts.
pub const ACTOR: &str = "system";

/// The prefix of a suspension day fee's reference: `suspended-day/2026-12-07`.
pub const DAY_FEE_PREFIX: &str = "suspended-day/";

/// The prefix of a monthly-minimum entry's reference: `monthly-minimum/4001234567/2026-11`.
pub const MONTHLY_MINIMUM_PREFIX: &str = "monthly-minimum/";

/// How far back [`months_due`] looks: the completed months before the current one. A
/// shortfall older than that is not charged automatically (an operator decides).
pub const MAX_MONTHS_BACK: u32 = 12;

const SECONDS_PER_DAY: i64 = 86_400;

/// What the daemon is to do for one account, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleAction {
    /// Post one suspended day's fee (idempotent on its reference).
    PostDayFee { day: Date, entry: NewEntry },
    /// Set the status to suspended (since `now`): callers hear the suspended answer.
    /// Log it and alert the enterprise.
    Suspend,
    /// Set the status to active (since `now`). Log it and alert the enterprise.
    Resume,
    /// Set the status to reclaimed (since `now`): the numbers answer `404` and keep their
    /// history. Log it and alert the enterprise.
    Reclaim,
    /// Alert the enterprise that its balance is low, and set `low_balance_warned`.
    WarnLowBalance { balance: Money },
    /// Clear `low_balance_warned`: the balance is back at or above the warning level.
    ClearLowBalanceWarning,
}

impl LifecycleAction {
    /// The entry this action posts, if it posts one.
    pub fn entry(&self) -> Option<&NewEntry> {
        match self {
            LifecycleAction::PostDayFee { entry, .. } => Some(entry),
            _ => None,
        }
    }
}

/// The outcome of [`review`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// What to do, in order; empty when the account is where it should be.
    pub actions: Vec<LifecycleAction>,
    /// The account's balance once this review's entries are posted: the balance every
    /// decision of the review was made on.
    pub balance: Money,
}

impl Review {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The entries to post, in order.
    pub fn entries(&self) -> impl Iterator<Item = &NewEntry> {
        self.actions.iter().filter_map(LifecycleAction::entry)
    }
}

/// Reviews one account at `now` under `policy`. `last_day_fee` is the latest day a
/// suspension day fee was posted for this account, if any (the ledger's newest
/// [`EntryKind::SuspensionDayFee`]; [`day_fee_day`] reads it back from the reference):
/// no day up to it is charged again. See the module documentation for the rules.
pub fn review(
    account: &Account,
    policy: &AccountPolicy,
    now: Timestamp,
    last_day_fee: Option<Date>,
) -> Review {
    let mut review = Review {
        actions: Vec::new(),
        balance: account.balance,
    };
    let suspended_since = match account.status {
        AccountStatus::Reclaimed => return review,
        AccountStatus::Suspended => account.status_since,
        AccountStatus::Active => {
            let negative_from = negative_from(account, now);
            if reclaim_due(negative_from, policy, now) {
                review.actions.push(LifecycleAction::Reclaim);
                return review;
            }
            if account.balance >= policy.suspend_below {
                warn_or_clear(&mut review, account, policy);
                return review;
            }
            review.actions.push(LifecycleAction::Suspend);
            now
        }
    };

    // The account is suspended from `suspended_since`: charge each day that began since.
    let tz = china_time_zone();
    let mut negative_from = negative_from(account, now);
    if let Some(fee) = policy
        .suspended_daily_fee
        .checked_neg()
        .filter(|fee| fee.is_negative())
    {
        let mut day = first_day_starting_at_or_after(suspended_since, &tz);
        if let Some(last) = last_day_fee {
            // No day up to the last one charged; nothing at all if that was jiff's last day.
            day = day
                .zip(last.tomorrow().ok())
                .map(|(day, next)| day.max(next));
        }
        let today = now.to_zoned(tz.clone()).date();
        while let Some(current) = day.filter(|day| *day <= today) {
            let start = day_start(current, &tz);
            if reclaim_at(negative_from, policy).is_some_and(|at| at <= start) {
                break;
            }
            let before = review.balance;
            review.balance = review.balance.saturating_add(fee);
            if !before.is_negative() && review.balance.is_negative() {
                negative_from = Some(start);
            }
            review.actions.push(LifecycleAction::PostDayFee {
                day: current,
                entry: day_fee_entry(&account.enterprise, current, fee, start),
            });
            day = current.tomorrow().ok();
        }
    }

    if reclaim_due(negative_from, policy, now) {
        review.actions.push(LifecycleAction::Reclaim);
        return review;
    }
    if account.status == AccountStatus::Suspended && review.balance >= policy.suspend_below {
        review.actions.push(LifecycleAction::Resume);
    }
    warn_or_clear(&mut review, account, policy);
    review
}

/// Since when the account's balance is below zero, as the review sees it; `None` while
/// it is not.
fn negative_from(account: &Account, now: Timestamp) -> Option<Timestamp> {
    account
        .balance
        .is_negative()
        .then(|| account.negative_since.map_or(now, |since| since.min(now)))
}

/// When the account is reclaimed if its balance stays below zero: `reclaim_after_days`
/// after it went below zero, the instant [`review`] reclaims at (a reclaim already due
/// is `now` or earlier). `None` while the balance is not below zero (the clock has not
/// started: a suspended account's day fees may start it later), and for an account
/// already reclaimed.
pub fn reclaim_due_at(
    account: &Account,
    policy: &AccountPolicy,
    now: Timestamp,
) -> Option<Timestamp> {
    if account.status == AccountStatus::Reclaimed {
        return None;
    }
    reclaim_at(negative_from(account, now), policy)
}

/// Whole days, rounded up, from `now` until `at`: 0 once `at` has come, 1 for anything
/// within the next 24 hours.
pub fn days_until(at: Timestamp, now: Timestamp) -> u32 {
    let seconds = at.as_second().saturating_sub(now.as_second());
    if seconds <= 0 {
        return 0;
    }
    let days = seconds.saturating_add(SECONDS_PER_DAY - 1) / SECONDS_PER_DAY;
    u32::try_from(days).unwrap_or(u32::MAX)
}

fn reclaim_at(negative_from: Option<Timestamp>, policy: &AccountPolicy) -> Option<Timestamp> {
    let days = SignedDuration::from_secs(i64::from(policy.reclaim_after_days) * SECONDS_PER_DAY);
    negative_from?.checked_add(days).ok()
}

fn reclaim_due(negative_from: Option<Timestamp>, policy: &AccountPolicy, now: Timestamp) -> bool {
    reclaim_at(negative_from, policy).is_some_and(|at| at <= now)
}

fn warn_or_clear(review: &mut Review, account: &Account, policy: &AccountPolicy) {
    let low = review.balance < policy.low_balance_warning;
    if low && !account.low_balance_warned {
        review.actions.push(LifecycleAction::WarnLowBalance {
            balance: review.balance,
        });
    } else if !low && account.low_balance_warned {
        review.actions.push(LifecycleAction::ClearLowBalanceWarning);
    }
}

/// 00:00 of `day` in Asia/Shanghai (clamped to the earliest timestamp for the first days
/// jiff can represent).
fn day_start(day: Date, tz: &TimeZone) -> Timestamp {
    day.to_zoned(tz.clone())
        .map(|zoned| zoned.timestamp())
        .unwrap_or(Timestamp::MIN)
}

/// The first day whose 00:00 is at or after `at`: `at`'s own day if `at` is its
/// midnight, else the next.
fn first_day_starting_at_or_after(at: Timestamp, tz: &TimeZone) -> Option<Date> {
    let day = at.to_zoned(tz.clone()).date();
    if day_start(day, tz) >= at {
        Some(day)
    } else {
        day.tomorrow().ok()
    }
}

/// The reference of `day`'s suspension fee: `suspended-day/2026-12-07`.
pub fn day_fee_reference(day: Date) -> String {
    format!("{DAY_FEE_PREFIX}{day}")
}

/// The day a suspension fee's reference names; `None` if `reference` is not one.
pub fn day_fee_day(reference: &str) -> Option<Date> {
    let text = reference.strip_prefix(DAY_FEE_PREFIX)?;
    let day: Date = text.parse().ok()?;
    (day.to_string() == text).then_some(day)
}

fn day_fee_entry(enterprise: &str, day: Date, amount: Money, at: Timestamp) -> NewEntry {
    NewEntry {
        enterprise: enterprise.to_owned(),
        kind: EntryKind::SuspensionDayFee,
        amount,
        reference: day_fee_reference(day),
        at,
        actor: ACTOR.to_owned(),
        note: Some(format!("daily fee while suspended, {day}")),
    }
}

/// A calendar month as Asia/Shanghai counts it, shown `2026-11`. Years 1 to 9998.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Always the first of the month.
    first: Date,
}

impl Month {
    const EARLIEST: Month = Month {
        first: jiff::civil::date(1, 1, 1),
    };
    const LATEST: Month = Month {
        first: jiff::civil::date(9998, 12, 1),
    };

    /// `None` unless `year` is 1..=9998 and `month` 1..=12.
    pub fn new(year: i16, month: i8) -> Option<Month> {
        let first = Date::new(year, month, 1).ok()?;
        let month = Month { first };
        (Month::EARLIEST..=Month::LATEST)
            .contains(&month)
            .then_some(month)
    }

    /// The month `day` is in (clamped to the years 1 to 9998).
    pub fn of(day: Date) -> Month {
        Month {
            first: day.first_of_month(),
        }
        .clamp(Month::EARLIEST, Month::LATEST)
    }

    /// The month `at` falls in, in Asia/Shanghai.
    pub fn containing(at: Timestamp) -> Month {
        Month::of(at.to_zoned(china_time_zone()).date())
    }

    pub fn year(self) -> i16 {
        self.first.year()
    }

    /// 1 to 12.
    pub fn month(self) -> i8 {
        self.first.month()
    }

    pub fn first_day(self) -> Date {
        self.first
    }

    pub fn last_day(self) -> Date {
        self.first.last_of_month()
    }

    pub fn next(self) -> Option<Month> {
        let (year, month) = if self.month() == 12 {
            (self.year().checked_add(1)?, 1)
        } else {
            (self.year(), self.month() + 1)
        };
        Month::new(year, month)
    }

    pub fn prev(self) -> Option<Month> {
        let (year, month) = if self.month() == 1 {
            (self.year().checked_sub(1)?, 12)
        } else {
            (self.year(), self.month() - 1)
        };
        Month::new(year, month)
    }

    /// 00:00 on the first day, Asia/Shanghai.
    pub fn start(self) -> Timestamp {
        day_start(self.first, &china_time_zone())
    }

    /// 24:00 on the last day, Asia/Shanghai: the next month's start. From this instant
    /// the month is complete.
    pub fn end(self) -> Timestamp {
        let tz = china_time_zone();
        match self.last_day().tomorrow() {
            Ok(day) => day_start(day, &tz),
            Err(_) => Timestamp::MAX,
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// Why text is not a [`Month`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a month: expected `YYYY-MM` such as `2026-11` (years 0001 to 9998)")]
pub struct ParseMonthError;

impl std::str::FromStr for Month {
    type Err = ParseMonthError;

    /// Exactly `YYYY-MM`, as shown.
    fn from_str(text: &str) -> Result<Month, ParseMonthError> {
        let (year, month) = text.split_once('-').ok_or(ParseMonthError)?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) {
            return Err(ParseMonthError);
        }
        let year = year.parse().map_err(|_| ParseMonthError)?;
        let month = month.parse().map_err(|_| ParseMonthError)?;
        Month::new(year, month).ok_or(ParseMonthError)
    }
}

/// The completed months (Asia/Shanghai) a number still needs its month-end minimum run
/// for, oldest first: every month that ended at or before `now`, after the month the
/// number entered service in (`opened`; that month is exempt), after `last_covered` (the
/// latest month already run for this number, whether it posted a shortfall or found
/// none), and no more than [`MAX_MONTHS_BACK`] months before the current one.
pub fn months_due(now: Timestamp, last_covered: Option<Month>, opened: Timestamp) -> Vec<Month> {
    let current = Month::containing(now);
    let Some(last_complete) = current.prev() else {
        return Vec::new();
    };
    let mut oldest = current;
    for _ in 0..MAX_MONTHS_BACK {
        match oldest.prev() {
            Some(month) => oldest = month,
            None => break,
        }
    }
    let after_opening = Month::containing(opened).next();
    let after_covered = match last_covered {
        Some(covered) => covered.next(),
        None => Some(Month::EARLIEST),
    };
    let mut due = Vec::new();
    let mut month = after_opening
        .zip(after_covered)
        .map(|(a, b)| a.max(b).max(oldest));
    while let Some(current) = month.filter(|month| *month <= last_complete) {
        due.push(current);
        month = current.next();
    }
    due
}

/// The reference of `number`'s monthly minimum for `month`:
/// `monthly-minimum/4001234567/2026-11`.
pub fn monthly_minimum_reference(number: &str, month: Month) -> String {
    format!("{MONTHLY_MINIMUM_PREFIX}{number}/{month}")
}

/// The month-end entry for one number: what its calls in `month` (`spent`, the sum of
/// their charges as a positive amount) fell short of `minimum`, as a negative
/// [`EntryKind::MonthlyMinimum`] entry dated the month's end, or `None` when nothing is
/// owed (spent at least the minimum, or a minimum of zero). A negative `spent` counts as
/// nothing spent. Posting it is idempotent on its reference
/// ([`monthly_minimum_reference`]), so it is charged once per number and month.
pub fn monthly_minimum(
    enterprise: &str,
    number: &str,
    month: Month,
    minimum: Money,
    spent: Money,
) -> Option<NewEntry> {
    let spent = spent.max(Money::ZERO);
    let shortfall = minimum.checked_sub(spent)?;
    if !shortfall.is_negative() && !shortfall.is_zero() {
        Some(NewEntry {
            enterprise: enterprise.to_owned(),
            kind: EntryKind::MonthlyMinimum,
            amount: shortfall.checked_neg()?,
            reference: monthly_minimum_reference(number, month),
            at: month.end(),
            actor: ACTOR.to_owned(),
            note: Some(format!(
                "monthly minimum {month} for {number}: spent {spent} of {minimum}"
            )),
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use jiff::civil::date;
    use proptest::prelude::*;

    use super::*;

    /// An instant given as Asia/Shanghai wall time.
    fn sh(y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8) -> Timestamp {
        date(y, mo, d)
            .at(h, mi, s, 0)
            .to_zoned(china_time_zone())
            .unwrap()
            .timestamp()
    }

    fn yuan(y: i64) -> Money {
        Money::from_yuan(y).unwrap()
    }

    fn unit() -> Money {
        Money::from_units(1)
    }

    fn days(n: i64) -> SignedDuration {
        SignedDuration::from_hours(24 * n)
    }

    /// An account of `balance`, already warned if that is below the warning level, so
    /// that the warning does not get in the way of the rule under test.
    fn account(balance: Money, status: AccountStatus, since: Timestamp) -> Account {
        let policy = AccountPolicy::default();
        Account {
            enterprise: "acme".to_owned(),
            balance,
            reserved: Money::ZERO,
            status,
            status_since: since,
            negative_since: balance.is_negative().then_some(since),
            low_balance_warned: balance < policy.low_balance_warning,
            opened_at: since,
        }
    }

    fn actions(
        account: &Account,
        now: Timestamp,
        last_day_fee: Option<Date>,
    ) -> Vec<LifecycleAction> {
        review(account, &AccountPolicy::default(), now, last_day_fee).actions
    }

    fn fee_days(review: &Review) -> Vec<Date> {
        review
            .actions
            .iter()
            .filter_map(|action| match action {
                LifecycleAction::PostDayFee { day, .. } => Some(*day),
                _ => None,
            })
            .collect()
    }

    /// What the store does with a review's actions (the test's model of it).
    fn apply(
        account: &mut Account,
        last_day_fee: &mut Option<Date>,
        review: &Review,
        now: Timestamp,
    ) {
        for action in &review.actions {
            match action {
                LifecycleAction::PostDayFee { day, entry } => {
                    post(account, entry.amount, entry.at);
                    *last_day_fee = (*last_day_fee).max(Some(*day));
                }
                LifecycleAction::Suspend => set_status(account, AccountStatus::Suspended, now),
                LifecycleAction::Resume => set_status(account, AccountStatus::Active, now),
                LifecycleAction::Reclaim => set_status(account, AccountStatus::Reclaimed, now),
                LifecycleAction::WarnLowBalance { .. } => account.low_balance_warned = true,
                LifecycleAction::ClearLowBalanceWarning => account.low_balance_warned = false,
            }
        }
    }

    fn post(account: &mut Account, amount: Money, at: Timestamp) {
        let before = account.balance;
        account.balance = account.balance.saturating_add(amount);
        if account.balance.is_negative() {
            if !before.is_negative() {
                account.negative_since = Some(at);
            }
        } else {
            account.negative_since = None;
        }
    }

    fn set_status(account: &mut Account, status: AccountStatus, now: Timestamp) {
        account.status = status;
        account.status_since = now;
    }

    #[test]
    fn suspends_strictly_below_the_threshold() {
        let since = sh(2026, 12, 1, 9, 0, 0);
        let now = sh(2026, 12, 6, 10, 0, 0);
        let at = account(yuan(15), AccountStatus::Active, since);
        assert_eq!(actions(&at, now, None), vec![]);
        let below = account(
            yuan(15).saturating_sub(unit()),
            AccountStatus::Active,
            since,
        );
        assert_eq!(actions(&below, now, None), vec![LifecycleAction::Suspend]);
        // Already suspended: not suspended again (and no fee on the day of suspension).
        let suspended = account(yuan(3), AccountStatus::Suspended, sh(2026, 12, 6, 9, 0, 0));
        assert_eq!(actions(&suspended, now, None), vec![]);
    }

    #[test]
    fn resumes_at_the_threshold_not_the_minimum_balance() {
        let since = sh(2026, 12, 6, 9, 0, 0);
        let now = sh(2026, 12, 6, 10, 0, 0);
        let at = account(yuan(15), AccountStatus::Suspended, since);
        assert_eq!(actions(&at, now, None), vec![LifecycleAction::Resume]);
        let below = account(
            yuan(15).saturating_sub(unit()),
            AccountStatus::Suspended,
            since,
        );
        assert_eq!(actions(&below, now, None), vec![]);
        // Active and above: nothing to resume.
        assert_eq!(
            actions(&account(yuan(50), AccountStatus::Active, since), now, None),
            vec![]
        );
    }

    #[test]
    fn a_day_is_charged_from_its_midnight_when_it_starts_suspended() {
        let acct = account(
            yuan(10),
            AccountStatus::Suspended,
            sh(2026, 12, 6, 10, 0, 0),
        );
        assert_eq!(actions(&acct, sh(2026, 12, 6, 23, 59, 59), None), vec![]);
        let review = review(
            &acct,
            &AccountPolicy::default(),
            sh(2026, 12, 7, 0, 0, 0),
            None,
        );
        assert_eq!(
            review.actions,
            vec![LifecycleAction::PostDayFee {
                day: date(2026, 12, 7),
                entry: NewEntry {
                    enterprise: "acme".to_owned(),
                    kind: EntryKind::SuspensionDayFee,
                    amount: Money::from_units(-16_500),
                    reference: "suspended-day/2026-12-07".to_owned(),
                    at: sh(2026, 12, 7, 0, 0, 0),
                    actor: "system".to_owned(),
                    note: Some("daily fee while suspended, 2026-12-07".to_owned()),
                },
            }]
        );
        assert_eq!(review.balance, Money::from_units(100_000 - 16_500));
    }

    #[test]
    fn a_suspension_exactly_at_midnight_owes_that_day() {
        let midnight = sh(2026, 12, 7, 0, 0, 0);
        let suspended = account(yuan(10), AccountStatus::Suspended, midnight);
        assert_eq!(
            fee_days(&review(
                &suspended,
                &AccountPolicy::default(),
                midnight,
                None
            )),
            vec![date(2026, 12, 7)]
        );
        let one_second_later =
            account(yuan(10), AccountStatus::Suspended, sh(2026, 12, 7, 0, 0, 1));
        assert_eq!(
            actions(&one_second_later, sh(2026, 12, 7, 23, 59, 59), None),
            vec![]
        );
        // Suspended by this very review at midnight: the day is owed at once, so that the
        // next review posts nothing.
        let active = account(yuan(10), AccountStatus::Active, sh(2026, 11, 1, 0, 0, 0));
        let review = review(&active, &AccountPolicy::default(), midnight, None);
        assert_eq!(review.actions[0], LifecycleAction::Suspend);
        assert_eq!(fee_days(&review), vec![date(2026, 12, 7)]);
    }

    #[test]
    fn a_daemon_down_three_days_posts_three_fees_then_nothing() {
        let policy = AccountPolicy::default();
        let mut acct = account(
            yuan(12),
            AccountStatus::Suspended,
            sh(2026, 12, 6, 10, 0, 0),
        );
        let mut last = None;
        let now = sh(2026, 12, 9, 8, 0, 0);
        let first = review(&acct, &policy, now, last);
        assert_eq!(
            fee_days(&first),
            vec![date(2026, 12, 7), date(2026, 12, 8), date(2026, 12, 9)]
        );
        let references: HashSet<_> = first.entries().map(|e| e.reference.clone()).collect();
        assert_eq!(references.len(), 3);
        assert!(
            first
                .entries()
                .all(|e| e.amount == Money::from_units(-16_500))
        );
        apply(&mut acct, &mut last, &first, now);
        assert_eq!(acct.balance, Money::from_units(120_000 - 3 * 16_500));
        assert_eq!(last, Some(date(2026, 12, 9)));
        assert!(review(&acct, &policy, now, last).is_empty());
        assert!(review(&acct, &policy, sh(2026, 12, 9, 23, 59, 59), last).is_empty());
        assert_eq!(
            fee_days(&review(&acct, &policy, sh(2026, 12, 10, 0, 0, 0), last)),
            vec![date(2026, 12, 10)]
        );
    }

    #[test]
    fn fees_span_month_and_year_ends_and_never_charge_a_day_twice() {
        let acct = account(
            yuan(12),
            AccountStatus::Suspended,
            sh(2026, 12, 30, 18, 0, 0),
        );
        let review = review(
            &acct,
            &AccountPolicy::default(),
            sh(2027, 1, 2, 1, 0, 0),
            None,
        );
        assert_eq!(
            fee_days(&review),
            vec![date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 2)]
        );
        // A second suspension on a day already charged by the first: not charged again.
        let again = account(yuan(5), AccountStatus::Suspended, sh(2027, 1, 2, 0, 0, 0));
        assert_eq!(
            actions(&again, sh(2027, 1, 2, 12, 0, 0), Some(date(2027, 1, 2))),
            vec![]
        );
    }

    #[test]
    fn catch_up_fees_post_before_the_resume_and_can_prevent_it() {
        let policy = AccountPolicy::default();
        let since = sh(2026, 12, 6, 10, 0, 0);
        let now = sh(2026, 12, 8, 9, 0, 0);
        // ¥20 - 2 × ¥1.65 = ¥16.70: still at least ¥15, so resumed, after the fees.
        let review1 = review(
            &account(yuan(20), AccountStatus::Suspended, since),
            &policy,
            now,
            None,
        );
        assert_eq!(fee_days(&review1).len(), 2);
        assert_eq!(review1.actions.last(), Some(&LifecycleAction::Resume));
        // ¥16 - ¥3.30 = ¥12.70: below ¥15, so it stays suspended.
        let review2 = review(
            &account(yuan(16), AccountStatus::Suspended, since),
            &policy,
            now,
            None,
        );
        assert_eq!(fee_days(&review2).len(), 2);
        assert!(!review2.actions.contains(&LifecycleAction::Resume));
        assert_eq!(review2.balance, Money::from_units(127_000));
    }

    #[test]
    fn reclaims_after_exactly_the_configured_days_below_zero() {
        let policy = AccountPolicy::default();
        let negative = sh(2026, 11, 1, 15, 30, 0);
        let mut acct = account(
            yuan(-2),
            AccountStatus::Suspended,
            sh(2026, 10, 20, 0, 0, 0),
        );
        acct.negative_since = Some(negative);
        let last = Some(date(2026, 12, 1));
        let due = negative.checked_add(days(30)).unwrap();
        assert_eq!(due, sh(2026, 12, 1, 15, 30, 0));
        let before = due.checked_sub(SignedDuration::from_secs(1)).unwrap();
        assert_eq!(actions(&acct, before, last), vec![]);
        assert_eq!(actions(&acct, due, last), vec![LifecycleAction::Reclaim]);
        // Active and negative that long (the daemon was down): reclaimed directly, no fee.
        let mut active = acct.clone();
        active.status = AccountStatus::Active;
        assert_eq!(actions(&active, due, None), vec![LifecycleAction::Reclaim]);
        // A balance back at zero is not negative, whatever `negative_since` says.
        let mut zero = acct.clone();
        zero.balance = Money::ZERO;
        assert!(
            !review(&zero, &policy, due, last)
                .actions
                .contains(&LifecycleAction::Reclaim)
        );
        // Reclaimed: left alone, even with money.
        let mut reclaimed = account(yuan(1_000), AccountStatus::Reclaimed, due);
        reclaimed.low_balance_warned = true;
        assert_eq!(actions(&reclaimed, sh(2027, 6, 1, 0, 0, 0), None), vec![]);
    }

    #[test]
    fn the_reclaim_instant_is_the_one_review_reclaims_at() {
        let policy = AccountPolicy::default();
        let negative = sh(2026, 11, 1, 15, 30, 0);
        let mut acct = account(
            yuan(-2),
            AccountStatus::Suspended,
            sh(2026, 10, 20, 0, 0, 0),
        );
        acct.negative_since = Some(negative);
        let due = reclaim_due_at(&acct, &policy, sh(2026, 11, 20, 0, 0, 0)).expect("negative");
        assert_eq!(due, sh(2026, 12, 1, 15, 30, 0));
        let last = Some(date(2026, 12, 1));
        assert_eq!(actions(&acct, due, last), vec![LifecycleAction::Reclaim]);
        let before = due.checked_sub(SignedDuration::from_secs(1)).unwrap();
        assert_eq!(actions(&acct, before, last), vec![]);
        assert_eq!(days_until(due, before), 1);
        assert_eq!(days_until(due, due), 0);
        assert_eq!(days_until(due, sh(2026, 11, 20, 0, 0, 0)), 12);
        assert_eq!(days_until(due, sh(2026, 11, 30, 15, 30, 0)), 1);
        assert_eq!(days_until(due, sh(2026, 11, 29, 15, 30, 0)), 2);
        // Not negative: no clock; reclaimed: nothing to count down to.
        let mut zero = acct.clone();
        zero.balance = Money::ZERO;
        assert_eq!(reclaim_due_at(&zero, &policy, due), None);
        let mut reclaimed = acct.clone();
        reclaimed.status = AccountStatus::Reclaimed;
        assert_eq!(reclaim_due_at(&reclaimed, &policy, due), None);
    }

    #[test]
    fn catch_up_stops_charging_at_the_reclaim_instant() {
        let policy = AccountPolicy {
            reclaim_after_days: 3,
            ..AccountPolicy::default()
        };
        // Suspended at ¥2 on 12-01: 12-02 brings it to ¥0.35, 12-03 below zero (from
        // 12-03 00:00), so reclaim is due 12-06 00:00, and 12-06 is not charged.
        let acct = account(yuan(2), AccountStatus::Suspended, sh(2026, 12, 1, 12, 0, 0));
        let review = review(&acct, &policy, sh(2026, 12, 20, 0, 0, 0), None);
        assert_eq!(
            fee_days(&review),
            vec![
                date(2026, 12, 2),
                date(2026, 12, 3),
                date(2026, 12, 4),
                date(2026, 12, 5)
            ]
        );
        assert_eq!(review.actions.last(), Some(&LifecycleAction::Reclaim));
        // A live daemon at 12-05 23:59:59 has charged the same days and not yet reclaimed.
        let live = super::review(&acct, &policy, sh(2026, 12, 5, 23, 59, 59), None);
        assert_eq!(fee_days(&live), fee_days(&review));
        assert!(!live.actions.contains(&LifecycleAction::Reclaim));
    }

    #[test]
    fn reclaim_after_zero_days_is_immediate() {
        let policy = AccountPolicy {
            reclaim_after_days: 0,
            ..AccountPolicy::default()
        };
        let now = sh(2026, 12, 6, 10, 0, 0);
        let mut acct = account(yuan(-1), AccountStatus::Active, now);
        acct.negative_since = None;
        assert_eq!(
            review(&acct, &policy, now, None).actions,
            vec![LifecycleAction::Reclaim]
        );
    }

    #[test]
    fn warns_once_per_crossing_of_the_warning_level() {
        let since = sh(2026, 12, 1, 0, 0, 0);
        let now = sh(2026, 12, 6, 10, 0, 0);
        let mut acct = account(yuan(200), AccountStatus::Active, since);
        acct.low_balance_warned = false;
        assert_eq!(actions(&acct, now, None), vec![]);
        acct.balance = yuan(200).saturating_sub(unit());
        let balance = acct.balance;
        assert_eq!(
            actions(&acct, now, None),
            vec![LifecycleAction::WarnLowBalance { balance }]
        );
        acct.low_balance_warned = true;
        assert_eq!(actions(&acct, now, None), vec![]);
        acct.balance = yuan(200);
        assert_eq!(
            actions(&acct, now, None),
            vec![LifecycleAction::ClearLowBalanceWarning]
        );
        // Falling straight below the suspension threshold: suspended and warned.
        let mut crash = account(yuan(10), AccountStatus::Active, since);
        crash.low_balance_warned = false;
        assert_eq!(
            actions(&crash, now, None),
            vec![
                LifecycleAction::Suspend,
                LifecycleAction::WarnLowBalance { balance: yuan(10) }
            ]
        );
    }

    #[test]
    fn a_zero_or_negative_daily_fee_posts_nothing() {
        let acct = account(yuan(5), AccountStatus::Suspended, sh(2026, 12, 1, 12, 0, 0));
        for fee in [Money::ZERO, yuan(-1)] {
            let policy = AccountPolicy {
                suspended_daily_fee: fee,
                ..AccountPolicy::default()
            };
            assert!(review(&acct, &policy, sh(2026, 12, 9, 0, 0, 0), None).is_empty());
        }
    }

    #[test]
    fn day_fee_references_read_back() {
        let day = date(2026, 12, 7);
        assert_eq!(day_fee_reference(day), "suspended-day/2026-12-07");
        assert_eq!(day_fee_day("suspended-day/2026-12-07"), Some(day));
        for junk in [
            "2026-12-07",
            "suspended-day/",
            "suspended-day/2026-12-7",
            "suspended-day/2026-02-30",
            "suspended-day/2026-12-07T00:00",
            "monthly-minimum/4001234567/2026-11",
        ] {
            assert_eq!(day_fee_day(junk), None, "{junk}");
        }
        // Newest by the text is newest by the date (what a store's MAX(reference) finds).
        assert!(day_fee_reference(date(2026, 12, 10)) > day_fee_reference(date(2026, 9, 30)));
    }

    fn month(text: &str) -> Month {
        text.parse().unwrap()
    }

    #[test]
    fn months_show_parse_and_step() {
        assert_eq!(Month::new(2026, 11).unwrap().to_string(), "2026-11");
        assert_eq!(month("0001-01").to_string(), "0001-01");
        for junk in [
            "2026-13", "2026-00", "2026-1", "26-11", "2026/11", "9999-01", "0000-12", "+2026-11",
            "",
        ] {
            assert_eq!(junk.parse::<Month>(), Err(ParseMonthError), "{junk}");
        }
        assert_eq!(month("2026-12").next(), Some(month("2027-01")));
        assert_eq!(month("2027-01").prev(), Some(month("2026-12")));
        assert_eq!(month("9998-12").next(), None);
        assert_eq!(month("0001-01").prev(), None);
        assert_eq!(month("2028-02").last_day(), date(2028, 2, 29), "leap");
        assert_eq!(month("2027-02").last_day(), date(2027, 2, 28));
        assert_eq!(
            month("2100-02").last_day(),
            date(2100, 2, 28),
            "century, not leap"
        );
        assert_eq!(month("2028-02").end(), sh(2028, 3, 1, 0, 0, 0));
        assert_eq!(month("2026-12").end(), sh(2027, 1, 1, 0, 0, 0));
        assert_eq!(month("2026-12").start(), sh(2026, 12, 1, 0, 0, 0));
        // 00:00 Asia/Shanghai is 16:00 UTC the day before.
        assert_eq!(month("2026-12").start().to_string(), "2026-11-30T16:00:00Z");
        assert_eq!(
            Month::containing(sh(2026, 11, 30, 23, 59, 59)),
            month("2026-11")
        );
        assert_eq!(
            Month::containing(sh(2026, 12, 1, 0, 0, 0)),
            month("2026-12")
        );
        assert_eq!(Month::containing(Timestamp::MIN), month("0001-01"));
        assert_eq!(Month::containing(Timestamp::MAX), month("9998-12"));
    }

    #[test]
    fn a_month_is_due_from_midnight_after_its_last_day() {
        let opened = sh(2026, 3, 15, 10, 0, 0);
        let covered = Some(month("2026-10"));
        assert_eq!(
            months_due(sh(2026, 11, 30, 23, 59, 59), covered, opened),
            vec![]
        );
        assert_eq!(
            months_due(sh(2026, 12, 1, 0, 0, 0), covered, opened),
            vec![month("2026-11")]
        );
        // December → January.
        let covered = Some(month("2026-11"));
        assert_eq!(
            months_due(sh(2026, 12, 31, 23, 59, 59), covered, opened),
            vec![]
        );
        assert_eq!(
            months_due(sh(2027, 1, 1, 0, 0, 0), covered, opened),
            vec![month("2026-12")]
        );
        // A leap February ends after the 29th.
        let covered = Some(month("2028-01"));
        assert_eq!(
            months_due(sh(2028, 2, 29, 23, 59, 59), covered, opened),
            vec![]
        );
        assert_eq!(
            months_due(sh(2028, 3, 1, 0, 0, 0), covered, opened),
            vec![month("2028-02")]
        );
    }

    #[test]
    fn months_due_start_after_the_opening_month_and_catch_up() {
        let opened = sh(2026, 9, 28, 10, 0, 0);
        // The opening month is exempt.
        assert_eq!(months_due(sh(2026, 10, 1, 0, 0, 0), None, opened), vec![]);
        assert_eq!(
            months_due(sh(2026, 12, 3, 0, 0, 0), None, opened),
            vec![month("2026-10"), month("2026-11")]
        );
        // Down at midnight (and since): caught up from the last month run.
        assert_eq!(
            months_due(sh(2027, 2, 10, 0, 0, 0), Some(month("2026-11")), opened),
            vec![month("2026-12"), month("2027-01")]
        );
        // Up to date, or covered "in the future": nothing.
        assert_eq!(
            months_due(sh(2027, 2, 10, 0, 0, 0), Some(month("2027-01")), opened),
            vec![]
        );
        assert_eq!(
            months_due(sh(2027, 2, 10, 0, 0, 0), Some(month("2027-05")), opened),
            vec![]
        );
        // Opened after now (a clock set back): nothing.
        assert_eq!(months_due(sh(2026, 9, 1, 0, 0, 0), None, opened), vec![]);
        // At most twelve months back.
        let due = months_due(sh(2030, 1, 15, 0, 0, 0), None, opened);
        assert_eq!(due.len(), 12);
        assert_eq!(due.first(), Some(&month("2029-01")));
        assert_eq!(due.last(), Some(&month("2029-12")));
        // Covered at the very last month: nothing, no overflow.
        assert_eq!(
            months_due(Timestamp::MAX, Some(month("9998-12")), opened),
            vec![]
        );
    }

    #[test]
    fn monthly_minimum_posts_the_shortfall_once_per_number_and_month() {
        let nov = month("2026-11");
        let entry = monthly_minimum(
            "acme",
            "4001234567",
            nov,
            yuan(50),
            Money::from_units(123_456),
        )
        .unwrap();
        assert_eq!(
            entry,
            NewEntry {
                enterprise: "acme".to_owned(),
                kind: EntryKind::MonthlyMinimum,
                amount: Money::from_units(-(500_000 - 123_456)),
                reference: "monthly-minimum/4001234567/2026-11".to_owned(),
                at: sh(2026, 12, 1, 0, 0, 0),
                actor: "system".to_owned(),
                note: Some(
                    "monthly minimum 2026-11 for 4001234567: spent 12.35 of 50.00".to_owned()
                ),
            }
        );
        assert_eq!(
            monthly_minimum("acme", "4001234567", nov, yuan(50), yuan(50)),
            None
        );
        assert_eq!(
            monthly_minimum("acme", "4001234567", nov, yuan(50), yuan(80)),
            None
        );
        assert_eq!(
            monthly_minimum(
                "acme",
                "4001234567",
                nov,
                yuan(50),
                yuan(50).saturating_sub(unit())
            )
            .map(|e| e.amount),
            Some(Money::from_units(-1))
        );
        assert_eq!(
            monthly_minimum("acme", "4001234567", nov, yuan(50), yuan(-3)).map(|e| e.amount),
            Some(yuan(-50))
        );
        assert_eq!(
            monthly_minimum("acme", "4001234567", nov, Money::ZERO, Money::ZERO),
            None
        );
        assert_eq!(
            monthly_minimum("acme", "4001234567", nov, yuan(-5), Money::ZERO),
            None
        );
        // Same number and month, whatever the inputs: the same reference.
        let again = monthly_minimum("acme", "4001234567", nov, yuan(50), Money::ZERO).unwrap();
        assert_eq!(again.reference, entry.reference);
        assert_eq!(again.at, entry.at);
    }

    fn policies() -> impl Strategy<Value = AccountPolicy> {
        (0i64..=50, -100i64..=40_000, 0u32..=6, 0i64..=300).prop_map(
            |(suspend, fee, reclaim, warn)| AccountPolicy {
                suspend_below: yuan(suspend),
                suspended_daily_fee: Money::from_units(fee),
                reclaim_after_days: reclaim,
                low_balance_warning: yuan(warn),
                ..AccountPolicy::default()
            },
        )
    }

    /// One step: time passes, money moves (a recharge or a charge), and sometimes an
    /// operator restores a reclaimed account.
    fn steps() -> impl Strategy<Value = Vec<(i64, i64, bool)>> {
        prop::collection::vec(
            (
                prop_oneof![0i64..=120, 0i64..=4 * SECONDS_PER_DAY],
                prop_oneof![-300_000i64..=300_000, -2_000_000i64..=2_000_000],
                prop::bool::weighted(0.1),
            ),
            1..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the balances and times: once a review's actions are applied, a second
        /// review at the same instant asks nothing at all (so posts nothing); fees are
        /// never positive, every reference is posted once, a review's balance is the
        /// balance its entries leave.
        #[test]
        fn reviewing_twice_posts_nothing_the_second_time(
            policy in policies(),
            start_offset in 0i64..400 * SECONDS_PER_DAY,
            start_balance in -500_000i64..3_000_000,
            status in prop::sample::select(vec![AccountStatus::Active, AccountStatus::Suspended]),
            steps in steps(),
        ) {
            let mut now = sh(2026, 1, 1, 0, 0, 0)
                .checked_add(SignedDuration::from_secs(start_offset))
                .unwrap();
            let mut acct = account(Money::from_units(start_balance), status, now);
            acct.low_balance_warned = false;
            let mut last = None;
            let mut posted = HashSet::new();
            for (advance, delta, restore) in steps {
                now = now.checked_add(SignedDuration::from_secs(advance)).unwrap();
                post(&mut acct, Money::from_units(delta), now);
                if restore && acct.status == AccountStatus::Reclaimed {
                    set_status(&mut acct, AccountStatus::Active, now);
                }
                let first = review(&acct, &policy, now, last);
                for entry in first.entries() {
                    prop_assert!(entry.amount.is_negative(), "fee {entry:?}");
                    prop_assert_eq!(entry.kind, EntryKind::SuspensionDayFee);
                    prop_assert!(entry.at <= now && entry.at >= acct.status_since.min(now));
                    prop_assert!(posted.insert(entry.reference.clone()), "posted twice: {entry:?}");
                }
                apply(&mut acct, &mut last, &first, now);
                prop_assert_eq!(first.balance, acct.balance);
                let second = review(&acct, &policy, now, last);
                prop_assert!(second.is_empty(), "second review {:?} after {:?}", second, first);
            }
        }
    }
}
