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
use proptest::test_runner::TestCaseError;
use rusqlite::Connection;
use sihai_analytics::{Analysis, DayRange, Report};
use sihai_store::{
    AnalyticsStore, Cdr, CdrFilter, CdrStore, HangupSide, Money, Outcome, PhoneAttempt,
    SqliteStore, Store,
};

use common::backend::{Backend, TestStore};
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
        customer_id: None,
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
fn stored(store: &dyn Store, enterprise: &str, number: Option<&str>, range: DayRange) -> Report {
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

fn agree(store: &dyn Store, cdrs: &[Cdr]) {
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

/// Records `calls` in `chunks` (each with roll-up passes of the sizes it lists),
/// comparing the store's figures with the direct fold after each chunk.
fn rollups_agree(
    t: &TestStore,
    calls: &[Call],
    chunks: &[(usize, Vec<usize>)],
) -> Result<(), TestCaseError> {
    let store = t.store();
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
        agree(store, &cdrs[..recorded]);
        if recorded == cdrs.len() {
            break;
        }
    }
    // Caught up: the same figures from the rollups alone, and nothing left to fold.
    while store.roll_up(7).unwrap().folded > 0 {}
    agree(store, &cdrs);
    prop_assert_eq!(store.roll_up(100).unwrap().folded, 0);
    Ok(())
}

fn chunks() -> impl Strategy<Value = Vec<(usize, Vec<usize>)>> {
    prop::collection::vec((1usize..60, prop::collection::vec(1usize..40, 0..3)), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn rollups_at_any_watermark_give_the_direct_fold_sqlite(
        calls in prop::collection::vec(call(), 0..160),
        chunks in chunks(),
    ) {
        rollups_agree(&TestStore::with_commit_interval(Backend::Sqlite, Duration::ZERO), &calls, &chunks)?;
    }
}

proptest! {
    // Each case a database of its own: fewer cases, and a short shrink.
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 32, ..ProptestConfig::default() })]

    #[test]
    fn rollups_at_any_watermark_give_the_direct_fold_postgres(
        calls in prop::collection::vec(call(), 0..160),
        chunks in chunks(),
    ) {
        rollups_agree(&TestStore::with_commit_interval(Backend::Postgres, Duration::ZERO), &calls, &chunks)?;
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

both_backends! {
    fn a_rollup_that_cannot_be_read_is_reported_not_skipped(t) {
    let store = t.store();
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
    t.execute("UPDATE analytics_day SET rollup = '{\"v\":99}'");
    let range = ranges()[0];
    let err = store.analysis("acme", None, range).unwrap_err();
    assert!(err.to_string().contains("analytics_day"), "{err}");
}
}

fn calls(n: i64) -> Vec<Cdr> {
    (0..n)
        .map(|n| Call {
            at: 86_400 + n * 7_919,
            outcome: n as usize % Outcome::ALL.len(),
            caller: (n % 7) as u8,
            enterprise: (n % 2) as usize,
            number: n as usize % 2,
            tried: n as usize % 4,
            talk: 30,
            ring_ms: Some(1_500),
            menu: None,
            cost: Some(2_500),
            province: n % 3 == 0,
        })
        .enumerate()
        .map(|(n, c)| cdr(n, &c))
        .collect()
}

both_backends! {
    /// Passes fold bounded batches in id order; the watermark survives a reopen and
    /// nothing is folded twice.
    fn cdrs_are_rolled_up_in_passes_and_never_twice(t) {
    let cdrs = calls(40);
    for c in &cdrs {
        t.store().record(c.clone(), None).unwrap();
    }
    t.store().flush().unwrap();
    agree(t.store(), &cdrs);
    let first = t.store().roll_up(25).unwrap();
    assert_eq!(first.folded, 25);
    let second = t.store().roll_up(25).unwrap();
    assert_eq!(second.folded, 15);
    assert_eq!(second.through_cdr, t.scalar("SELECT max(id) FROM cdr"));
    agree(t.store(), &cdrs);
    t.reopen();
    assert_eq!(
        t.scalar("SELECT through_cdr FROM analytics_watermark WHERE id = 1"),
        second.through_cdr
    );
    assert_eq!(t.store().roll_up(100).unwrap().folded, 0);
    agree(t.store(), &cdrs);
    assert!(t.scalar("SELECT count(*) FROM analytics_day") > 0);
}
}

// PostgreSQL only, writing CDRs with SQL (as another node's writer would), so that the
// rollups are checked without the store's own CDR writer.

/// Inserts `c` as a CDR row with its attempts, in `client`'s transaction; its id.
fn insert_cdr(client: &mut impl postgres::GenericClient, c: &Cdr) -> i64 {
    let us = |t: jiff::Timestamp| t.as_microsecond();
    let id: i64 = client
        .query_one(
            "INSERT INTO cdr (call_id, number, enterprise, caller, caller_province,
                 caller_city, answered_by, setup_at, ring_at, answer_at, end_at, talk_seconds,
                 outcome, hangup_side, hangup_cause, recording, menu_path, announcement,
                 billed_seconds, cost, tariff)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18, $19, $20, $21)
             RETURNING id",
            &[
                &c.call_id,
                &c.number,
                &c.enterprise,
                &c.caller,
                &c.caller_province,
                &c.caller_city,
                &c.answered_by,
                &us(c.setup_at),
                &c.ring_at.map(us),
                &c.answer_at.map(us),
                &us(c.end_at),
                &i64::from(c.talk_seconds),
                &c.outcome.as_str(),
                &c.hangup_side.map(|s| s.as_str()),
                &c.hangup_cause,
                &c.recording,
                &c.menu_path,
                &c.announcement,
                &i64::from(c.billed_seconds),
                &c.cost.map(|m| m.units()),
                &c.tariff,
            ],
        )
        .unwrap()
        .get(0);
    for (seq, a) in c.attempts.iter().enumerate() {
        client
            .execute(
                "INSERT INTO cdr_attempt (cdr_id, seq, phone, result) VALUES ($1, $2, $3, $4)",
                &[&id, &(seq as i64), &a.phone, &a.result],
            )
            .unwrap();
    }
    id
}

