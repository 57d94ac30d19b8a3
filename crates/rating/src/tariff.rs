//! Tariffs: the price of a minute, how call time is counted, and the bands that change
//! the price by time of day, day of the week, public holiday and caller region.
//!
//! A [`TariffSpec`] is plain data, as the configuration will write it; [`Tariff::new`]
//! validates it (typed [`TariffError`]s) and compiles it into the form [`Tariff::rate`]
//! walks.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;

use crate::money::Money;

/// The longest increment: an hour. Longer makes no sense for calls, and the bound keeps
/// every product of a rate and a length of time far inside an `i128`.
pub const MAX_INCREMENT_SECONDS: u32 = 3_600;

/// At most this many bands in one tariff (a set of bands is one 64-bit mask).
pub const MAX_BANDS: usize = 64;

/// The name of the rate that applies when no band does.
pub const BASE_BAND: &str = "base";

/// The zone every band is written in: `Asia/Shanghai` from the system's tz database
/// when it has it, else UTC+8, which is what it has been since 1991 (no daylight
/// saving). The same rule as the routing crate's schedules.
pub fn china_time_zone() -> TimeZone {
    TimeZone::get("Asia/Shanghai").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(8)))
}

/// A set of kinds of day: the seven weekdays and public holidays.
///
/// Every date is exactly one kind: a listed holiday is a holiday (whatever its
/// weekday), a listed make-up working day (调休) is a Monday (whatever its weekday), any
/// other date is its weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DaySet(u8);

impl DaySet {
    pub const EMPTY: DaySet = DaySet(0);
    /// Monday to Friday.
    pub const WORKWEEK: DaySet = DaySet(0b0001_1111);
    /// Saturday and Sunday.
    pub const WEEKEND: DaySet = DaySet(0b0110_0000);
    /// The seven weekdays, not holidays.
    pub const EVERY_WEEKDAY: DaySet = DaySet(0b0111_1111);
    /// Public holidays.
    pub const HOLIDAYS: DaySet = DaySet(0b1000_0000);
    /// Every day.
    pub const ALL: DaySet = DaySet(0b1111_1111);

    /// One weekday.
    pub const fn weekday(day: Weekday) -> DaySet {
        DaySet(1 << day.to_monday_zero_offset())
    }

    pub const fn union(self, other: DaySet) -> DaySet {
        DaySet(self.0 | other.0)
    }

    /// Whether the two sets share a kind of day.
    pub const fn intersects(self, other: DaySet) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Minutes since midnight, `[start, end)`, wall-clock time in `Asia/Shanghai`. `end` is
/// at most 1440 (24:00); a window never passes midnight (write two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MinuteRange {
    pub start: u16,
    pub end: u16,
}

impl MinuteRange {
    pub const MINUTES_PER_DAY: u16 = 1_440;

    /// `[start, end)` in minutes since midnight.
    pub const fn new(start: u16, end: u16) -> MinuteRange {
        MinuteRange { start, end }
    }

    /// The whole day.
    pub const ALL_DAY: MinuteRange = MinuteRange::new(0, MinuteRange::MINUTES_PER_DAY);

    pub const fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

/// When a band applies: on these kinds of day, in these windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeCondition {
    pub days: DaySet,
    pub windows: Vec<MinuteRange>,
}

/// Whom a band applies to: callers from one of these provinces or one of these cities,
/// as the region table names them (`广东`, `深圳`: no 省/市 suffix). A caller whose
/// region is unknown matches no region condition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegionCondition {
    pub provinces: Vec<String>,
    pub cities: Vec<String>,
}

/// A band: a rate per minute that replaces the tariff's base rate whenever all of its
/// conditions hold (at least one condition; both may be given, e.g. "from 广东, on
/// workdays 08:00–18:00").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandSpec {
    pub name: String,
    pub rate_per_minute: Money,
    pub time: Option<TimeCondition>,
    pub region: Option<RegionCondition>,
}

