//! What the admin API's call records cost over a busy enterprise's month: 1,000,000 CDRs
//! of one enterprise in March 2026 (Asia/Shanghai), 33,000 a day weighted to office
//! hours, plus 100,000 of another enterprise interleaved so the enterprise filter has
//! something to skip. Measured, per query of the API's CDR routes:
//!
//! - a filtered page (one day, answered, 50 calls: what the portal's call list asks),
//! - the first page of the month's missed calls (`outcome IN (…)`),
//! - a page deep in the month (keyset `before` a call three weeks back: no OFFSET),
//! - one caller's calls over the month,
//! - the month's charged calls counted and summed, as the bill asks,
//! - one day streamed as CSV the way `cdrs.csv` reads it (1,000 calls a query).
//!
//! Then, once, the whole month as CSV page by page, with its time and how much the
//! process's peak resident memory grew: the export must not hold the month in memory.
//!
//! And the traffic analysis (`GET …/analytics`, issue 14): the rollups emptied and
//! rebuilt from all 1,100,000 CDRs, batch by batch as the daemon's job does (timed);
//! the month folded from its CDRs as before rollups (timed once, the reference); the
//! month from the rollups, checked equal to it figure for figure, then measured, for
//! the enterprise and for one of its numbers.
//!
//! The generated database (about 400 MB) is kept under the target directory and
//! reused by the next run; delete `cdr-1m.sqlite` there to regenerate it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use sihai_store::{
    AnalyticsStore, Cdr, CdrFilter, CdrStore, HangupSide, Money, Outcome, PhoneAttempt,
    SqliteStore, report,
};

const CALLS: u64 = 1_000_000;
const OTHER_CALLS: u64 = 100_000;
/// What `cdrs.csv` reads at a time (crates/api `records.rs`).
const EXPORT_PAGE: usize = 1000;
/// The API's default page.
const PAGE: usize = 50;
const MISSED: [Outcome; 5] = [
    Outcome::NoAnswer,
    Outcome::Busy,
    Outcome::AfterHours,
    Outcome::Cancelled,
    Outcome::Failed,
];

/// A small deterministic generator (xorshift64*): the same month on every run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn shanghai(text: &str) -> Timestamp {
    text.parse::<jiff::civil::DateTime>()
        .and_then(|dt| dt.to_zoned(TimeZone::get("Asia/Shanghai")?))
        .map(|z| z.timestamp())
        .expect("a valid Shanghai time")
}

fn month_start() -> Timestamp {
    shanghai("2026-03-01T00:00:00")
}

/// The setup time of the `index`-th of `total` calls spread over the 31 days, most of
/// them between 09:00 and 18:00.
fn setup_time(dice: &mut Dice, index: u64, total: u64) -> Timestamp {
    let day = index * 31 / total;
    let second_of_day = if dice.below(10) < 8 {
        9 * 3600 + dice.below(9 * 3600)
    } else {
        dice.below(86_400)
    };
    let micros = ((day * 86_400 + second_of_day) * 1_000_000 + dice.below(1_000_000)) as i64;
    month_start()
        .checked_add(jiff::SignedDuration::from_micros(micros))
        .expect("inside the month")
}

fn generated(dice: &mut Dice, n: u64, enterprise: &str, at: Timestamp) -> Cdr {
    let roll = dice.below(100);
    let outcome = match roll {
        0..75 => Outcome::Answered,
        75..85 => Outcome::NoAnswer,
        85..90 => Outcome::Busy,
        90..93 => Outcome::Cancelled,
        93..95 => Outcome::AfterHours,
        95..97 => Outcome::Failed,
        97..99 => Outcome::Blacklisted,
        _ => Outcome::Rejected,
    };
    let answered = outcome == Outcome::Answered;
    let talk = if answered {
        dice.below(600) as u32 + 5
    } else {
        0
    };
    let phones = 1 + dice.below(3);
    let attempts = (0..phones)
        .map(|p| PhoneAttempt {
            phone: format!("1390000{:04}", p),
            result: if answered && p + 1 == phones {
                "answered".into()
            } else {
                "no_answer".into()
            },
        })
        .collect();
    Cdr {
        call_id: format!("{n:016x}-{enterprise}@bench"),
        number: format!("400123456{}", dice.below(3)),
        enterprise: enterprise.into(),
        // 200,000 distinct callers: many call more than once in a month.
        caller: format!("138{:08}", dice.below(200_000)),
        caller_province: Some("广东".into()),
        caller_city: Some("深圳".into()),
        answered_by: answered.then(|| "13900000001".into()),
        attempts,
        setup_at: at,
        ring_at: Some(at),
        answer_at: answered.then_some(at),
        end_at: at,
        talk_seconds: talk,
        outcome,
        hangup_side: Some(HangupSide::Caller),
        hangup_cause: Some("BYE".into()),
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds: talk.div_ceil(60) * 60,
        cost: answered.then(|| Money::from_units(i64::from(talk.div_ceil(60)) * 2_500)),
        tariff: answered.then(|| "standard".into()),
        customer_id: None,
    }
}

