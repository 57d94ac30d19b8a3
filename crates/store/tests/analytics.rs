//! The traffic analysis the store gives (`AnalyticsStore::analysis`: rollups merged,
//! the CDRs after the watermark folded live, the range's callers) equals the direct
//! fold over every CDR recorded, whatever the roll-up job has done: CDRs recorded in
//! chunks, in no order of their setup (a call set up days ago may end now), rolled up
//! in passes of random sizes at random moments, and compared after each chunk for two
//! enterprises, one number, and ranges of days and of whole months.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use jiff::civil::date;
use proptest::prelude::*;
use rusqlite::Connection;
use sihai_analytics::{Analysis, DayRange, Report};
use sihai_store::{
    AnalyticsStore, Cdr, CdrFilter, CdrStore, HangupSide, Money, Outcome, PhoneAttempt, SqliteStore,
};

use common::{DOWN_TO_V9, ts};

const PHONES: [&str; 3] = ["13900000001", "13900000002", "sip:desk@10.0.0.9"];
const NUMBERS: [&str; 2] = ["4001234567", "4007654321"];
const ENTERPRISES: [&str; 2] = ["acme", "globex"];

#[derive(Debug, Clone)]
struct Call {
    /// Seconds after 2026-02-28T00:00:00+08:00: from the day before the ranges to the
    /// day after.
    at: i64,
    outcome: usize,
    caller: u8,
    enterprise: usize,
    number: usize,
    tried: usize,
    talk: u32,
    ring_ms: Option<i64>,
    menu: Option<u8>,
    cost: Option<i64>,
    province: bool,
}

fn call() -> impl Strategy<Value = Call> {
    (
        (0i64..(6 * 86_400), 0usize..Outcome::ALL.len(), 0u8..25),
        (0usize..2, 0usize..2, 0usize..=PHONES.len()),
        (
            0u32..600,
            prop::option::of(0i64..9_000),
            prop::option::of(0u8..3),
        ),
        (prop::option::of(0i64..50_000), any::<bool>()),
    )
        .prop_map(
            |(
                (at, outcome, caller),
                (enterprise, number, tried),
                (talk, ring_ms, menu),
                (cost, province),
            )| Call {
                at,
                outcome,
                caller,
                enterprise,
                number,
                tried,
                talk,
                ring_ms,
                menu,
                cost,
                province,
            },
        )
}

fn cdr(n: usize, c: &Call) -> Cdr {
    let setup = ts("2026-02-27T16:00:00Z") + jiff::SignedDuration::from_secs(c.at);
    let outcome = Outcome::ALL[c.outcome];
    let answered = outcome == Outcome::Answered && c.tried > 0;
    let ring = c
        .ring_ms
        .map(|ms| setup + jiff::SignedDuration::from_millis(ms));
    let answer = answered.then(|| ring.unwrap_or(setup) + jiff::SignedDuration::from_secs(3));
    Cdr {
        call_id: format!("call-{n}"),
        number: NUMBERS[c.number].into(),
        enterprise: ENTERPRISES[c.enterprise].into(),
        caller: format!("1380000{:04}", c.caller),
        caller_province: c.province.then(|| "广东".into()),
        caller_city: c.province.then(|| "深圳".into()),
        answered_by: answered.then(|| PHONES[c.tried - 1].to_owned()),
        attempts: PHONES[..c.tried]
            .iter()
            .map(|p| PhoneAttempt {
                phone: (*p).into(),
                result: "no_answer".into(),
            })
            .collect(),
        setup_at: setup,
        ring_at: ring,
        answer_at: answer,
        end_at: answer.unwrap_or(setup) + jiff::SignedDuration::from_secs(c.talk.into()),
        talk_seconds: if answered { c.talk } else { 0 },
        outcome: if outcome == Outcome::Answered && !answered {
            Outcome::NoAnswer
        } else {
            outcome
        },
        hangup_side: Some(HangupSide::Caller),
        hangup_cause: None,
        recording: None,
        menu_path: c.menu.map(|m| format!("{}>{}", m, m + 1)),
        announcement: None,
        billed_seconds: 0,
        cost: c.cost.map(Money::from_units),
        tariff: None,
    }
}

/// The report folded from every CDR in memory, returning callers counted by hand.
fn direct(cdrs: &[Cdr], enterprise: &str, number: Option<&str>, range: DayRange) -> Report {
    let mine: Vec<&Cdr> = cdrs
        .iter()
        .filter(|c| c.enterprise == enterprise && number.is_none_or(|n| c.number == n))
        .collect();
    let mut analysis = Analysis::new(range);
    for c in &mine {
        analysis.add(c);
    }
    let before: HashSet<String> = cdrs
        .iter()
        .filter(|c| c.enterprise == enterprise && c.setup_at < range.start())
        .map(|c| c.caller.clone())
        .collect();
    analysis.finish(&before)
}

/// The report as the API computes it from the store.
fn stored(store: &SqliteStore, enterprise: &str, number: Option<&str>, range: DayRange) -> Report {
    let analysis = store.analysis(enterprise, number, range).unwrap();
    let callers: Vec<String> = analysis.callers().map(str::to_owned).collect();
    let returning = store
        .callers_before(enterprise, &callers, range.start())
        .unwrap();
    analysis.finish(&returning)
}

