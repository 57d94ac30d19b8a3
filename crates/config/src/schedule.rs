//! `[[schedule]]`: business hours, by weekday, with dated exceptions.
//!
//! Times are wall-clock times in `Asia/Shanghai`. A holiday is closed all day; a
//! make-up working day (调休, often a weekend day before or after a long holiday) is open
//! with `workday_hours`, whatever its weekday.
//!
//! A schedule with `enterprise` is that enterprise's own (its admin keeps it through the
//! admin API): only its plans may use it. Without one it is the operator's, for every
//! enterprise's plans and for tariffs' `holidays_from`.

use std::collections::HashMap;
use std::fmt;

use jiff::civil::Date;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use toml::Spanned;

use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "schedule";

/// The weekday keys, Monday first, as [`ScheduleConfig::weekly`] is indexed.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Minutes since midnight, [start, end), end <= 1440.
///
/// `start < end` always: a range never passes midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeRange {
    pub start: u16,
    pub end: u16,
}

impl TimeRange {
    /// Whether `minute` (since midnight) is in the range.
    pub fn contains(&self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

impl fmt::Display for TimeRange {
    /// `09:00-12:00`, as written in the file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// One schedule, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Unique among schedules.
    pub name: String,
    /// The enterprise whose own schedule this is; `None`: the operator's.
    pub enterprise: Option<String>,
    /// Opening hours per weekday, Monday first (see [`WEEKDAYS`]); empty = closed. Each
    /// day's ranges are sorted and do not overlap.
    pub weekly: [Vec<TimeRange>; 7],
    /// Closed all day.
    pub holidays: Vec<Date>,
    /// Open with `workday_hours`, whatever the weekday. Never also a holiday.
    pub workdays: Vec<Date>,
    /// Hours of the make-up working days; Monday's hours unless written. Sorted, no
    /// overlaps.
    pub workday_hours: Vec<TimeRange>,
}

type RawRanges = Option<Spanned<Vec<Spanned<String>>>>;

/// One `[[schedule]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[schedule]] table")]
pub(crate) struct RawSchedule {
    name: Spanned<String>,
    enterprise: Option<Spanned<String>>,
    monday: RawRanges,
    tuesday: RawRanges,
    wednesday: RawRanges,
    thursday: RawRanges,
    friday: RawRanges,
    saturday: RawRanges,
    sunday: RawRanges,
    holidays: Option<Vec<Spanned<RawDate>>>,
    workdays: Option<Spanned<Vec<Spanned<RawDate>>>>,
    workday_hours: RawRanges,
}

/// A date as written: a string `"2026-10-01"` or a TOML local date `2026-10-01`.
#[derive(Debug)]
pub(crate) enum RawDate {
    Text(String),
    Toml(toml::value::Datetime),
}

impl<'de> Deserialize<'de> for RawDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;

        impl<'de> Visitor<'de> for DateVisitor {
            type Value = RawDate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date such as \"2026-10-01\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawDate, E> {
                Ok(RawDate::Text(text.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDate, A::Error> {
                let datetime = toml::value::Datetime::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(RawDate::Toml(datetime))
            }
        }

        deserializer.deserialize_any(DateVisitor)
    }
}

/// Each schedule's `enterprise` as written, with its field: schedules are validated
/// before enterprises (tariffs take their holidays, enterprises name tariffs), so these
/// are checked once the enterprises are known ([`check_owners`]).
pub(crate) type Owners = Vec<(Spanned<String>, String)>;

/// The validation pass for `[[schedule]]`: the schedules, the catalog of their names
/// with their enterprises, and those enterprises to check.
pub(crate) fn validate(
    raw: ArraySection<RawSchedule>,
    diagnostics: &mut Diagnostics,
) -> (Vec<ScheduleConfig>, Catalog, Owners) {
    let mut names = Catalog::new(SECTION, "name", &raw);
    let mut schedules = Vec::with_capacity(raw.entries.len());
    let mut owners = Owners::new();
    for (index, entry) in &raw.entries {
        let field = entry_field(SECTION, *index);
        let entry = entry.get_ref();
        check::name(&entry.name, || format!("{field}.name"), diagnostics);
        if let Some(enterprise) = &entry.enterprise {
            owners.push((enterprise.clone(), format!("{field}.enterprise")));
        }
        names.declare(
            entry.name.get_ref(),
            entry.name.span(),
            field.clone(),
            entry.enterprise.as_ref().map(|e| e.get_ref().clone()),
            diagnostics,
        );
        let days = [
            &entry.monday,
            &entry.tuesday,
            &entry.wednesday,
            &entry.thursday,
            &entry.friday,
            &entry.saturday,
            &entry.sunday,
        ];
        let mut weekly: [Vec<TimeRange>; 7] = Default::default();
        for ((hours, raw), day) in weekly.iter_mut().zip(days).zip(WEEKDAYS) {
            *hours = validate_day(raw.as_ref(), &format!("{field}.{day}"), diagnostics);
        }
        let workday_hours = match &entry.workday_hours {
            Some(raw) => validate_day(Some(raw), &format!("{field}.workday_hours"), diagnostics),
            None => weekly[0].clone(),
        };
        let holidays = validate_dates(
            entry.holidays.as_deref(),
            &format!("{field}.holidays"),
            diagnostics,
        );
        let workday_list = entry.workdays.as_ref().map(|w| w.get_ref().as_slice());
        let workdays = validate_dates(workday_list, &format!("{field}.workdays"), diagnostics);

        let holiday_lines: HashMap<Date, (usize, usize)> = holidays
            .iter()
            .map(|(date, position, span)| (*date, (*position, diagnostics.source.line_of(span))))
            .collect();
        for (date, position, span) in &workdays {
            if let Some((holiday, line)) = holiday_lines.get(date) {
                diagnostics.report(
                    Some(span.clone()),
                    format!("{field}.workdays[{position}]"),
                    format!(
                        "{date} is both a holiday ({field}.holidays[{holiday}] at line {line}) and a \
                         make-up working day; remove it from one of the lists"
                    ),
                );
            }
        }
        if let Some(raw_workdays) = &entry.workdays
            && !workdays.is_empty()
            && entry.workday_hours.is_none()
            && entry.monday.is_none()
        {
            diagnostics.report(
                Some(raw_workdays.span()),
                format!("{field}.workdays"),
                "make-up working days take workday_hours, or Monday's hours when it is not \
                 written, but this schedule has neither; add workday_hours = [\"09:00-18:00\"]",
            );
        }
        schedules.push(ScheduleConfig {
            name: entry.name.get_ref().clone(),
            enterprise: entry.enterprise.as_ref().map(|e| e.get_ref().clone()),
            weekly,
            holidays: holidays.into_iter().map(|(date, _, _)| date).collect(),
            workdays: workdays.into_iter().map(|(date, _, _)| date).collect(),
            workday_hours,
        });
    }
    names.add_malformed(&raw, diagnostics);
    (schedules, names, owners)
}

/// That each schedule's `enterprise` is a declared enterprise.
pub(crate) fn check_owners(owners: &Owners, enterprises: &Catalog, diagnostics: &mut Diagnostics) {
    for (enterprise, field) in owners {
        enterprises.check_reference(enterprise, field.clone(), None, diagnostics);
    }
}

/// One day's ranges: each well-formed, none overlapping; returned sorted.
pub(crate) fn validate_day(
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<TimeRange> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    // (range, index in the file's list, line)
    let mut ranges: Vec<(TimeRange, usize, usize)> = Vec::new();
    for (index, text) in raw.get_ref().iter().enumerate() {
        match parse_range(text.get_ref()) {
            Ok(range) => {
                let line = diagnostics.source.line_of(&text.span());
                let overlapping = ranges
                    .iter()
                    .find(|(other, _, _)| range.start < other.end && other.start < range.end);
                if let Some((other, other_index, other_line)) = overlapping {
                    diagnostics.report(
                        Some(text.span()),
                        format!("{field}[{index}]"),
                        format!(
                            "{range} overlaps {other} ({field}[{other_index}] at line {other_line})"
                        ),
                    );
                } else {
                    ranges.push((range, index, line));
                }
            }
            Err(problem) => diagnostics.report(
                Some(text.span()),
                format!("{field}[{index}]"),
                format!("invalid time range {:?}: {problem}", text.get_ref()),
            ),
        }
    }
    let mut ranges: Vec<TimeRange> = ranges.into_iter().map(|(range, _, _)| range).collect();
    ranges.sort();
    ranges
}

/// Parses `"HH:MM-HH:MM"`.
pub(crate) fn parse_range(text: &str) -> Result<TimeRange, String> {
    const FORMAT: &str = "expected \"HH:MM-HH:MM\" with two-digit hours and minutes, e.g. \"09:00-18:00\" (\"00:00-24:00\" for all day)";
    let Some((start, end)) = text.split_once('-') else {
        return Err(FORMAT.to_owned());
    };
    let (Some(start), Some(end)) = (parse_time(start), parse_time(end)) else {
        return Err(FORMAT.to_owned());
    };
    let start = start?;
    let end = end?;
    if start >= end {
        return Err(
            "the start must be before the end (a range cannot pass midnight; \
                    split it into \"22:00-24:00\" and \"00:00-06:00\" on the next day)"
                .to_owned(),
        );
    }
    Ok(TimeRange { start, end })
}

/// Minutes since midnight of `HH:MM`: `None` when not in that shape, `Some(Err)` when
/// out of range.
fn parse_time(text: &str) -> Option<Result<u16, String>> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 5
        && bytes[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| bytes[i].is_ascii_digit());
    if !shaped {
        return None;
    }
    let hour = u16::from(bytes[0] - b'0') * 10 + u16::from(bytes[1] - b'0');
    let minute = u16::from(bytes[3] - b'0') * 10 + u16::from(bytes[4] - b'0');
    Some(if minute > 59 {
        Err(format!("{text}: minutes must be 00 to 59"))
    } else if hour > 24 || (hour == 24 && minute != 0) {
        Err(format!(
            "{text}: hours must be 00 to 24, and 24 only as 24:00 (the end of the day)"
        ))
    } else {
        Ok(hour * 60 + minute)
    })
}

/// Dates with their index in the list and their span; bad ones reported and left out.
pub(crate) fn validate_dates(
    raw: Option<&[Spanned<RawDate>]>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<(Date, usize, std::ops::Range<usize>)> {
    let mut dates = Vec::new();
    for (index, date) in raw.unwrap_or_default().iter().enumerate() {
        match parse_date(date.get_ref()) {
            Ok(parsed) => dates.push((parsed, index, date.span())),
            Err(problem) => {
                diagnostics.report(Some(date.span()), format!("{field}[{index}]"), problem)
            }
        }
    }
    dates
}

fn parse_date(raw: &RawDate) -> Result<Date, String> {
    match raw {
        RawDate::Text(text) => parse_date_text(text),
        RawDate::Toml(datetime) => match datetime {
            toml::value::Datetime {
                date: Some(date),
                time: None,
                offset: None,
            } => Date::new(
                i16::try_from(date.year).map_err(|_| format!("invalid date {datetime}"))?,
                i8::try_from(date.month).map_err(|_| format!("invalid date {datetime}"))?,
                i8::try_from(date.day).map_err(|_| format!("invalid date {datetime}"))?,
            )
            .map_err(|error| format!("invalid date {datetime}: {error}")),
            _ => Err(format!(
                "invalid date {datetime}: expected a date alone, without a time, e.g. 2026-10-01"
            )),
        },
    }
}

/// `YYYY-MM-DD`, a real calendar date.
pub(crate) fn parse_date_text(text: &str) -> Result<Date, String> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| bytes[i].is_ascii_digit());
    let number =
        |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<i16>().ok());
    let parts = (number(0..4), number(5..7), number(8..10));
    let (true, (Some(year), Some(month), Some(day))) = (shaped, parts) else {
        return Err(format!(
            "invalid date {text:?}: expected \"YYYY-MM-DD\", e.g. \"2026-10-01\""
        ));
    };
    let (Ok(month), Ok(day)) = (i8::try_from(month), i8::try_from(day)) else {
        return Err(format!("invalid date {text:?}"));
    };
    Date::new(year, month, day).map_err(|_| {
        format!("invalid date {text:?}: there is no day {day} in month {month} of {year}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(
            parse_range("09:00-12:00"),
            Ok(TimeRange {
                start: 540,
                end: 720
            })
        );
        assert_eq!(
            parse_range("00:00-24:00"),
            Ok(TimeRange {
                start: 0,
                end: 1440
            })
        );
        assert_eq!(
            parse_range("13:30-18:05").map(|r| r.to_string()),
            Ok("13:30-18:05".into())
        );
        for bad in [
            "9:00-12:00",
            "09:00 - 12:00",
            "09:00",
            "09:00-",
            "0900-1200",
            "09:00-12:00-13:00",
            "０９:00-12:00",
            "09:60-10:00",
            "24:30-24:40",
            "25:00-26:00",
        ] {
            assert!(parse_range(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_range("12:00-09:00")
                .unwrap_err()
                .contains("before the end")
        );
        assert!(parse_range("12:00-12:00").is_err());
        assert!(parse_range("22:00-24:01").unwrap_err().contains("24:00"));
    }

    #[test]
    fn dates_parse() {
        assert_eq!(
            parse_date_text("2026-10-01"),
            Ok(jiff::civil::date(2026, 10, 1))
        );
        assert_eq!(
            parse_date_text("2028-02-29"),
            Ok(jiff::civil::date(2028, 2, 29))
        );
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-1",
            "2026/10/01",
            "20261001",
            "2026-10-01T00:00",
            "",
            "+026-10-01",
        ] {
            assert!(parse_date_text(bad).is_err(), "{bad:?}");
        }
    }
}
