//! Traffic analysis (话务分析) of an enterprise's calls, as a pure fold: call detail
//! records in, the figures an enterprise reads in its backend out. No clock, no store:
//! the caller feeds the CDRs of a range (in any order) and says which of the range's
//! callers had called before it.
//!
//! Days and hours are Asia/Shanghai's, the enterprise's day; a call belongs to the day
//! and hour of its setup. The outcomes group as the backend shows them:
//!
//! - **answered**: a bound phone took the call;
//! - **missed**: someone called and nobody took the call — `no_answer`, `busy`,
//!   `after_hours`, `cancelled`, `failed` (the outcomes after which sihai sends its
//!   missed-call alert; [`MISSED`]);
//! - **refused**: screened out or not admitted — `rejected`, `blacklisted`,
//!   `out_of_credit`, counted by reason.
//!
//! The answer rate is answered ÷ (answered + missed): a refused call never reached the
//! enterprise's phones, so it is not one the enterprise failed to answer.
//!
//! Everything but the distinct callers is a sum, so it is kept per (enterprise,
//! number, day) as a [`DayRollup`] that merges exactly: the store's background job
//! folds new CDRs into stored rollups ([`Rollups`]), and a report is the range's
//! rollups merged, plus the CDRs not yet rolled up added one by one, plus the range's
//! distinct callers ([`Analysis`]). The property test checks that any split of the
//! CDRs into batches gives the direct fold's report, and that against brute force.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sihai_records::{Cdr, Money, Outcome};

/// The outcomes that are a missed call.
pub const MISSED: [Outcome; 5] = [
    Outcome::NoAnswer,
    Outcome::Busy,
    Outcome::AfterHours,
    Outcome::Cancelled,
    Outcome::Failed,
];

/// The outcomes that are a refusal, by reason.
pub const REFUSED: [Outcome; 3] = [
    Outcome::Rejected,
    Outcome::Blacklisted,
    Outcome::OutOfCredit,
];

/// The longest range a report covers, in days.
pub const MAX_DAYS: i32 = 366;

/// The enterprise's time zone: days and hours of the reports.
pub fn china_time_zone() -> TimeZone {
    TimeZone::get("Asia/Shanghai").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(8)))
}

/// Whole days, first to last inclusive, in Asia/Shanghai.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub first: Date,
    pub last: Date,
}

/// Why a range cannot be reported on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("the range ends ({last}) before it starts ({first})")]
    Backwards { first: Date, last: Date },
    #[error("the range is {days} days; at most {MAX_DAYS}")]
    TooLong { days: i32 },
}

impl DayRange {
    pub fn new(first: Date, last: Date) -> Result<DayRange, RangeError> {
        if last < first {
            return Err(RangeError::Backwards { first, last });
        }
        let days = days_between(first, last) + 1;
        if days > MAX_DAYS {
            return Err(RangeError::TooLong { days });
        }
        Ok(DayRange { first, last })
    }

    /// The first instant of the range.
    pub fn start(&self) -> Timestamp {
        midnight(self.first)
    }

    /// The first instant after the range.
    pub fn end(&self) -> Timestamp {
        midnight(self.last.tomorrow().unwrap_or(self.last))
    }

    /// Every day of the range, in order.
    pub fn days(&self) -> impl Iterator<Item = Date> + '_ {
        self.first
            .series(jiff::Span::new().days(1))
            .take_while(move |d| *d <= self.last)
    }
}

fn days_between(first: Date, last: Date) -> i32 {
    let span = last - first;
    span.get_days()
}

fn midnight(day: Date) -> Timestamp {
    day.to_zoned(china_time_zone())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The counts of a day, an hour or the whole range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub calls: u64,
    pub answered: u64,
    pub missed: u64,
    pub refused: u64,
}

impl Counts {
    fn merge(&mut self, other: &Counts) {
        self.calls = self.calls.saturating_add(other.calls);
        self.answered = self.answered.saturating_add(other.answered);
        self.missed = self.missed.saturating_add(other.missed);
        self.refused = self.refused.saturating_add(other.refused);
    }