/// The busy enterprise's calls in the database, counted by SQLite itself (loading a
/// million CDRs to count them would spoil the memory figure below).
fn count(path: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|db| {
            db.query_row(
                "SELECT count(*) FROM cdr WHERE enterprise = 'busy'",
                [],
                |row| row.get(0),
            )
        })
        .unwrap_or(0)
}

/// The month's database: reused when a previous run left it complete.
fn month_database() -> (PathBuf, SqliteStore) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("cdr-1m.sqlite");
    let done = dir.join("cdr-1m.complete");
    if done.exists()
        && let Ok(store) = SqliteStore::open(&path, Duration::from_millis(50))
    {
        return (path, store);
    }
    for stale in [&path, &done] {
        let _ = std::fs::remove_file(stale);
    }
    let _ = std::fs::remove_file(path.with_extension("sqlite-wal"));
    let store = SqliteStore::open(&path, Duration::from_millis(50)).expect("create the store");
    let started = Instant::now();
    let mut dice = Dice(0x5eed_cafe_f00d_d00d);
    let total = CALLS + OTHER_CALLS;
    // Both enterprises' calls in setup order, as a live node writes them.
    for i in 0..total {
        let (enterprise, index, of) = if i % 11 == 10 {
            ("other", i / 11, OTHER_CALLS)
        } else {
            ("busy", i - i / 11, CALLS)
        };
        let at = setup_time(&mut dice, index, of);
        store
            .record(generated(&mut dice, i, enterprise, at), None)
            .expect("record");
        if i % 20_000 == 19_999 {
            store.flush().expect("commit");
        }
    }
    store.flush().expect("commit");
    eprintln!(
        "generated {total} CDRs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&done, b"").expect("mark the database complete");
    (path, store)
}

fn day(n: i64) -> (Timestamp, Timestamp) {
    let start = month_start()
        .checked_add(jiff::SignedDuration::from_hours(24 * n))
        .expect("day");
    let end = start
        .checked_add(jiff::SignedDuration::from_hours(24))
        .expect("day");
    (start, end)
}

/// Kilobytes of the process's peak resident memory (`VmHWM`), Linux only.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Streams a range as `cdrs.csv` does: pages of [`EXPORT_PAGE`], each formatted and
/// dropped before the next; returns the calls and bytes.
fn export(store: &SqliteStore, mut filter: CdrFilter) -> (usize, usize) {
    filter.limit = EXPORT_PAGE;
    let (mut calls, mut bytes) = (0, 0);
    loop {
        let page = store.query(&filter).expect("query a page");
        calls += page.len();
        bytes += report::format_csv(&page).len();
        match page.last() {
            Some(last) if page.len() == EXPORT_PAGE => {
                filter.before = Some((last.setup_at, last.call_id.clone()));
            }
            _ => return (calls, bytes),
        }
    }
}

