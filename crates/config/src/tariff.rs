//! `[[tariff]]`: what a minute of an answered call costs, validated by the rating crate.
//!
//! This module only reads the file's syntax into a [`TariffSpec`]: money strings, the
//! schedule's `"HH:MM-HH:MM"` windows and date lists, day names, region names checked
//! against the region table. The rules of a tariff (increments 1–3600 s, a cap not below
//! the connect fee, band names, ...) are [`Tariff::new`]'s alone; each [`TariffError`]
//! it returns is reported at the setting it is about.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use jiff::civil::{Date, Weekday};
use serde::Deserialize;
use serde::de::{SeqAccess, Visitor};
use sihai_rating::{
    BandProblem, BandSpec, DaySet, MinuteRange, RegionCondition, Tariff, TariffError, TariffSpec,
    TimeCondition,
};
use toml::Spanned;

use crate::billing::{self, RawMoney};
use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;
use crate::plan::{region_stem, validate_provinces};
use crate::schedule::{RawDate, ScheduleConfig, validate_dates, validate_day};

/// The top-level key of this section.
pub(crate) const SECTION: &str = "tariff";

/// Seconds per increment when `increment` is not written: per started minute, as the
/// seeds sell it.
pub const DEFAULT_INCREMENT_S: u32 = 60;

type RawDates = Option<Spanned<Vec<Spanned<RawDate>>>>;
type RawNames = Option<Spanned<Vec<Spanned<String>>>>;

/// One `[[tariff]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[tariff]] table")]
pub(crate) struct RawTariff {
    name: Spanned<String>,
    rate_per_minute: Spanned<RawMoney>,
    increment: Option<Spanned<u64>>,
    first_increment: Option<Spanned<u64>>,
    connect_fee: Option<Spanned<RawMoney>>,
    max_cost: Option<Spanned<RawMoney>>,
    holidays: RawDates,
    workdays: RawDates,
    holidays_from: Option<Spanned<String>>,
    band: Option<Vec<Spanned<RawBand>>>,
}

/// One `[[tariff.band]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[tariff.band]] table")]
struct RawBand {
    name: Spanned<String>,
    rate_per_minute: Spanned<RawMoney>,
    days: Option<Spanned<RawDays>>,
    hours: RawNames,
    provinces: RawNames,
    cities: RawNames,
}

/// `days = "mon-fri"` or `days = ["mon-fri", "holidays"]`.
#[derive(Debug)]
enum RawDays {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawDays {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DaysVisitor;