    fn add(&mut self, outcome: Outcome) {
        self.calls += 1;
        match group(outcome) {
            Group::Answered => self.answered += 1,
            Group::Missed => self.missed += 1,
            Group::Refused => self.refused += 1,
        }
    }
}

enum Group {
    Answered,
    Missed,
    Refused,
}

fn group(outcome: Outcome) -> Group {
    if outcome == Outcome::Answered {
        Group::Answered
    } else if MISSED.contains(&outcome) {
        Group::Missed
    } else {
        Group::Refused
    }
}

/// A day of the range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Day {
    #[serde(flatten)]
    pub counts: Counts,
    /// What the day's calls cost, exact decimal yuan.
    #[serde(serialize_with = "exact")]
    pub cost: Money,
}

/// One bound phone over the range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PhoneFigures {
    /// Calls that rang it (or tried to).
    pub offered: u64,
    pub answered: u64,
    /// Offered and not answered by it.
    pub missed: u64,
    /// Talk time of the calls it answered.
    pub talk_seconds: u64,
    /// From the caller hearing ringing to this phone answering, over the calls it
    /// answered; `None` without one.
    pub average_answer_ms: Option<u64>,
    #[serde(skip)]
    answer_ms_sum: u64,
    #[serde(skip)]
    answer_ms_count: u64,
}

/// The report: everything the backend's traffic analysis shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub first_day: String,
    pub last_day: String,
    pub totals: Counts,
    /// answered ÷ (answered + missed); `None` without either.
    pub answer_rate: Option<f64>,
    /// Refused calls by reason (`rejected`, `blacklisted`, `out_of_credit`).
    pub refused_by_reason: BTreeMap<String, u64>,
    pub talk_seconds: u64,
    /// Over the answered calls; `None` without one.
    pub average_talk_seconds: Option<f64>,
    /// Post-dial delay: setup to the caller hearing ringing (RFC 6076's SRD), over the
    /// calls that rang; `None` without one.
    pub average_ring_ms: Option<u64>,
    /// Every day of the range, `YYYY-MM-DD`, days without calls included.
    pub days: BTreeMap<String, Day>,
    /// Hour of the day 0..=23, over the whole range.
    pub hours: Vec<Counts>,
    /// Calls by weekday (Monday first) and hour: the peak-hour heat map.
    pub weekday_hours: Vec<Vec<u64>>,
    /// Calls by the caller's province; `unknown` where the number said none.
    pub provinces: BTreeMap<String, u64>,
    /// Calls by "province city".
    pub cities: BTreeMap<String, u64>,
    /// Distinct callers in the range who had never called before it.
    pub new_callers: u64,
    /// Distinct callers in the range who had.
    pub returning_callers: u64,
    /// Per bound phone, by its number or URI as the CDR names it.
    pub phones: BTreeMap<String, PhoneFigures>,
    /// Voice-menu paths taken (`1>3`), by count.
    pub menu_choices: BTreeMap<String, u64>,
    /// What the range's calls cost, exact decimal yuan.
    #[serde(serialize_with = "exact")]
    pub cost: Money,
}

fn exact<S: serde::Serializer>(money: &Money, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&money.exact().to_string())
}

/// Where a call belongs: its enterprise, the 400 number it called, and the
/// Asia/Shanghai day of its setup. A [`DayRollup`] is kept per key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    pub enterprise: String,
    pub number: String,
    pub day: Date,
}

/// One bound phone's sums over a day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PhoneSums {
    offered: u64,
    answered: u64,
    talk_seconds: u64,
    answer_ms_sum: u64,
    answer_ms_count: u64,
}

