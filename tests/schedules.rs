//! Business hours end to end: a plan's `[[schedule]]` with its holidays and make-up
//! workdays (调休), decided on the daemon's clock in Asia/Shanghai. (A schedule with
//! no hours at all, after-hours groups and the missed-call webhook are in
//! tests/calls.rs.) The dates are yesterday, today and tomorrow in China, so a test
//! running across midnight still finds today among them.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::routing::{group, only_cdr, phone, routing};
use support::{Caller, Daemon, Phone};

/// "YYYY-MM-DD" of yesterday, today and tomorrow in China (UTC+8, no summer time).
fn days_around_today_in_china() -> [String; 3] {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let today = ((now + 8 * 3600) / 86_400) as i64;
    [today - 1, today, today + 1].map(civil_date)
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (H. Hinnant's algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[test]
fn civil_dates_are_right() {
    assert_eq!(civil_date(0), "1970-01-01");
    assert_eq!(civil_date(19_782), "2024-02-29");
    assert_eq!(civil_date(20_454), "2026-01-01");
}

fn quoted(dates: &[String]) -> String {
    dates
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

const ALL_WEEK: &str = "monday = [\"00:00-24:00\"]\ntuesday = [\"00:00-24:00\"]\n\
    wednesday = [\"00:00-24:00\"]\nthursday = [\"00:00-24:00\"]\nfriday = [\"00:00-24:00\"]\n\
    saturday = [\"00:00-24:00\"]\nsunday = [\"00:00-24:00\"]\n";

#[test]
fn a_holiday_closes_a_day_the_weekday_hours_would_open() {
    // Open around the clock every day of the week, but today is a holiday: refused
    // as after hours (480), though the phone would answer.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"\nschedule = \"office\"",
            &format!(
                "{}\n[[schedule]]\nname = \"office\"\n{ALL_WEEK}holidays = [{}]\n",
                group(
                    "sales",
                    "sequential",
                    &[phone(&answers.uri("13900000001"), "")]
                ),
                quoted(&days_around_today_in_china())
            ),
        ),
    );
    Caller::refused(&daemon, 480).run();
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "after_hours", "{cdr:#?}");
    assert_eq!(cdr.attempts, "", "{cdr:#?}");
    // The same schedule without the holidays puts the call through: it was the
    // holiday that closed it.
    daemon.rewrite_routing(
        "",
        &routing(
            "",
            "group = \"sales\"\nschedule = \"office\"",
            &format!(
                "{}\n[[schedule]]\nname = \"office\"\n{ALL_WEEK}",
                group(
                    "sales",
                    "sequential",
                    &[phone(&answers.uri("13900000001"), "")]
                ),
            ),
        ),
    );
    daemon.hangup();
    daemon.wait_for_log(
        "configuration reloaded trigger=\"SIGHUP\"",
        1,
        std::time::Duration::from_secs(5),
    );
    Caller::new(&daemon, "uac_answered.xml").run();
    answers.finish(&daemon);
}

#[test]
fn a_make_up_workday_opens_a_day_the_weekday_hours_keep_closed() {
    // No weekday has hours: closed all week, but today is a make-up workday with its
    // own hours, so the call rings.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"\nschedule = \"office\"",
            &format!(
                "{}\n[[schedule]]\nname = \"office\"\nworkdays = [{}]\nworkday_hours = [\"00:00-24:00\"]\n",
                group(
                    "sales",
                    "sequential",
                    &[phone(&answers.uri("13900000001"), "")]
                ),
                quoted(&days_around_today_in_china())
            ),
        ),
    );
    Caller::new(&daemon, "uac_answered.xml").run();
    answers.finish(&daemon);
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
}

/// An hour and a half of opening hours that is twelve hours away from now in China,
/// so that "now" is outside it on every day.
fn hours_away_from_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let hour = ((now + 8 * 3600) / 3600 + 12) % 24;
    format!("[\"{hour:02}:00-{hour:02}:30\"]")
}

#[test]
fn a_make_up_workday_without_workday_hours_keeps_mondays_hours() {
    // workday_hours left out: today, a make-up workday, is open as Monday is. First
    // Monday is open around the clock and no other day has hours, so the call rings;
    // then every other day is open around the clock and Monday only twelve hours from
    // now, so it is refused (480). Were the workday to keep its own weekday's hours,
    // or none, one of the two would go the other way (unless today is a Monday, when
    // both agree anyway).
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let sales = group(
        "sales",
        "sequential",
        &[phone(&answers.uri("13900000001"), "")],
    );
    let days = quoted(&days_around_today_in_china());
    let plan = "group = \"sales\"\nschedule = \"office\"";
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            plan,
            &format!(
                "{sales}\n[[schedule]]\nname = \"office\"\nmonday = [\"00:00-24:00\"]\nworkdays = [{days}]\n"
            ),
        ),
    );
    Caller::new(&daemon, "uac_answered.xml").run();
    answers.finish(&daemon);
    assert_eq!(only_cdr(&daemon).outcome, "answered");

    daemon.rewrite_routing(
        "",
        &routing(
            "",
            plan,
            &format!(
                "{sales}\n[[schedule]]\nname = \"office\"\n{}monday = {}\nworkdays = [{days}]\n",
                ALL_WEEK.replace("monday = [\"00:00-24:00\"]\n", ""),
                hours_away_from_now()
            ),
        ),
    );
    daemon.hangup();
    daemon.wait_for_log(
        "configuration reloaded trigger=\"SIGHUP\"",
        1,
        std::time::Duration::from_secs(5),
    );
    Caller::refused(&daemon, 480).caller("13800138001").run();
    let rows = daemon.wait_for_cdrs(2);
    let refused = rows
        .iter()
        .find(|r| r.caller == "13800138001")
        .unwrap_or_else(|| panic!("no CDR of the refused call: {rows:#?}"));
    assert_eq!(refused.outcome, "after_hours", "{rows:#?}");
}