        impl<'de> Visitor<'de> for DaysVisitor {
            type Value = RawDays;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("days such as \"mon-fri\" or [\"sat-sun\", \"holidays\"]")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawDays, E> {
                Ok(RawDays::One(text.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawDays, A::Error> {
                let mut days = Vec::new();
                while let Some(day) = seq.next_element::<Spanned<String>>()? {
                    days.push(day);
                }
                Ok(RawDays::Many(days))
            }
        }

        deserializer.deserialize_any(DaysVisitor)
    }
}

/// What the tariffs refer to.
pub(crate) struct Catalogs<'c> {
    pub schedules: &'c Catalog,
    pub schedule_configs: &'c [ScheduleConfig],
}

/// The validation pass for `[[tariff]]`: the validated tariffs in file order, and the
/// catalog of their names.
pub(crate) fn validate(
    raw: ArraySection<RawTariff>,
    catalogs: &Catalogs<'_>,
    diagnostics: &mut Diagnostics,
) -> (Vec<Arc<Tariff>>, Catalog) {
    let mut names = Catalog::new(SECTION, "name", &raw);
    let mut tariffs = Vec::with_capacity(raw.entries.len());
    for (index, entry) in &raw.entries {
        let field = entry_field(SECTION, *index);
        let entry = entry.get_ref();
        let errors_before = diagnostics.count();
        check::name(&entry.name, || format!("{field}.name"), diagnostics);
        names.declare(
            entry.name.get_ref(),
            entry.name.span(),
            field.clone(),
            None,
            diagnostics,
        );
        let spec = spec(entry, &field, catalogs, diagnostics);
        // Only a tariff whose syntax was read whole goes to the rating crate's rules:
        // with a bad date left out, say, its verdict would be about another tariff.
        if diagnostics.count() > errors_before {
            continue;
        }
        let Some(spec) = spec else { continue };
        match Tariff::new(spec) {
            Ok(tariff) => tariffs.push(Arc::new(tariff)),
            Err(error) => {
                let (span, at, message) = error_site(&error, entry, &field);
                diagnostics.report(span, at, message);
            }
        }
    }
    names.add_malformed(&raw, diagnostics);
    (tariffs, names)
}

/// The tariff as written, with every syntax problem reported; `None` when a required
/// amount could not be read.
fn spec(
    entry: &RawTariff,
    field: &str,
    catalogs: &Catalogs<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<TariffSpec> {
    let rate_per_minute = billing::money(
        &entry.rate_per_minute,
        || format!("{field}.rate_per_minute"),
        diagnostics,
    );
    let optional = |raw: &Option<Spanned<RawMoney>>, key: &str, d: &mut Diagnostics| {
        raw.as_ref()
            .and_then(|raw| billing::money(raw, || format!("{field}.{key}"), d))
    };
    let connect_fee = optional(&entry.connect_fee, "connect_fee", diagnostics);
    let max_cost = optional(&entry.max_cost, "max_cost", diagnostics);
    // Out-of-range lengths are the rating crate's to refuse; a value beyond u32 is
    // passed as u32::MAX, which it refuses too.
    let seconds = |raw: &Spanned<u64>| u32::try_from(*raw.get_ref()).unwrap_or(u32::MAX);
    let increment = entry
        .increment
        .as_ref()
        .map_or(DEFAULT_INCREMENT_S, seconds);
    let first_increment = entry.first_increment.as_ref().map(seconds);

    // Public holidays and make-up working days are the state's calendar, the same for
    // business hours and for prices: `holidays_from` takes a [[schedule]]'s lists
    // rather than making the operator keep two copies in step each December. The
    // tariff's own lists add to them (a pricing-only holiday, say).
    let mut holidays: Vec<Date> = Vec::new();
    let mut workdays: Vec<Date> = Vec::new();
    // An enterprise's own schedule is its admin's to change: not the operator's prices'.
    let enterprise_schedule = entry.holidays_from.as_ref().and_then(|schedule| {
        match catalogs.schedules.resolve(schedule.get_ref()) {
            crate::names::Resolved::Found(Some(enterprise)) => Some((schedule, enterprise)),
            _ => None,
        }
    });
    if let Some((schedule, enterprise)) = enterprise_schedule {
        diagnostics.report(
            Some(schedule.span()),
            format!("{field}.holidays_from"),
            format!(
                "schedule {:?} is enterprise {enterprise:?}'s own; a tariff takes its holidays \
                 from a schedule without an enterprise (the operator's)",
                schedule.get_ref()
            ),
        );
    } else if let Some(schedule) = &entry.holidays_from
        && catalogs.schedules.check_reference(
            schedule,
            format!("{field}.holidays_from"),
            None,
            diagnostics,
        )
        && let Some(found) = catalogs
            .schedule_configs
            .iter()
            .find(|s| &s.name == schedule.get_ref())
    {
        holidays.extend(&found.holidays);
        workdays.extend(&found.workdays);
    }
    let own = |raw: &RawDates, key: &str, d: &mut Diagnostics| {
        let list = raw.as_ref().map(|l| l.get_ref().as_slice());
        validate_dates(list, &format!("{field}.{key}"), d)
            .into_iter()
            .map(|(date, _, _)| date)
            .collect::<Vec<_>>()
    };
    holidays.extend(own(&entry.holidays, "holidays", diagnostics));
    workdays.extend(own(&entry.workdays, "workdays", diagnostics));

    let bands = entry
        .band
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(position, band)| {
            band_spec(
                band.get_ref(),
                &format!("{field}.band[{position}]"),
                diagnostics,
            )
        })
        .collect();
    Some(TariffSpec {
        name: entry.name.get_ref().clone(),
        rate_per_minute: rate_per_minute?,
        increment,
        first_increment,
        connect_fee: connect_fee.unwrap_or(sihai_rating::Money::ZERO),
        max_cost,
        bands,
        holidays,
        workdays,
    })
}

fn band_spec(band: &RawBand, field: &str, diagnostics: &mut Diagnostics) -> Option<BandSpec> {
    check::name(&band.name, || format!("{field}.name"), diagnostics);
    let rate = billing::money(
        &band.rate_per_minute,
        || format!("{field}.rate_per_minute"),
        diagnostics,
    );
    // Either half of a time condition may be left out: days alone mean all day, hours
    // alone mean every day (holidays included).
    let time = (band.days.is_some() || band.hours.is_some()).then(|| TimeCondition {
        days: band
            .days
            .as_ref()
            .map_or(DaySet::ALL, |days| parse_days(days, field, diagnostics)),
        windows: match &band.hours {
            Some(hours) => validate_day(Some(hours), &format!("{field}.hours"), diagnostics)
                .into_iter()
                .map(|range| MinuteRange::new(range.start, range.end))
                .collect(),
            None => vec![MinuteRange::ALL_DAY],
        },
    });
    // Names are kept as the region table gives them (no 省/市 suffix), which is what a
    // caller's region is compared with.
    let region = (band.provinces.is_some() || band.cities.is_some()).then(|| {
        let provinces = band.provinces.as_ref().map_or_else(Vec::new, |list| {
            validate_provinces(
                Some(list.get_ref()),
                &format!("{field}.provinces"),
                diagnostics,
            )
        });
        let cities = band.cities.as_ref().map_or_else(Vec::new, |list| {
            validate_cities(list.get_ref(), &format!("{field}.cities"), diagnostics)
        });
        RegionCondition {
            provinces: provinces
                .iter()
                .map(|p| region_stem(p).to_owned())
                .collect(),
            cities,
        }
    });
    Some(BandSpec {
        name: band.name.get_ref().clone(),
        rate_per_minute: rate?,
        time,
        region,
    })
}

/// The cities of the region table calls are resolved with (prefecture level: `深圳`,
/// `苏州`; for the municipalities the city is the province, `上海`).
fn known_cities() -> &'static HashSet<&'static str> {
    static CITIES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    CITIES.get_or_init(|| {
        sihai_region::RegionTable::embedded()
            .cities()
            .map(|(_, city)| city)
            .collect()
    })
}

/// Each city must be one the region table knows, else the band could never apply.
/// Returns the names without their suffix (`深圳市` → `深圳`).
fn validate_cities(
    raw: &[Spanned<String>],
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<String> {
    let mut cities = Vec::with_capacity(raw.len());
    for (index, city) in raw.iter().enumerate() {
        let stem = region_stem(city.get_ref().trim());
        if known_cities().contains(stem) {
            cities.push(stem.to_owned());
        } else {
            diagnostics.report(
                Some(city.span()),
                format!("{field}[{index}]"),
                format!(
                    "unknown city {:?}: not in the region table; write a prefecture-level \
                     city as it names them, e.g. \"深圳\" or \"苏州\" (a province goes in \
                     provinces)",
                    city.get_ref()
                ),
            );
        }
    }
    cities
}

/// Short and long day names, Monday first.
const DAY_NAMES: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Monday),
    ("tue", "tuesday", Weekday::Tuesday),
    ("wed", "wednesday", Weekday::Wednesday),
    ("thu", "thursday", Weekday::Thursday),
    ("fri", "friday", Weekday::Friday),
    ("sat", "saturday", Weekday::Saturday),
    ("sun", "sunday", Weekday::Sunday),
];

fn parse_days(raw: &Spanned<RawDays>, field: &str, diagnostics: &mut Diagnostics) -> DaySet {
    let field = format!("{field}.days");
    let mut days = DaySet::EMPTY;
    let mut one =
        |text: &str, span: Range<usize>, at: String, d: &mut Diagnostics| match day_item(text) {
            Ok(set) => days = days.union(set),
            Err(problem) => d.report(Some(span), at, problem),
        };
    match raw.get_ref() {
        RawDays::One(text) => one(text, raw.span(), field, diagnostics),
        RawDays::Many(items) => {
            for (index, item) in items.iter().enumerate() {
                one(
                    item.get_ref(),
                    item.span(),
                    format!("{field}[{index}]"),
                    diagnostics,
                );
            }
        }
    }
    days
}

/// `"mon"`, `"monday"`, a range `"mon-fri"` (Monday first, no wrap), or `"holidays"`.
fn day_item(text: &str) -> Result<DaySet, String> {
    let day = |name: &str| {
        DAY_NAMES
            .iter()
            .position(|(short, long, _)| *short == name || *long == name)
    };
    let problem = || {
        format!(
            "unknown days {text:?}: expected a day (\"mon\" to \"sun\", or \"monday\"), a range \
             such as \"mon-fri\", or \"holidays\""
        )
    };
    let text_lower = text.trim().to_ascii_lowercase();
    if text_lower == "holidays" {
        return Ok(DaySet::HOLIDAYS);
    }
    let (first, last) = match text_lower.split_once('-') {
        Some((first, last)) => (
            day(first.trim()).ok_or_else(problem)?,
            day(last.trim()).ok_or_else(problem)?,
        ),
        None => {
            let only = day(&text_lower).ok_or_else(problem)?;
            (only, only)
        }
    };
    if first > last {
        return Err(format!(
            "{text:?} runs backwards: a range goes from Monday towards Sunday; write two, \
             e.g. [\"fri-sun\", \"mon\"]"
        ));
    }
    Ok(DAY_NAMES[first..=last]
        .iter()
        .fold(DaySet::EMPTY, |set, (_, _, weekday)| {
            set.union(DaySet::weekday(*weekday))
        }))
}

/// Where a [`TariffError`] is reported: the setting it is about, its field path and the
/// message (a band's problem without the band's name, which the path already gives).
fn error_site(
    error: &TariffError,
    entry: &RawTariff,
    field: &str,
) -> (Option<Range<usize>>, String, String) {
    let at = |key: &str| format!("{field}.{key}");
    let whole = || (None, field.to_owned(), error.to_string());
    let bands = entry.band.as_deref().unwrap_or_default();
    match error {
        TariffError::EmptyName => (Some(entry.name.span()), at("name"), error.to_string()),
        TariffError::Increment(_) => match &entry.increment {
            Some(raw) => (Some(raw.span()), at("increment"), error.to_string()),
            None => whole(),
        },
        TariffError::FirstIncrement(_) => match &entry.first_increment {
            Some(raw) => (Some(raw.span()), at("first_increment"), error.to_string()),
            None => whole(),
        },
        TariffError::NegativeRate(_) => (
            Some(entry.rate_per_minute.span()),
            at("rate_per_minute"),
            error.to_string(),
        ),
        TariffError::NegativeConnectFee(_) => match &entry.connect_fee {
            Some(raw) => (Some(raw.span()), at("connect_fee"), error.to_string()),
            None => whole(),
        },
        TariffError::MaxCostNotPositive(_) | TariffError::MaxCostBelowConnectFee { .. } => {
            match &entry.max_cost {
                Some(raw) => (Some(raw.span()), at("max_cost"), error.to_string()),
                None => whole(),
            }
        }
        TariffError::TooManyBands(_) => match bands.get(sihai_rating::MAX_BANDS) {
            Some(extra) => (
                Some(extra.span()),
                format!("{field}.band[{}]", sihai_rating::MAX_BANDS),
                error.to_string(),
            ),
            None => whole(),
        },
        TariffError::UnnamedBand { position } => {
            let index = position.saturating_sub(1);
            match bands.get(index) {
                Some(band) => (
                    Some(band.get_ref().name.span()),
                    format!("{field}.band[{index}].name"),
                    error.to_string(),
                ),
                None => whole(),
            }
        }
        TariffError::Band { index, problem, .. } => match bands.get(*index) {
            Some(band) => band_site(problem, band, &format!("{field}.band[{index}]")),
            None => whole(),
        },
        TariffError::HolidayAndWorkday { date } => {
            let written_in = |raw: &RawDates, key: &str| {
                raw.as_ref().and_then(|list| {
                    list.get_ref().iter().enumerate().find_map(|(i, d)| {
                        let parsed = match d.get_ref() {
                            RawDate::Text(text) => crate::schedule::parse_date_text(text).ok(),
                            RawDate::Toml(_) => None,
                        };
                        let same = parsed == Some(*date)
                            || matches!(d.get_ref(), RawDate::Toml(t) if t.to_string() == date.to_string());
                        same.then(|| (Some(d.span()), format!("{field}.{key}[{i}]")))
                    })
                })
            };
            let message = format!(
                "{date} is both a holiday and a make-up working day; remove it from one of the lists"
            );
            let located = written_in(&entry.workdays, "workdays")
                .or_else(|| written_in(&entry.holidays, "holidays"))
                .or_else(|| {
                    entry
                        .holidays_from
                        .as_ref()
                        .map(|raw| (Some(raw.span()), at("holidays_from")))
                });
            match located {
                Some((span, path)) => (span, path, message),
                None => (None, field.to_owned(), message),
            }
        }
        _ => whole(),
    }
}

fn band_site(
    problem: &BandProblem,
    band: &Spanned<RawBand>,
    field: &str,
) -> (Option<Range<usize>>, String, String) {
    let raw = band.get_ref();
    let message = problem.to_string();
    let at =
        |span: Range<usize>, key: &str| (Some(span), format!("{field}.{key}"), message.clone());
    let whole = || (Some(band.span()), field.to_owned(), message.clone());
    match problem {
        BandProblem::ReservedName | BandProblem::Duplicate => at(raw.name.span(), "name"),
        BandProblem::NegativeRate(_) => at(raw.rate_per_minute.span(), "rate_per_minute"),
        BandProblem::NoDays => raw
            .days
            .as_ref()
            .map_or_else(whole, |d| at(d.span(), "days")),
        BandProblem::NoWindows | BandProblem::BadWindow { .. } => raw
            .hours
            .as_ref()
            .map_or_else(whole, |h| at(h.span(), "hours")),
        BandProblem::NoRegions | BandProblem::EmptyRegionName => {
            match (&raw.provinces, &raw.cities) {
                (Some(p), _) => at(p.span(), "provinces"),
                (None, Some(c)) => at(c.span(), "cities"),
                (None, None) => whole(),
            }
        }
        _ => whole(),
    }
}

/// The tariffs by name, for resolving references after validation.
pub(crate) fn by_name(tariffs: &[Arc<Tariff>]) -> HashMap<&str, &Arc<Tariff>> {
    tariffs.iter().map(|t| (t.name(), t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_items() {
        assert_eq!(day_item("mon-fri"), Ok(DaySet::WORKWEEK));
        assert_eq!(day_item("Sat-Sun"), Ok(DaySet::WEEKEND));
        assert_eq!(day_item("holidays"), Ok(DaySet::HOLIDAYS));
        assert_eq!(day_item("monday"), Ok(DaySet::weekday(Weekday::Monday)));
        assert_eq!(day_item("mon-sun"), Ok(DaySet::EVERY_WEEKDAY));
        assert!(day_item("fri-mon").unwrap_err().contains("backwards"));
        for bad in ["", "fry", "mon-", "weekdays", "mon-fri-sat"] {
            assert!(day_item(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn region_table_cities() {
        assert!(known_cities().contains("深圳"));
        assert!(known_cities().contains("上海"));
        assert!(!known_cities().contains("深证"));
    }
}
