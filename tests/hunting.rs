//! The hunt strategies that draw at random or by idle time, and the plan's overall hunt
//! timeout, driven end to end: sipp places many calls one after the other through the
//! daemon to a group of sipp phones that all answer, and the CDRs tell which phone took
//! each call. (Sequential, round robin, simultaneous ringing, ring timeouts and
//! capacity are in tests/calls.rs.)
//!
//! A random strategy's counts are checked against exact binomial acceptance bounds,
//! each test's bounds together cut at a false-failure probability below 1e-6: a
//! correct daemon fails one of these tests about once in a million runs, while one that
//! ignores the weights, always starts at the first phone or goes round in order fails
//! them every time.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::routing::{attempts, group, nobody, only_cdr, phone, routing};
use support::stats::binomial_acceptance;
use support::{Caller, CdrRow, Daemon, Phone};

/// The most a test may fail by chance with a correct daemon.
const FALSE_FAILURE: f64 = 1e-6;

/// A group `strategy` of one answering sipp phone per entry of `settings` (extra
/// phone settings such as `weight = 3`), each able to take every one of `calls` calls;
/// places the calls one after the other and returns the phones' URIs and the CDRs in
/// the order the calls were made.
fn hunt_many(strategy: &str, settings: &[&str], calls: u32) -> (Vec<String>, Vec<CdrRow>) {
    // The phones' sipp processes are not finished: how many calls each gets is the
    // point of the test. They are killed when dropped.
    let phones: Vec<Phone> = settings
        .iter()
        .map(|_| Phone::start_for("uas_answer.xml", calls, 0, 150))
        .collect();
    let uris: Vec<String> = phones
        .iter()
        .enumerate()
        .map(|(i, p)| p.uri(&format!("1390000000{}", i + 1)))
        .collect();
    let list: Vec<String> = uris
        .iter()
        .zip(settings)
        .map(|(uri, s)| phone(uri, s))
        .collect();
    let daemon = Daemon::start_with(
        "",
        &routing("", "group = \"sales\"", &group("sales", strategy, &list)),
    );
    // One call at a time: every phone is free for every call, so the strategy alone
    // picks the phone.
    Caller::new(&daemon, "uac_answered.xml")
        .calls(calls, 40)
        .at_most(1)
        .within_s(120)
        .run();
    let mut rows = daemon.wait_for_cdrs(calls as usize);
    assert_eq!(rows.len(), calls as usize);
    assert!(
        rows.iter()
            .all(|r| r.outcome == "answered" && !r.attempts.contains(", ")),
        "every call answered by the first phone tried: {rows:#?}"
    );
    // Newest first: the calls in the order they were made.
    rows.reverse();
    drop(phones);
    (uris, rows)
}

fn counts(uris: &[String], rows: &[CdrRow]) -> Vec<u64> {
    let mut by: HashMap<&str, u64> = HashMap::new();
    for r in rows {
        *by.entry(r.answered_by.as_str()).or_default() += 1;
    }
    let known: u64 = uris
        .iter()
        .map(|u| by.get(u.as_str()).copied().unwrap_or(0))
        .sum();
    assert_eq!(
        known,
        rows.len() as u64,
        "calls answered by unknown phones: {by:?}"
    );
    uris.iter()
        .map(|u| by.get(u.as_str()).copied().unwrap_or(0))
        .collect()
}

#[test]
fn acceptance_bounds_are_the_exact_binomial_tails() {
    // Binomial(10, 1/2): P(X = 0) = P(X = 10) = 1/1024, P(X <= 1) = 11/1024.
    assert_eq!(binomial_acceptance(10, 0.5, 2.0 / 1024.0), 1..=9);
    assert_eq!(binomial_acceptance(10, 0.5, 2.0 / 1024.0 - 1e-12), 0..=10);
    assert_eq!(binomial_acceptance(10, 0.5, 22.0 / 1024.0 + 1e-12), 2..=8);
    // The bounds the tests below use, for the record.
    assert_eq!(
        binomial_acceptance(90, 1.0 / 3.0, FALSE_FAILURE / 4.0),
        9..=54
    );
}