/// A tariff as written, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffSpec {
    pub name: String,
    /// The base rate, when no band applies.
    pub rate_per_minute: Money,
    /// Seconds per increment after the first: 60 = per started minute, 6, 1 = per second.
    pub increment: u32,
    /// The first increment, if it differs (e.g. 60 then 6). Any length from 1 s to an
    /// hour, not necessarily a multiple of `increment`.
    pub first_increment: Option<u32>,
    /// Charged once per call that is billed at least one second.
    pub connect_fee: Money,
    /// The most one call can cost, connect fee included.
    pub max_cost: Option<Money>,
    /// Tried in this order; the first whose conditions all hold gives the rate.
    pub bands: Vec<BandSpec>,
    /// Public holidays: their kind of day is [`DaySet::HOLIDAYS`], not their weekday.
    pub holidays: Vec<Date>,
    /// Make-up working days (调休): rated as a Monday, whatever their weekday.
    pub workdays: Vec<Date>,
}

impl TariffSpec {
    /// A flat tariff: `rate_per_minute` per started minute, no fee, no cap, no bands.
    pub fn flat(name: impl Into<String>, rate_per_minute: Money) -> TariffSpec {
        TariffSpec {
            name: name.into(),
            rate_per_minute,
            increment: 60,
            first_increment: None,
            connect_fee: Money::ZERO,
            max_cost: None,
            bands: Vec::new(),
            holidays: Vec::new(),
            workdays: Vec::new(),
        }
    }
}

/// Why a tariff is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TariffError {
    #[error("a tariff needs a name")]
    EmptyName,
    #[error("increment must be 1 to 3600 seconds, not {0}")]
    Increment(u32),
    #[error("first increment must be 1 to 3600 seconds, not {0}")]
    FirstIncrement(u32),
    #[error("rate per minute must not be negative (it is {0})")]
    NegativeRate(Money),
    #[error("connect fee must not be negative (it is {0})")]
    NegativeConnectFee(Money),
    #[error("maximum cost per call must be above zero (it is {0})")]
    MaxCostNotPositive(Money),
    #[error("maximum cost per call ({max_cost}) is below the connect fee ({connect_fee})")]
    MaxCostBelowConnectFee { max_cost: Money, connect_fee: Money },
    #[error("{0} bands: a tariff has at most 64")]
    TooManyBands(usize),
    #[error("band number {position} has no name")]
    UnnamedBand { position: usize },
    #[error("band `{name}`: {problem}")]
    Band {
        /// Index into [`TariffSpec::bands`].
        index: usize,
        name: String,
        problem: BandProblem,
    },
    #[error("{date} is both a holiday and a make-up working day")]
    HolidayAndWorkday { date: Date },
}

/// What is wrong with one band.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BandProblem {
    #[error("`base` names the rate used when no band applies; choose another name")]
    ReservedName,
    #[error("another band has the same name")]
    Duplicate,
    #[error("rate per minute must not be negative (it is {0})")]
    NegativeRate(Money),
    #[error("a band needs a time condition, a region condition or both")]
    NoCondition,
    #[error("the time condition names no day")]
    NoDays,
    #[error("the time condition has no window")]
    NoWindows,
    #[error("window {start}-{end} (minutes since midnight) is empty or passes 24:00")]
    BadWindow { start: u16, end: u16 },
    #[error("the region condition names no province and no city")]
    NoRegions,
    #[error("the region condition has an empty name")]
    EmptyRegionName,
}

/// Which rate applied: one of the tariff's bands, or its base rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BandId(u8);

impl BandId {
    /// The tariff's base rate.
    pub const BASE: BandId = BandId(u8::MAX);

    /// The band's index in [`TariffSpec::bands`]; `None` for the base rate.
    pub fn index(self) -> Option<usize> {
        (self != BandId::BASE).then_some(usize::from(self.0))
    }
}

/// The caller's region, as the region table gives it (`广东`, `深圳`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallerRegion<'a> {
    pub province: &'a str,
    pub city: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Band {
    name: String,
    rate: Money,
    time: Option<TimeCondition>,
    region: Option<RegionCondition>,
}

impl Band {
    fn applies_at(&self, kind: DaySet, minute: u16) -> bool {
        match &self.time {
            None => true,
            Some(time) => {
                time.days.intersects(kind) && time.windows.iter().any(|w| w.contains(minute))
            }
        }
    }

    fn applies_to(&self, region: Option<CallerRegion<'_>>) -> bool {
        match (&self.region, region) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(condition), Some(caller)) => {
                condition.provinces.iter().any(|p| p == caller.province)
                    || condition.cities.iter().any(|c| c == caller.city)
            }
        }
    }
}

