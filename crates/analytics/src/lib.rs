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

use std::collections::{BTreeMap, HashSet};

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
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

/// The fold: feed it the range's CDRs, then [`Analysis::finish`].
#[derive(Debug, Clone)]
pub struct Analysis {
    range: DayRange,
    zone: TimeZone,
    totals: Counts,
    refused: BTreeMap<String, u64>,
    talk_seconds: u64,
    ring_ms_sum: u64,
    ring_count: u64,
    days: BTreeMap<Date, Day>,
    hours: [Counts; 24],
    weekday_hours: [[u64; 24]; 7],
    provinces: BTreeMap<String, u64>,
    cities: BTreeMap<String, u64>,
    callers: HashSet<String>,
    phones: BTreeMap<String, PhoneFigures>,
    menu: BTreeMap<String, u64>,
    cost: Money,
}

const UNKNOWN: &str = "unknown";

fn millis(from: Timestamp, to: Timestamp) -> u64 {
    let span: SignedDuration = to.duration_since(from);
    u64::try_from(span.as_millis()).unwrap_or(0)
}

impl Analysis {
    pub fn new(range: DayRange) -> Analysis {
        Analysis {
            range,
            zone: china_time_zone(),
            totals: Counts::default(),
            refused: BTreeMap::new(),
            talk_seconds: 0,
            ring_ms_sum: 0,
            ring_count: 0,
            days: range.days().map(|d| (d, Day::default())).collect(),
            hours: Default::default(),
            weekday_hours: [[0; 24]; 7],
            provinces: BTreeMap::new(),
            cities: BTreeMap::new(),
            callers: HashSet::new(),
            phones: BTreeMap::new(),
            menu: BTreeMap::new(),
            cost: Money::ZERO,
        }
    }

    /// Counts one call; a call set up outside the range is ignored (`false`).
    pub fn add(&mut self, cdr: &Cdr) -> bool {
        let local = cdr.setup_at.to_zoned(self.zone.clone());
        let Some(day) = self.days.get_mut(&local.date()) else {
            return false;
        };
        day.counts.add(cdr.outcome);
        if let Some(cost) = cdr.cost {
            day.cost = day.cost.saturating_add(cost);
            self.cost = self.cost.saturating_add(cost);
        }
        self.totals.add(cdr.outcome);
        let hour = usize::try_from(local.hour()).unwrap_or(0).min(23);
        self.hours[hour].add(cdr.outcome);
        let weekday = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs()).min(6);
        self.weekday_hours[weekday][hour] += 1;
        if REFUSED.contains(&cdr.outcome) {
            *self
                .refused
                .entry(cdr.outcome.as_str().to_owned())
                .or_default() += 1;
        }
        if cdr.outcome == Outcome::Answered {
            self.talk_seconds += u64::from(cdr.talk_seconds);
        }
        if let Some(ring) = cdr.ring_at {
            self.ring_ms_sum += millis(cdr.setup_at, ring);
            self.ring_count += 1;
        }
        let province = cdr.caller_province.as_deref().unwrap_or(UNKNOWN);
        *self.provinces.entry(province.to_owned()).or_default() += 1;
        let city = match (cdr.caller_province.as_deref(), cdr.caller_city.as_deref()) {
            (Some(p), Some(c)) if p == c => p.to_owned(),
            (Some(p), Some(c)) => format!("{p} {c}"),
            (Some(x), None) | (None, Some(x)) => x.to_owned(),
            (None, None) => UNKNOWN.to_owned(),
        };
        *self.cities.entry(city).or_default() += 1;
        if !self.callers.contains(&cdr.caller) {
            self.callers.insert(cdr.caller.clone());
        }
        for attempt in &cdr.attempts {
            let phone = self.phones.entry(attempt.phone.clone()).or_default();
            phone.offered += 1;
            let took_it = cdr.outcome == Outcome::Answered
                && cdr.answered_by.as_deref() == Some(attempt.phone.as_str());
            if took_it {
                phone.answered += 1;
                phone.talk_seconds += u64::from(cdr.talk_seconds);
                if let (Some(ring), Some(answer)) = (cdr.ring_at, cdr.answer_at) {
                    phone.answer_ms_sum += millis(ring, answer);
                    phone.answer_ms_count += 1;
                }
            } else {
                phone.missed += 1;
            }
        }
        if let Some(path) = cdr.menu_path.as_deref().filter(|p| !p.is_empty()) {
            *self.menu.entry(path.to_owned()).or_default() += 1;
        }
        true
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
        let reached = self.totals.answered + self.totals.missed;
        let mut phones = self.phones;
        for phone in phones.values_mut() {
            phone.average_answer_ms =
                (phone.answer_ms_count > 0).then(|| phone.answer_ms_sum / phone.answer_ms_count);
        }
        Report {
            first_day: self.range.first.to_string(),
            last_day: self.range.last.to_string(),
            answer_rate: (reached > 0).then(|| self.totals.answered as f64 / reached as f64),
            average_talk_seconds: (self.totals.answered > 0)
                .then(|| self.talk_seconds as f64 / self.totals.answered as f64),
            average_ring_ms: (self.ring_count > 0).then(|| self.ring_ms_sum / self.ring_count),
            totals: self.totals,
            refused_by_reason: self.refused,
            talk_seconds: self.talk_seconds,
            days: self
                .days
                .into_iter()
                .map(|(d, day)| (d.to_string(), day))
                .collect(),
            hours: self.hours.to_vec(),
            weekday_hours: self.weekday_hours.iter().map(|h| h.to_vec()).collect(),
            provinces: self.provinces,
            cities: self.cities,
            new_callers: self.callers.len() as u64 - returning_callers,
            returning_callers,
            phones,
            menu_choices: self.menu,
            cost: self.cost,
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
