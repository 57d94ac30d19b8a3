//! Business hours: is a plan's schedule open at a given instant?
//!
//! Schedules are wall-clock times in `Asia/Shanghai` (China has one time zone and no
//! daylight saving since 1991), per weekday, with dated exceptions: holidays are closed
//! all day, make-up working days (调休) are open with the workday hours even when they
//! fall on a weekend.

use std::collections::HashSet;

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use sihai_config::{ScheduleConfig, TimeRange};

#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    weekly: [Vec<TimeRange>; 7],
    holidays: HashSet<Date>,
    workdays: HashSet<Date>,
    workday_hours: Vec<TimeRange>,
}

/// The zone every schedule is written in. Taken from the system's tz database when it
/// has it; UTC+8 otherwise, which is what `Asia/Shanghai` has been since 1991.
pub fn china_time_zone() -> TimeZone {
    TimeZone::get("Asia/Shanghai").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(8)))
}

impl Schedule {
    pub fn from_config(config: &ScheduleConfig) -> Schedule {
        Schedule {
            name: config.name.clone(),
            weekly: config.weekly.clone(),
            holidays: config.holidays.iter().copied().collect(),
            workdays: config.workdays.iter().copied().collect(),
            workday_hours: config.workday_hours.clone(),
        }
    }

    /// Whether the schedule is open at `at`, judged in `zone`.
    pub fn is_open(&self, at: Timestamp, zone: &TimeZone) -> bool {
        let local = at.to_zoned(zone.clone());
        let date = local.date();
        let minute = u16::from(local.hour() as u8) * 60 + u16::from(local.minute() as u8);
        let ranges = if self.holidays.contains(&date) {
            return false;
        } else if self.workdays.contains(&date) {
            &self.workday_hours
        } else {
            &self.weekly[weekday_index(date.weekday())]
        };
        ranges.iter().any(|r| r.start <= minute && minute < r.end)
    }
}

fn weekday_index(day: Weekday) -> usize {
    usize::from(day.to_monday_zero_offset() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u16, end: u16) -> TimeRange {
        TimeRange { start, end }
    }

    fn office() -> Schedule {
        let day = vec![range(9 * 60, 12 * 60), range(13 * 60 + 30, 18 * 60)];
        let mut weekly: [Vec<TimeRange>; 7] = Default::default();
        for w in weekly.iter_mut().take(5) {
            *w = day.clone();
        }
        Schedule {
            name: "office".into(),
            weekly,
            holidays: [jiff::civil::date(2026, 10, 1)].into_iter().collect(),
            workdays: [jiff::civil::date(2026, 9, 27)].into_iter().collect(),
            workday_hours: vec![range(9 * 60, 18 * 60)],
        }
    }

    fn at(s: &str) -> Timestamp {
        // Shanghai wall-clock → instant.
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(china_time_zone())
            .unwrap()
            .timestamp()
    }

    #[test]
    fn weekly_hours_exceptions_and_edges() {
        let s = office();
        let tz = china_time_zone();
        assert!(
            s.is_open(at("2026-11-23T09:00"), &tz),
            "Monday opening minute"
        );
        assert!(!s.is_open(at("2026-11-23T08:59"), &tz));
        assert!(!s.is_open(at("2026-11-23T12:30"), &tz), "lunch");
        assert!(s.is_open(at("2026-11-23T17:59"), &tz));
        assert!(!s.is_open(at("2026-11-23T18:00"), &tz), "end is exclusive");
        assert!(!s.is_open(at("2026-11-22T10:00"), &tz), "Sunday closed");
        assert!(
            !s.is_open(at("2026-10-01T10:00"), &tz),
            "National Day holiday on a Thursday"
        );
        assert!(
            s.is_open(at("2026-09-27T12:30"), &tz),
            "make-up workday on a Sunday uses workday hours"
        );
        // 01:30 UTC is 09:30 in Shanghai.
        assert!(s.is_open("2026-11-23T01:30:00Z".parse().unwrap(), &tz));
    }
}