/// A validated tariff. Immutable; share it behind an `Arc`.
///
/// Comparable, so that a configuration holding tariffs (`sihai-config`'s `Config`) can
/// still be compared as a whole: two tariffs are equal when they price every call alike
/// and read alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tariff {
    name: String,
    rate_per_minute: Money,
    first_increment: u32,
    increment: u32,
    connect_fee: Money,
    max_cost: Option<Money>,
    bands: Vec<Band>,
    /// Every window start and end strictly inside the day, sorted, without repeats: the
    /// only minutes (with midnight) at which the band in force can change.
    edges: Vec<u16>,
    holidays: Vec<Date>,
    workdays: Vec<Date>,
    zone: TimeZone,
}

impl Tariff {
    /// Validates `spec`. Bands are judged in `Asia/Shanghai` ([`china_time_zone`]).
    pub fn new(spec: TariffSpec) -> Result<Tariff, TariffError> {
        if spec.name.trim().is_empty() {
            return Err(TariffError::EmptyName);
        }
        if !(1..=MAX_INCREMENT_SECONDS).contains(&spec.increment) {
            return Err(TariffError::Increment(spec.increment));
        }
        let first_increment = spec.first_increment.unwrap_or(spec.increment);
        if !(1..=MAX_INCREMENT_SECONDS).contains(&first_increment) {
            return Err(TariffError::FirstIncrement(first_increment));
        }
        if spec.rate_per_minute.is_negative() {
            return Err(TariffError::NegativeRate(spec.rate_per_minute));
        }
        if spec.connect_fee.is_negative() {
            return Err(TariffError::NegativeConnectFee(spec.connect_fee));
        }
        if let Some(max_cost) = spec.max_cost {
            if max_cost <= Money::ZERO {
                return Err(TariffError::MaxCostNotPositive(max_cost));
            }
            if max_cost < spec.connect_fee {
                return Err(TariffError::MaxCostBelowConnectFee {
                    max_cost,
                    connect_fee: spec.connect_fee,
                });
            }
        }
        if spec.bands.len() > MAX_BANDS {
            return Err(TariffError::TooManyBands(spec.bands.len()));
        }
        for (index, band) in spec.bands.iter().enumerate() {
            if band.name.trim().is_empty() {
                return Err(TariffError::UnnamedBand {
                    position: index + 1,
                });
            }
            let problem = band_problem(band).or_else(|| {
                spec.bands[..index]
                    .iter()
                    .any(|earlier| earlier.name == band.name)
                    .then_some(BandProblem::Duplicate)
            });
            if let Some(problem) = problem {
                return Err(TariffError::Band {
                    index,
                    name: band.name.clone(),
                    problem,
                });
            }
        }
        let mut holidays = spec.holidays;
        holidays.sort_unstable();
        holidays.dedup();
        let mut workdays = spec.workdays;
        workdays.sort_unstable();
        workdays.dedup();
        if let Some(&date) = workdays.iter().find(|d| holidays.binary_search(d).is_ok()) {
            return Err(TariffError::HolidayAndWorkday { date });
        }
        let mut edges: Vec<u16> = spec
            .bands
            .iter()
            .filter_map(|band| band.time.as_ref())
            .flat_map(|time| time.windows.iter().flat_map(|w| [w.start, w.end]))
            .filter(|&minute| 0 < minute && minute < MinuteRange::MINUTES_PER_DAY)
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let bands = spec
            .bands
            .into_iter()
            .map(|band| Band {
                name: band.name,
                rate: band.rate_per_minute,
                time: band.time,
                region: band.region,
            })
            .collect();
        Ok(Tariff {
            name: spec.name,
            rate_per_minute: spec.rate_per_minute,
            first_increment,
            increment: spec.increment,
            connect_fee: spec.connect_fee,
            max_cost: spec.max_cost,
            bands,
            edges,
            holidays,
            workdays,
            zone: china_time_zone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base rate per minute.
    pub fn rate_per_minute(&self) -> Money {
        self.rate_per_minute
    }

    pub fn first_increment(&self) -> u32 {
        self.first_increment
    }

    pub fn increment(&self) -> u32 {
        self.increment
    }

    pub fn connect_fee(&self) -> Money {
        self.connect_fee
    }

    pub fn max_cost(&self) -> Option<Money> {
        self.max_cost
    }

    /// The band's name; [`BASE_BAND`] for the base rate.
    pub fn band_name(&self, band: BandId) -> &str {
        match band.index().and_then(|i| self.bands.get(i)) {
            Some(b) => b.name.as_str(),
            None => BASE_BAND,
        }
    }

    /// The band's rate per minute (the base rate for [`BandId::BASE`]).
    pub fn band_rate(&self, band: BandId) -> Money {
        match band.index().and_then(|i| self.bands.get(i)) {
            Some(b) => b.rate,
            None => self.rate_per_minute,
        }
    }

    /// The band in force at `at` (to the second) for a caller from `region`.
    pub fn band_at(&self, at: Timestamp, region: Option<CallerRegion<'_>>) -> BandId {
        let walk = Walk::new(self, at, region);
        walk.step(0).0
    }

    /// What `seconds` of call are billed as: rounded up to the end of the increment they
    /// end in (the first increment, then whole further increments); 0 stays 0.
    pub fn billed_seconds(&self, seconds: u32) -> u32 {
        let clamped = seconds.min(crate::MAX_CALL_SECONDS);
        // <= MAX_CALL_SECONDS + MAX_INCREMENT_SECONDS <= u32::MAX.
        self.ceil_boundary(u64::from(clamped)) as u32
    }

    /// The smallest increment boundary (0, f, f+n, f+2n, ...) at or after `offset`.
    pub(crate) fn ceil_boundary(&self, offset: u64) -> u64 {
        let (first, next) = (u64::from(self.first_increment), u64::from(self.increment));
        if offset == 0 {
            0
        } else if offset <= first {
            first
        } else {
            first + (offset - first).div_ceil(next) * next
        }
    }

    /// The largest increment boundary at or before `offset`.
    pub(crate) fn floor_boundary(&self, offset: u64) -> u64 {
        let (first, next) = (u64::from(self.first_increment), u64::from(self.increment));
        if offset < first {
            0
        } else {
            first + (offset - first) / next * next
        }
    }

    fn day_kind(&self, date: Date) -> DaySet {
        if self.holidays.binary_search(&date).is_ok() {
            DaySet::HOLIDAYS
        } else if self.workdays.binary_search(&date).is_ok() {
            DaySet::weekday(Weekday::Monday)
        } else {
            DaySet::weekday(date.weekday())
        }
    }
}

fn band_problem(band: &BandSpec) -> Option<BandProblem> {
    if band.name == BASE_BAND {
        return Some(BandProblem::ReservedName);
    }
    if band.rate_per_minute.is_negative() {
        return Some(BandProblem::NegativeRate(band.rate_per_minute));
    }
    if band.time.is_none() && band.region.is_none() {
        return Some(BandProblem::NoCondition);
    }
    if let Some(time) = &band.time {
        if time.days.is_empty() {
            return Some(BandProblem::NoDays);
        }
        if time.windows.is_empty() {
            return Some(BandProblem::NoWindows);
        }
        if let Some(w) = time
            .windows
            .iter()
            .find(|w| w.start >= w.end || w.end > MinuteRange::MINUTES_PER_DAY)
        {
            return Some(BandProblem::BadWindow {
                start: w.start,
                end: w.end,
            });
        }
    }
    if let Some(region) = &band.region {
        if region.provinces.is_empty() && region.cities.is_empty() {
            return Some(BandProblem::NoRegions);
        }
        if region
            .provinces
            .iter()
            .chain(&region.cities)
            .any(|name| name.trim().is_empty())
        {
            return Some(BandProblem::EmptyRegionName);
        }
    }
    None
}

/// The bands one call meets, from its answer on: the caller's region is fixed for the
/// call, so it is settled once; time is stepped from one possible change (a window
/// edge or midnight) to the next, never second by second.
pub(crate) struct Walk<'t> {
    tariff: &'t Tariff,
    /// The bands whose region condition holds for this caller.
    eligible: u64,
    /// `None` when the band cannot change during the call (no time condition comes
    /// before the first eligible band without one); else the answer, in Unix seconds
    /// (truncated to the second: band edges fall on whole minutes).
    answer: Option<i64>,
    constant: BandId,
}

impl<'t> Walk<'t> {
    pub(crate) fn new(
        tariff: &'t Tariff,
        answered_at: Timestamp,
        region: Option<CallerRegion<'_>>,
    ) -> Walk<'t> {
        let mut eligible = 0u64;
        for (i, band) in tariff.bands.iter().enumerate() {
            if band.applies_to(region) {
                eligible |= 1 << i;
            }
        }
        // The first eligible band that applies at any time, if any: nothing after it
        // can ever be chosen.
        let mut constant = BandId::BASE;
        let mut timed = false;
        let mut mask = eligible;
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if tariff.bands[i].time.is_none() {
                constant = BandId(i as u8);
                break;
            }
            timed = true;
        }
        let mut answer = answered_at.as_second();
        if answered_at.subsec_nanosecond() < 0 {
            answer -= 1; // floor, also before 1970
        }
        Walk {
            tariff,
            eligible,
            answer: timed.then_some(answer),
            constant,
        }
    }