impl PhoneSums {
    fn merge(&mut self, other: &PhoneSums) {
        self.offered = self.offered.saturating_add(other.offered);
        self.answered = self.answered.saturating_add(other.answered);
        self.talk_seconds = self.talk_seconds.saturating_add(other.talk_seconds);
        self.answer_ms_sum = self.answer_ms_sum.saturating_add(other.answer_ms_sum);
        self.answer_ms_count = self.answer_ms_count.saturating_add(other.answer_ms_count);
    }
}

/// Everything a [`Report`] shows about one day of one number's calls, except who
/// called: counts per outcome group by hour (the day's counts and the weekday × hour
/// map derive from them), refusals by reason, talk and ring sums, provinces, cities,
/// per-phone sums, menu paths and cost. Sums, never averages, so that rollups merge
/// exactly: [`DayRollup::merge`] is associative and commutative, and the rollup of a
/// day's calls is the same however they are split into batches and merged.
///
/// Kept by the store as compact JSON ([`DayRollup::to_json`]): a text both SQLite and
/// PostgreSQL hold as it is and an operator can read, versioned (`"v"`), with the
/// money as integer units (1/10,000 yuan) so that nothing is rounded. A month of an
/// enterprise is a few hundred rollups of a few kB, read in milliseconds: the size of
/// the encoding is not where the time goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayRollup {
    hours: [Counts; 24],
    refused: BTreeMap<String, u64>,
    talk_seconds: u64,
    ring_ms_sum: u64,
    ring_count: u64,
    provinces: BTreeMap<String, u64>,
    cities: BTreeMap<String, u64>,
    phones: BTreeMap<String, PhoneSums>,
    menu: BTreeMap<String, u64>,
    cost: Money,
}

/// A stored rollup that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error("not a day rollup: {0}")]
    Json(#[from] serde_json::Error),
    #[error("day rollup version {0}; this build reads version {ROLLUP_VERSION}")]
    Version(u32),
    #[error("a day rollup has {0} hours")]
    Hours(usize),
}

/// The version of [`DayRollup::to_json`]'s format.
pub const ROLLUP_VERSION: u32 = 1;

/// The stored form: short names, hours as `[answered, missed, refused]`, phones as
/// `[offered, answered, talk_seconds, answer_ms_sum, answer_ms_count]`, empty maps and
/// zero sums left out.
#[derive(Serialize, Deserialize)]
struct Wire {
    v: u32,
    hours: Vec<[u64; 3]>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    refused: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    talk: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    ring_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    rings: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    provinces: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    cities: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    phones: BTreeMap<String, [u64; 5]>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    menu: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    cost: i64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

fn add_to(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(count) => *count = count.saturating_add(n),
        None => {
            map.insert(key.to_owned(), n);
        }
    }
}

fn merge_maps(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (key, n) in from {
        add_to(into, key, *n);
    }
}

const UNKNOWN: &str = "unknown";

fn millis(from: Timestamp, to: Timestamp) -> u64 {
    let span: SignedDuration = to.duration_since(from);
    u64::try_from(span.as_millis()).unwrap_or(0)
}

/// The Asia/Shanghai day and hour (0..=23) of an instant, in `zone`
/// ([`china_time_zone`]).
pub fn day_and_hour(zone: &TimeZone, at: Timestamp) -> (Date, usize) {
    let local = zone.to_datetime(at);
    (
        local.date(),
        usize::try_from(local.hour()).unwrap_or(0).min(23),
    )
}