#[test]
fn random_spreads_calls_evenly_and_in_no_fixed_order() {
    const CALLS: u64 = 90;
    let (uris, rows) = hunt_many("random", &["", "", ""], CALLS as u32);
    // Four checks share the false-failure budget.
    let alpha = FALSE_FAILURE / 4.0;
    let each = binomial_acceptance(CALLS, 1.0 / 3.0, alpha);
    let got = counts(&uris, &rows);
    for (uri, n) in uris.iter().zip(&got) {
        assert!(
            each.contains(n),
            "{uri} answered {n} of {CALLS} calls, outside {each:?}: {got:?}"
        );
    }
    // Each call's phone is independent of the last's: the next call goes to the same
    // phone one time in three. Round robin never repeats, a fixed order always does.
    let repeats = rows
        .windows(2)
        .filter(|w| w[0].answered_by == w[1].answered_by)
        .count() as u64;
    let expected = binomial_acceptance(CALLS - 1, 1.0 / 3.0, alpha);
    assert!(
        expected.contains(&repeats),
        "{repeats} of {} calls went to the phone of the call before, outside {expected:?}",
        CALLS - 1
    );
}

#[test]
fn weighted_gives_each_phone_its_share_of_calls() {
    const CALLS: u64 = 120;
    let weights = [1u64, 3, 6];
    let settings: Vec<String> = weights.iter().map(|w| format!("weight = {w}")).collect();
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let (uris, rows) = hunt_many("weighted", &settings, CALLS as u32);
    let total: u64 = weights.iter().sum();
    let got = counts(&uris, &rows);
    for ((uri, n), w) in uris.iter().zip(&got).zip(weights) {
        let share = w as f64 / total as f64;
        let accepted = binomial_acceptance(CALLS, share, FALSE_FAILURE / weights.len() as f64);
        assert!(
            accepted.contains(n),
            "{uri} (weight {w}) answered {n} of {CALLS} calls, outside {accepted:?}: {got:?}"
        );
    }
}

#[test]
fn longest_idle_rings_the_phone_idle_longest_not_the_next_in_turn() {
    // Phones A, B, C. A takes a long call; meanwhile short calls go to B, C, then B
    // again (A is busy). Once A is free, the next call goes to C, idle since its call
    // ended, longer than A (just freed) or B; then B, then A. Round robin would have
    // rung B for the fifth call, sequential A. Deterministic: exact counts.
    let mut a = Phone::start("uas_answer.xml", 2, 0);
    let mut b = Phone::start("uas_answer.xml", 3, 0);
    let mut c = Phone::start("uas_answer.xml", 2, 0);
    let (ua, ub, uc) = (
        a.uri("13900000001"),
        b.uri("13900000002"),
        c.uri("13900000003"),
    );
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "longest_idle",
                &[phone(&ua, ""), phone(&ub, ""), phone(&uc, "")],
            ),
        ),
    );
    // Each call from its own number, to tell the CDRs apart.
    let caller = |i: u32| format!("1380013800{i}");
    let mut long = Caller::new(&daemon, "uac_answered.xml")
        .caller(&caller(1))
        .talking_ms(4000)
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.messages().contains("ACK sip:") {
        assert!(Instant::now() < deadline, "A answered no call within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 2..=4 {
        Caller::new(&daemon, "uac_answered.xml")
            .caller(&caller(i))
            .run();
    }
    long.finish(Duration::from_secs(30), &daemon);
    for i in 5..=7 {
        Caller::new(&daemon, "uac_answered.xml")
            .caller(&caller(i))
            .run();
    }
    for p in [&mut a, &mut b, &mut c] {
        p.finish(&daemon);
    }

    let rows = daemon.wait_for_cdrs(7);
    let took = |i: u32| {
        rows.iter()
            .find(|r| r.caller == caller(i))
            .unwrap_or_else(|| panic!("no CDR from {}: {rows:#?}", caller(i)))
            .answered_by
            .clone()
    };
    let order: Vec<String> = (1..=7).map(took).collect::<Vec<_>>();
    assert_eq!(
        order,
        [&ua, &ub, &uc, &ub, &uc, &ub, &ua].map(String::as_str),
        "A = {ua}, B = {ub}, C = {uc}"
    );
}