    /// The band in force `offset` seconds after the answer, and the offset at which it
    /// may next change (`u64::MAX`: never), always after `offset`.
    pub(crate) fn step(&self, offset: u64) -> (BandId, u64) {
        let Some(answer) = self.answer else {
            return (self.constant, u64::MAX);
        };
        let tariff = self.tariff;
        let Some(now) = i64::try_from(offset)
            .ok()
            .and_then(|o| answer.checked_add(o))
        else {
            return (self.constant, u64::MAX);
        };
        let Ok(instant) = Timestamp::from_second(now) else {
            return (self.constant, u64::MAX);
        };
        let local = tariff.zone.to_datetime(instant);
        let date = local.date();
        // Both in range: hour 0..=23, minute 0..=59.
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let band = self.pick(tariff.day_kind(date), minute);
        let next_edge = tariff
            .edges
            .get(tariff.edges.partition_point(|&e| e <= minute))
            .copied();
        let next_local: Option<DateTime> = match next_edge {
            Some(edge) => Some(date.at((edge / 60) as i8, (edge % 60) as i8, 0, 0)),
            None => date.tomorrow().ok().map(|d| d.at(0, 0, 0, 0)),
        };
        let next = next_local
            .and_then(|local| tariff.zone.to_ambiguous_timestamp(local).compatible().ok());
        match next {
            // A clock change could map the edge to no later instant; move on anyway.
            Some(next) => {
                let next = next.as_second().max(now + 1);
                (band, offset + (next - now) as u64)
            }
            None => (band, u64::MAX),
        }
    }