impl DayRollup {
    /// Counts one call set up in `hour` (0..=23) of the rollup's day.
    pub fn add(&mut self, cdr: &Cdr, hour: usize) {
        self.hours[hour.min(23)].add(cdr.outcome);
        if let Some(cost) = cdr.cost {
            self.cost = self.cost.saturating_add(cost);
        }
        if REFUSED.contains(&cdr.outcome) {
            add_to(&mut self.refused, cdr.outcome.as_str(), 1);
        }
        if cdr.outcome == Outcome::Answered {
            self.talk_seconds = self
                .talk_seconds
                .saturating_add(u64::from(cdr.talk_seconds));
        }
        if let Some(ring) = cdr.ring_at {
            self.ring_ms_sum = self.ring_ms_sum.saturating_add(millis(cdr.setup_at, ring));
            self.ring_count += 1;
        }
        let province = cdr.caller_province.as_deref().unwrap_or(UNKNOWN);
        add_to(&mut self.provinces, province, 1);
        match (cdr.caller_province.as_deref(), cdr.caller_city.as_deref()) {
            (Some(p), Some(c)) if p == c => add_to(&mut self.cities, p, 1),
            (Some(p), Some(c)) => add_to(&mut self.cities, &format!("{p} {c}"), 1),
            (Some(x), None) | (None, Some(x)) => add_to(&mut self.cities, x, 1),
            (None, None) => add_to(&mut self.cities, UNKNOWN, 1),
        }
        for attempt in &cdr.attempts {
            if !self.phones.contains_key(&attempt.phone) {
                self.phones
                    .insert(attempt.phone.clone(), PhoneSums::default());
            }
            let Some(phone) = self.phones.get_mut(&attempt.phone) else {
                continue;
            };
            phone.offered += 1;
            let took_it = cdr.outcome == Outcome::Answered
                && cdr.answered_by.as_deref() == Some(attempt.phone.as_str());
            if took_it {
                phone.answered += 1;
                phone.talk_seconds = phone
                    .talk_seconds
                    .saturating_add(u64::from(cdr.talk_seconds));
                if let (Some(ring), Some(answer)) = (cdr.ring_at, cdr.answer_at) {
                    phone.answer_ms_sum = phone.answer_ms_sum.saturating_add(millis(ring, answer));
                    phone.answer_ms_count += 1;
                }
            }
        }
        if let Some(path) = cdr.menu_path.as_deref().filter(|p| !p.is_empty()) {
            add_to(&mut self.menu, path, 1);
        }
    }

    /// Adds another rollup of the same day (or of the same range) to this one.
    pub fn merge(&mut self, other: &DayRollup) {
        for (mine, theirs) in self.hours.iter_mut().zip(&other.hours) {
            mine.merge(theirs);
        }
        merge_maps(&mut self.refused, &other.refused);
        self.talk_seconds = self.talk_seconds.saturating_add(other.talk_seconds);
        self.ring_ms_sum = self.ring_ms_sum.saturating_add(other.ring_ms_sum);
        self.ring_count = self.ring_count.saturating_add(other.ring_count);
        merge_maps(&mut self.provinces, &other.provinces);
        merge_maps(&mut self.cities, &other.cities);
        for (phone, sums) in &other.phones {
            match self.phones.get_mut(phone) {
                Some(mine) => mine.merge(sums),
                None => {
                    self.phones.insert(phone.clone(), sums.clone());
                }
            }
        }
        merge_maps(&mut self.menu, &other.menu);
        self.cost = self.cost.saturating_add(other.cost);
    }

    /// The calls counted.
    pub fn calls(&self) -> u64 {
        self.counts().calls
    }

    fn counts(&self) -> Counts {
        let mut total = Counts::default();
        for hour in &self.hours {
            total.merge(hour);
        }
        total
    }