/// The store's figures without returning callers (which need `callers_before`).
fn stored_alone(store: &dyn Store, enterprise: &str, range: DayRange) -> Report {
    store
        .analysis(enterprise, None, range)
        .unwrap()
        .finish(&HashSet::new())
}

fn direct_alone(cdrs: &[Cdr], enterprise: &str, range: DayRange) -> Report {
    let mut analysis = Analysis::new(range);
    for c in cdrs.iter().filter(|c| c.enterprise == enterprise) {
        analysis.add(c);
    }
    analysis.finish(&HashSet::new())
}

fn agree_alone(store: &dyn Store, cdrs: &[Cdr]) {
    for range in ranges() {
        for enterprise in ENTERPRISES {
            assert_eq!(
                stored_alone(store, enterprise, range),
                direct_alone(cdrs, enterprise, range),
                "{enterprise} {range:?}"
            );
        }
    }
}

#[test]
fn postgres_rollups_of_cdrs_written_by_another_writer_give_the_direct_fold() {
    let t = TestStore::new(Backend::Postgres);
    let mut client = t.db.as_ref().unwrap().connect();
    let cdrs = calls(60);
    for (i, c) in cdrs.iter().enumerate() {
        insert_cdr(&mut client, c);
        if i % 13 == 0 {
            t.store().roll_up(9).unwrap();
        }
        if i % 17 == 0 {
            agree_alone(t.store(), &cdrs[..=i]);
        }
    }
    agree_alone(t.store(), &cdrs);
    while t.store().roll_up(11).unwrap().folded > 0 {}
    agree_alone(t.store(), &cdrs);
    assert_eq!(
        t.scalar("SELECT through_cdr FROM analytics_watermark"),
        t.scalar("SELECT max(id) FROM cdr")
    );
}

/// The horizon: a CDR whose transaction is still open when a pass starts (its id
/// below ids already committed) is not skipped: the pass waits for it, and it is
/// counted exactly once.
#[test]
fn postgres_a_cdr_committed_late_below_the_watermark_is_still_counted_once() {
    let t = TestStore::new(Backend::Postgres);
    let cdrs = calls(4);
    let mut slow = t.db.as_ref().unwrap().connect();
    let mut fast = t.db.as_ref().unwrap().connect();
    insert_cdr(&mut fast, &cdrs[0]);
    // The slow writer draws its id, then another writer commits a higher one.
    let mut tx = slow.transaction().unwrap();
    let late = insert_cdr(&mut tx, &cdrs[1]);
    let after = insert_cdr(&mut fast, &cdrs[2]);
    assert!(late < after);
    std::thread::scope(|scope| {
        let pass = scope.spawn(|| t.store().roll_up(100).unwrap());
        // The pass waits on the SHARE lock while the slow writer's transaction is open.
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !pass.is_finished(),
            "the pass waits for the open transaction"
        );
        tx.commit().unwrap();
        let done = pass.join().unwrap();
        assert_eq!((done.folded, done.through_cdr), (3, after));
    });
    insert_cdr(&mut fast, &cdrs[3]);
    agree_alone(t.store(), &cdrs);
    assert_eq!(t.store().roll_up(100).unwrap().folded, 1);
    agree_alone(t.store(), &cdrs);
    assert_eq!(t.store().roll_up(100).unwrap().folded, 0);
}

/// Two nodes rolling up at once fold each CDR once between them.
#[test]
fn postgres_two_nodes_rolling_up_at_once_count_each_cdr_once() {
    let t = TestStore::new(Backend::Postgres);
    let other = t.open_another("node-b");
    let mut client = t.db.as_ref().unwrap().connect();
    let cdrs = calls(200);
    let stores: [&dyn Store; 2] = [t.store(), &*other];
    let written = std::sync::atomic::AtomicBool::new(false);
    let folded: usize = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            // Each CDR with its attempts in one transaction, as a node's writer commits.
            for c in &cdrs {
                let mut tx = client.transaction().unwrap();
                insert_cdr(&mut tx, c);
                tx.commit().unwrap();
            }
            written.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let passes: Vec<_> = stores
            .into_iter()
            .map(|store| {
                let written = &written;
                scope.spawn(move || {
                    let mut folded = 0;
                    loop {
                        let finished = written.load(std::sync::atomic::Ordering::SeqCst);
                        let done = store.roll_up(13).unwrap();
                        folded += done.folded;
                        if finished && done.folded == 0 {
                            return folded;
                        }
                    }
                })
            })
            .collect();
        let folded = passes.into_iter().map(|p| p.join().unwrap()).sum();
        writer.join().unwrap();
        folded
    });
    assert_eq!(folded, cdrs.len());
    agree_alone(t.store(), &cdrs);
    agree_alone(&*other, &cdrs);
}