    fn pick(&self, kind: DaySet, minute: u16) -> BandId {
        let mut mask = self.eligible;
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if self.tariff.bands[i].applies_at(kind, minute) {
                return BandId(i as u8);
            }
        }
        BandId::BASE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(name: &str, rate: &str) -> BandSpec {
        BandSpec {
            name: name.into(),
            rate_per_minute: rate.parse().unwrap(),
            time: Some(TimeCondition {
                days: DaySet::WORKWEEK,
                windows: vec![MinuteRange::new(8 * 60, 18 * 60)],
            }),
            region: None,
        }
    }

    fn spec() -> TariffSpec {
        TariffSpec::flat("standard", "0.30".parse().unwrap())
    }

    fn error(spec: TariffSpec) -> TariffError {
        Tariff::new(spec).expect_err("invalid")
    }

    #[test]
    fn validation_names_each_fault() {
        let m = |s: &str| s.parse::<Money>().unwrap();
        assert_eq!(
            error(TariffSpec {
                name: " ".into(),
                ..spec()
            }),
            TariffError::EmptyName
        );
        assert_eq!(
            error(TariffSpec {
                increment: 0,
                ..spec()
            }),
            TariffError::Increment(0)
        );
        assert_eq!(
            error(TariffSpec {
                increment: 3_601,
                ..spec()
            }),
            TariffError::Increment(3_601)
        );
        assert_eq!(
            error(TariffSpec {
                first_increment: Some(0),
                ..spec()
            }),
            TariffError::FirstIncrement(0)
        );
        assert_eq!(
            error(TariffSpec {
                rate_per_minute: m("-0.01"),
                ..spec()
            }),
            TariffError::NegativeRate(m("-0.01"))
        );
        assert_eq!(
            error(TariffSpec {
                connect_fee: m("-1"),
                ..spec()
            }),
            TariffError::NegativeConnectFee(m("-1"))
        );
        assert_eq!(
            error(TariffSpec {
                max_cost: Some(Money::ZERO),
                ..spec()
            }),
            TariffError::MaxCostNotPositive(Money::ZERO)
        );
        let below = error(TariffSpec {
            connect_fee: m("0.50"),
            max_cost: Some(m("0.40")),
            ..spec()
        });
        assert_eq!(
            below.to_string(),
            "maximum cost per call (0.40) is below the connect fee (0.50)"
        );
        let many = (0..65).map(|i| band(&format!("b{i}"), "0.1")).collect();
        assert_eq!(
            error(TariffSpec {
                bands: many,
                ..spec()
            }),
            TariffError::TooManyBands(65)
        );
        assert_eq!(
            error(TariffSpec {
                bands: vec![band("peak", "0.3"), band("", "0.1")],
                ..spec()
            }),
            TariffError::UnnamedBand { position: 2 }
        );
        let date = jiff::civil::date(2026, 10, 1);
        assert_eq!(
            error(TariffSpec {
                holidays: vec![date],
                workdays: vec![date],
                ..spec()
            }),
            TariffError::HolidayAndWorkday { date }
        );
        // A first increment need not be a multiple of the next ones.
        assert!(
            Tariff::new(TariffSpec {
                first_increment: Some(45),
                increment: 10,
                ..spec()
            })
            .is_ok()
        );
    }