    /// The stored form (see the type's documentation).
    pub fn to_json(&self) -> String {
        let wire = Wire {
            v: ROLLUP_VERSION,
            hours: self
                .hours
                .iter()
                .map(|h| [h.answered, h.missed, h.refused])
                .collect(),
            refused: self.refused.clone(),
            talk: self.talk_seconds,
            ring_ms: self.ring_ms_sum,
            rings: self.ring_count,
            provinces: self.provinces.clone(),
            cities: self.cities.clone(),
            phones: self
                .phones
                .iter()
                .map(|(k, p)| {
                    let sums = [
                        p.offered,
                        p.answered,
                        p.talk_seconds,
                        p.answer_ms_sum,
                        p.answer_ms_count,
                    ];
                    (k.clone(), sums)
                })
                .collect(),
            menu: self.menu.clone(),
            cost: self.cost.units(),
        };
        // Maps of strings to integers: serialising cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Reads [`DayRollup::to_json`]'s form.
    pub fn from_json(text: &str) -> Result<DayRollup, RollupError> {
        let wire: Wire = serde_json::from_str(text)?;
        if wire.v != ROLLUP_VERSION {
            return Err(RollupError::Version(wire.v));
        }
        if wire.hours.len() != 24 {
            return Err(RollupError::Hours(wire.hours.len()));
        }
        let mut hours: [Counts; 24] = Default::default();
        for (hour, [answered, missed, refused]) in hours.iter_mut().zip(wire.hours) {
            *hour = Counts {
                calls: answered.saturating_add(missed).saturating_add(refused),
                answered,
                missed,
                refused,
            };
        }
        Ok(DayRollup {
            hours,
            refused: wire.refused,
            talk_seconds: wire.talk,
            ring_ms_sum: wire.ring_ms,
            ring_count: wire.rings,
            provinces: wire.provinces,
            cities: wire.cities,
            phones: wire
                .phones
                .into_iter()
                .map(
                    |(
                        k,
                        [
                            offered,
                            answered,
                            talk_seconds,
                            answer_ms_sum,
                            answer_ms_count,
                        ],
                    )| {
                        let sums = PhoneSums {
                            offered,
                            answered,
                            talk_seconds,
                            answer_ms_sum,
                            answer_ms_count,
                        };
                        (k, sums)
                    },
                )
                .collect(),
            menu: wire.menu,
            cost: Money::from_units(wire.cost),
        })
    }
}

/// A batch of CDRs folded into rollups by key, with each key's distinct callers: what
/// the store's rollup job adds to what it has stored, in one transaction.
#[derive(Debug, Clone)]
pub struct Rollups {
    zone: TimeZone,
    days: BTreeMap<RollupKey, (DayRollup, BTreeSet<String>)>,
}

impl Default for Rollups {
    fn default() -> Self {
        Rollups::new()
    }
}

impl Rollups {
    pub fn new() -> Rollups {
        Rollups {
            zone: china_time_zone(),
            days: BTreeMap::new(),
        }
    }

    /// Counts one call under its enterprise, number and day.
    pub fn add(&mut self, cdr: &Cdr) {
        let (day, hour) = day_and_hour(&self.zone, cdr.setup_at);
        let key = RollupKey {
            enterprise: cdr.enterprise.clone(),
            number: cdr.number.clone(),
            day,
        };
        let (rollup, callers) = self.days.entry(key).or_default();
        rollup.add(cdr, hour);
        if !callers.contains(&cdr.caller) {
            callers.insert(cdr.caller.clone());
        }
    }

    /// Each key's rollup and distinct callers.
    pub fn into_days(self) -> BTreeMap<RollupKey, (DayRollup, BTreeSet<String>)> {
        self.days
    }
}

/// The fold over a range: rollups of its days merged in (stored rollups, or CDRs
/// added one by one, in any order and mixture) and its distinct callers; then
/// [`Analysis::finish`].
#[derive(Debug, Clone)]
pub struct Analysis {
    range: DayRange,
    zone: TimeZone,
    days: BTreeMap<Date, DayRollup>,
    callers: HashSet<String>,
}

impl Analysis {
    pub fn new(range: DayRange) -> Analysis {
        Analysis {
            range,
            zone: china_time_zone(),
            days: range.days().map(|d| (d, DayRollup::default())).collect(),
            callers: HashSet::new(),
        }
    }

    /// The range analysed.
    pub fn range(&self) -> DayRange {
        self.range
    }

    /// Counts one call; a call set up outside the range is ignored (`false`).
    pub fn add(&mut self, cdr: &Cdr) -> bool {
        let (day, hour) = day_and_hour(&self.zone, cdr.setup_at);
        let Some(rollup) = self.days.get_mut(&day) else {
            return false;
        };
        rollup.add(cdr, hour);
        self.add_caller(&cdr.caller);
        true
    }