/// Days cut off at either end; whole months (callers read per month); a part of a
/// month and a whole one.
fn ranges() -> [DayRange; 4] {
    [
        DayRange::new(date(2026, 3, 1), date(2026, 3, 4)).unwrap(),
        DayRange::new(date(2026, 3, 2), date(2026, 3, 3)).unwrap(),
        DayRange::new(date(2026, 2, 1), date(2026, 3, 31)).unwrap(),
        DayRange::new(date(2026, 2, 28), date(2026, 3, 31)).unwrap(),
    ]
}

fn agree(store: &SqliteStore, cdrs: &[Cdr]) {
    for range in ranges() {
        for (enterprise, number) in [
            ("acme", None),
            ("acme", Some(NUMBERS[1])),
            ("globex", None),
            ("nobody", None),
        ] {
            assert_eq!(
                stored(store, enterprise, number, range),
                direct(cdrs, enterprise, number, range),
                "{enterprise} {number:?} {range:?}"
            );
        }
    }
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, Duration::ZERO).unwrap()
}

fn watermark(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT through_cdr FROM analytics_watermark WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn rollups_at_any_watermark_give_the_direct_fold(
        calls in prop::collection::vec(call(), 0..160),
        chunks in prop::collection::vec((1usize..60, prop::collection::vec(1usize..40, 0..3)), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("cdr.db"));
        let cdrs: Vec<Cdr> = calls.iter().enumerate().map(|(n, c)| cdr(n, c)).collect();
        let mut recorded = 0;
        for (chunk, passes) in chunks.iter().cycle().take(chunks.len() + cdrs.len()) {
            let end = (recorded + chunk).min(cdrs.len());
            for c in &cdrs[recorded..end] {
                store.record(c.clone(), None).unwrap();
            }
            store.flush().unwrap();
            recorded = end;
            for batch in passes {
                let done = store.roll_up(*batch).unwrap();
                prop_assert!(done.folded <= *batch);
            }
            agree(&store, &cdrs[..recorded]);
            if recorded == cdrs.len() {
                break;
            }
        }
        // Caught up: the same figures from the rollups alone, and nothing left to fold.
        while store.roll_up(7).unwrap().folded > 0 {}
        agree(&store, &cdrs);
        prop_assert_eq!(store.roll_up(100).unwrap().folded, 0);
    }
}

#[test]
fn a_database_upgraded_with_cdrs_is_rolled_up_from_its_first_and_never_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let calls: Vec<Call> = (0..40)
        .map(|n| Call {
            at: 86_400 + n * 7_919,
            outcome: n as usize % Outcome::ALL.len(),
            caller: (n % 7) as u8,
            enterprise: 0,
            number: n as usize % 2,
            tried: n as usize % 4,
            talk: 30,
            ring_ms: Some(1_500),
            menu: None,
            cost: Some(2_500),
            province: n % 3 == 0,
        })
        .collect();
    let cdrs: Vec<Cdr> = calls.iter().enumerate().map(|(n, c)| cdr(n, c)).collect();
    let store = open(&path);
    for c in &cdrs {
        store.record(c.clone(), None).unwrap();
    }
    store.close().unwrap();
    // What a version 9 database (no rollups) holding these CDRs looks like.
    Connection::open(&path)
        .unwrap()
        .execute_batch(DOWN_TO_V9)
        .unwrap();

    let store = open(&path);
    assert_eq!(watermark(&path), 0);
    agree(&store, &cdrs);
    let first = store.roll_up(25).unwrap();
    assert_eq!(first.folded, 25);
    let second = store.roll_up(25).unwrap();
    assert_eq!(second.folded, 15);
    let last_id: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT max(id) FROM cdr", [], |r| r.get(0))
        .unwrap();
    assert_eq!(second.through_cdr, last_id);
    agree(&store, &cdrs);
    store.close().unwrap();

    // Reopened: the watermark held, nothing is folded again.
    let store = open(&path);
    assert_eq!(watermark(&path), last_id);
    assert_eq!(store.roll_up(100).unwrap().folded, 0);
    agree(&store, &cdrs);
    let days: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM analytics_day", [], |r| r.get(0))
        .unwrap();
    assert!(days > 0, "the figures came from rollups");
    assert_eq!(
        store.query(&CdrFilter::default()).unwrap().len(),
        cdrs.len()
    );
}

#[test]
fn a_rollup_that_cannot_be_read_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let store = open(&path);
    let c = cdr(
        0,
        &Call {
            at: 2 * 86_400,
            outcome: 0,
            caller: 1,
            enterprise: 0,
            number: 0,
            tried: 1,
            talk: 10,
            ring_ms: None,
            menu: None,
            cost: None,
            province: false,
        },
    );
    store.record(c, None).unwrap();
    store.flush().unwrap();
    assert_eq!(store.roll_up(10).unwrap().folded, 1);
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE analytics_day SET rollup = '{\"v\":99}'", [])
        .unwrap();
    let range = ranges()[0];
    let err = store.analysis("acme", None, range).unwrap_err();
    assert!(err.to_string().contains("analytics_day"), "{err}");
}