fn cdr_queries(c: &mut Criterion) {
    let (path, store) = month_database();
    assert_eq!(
        count(&path),
        CALLS as i64,
        "{} holds the month",
        path.display()
    );
    let busy = || CdrFilter {
        enterprise: Some("busy".into()),
        ..CdrFilter::default()
    };
    let mut group = c.benchmark_group("cdr_query_1m");
    let (from, to) = day(14);
    group.bench_function("day_answered_page_50", |b| {
        b.iter(|| {
            let page = store
                .query(&CdrFilter {
                    since: Some(from),
                    until: Some(to),
                    outcome: Some(Outcome::Answered),
                    limit: PAGE + 1,
                    ..busy()
                })
                .expect("query");
            assert_eq!(page.len(), PAGE + 1);
        })
    });
    group.bench_function("month_missed_first_page_50", |b| {
        b.iter(|| {
            let page = store
                .query(&CdrFilter {
                    since: Some(month_start()),
                    outcomes: MISSED.to_vec(),
                    limit: PAGE + 1,
                    ..busy()
                })
                .expect("query");
            assert_eq!(page.len(), PAGE + 1);
        })
    });
    // A cursor three weeks back: the last call of day 9.
    let deep = store
        .query(&CdrFilter {
            until: Some(day(9).1),
            limit: 1,
            ..busy()
        })
        .expect("query")
        .pop()
        .expect("a call on day 9");
    group.bench_function("page_50_three_weeks_deep", |b| {
        b.iter(|| {
            let page = store
                .query(&CdrFilter {
                    before: Some((deep.setup_at, deep.call_id.clone())),
                    limit: PAGE + 1,
                    ..busy()
                })
                .expect("query");
            assert_eq!(page.len(), PAGE + 1);
        })
    });
    let caller = deep.caller.clone();
    group.bench_function("one_caller_month", |b| {
        b.iter(|| {
            let calls = store
                .query(&CdrFilter {
                    caller: Some(caller.clone()),
                    since: Some(month_start()),
                    limit: PAGE + 1,
                    ..busy()
                })
                .expect("query");
            assert!(!calls.is_empty());
        })
    });
    // The bill's call figures: the month's charged calls counted and summed.
    group.bench_function("bill_charged_calls_month", |b| {
        b.iter(|| {
            let (calls, _) = store
                .charged_calls("busy", month_start(), day(30).1)
                .expect("charged calls");
            assert!(calls > 700_000, "{calls}");
        })
    });
    group.sample_size(10);
    group.bench_function("csv_export_one_day", |b| {
        b.iter(|| {
            let (calls, _) = export(
                &store,
                CdrFilter {
                    since: Some(from),
                    until: Some(to),
                    ..busy()
                },
            );
            assert!(calls > 20_000, "{calls}");
        })
    });
    group.finish();

    // The whole month once: time, and what it added to peak memory.
    let before = peak_rss_kb();
    let started = Instant::now();
    let (calls, bytes) = export(
        &store,
        CdrFilter {
            since: Some(month_start()),
            ..busy()
        },
    );
    let elapsed = started.elapsed();
    let after = peak_rss_kb();
    println!(
        "csv_export_month: {calls} calls, {:.0} MB of CSV in {:.1} s; peak resident memory {} kB -> {} kB",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        before.map_or("?".into(), |v| v.to_string()),
        after.map_or("?".into(), |v| v.to_string()),
    );
}

/// The CDRs folded per roll-up pass, as the daemon's job does (crates/server
/// `rollups.rs`).
const ROLLUP_BATCH: usize = 500;

/// Rolls the whole database up from nothing, as a node upgraded to schema 10 does in
/// the background: the rollups are emptied and the watermark set back to 0 first, so
/// that every run measures the catch-up of all 1,100,000 CDRs.
fn catch_up(path: &Path, store: &SqliteStore) {
    rusqlite::Connection::open(path)
        .and_then(|db| {
            db.execute_batch(
                "DELETE FROM analytics_day; DELETE FROM analytics_caller;
                 DELETE FROM analytics_month_caller;
                 UPDATE analytics_watermark SET through_cdr = 0;",
            )
        })
        .expect("empty the rollups");
    let started = Instant::now();
    let (mut folded, mut passes, mut slowest) = (0, 0, Duration::ZERO);
    let (mut writer, mut slowest_writer) = (Duration::ZERO, Duration::ZERO);
    loop {
        let pass = Instant::now();
        let done = store.roll_up(ROLLUP_BATCH).expect("roll up");
        slowest = slowest.max(pass.elapsed());
        writer += done.writer_time;
        slowest_writer = slowest_writer.max(done.writer_time);
        folded += done.folded;
        passes += 1;
        if done.folded < ROLLUP_BATCH {
            break;
        }
    }
    println!(
        "analytics_catch_up: {folded} CDRs rolled up in {passes} passes of {ROLLUP_BATCH} in {:.1} s (slowest pass {} ms); the writer's share {:.1} s (slowest {} ms, mean {:.1} ms a pass)",
        started.elapsed().as_secs_f64(),
        slowest.as_millis(),
        writer.as_secs_f64(),
        slowest_writer.as_millis(),
        writer.as_secs_f64() * 1000.0 / f64::from(passes.max(1)),
    );
}