    #[test]
    fn band_validation_names_the_band_and_the_fault() {
        let problem = |b: BandSpec| match error(TariffSpec {
            bands: vec![band("ok", "0.1"), b],
            ..spec()
        }) {
            TariffError::Band {
                index: 1, problem, ..
            } => problem,
            other => panic!("{other:?}"),
        };
        assert_eq!(problem(band("base", "0.1")), BandProblem::ReservedName);
        assert_eq!(problem(band("ok", "0.1")), BandProblem::Duplicate);
        assert_eq!(
            problem(band("neg", "-0.1")),
            BandProblem::NegativeRate("-0.1".parse().unwrap())
        );
        assert_eq!(
            problem(BandSpec {
                time: None,
                ..band("none", "0.1")
            }),
            BandProblem::NoCondition
        );
        let with_time = |days, windows| BandSpec {
            time: Some(TimeCondition { days, windows }),
            ..band("t", "0.1")
        };
        assert_eq!(
            problem(with_time(DaySet::EMPTY, vec![MinuteRange::ALL_DAY])),
            BandProblem::NoDays
        );
        assert_eq!(
            problem(with_time(DaySet::ALL, vec![])),
            BandProblem::NoWindows
        );
        assert_eq!(
            problem(with_time(DaySet::ALL, vec![MinuteRange::new(600, 600)])),
            BandProblem::BadWindow {
                start: 600,
                end: 600
            }
        );
        assert_eq!(
            problem(with_time(DaySet::ALL, vec![MinuteRange::new(1_400, 1_441)])),
            BandProblem::BadWindow {
                start: 1_400,
                end: 1_441
            }
        );
        let with_region = |provinces: &[&str], cities: &[&str]| BandSpec {
            time: None,
            region: Some(RegionCondition {
                provinces: provinces.iter().map(|s| s.to_string()).collect(),
                cities: cities.iter().map(|s| s.to_string()).collect(),
            }),
            ..band("r", "0.1")
        };
        assert_eq!(problem(with_region(&[], &[])), BandProblem::NoRegions);
        assert_eq!(
            problem(with_region(&["广东"], &[""])),
            BandProblem::EmptyRegionName
        );
        let shown = error(TariffSpec {
            bands: vec![band("ok", "0.1"), band("ok", "0.2")],
            ..spec()
        });
        assert_eq!(
            shown.to_string(),
            "band `ok`: another band has the same name"
        );
    }

    #[test]
    fn increment_boundaries() {
        let t = Tariff::new(TariffSpec {
            first_increment: Some(60),
            increment: 6,
            ..spec()
        })
        .unwrap();
        let billed: Vec<u32> = [0, 1, 59, 60, 61, 66, 67, 3_600]
            .iter()
            .map(|&s| t.billed_seconds(s))
            .collect();
        assert_eq!(billed, [0, 60, 60, 60, 66, 66, 72, 3_600]);
        assert_eq!(t.floor_boundary(59), 0);
        assert_eq!(t.floor_boundary(60), 60);
        assert_eq!(t.floor_boundary(71), 66);
        let odd = Tariff::new(TariffSpec {
            first_increment: Some(45),
            increment: 10,
            ..spec()
        })
        .unwrap();
        assert_eq!(odd.billed_seconds(46), 55);
        let longest = odd.billed_seconds(crate::MAX_CALL_SECONDS);
        assert_eq!(
            odd.billed_seconds(u32::MAX),
            longest,
            "durations are clamped"
        );
        assert!(longest >= crate::MAX_CALL_SECONDS);
    }
}