    /// Merges a rollup of `day` (of any of the enterprise's numbers); a day outside
    /// the range is ignored (`false`). Its callers come through
    /// [`Analysis::add_caller`].
    pub fn add_rollup(&mut self, day: Date, rollup: &DayRollup) -> bool {
        let Some(mine) = self.days.get_mut(&day) else {
            return false;
        };
        mine.merge(rollup);
        true
    }

    /// One caller of the range (each counted once however often added).
    pub fn add_caller(&mut self, caller: &str) {
        if !self.callers.contains(caller) {
            self.callers.insert(caller.to_owned());
        }
    }

    /// The distinct callers of the range so far: the caller asks the store which of
    /// them called before the range, for [`Analysis::finish`].
    pub fn callers(&self) -> impl Iterator<Item = &str> {
        self.callers.iter().map(String::as_str)
    }

    /// The report; `returning` are the range's callers who called before it.
    pub fn finish(self, returning: &HashSet<String>) -> Report {
        let returning_callers = self
            .callers
            .iter()
            .filter(|c| returning.contains(*c))
            .count() as u64;
        let mut all = DayRollup::default();
        let mut weekday_hours = [[0u64; 24]; 7];
        let mut days = BTreeMap::new();
        for (date, rollup) in &self.days {
            all.merge(rollup);
            let weekday = usize::from(date.weekday().to_monday_zero_offset().unsigned_abs()).min(6);
            for (hour, counts) in rollup.hours.iter().enumerate() {
                weekday_hours[weekday][hour] += counts.calls;
            }
            days.insert(
                date.to_string(),
                Day {
                    counts: rollup.counts(),
                    cost: rollup.cost,
                },
            );
        }
        let totals = all.counts();
        let reached = totals.answered + totals.missed;
        let phones = all
            .phones
            .into_iter()
            .map(|(phone, p)| {
                let figures = PhoneFigures {
                    offered: p.offered,
                    answered: p.answered,
                    missed: p.offered.saturating_sub(p.answered),
                    talk_seconds: p.talk_seconds,
                    average_answer_ms: (p.answer_ms_count > 0)
                        .then(|| p.answer_ms_sum / p.answer_ms_count),
                    answer_ms_sum: p.answer_ms_sum,
                    answer_ms_count: p.answer_ms_count,
                };
                (phone, figures)
            })
            .collect();
        Report {
            first_day: self.range.first.to_string(),
            last_day: self.range.last.to_string(),
            answer_rate: (reached > 0).then(|| totals.answered as f64 / reached as f64),
            average_talk_seconds: (totals.answered > 0)
                .then(|| all.talk_seconds as f64 / totals.answered as f64),
            average_ring_ms: (all.ring_count > 0).then(|| all.ring_ms_sum / all.ring_count),
            totals,
            refused_by_reason: all.refused,
            talk_seconds: all.talk_seconds,
            days,
            hours: all.hours.to_vec(),
            weekday_hours: weekday_hours.iter().map(|h| h.to_vec()).collect(),
            provinces: all.provinces,
            cities: all.cities,
            new_callers: self.callers.len() as u64 - returning_callers,
            returning_callers,
            phones,
            menu_choices: all.menu,
            cost: all.cost,
        }
    }
}

/// Monday first, as the heat map's rows.
pub const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollup_of_another_version_or_shape_is_refused() {
        let text = DayRollup::default().to_json();
        assert!(DayRollup::from_json(&text).is_ok(), "{text}");
        let other = text.replace("\"v\":1", "\"v\":2");
        assert!(matches!(
            DayRollup::from_json(&other),
            Err(RollupError::Version(2))
        ));
        assert!(matches!(
            DayRollup::from_json(r#"{"v":1,"hours":[[1,0,0]]}"#),
            Err(RollupError::Hours(1))
        ));
        assert!(DayRollup::from_json("[]").is_err());
    }
}