#[test]
fn hunt_timeout_ends_the_hunt_before_the_phones_ring_timeout() {
    // The first phone would ring 20 s; the plan gives the whole hunt 2 s, so the
    // second phone is never tried and the caller hears nobody answered (480).
    let mut rings = Phone::start("uas_ring_cancelled.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"\nhunt_timeout_s = 2",
            &group(
                "sales",
                "sequential",
                &[
                    phone(&rings.uri("13900000001"), "ring_timeout_s = 20"),
                    nobody(),
                ],
            ),
        ),
    );
    let started = Instant::now();
    Caller::refused(&daemon, 480).run();
    let took = started.elapsed();
    rings.finish(&daemon);
    assert!(
        took >= Duration::from_secs(2),
        "the hunt may take 2 s, the caller was refused after {took:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "the hunt ran on past its 2 s: {took:?}"
    );

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "no_answer", "{cdr:#?}");
    assert_eq!(
        cdr.attempts,
        attempts(&[(&rings, "13900000001", "no_answer")]),
        "{cdr:#?}"
    );
}

#[test]
fn a_disabled_phone_is_never_rung() {
    // First in a sequential list, but `enabled = false`: the call goes straight to the
    // second phone. Were it rung, nobody would answer it and the CDR would show it.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let disabled = format!("sip:13900000001@127.0.0.1:{}", support::free_port());
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[
                    phone(&disabled, "enabled = false"),
                    phone(&answers.uri("13900000002"), ""),
                ],
            ),
        ),
    );
    Caller::new(&daemon, "uac_answered.xml").run();
    answers.finish(&daemon);
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
    assert_eq!(
        cdr.attempts,
        attempts(&[(&answers, "13900000002", "answered")]),
        "{cdr:#?}"
    );
}

#[test]
fn a_phone_that_fails_with_503_is_skipped_and_the_next_phone_answers() {
    // The first phone answers 503 (out of order). It would ring 20 s; the hunt moves on
    // at its failure, not at its ring timeout.
    let mut failing = Phone::start("uas_unavailable.xml", 1, 0);
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[
                    phone(&failing.uri("13900000001"), "ring_timeout_s = 20"),
                    phone(&answers.uri("13900000002"), ""),
                ],
            ),
        ),
    );
    let started = Instant::now();
    Caller::new(&daemon, "uac_answered.xml").run();
    let took = started.elapsed();
    failing.finish(&daemon);
    answers.finish(&daemon);
    assert!(
        took < Duration::from_secs(10),
        "the hunt waited on the failed phone: the call took {took:?}"
    );
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
    assert_eq!(cdr.answered_by, answers.uri("13900000002"), "{cdr:#?}");
    assert_eq!(
        cdr.attempts,
        attempts(&[
            (&failing, "13900000001", "503"),
            (&answers, "13900000002", "answered")
        ]),
        "{cdr:#?}"
    );
}

#[test]
fn an_unreachable_phone_is_skipped_and_the_next_phone_answers() {
    // The first phone is over TCP on a port where nothing listens: the connection is
    // refused, a transport error, and the hunt goes on to the next phone at once
    // rather than after the 20 s it would ring.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    // Held by a UDP socket for the whole test, so that no daemon started meanwhile (this
    // one included) is handed the port for its own TCP listener; over TCP nothing
    // listens there.
    let port = support::free_port();
    let _held = std::net::UdpSocket::bind(("127.0.0.1", port)).expect("hold the port");
    let unreachable = format!("sip:13900000001@127.0.0.1:{port};transport=tcp");
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[
                    phone(&unreachable, "ring_timeout_s = 20"),
                    phone(&answers.uri("13900000002"), ""),
                ],
            ),
        ),
    );
    let started = Instant::now();
    Caller::new(&daemon, "uac_answered.xml").run();
    let took = started.elapsed();
    answers.finish(&daemon);
    assert!(
        took < Duration::from_secs(10),
        "the hunt waited on the unreachable phone: the call took {took:?}"
    );
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
    assert_eq!(cdr.answered_by, answers.uri("13900000002"), "{cdr:#?}");
    assert_eq!(
        cdr.attempts,
        format!(
            "{unreachable}:transport_error, {}:answered",
            answers.uri("13900000002")
        ),
        "{cdr:#?}"
    );
}