fn march() -> sihai_analytics::DayRange {
    sihai_analytics::DayRange::new(
        jiff::civil::date(2026, 3, 1),
        jiff::civil::date(2026, 3, 31),
    )
    .expect("March")
}

/// The traffic analysis of the month as `GET …/analytics` computes it: the month's
/// rollups merged, the CDRs after the watermark folded, the month's distinct callers
/// read, and which of them called before looked up.
fn from_rollups(store: &SqliteStore, number: Option<&str>) -> sihai_analytics::Report {
    let range = march();
    let analysis = store.analysis("busy", number, range).expect("analysis");
    let callers: Vec<String> = analysis.callers().map(str::to_owned).collect();
    let returning = store
        .callers_before("busy", &callers, range.start())
        .expect("returning callers");
    analysis.finish(&returning)
}

/// The month folded from every one of its CDRs, as `/analytics` did before rollups
/// (issue 13): the reference the rollup path must equal, figure for figure.
fn direct_fold(store: &SqliteStore) -> sihai_analytics::Report {
    let range = march();
    let started = Instant::now();
    let mut analysis = sihai_analytics::Analysis::new(range);
    let mut filter = CdrFilter {
        enterprise: Some("busy".into()),
        since: Some(range.start()),
        until: Some(range.end()),
        limit: 2000,
        ..CdrFilter::default()
    };
    loop {
        let page = store.query(&filter).expect("a page");
        for cdr in &page {
            analysis.add(cdr);
        }
        match page.last() {
            Some(last) if page.len() == 2000 => {
                filter.before = Some((last.setup_at, last.call_id.clone()));
            }
            _ => break,
        }
    }
    let callers: Vec<String> = analysis.callers().map(str::to_owned).collect();
    let returning = store
        .callers_before("busy", &callers, range.start())
        .expect("returning callers");
    let report = analysis.finish(&returning);
    println!(
        "analytics_month_direct_fold: {} calls, {} callers, in {:.1} s",
        report.totals.calls,
        callers.len(),
        started.elapsed().as_secs_f64()
    );
    report
}

fn analytics(c: &mut Criterion) {
    let (path, store) = month_database();
    catch_up(&path, &store);
    let reference = direct_fold(&store);
    // Once, by phase: the store's read (rollups, callers, the CDRs after the
    // watermark), then the returning callers' look-up.
    let started = Instant::now();
    let analysis = store.analysis("busy", None, march()).expect("analysis");
    let read = started.elapsed();
    let callers: Vec<String> = analysis.callers().map(str::to_owned).collect();
    let returning = store
        .callers_before("busy", &callers, march().start())
        .expect("returning callers");
    let rolled = analysis.finish(&returning);
    println!(
        "analytics_month_from_rollups (first): {:.2} s: rollups, {} callers and the tail read in {:.2} s, returning callers looked up in {:.2} s",
        started.elapsed().as_secs_f64(),
        callers.len(),
        read.as_secs_f64(),
        (started.elapsed() - read).as_secs_f64()
    );
    assert_eq!(rolled, reference, "the rollups disagree with the CDRs");
    let mut group = c.benchmark_group("analytics_1m");
    group.sample_size(10);
    group.bench_function("month_from_rollups", |b| {
        b.iter(|| {
            let report = from_rollups(&store, None);
            assert_eq!(report.totals.calls, CALLS);
        })
    });
    group.bench_function("month_one_number_from_rollups", |b| {
        b.iter(|| {
            let report = from_rollups(&store, Some("4001234560"));
            assert!(report.totals.calls > 300_000, "{}", report.totals.calls);
        })
    });
    group.finish();
}

criterion_group!(benches, cdr_queries, analytics);
criterion_main!(benches);
