//! Every figure of a report against a brute-force count over the same generated CDRs,
//! computed another way: Shanghai time as UTC+8 by arithmetic on seconds (China keeps no
//! daylight saving), each figure by filtering the whole list again. And the rollup
//! path the store takes: the same CDRs split at random points into batches, each
//! batch folded into day rollups per (enterprise, number, day), merged in either order
//! through their stored JSON form, the last batch folded live as the API folds the CDRs
//! after the watermark: the report equals the direct fold's, figure for figure.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use jiff::Timestamp;
use jiff::civil::date;
use proptest::prelude::*;
use sihai_analytics::{Analysis, DayRange, DayRollup, MISSED, REFUSED, Report, RollupKey, Rollups};
use sihai_records::{Cdr, HangupSide, Money, Outcome, PhoneAttempt};

const PHONES: [&str; 3] = ["13900000001", "13900000002", "sip:desk@10.0.0.9"];
const PROVINCES: [(Option<&str>, Option<&str>); 4] = [
    (Some("广东"), Some("深圳")),
    (Some("北京"), Some("北京")),
    (Some("广东"), Some("广州")),
    (None, None),
];

#[derive(Debug, Clone)]
struct Call {
    /// Seconds after 2026-03-01T00:00:00+08:00 minus a day (so some fall before).
    at: i64,
    outcome: usize,
    caller: u8,
    region: usize,
    tried: usize,
    talk: u32,
    ring_ms: Option<i64>,
    answer_ms: i64,
    menu: Option<u8>,
    cost: Option<i64>,
    /// Which of the enterprise's two numbers it called.
    second_number: bool,
}

fn call() -> impl Strategy<Value = Call> {
    (
        0i64..(33 * 86_400),
        0usize..Outcome::ALL.len(),
        0u8..20,
        0usize..PROVINCES.len(),
        1usize..=PHONES.len(),
        0u32..600,
        prop::option::of(0i64..9_000),
        0i64..20_000,
        prop::option::of(0u8..4),
        (prop::option::of(0i64..50_000), any::<bool>()),
    )
        .prop_map(
            |(
                at,
                outcome,
                caller,
                region,
                tried,
                talk,
                ring_ms,
                answer_ms,
                menu,
                (cost, second_number),
            )| Call {
                at,
                outcome,
                caller,
                region,
                tried,
                talk,
                ring_ms,
                answer_ms,
                menu,
                cost,
                second_number,
            },
        )
}

/// 2026-02-28T00:00:00+08:00 as seconds since the epoch.
fn origin() -> i64 {
    "2026-02-27T16:00:00Z"
        .parse::<Timestamp>()
        .unwrap()
        .as_second()
}

fn cdr(n: usize, c: &Call) -> Cdr {
    let setup = Timestamp::from_second(origin() + c.at).unwrap();
    let outcome = Outcome::ALL[c.outcome];
    let answered = outcome == Outcome::Answered;
    let ring = c
        .ring_ms
        .map(|ms| setup + jiff::SignedDuration::from_millis(ms));
    let answer = if answered {
        Some(ring.unwrap_or(setup) + jiff::SignedDuration::from_millis(c.answer_ms))
    } else {
        None
    };
    let attempts: Vec<PhoneAttempt> = PHONES[..c.tried]
        .iter()
        .map(|p| PhoneAttempt {
            phone: (*p).into(),
            result: "no_answer".into(),
        })
        .collect();
    let (province, city) = PROVINCES[c.region];
    Cdr {
        call_id: format!("call-{n}"),
        number: if c.second_number {
            "4007654321".into()
        } else {
            "4001234567".into()
        },
        enterprise: "acme".into(),
        caller: format!("1380000{:04}", c.caller),
        caller_province: province.map(str::to_owned),
        caller_city: city.map(str::to_owned),
        answered_by: answered.then(|| PHONES[c.tried - 1].to_owned()),
        attempts,
        setup_at: setup,
        ring_at: ring,
        answer_at: answer,
        end_at: answer.unwrap_or(setup) + jiff::SignedDuration::from_secs(c.talk.into()),
        talk_seconds: if answered { c.talk } else { 0 },
        outcome,
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

/// Seconds since midnight 2026-03-01 Shanghai of a call, by arithmetic.
fn local_seconds(c: &Cdr) -> i64 {
    c.setup_at.as_second() + 8 * 3600
        - ("2026-03-01T00:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_second())
}

/// The report the store's way: `cdrs` cut at `cuts` into batches; every batch but the
/// last rolled up per key and merged into what is "stored" (in batch order, or the
/// reverse), each merge through the stored JSON; the last batch folded live.
fn through_rollups(
    range: DayRange,
    cdrs: &[Cdr],
    cuts: &[usize],
    reverse: bool,
    before: &HashSet<String>,
) -> Report {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (cdrs.len() + 1)).collect();
    cuts.push(0);
    cuts.push(cdrs.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut batches: Vec<&[Cdr]> = cuts.windows(2).map(|w| &cdrs[w[0]..w[1]]).collect();
    let live = batches.pop().unwrap_or(&[]);
    if reverse {
        batches.reverse();
    }
    let mut stored: BTreeMap<RollupKey, (String, BTreeSet<String>)> = BTreeMap::new();
    for batch in batches {
        let mut rollups = Rollups::new();
        for cdr in batch {
            rollups.add(cdr);
        }
        for (key, (rollup, callers)) in rollups.into_days() {
            let (text, known) = stored.entry(key).or_default();
            let mut merged = if text.is_empty() {
                DayRollup::default()
            } else {
                DayRollup::from_json(text).unwrap()
            };
            merged.merge(&rollup);
            *text = merged.to_json();
            known.extend(callers);
        }
    }
    let mut analysis = Analysis::new(range);
    for (key, (text, callers)) in &stored {
        let rollup = DayRollup::from_json(text).unwrap();
        let inside = analysis.add_rollup(key.day, &rollup);
        if inside {
            for caller in callers {
                analysis.add_caller(caller);
            }
        }
    }
    for cdr in live {
        analysis.add(cdr);
    }
    analysis.finish(before)
}

fn check(calls: Vec<Call>, returning_pick: u8, cuts: &[usize], reverse: bool) {
    let range = DayRange::new(date(2026, 3, 1), date(2026, 3, 31)).unwrap();
    let cdrs: Vec<Cdr> = calls.iter().enumerate().map(|(n, c)| cdr(n, c)).collect();
    let mut analysis = Analysis::new(range);
    let mut added = 0;
    for c in &cdrs {
        if analysis.add(c) {
            added += 1;
        }
    }
    // Some callers "called before": every caller whose number ends in a digit below
    // the pick.
    let before: HashSet<String> = (0..20u8)
        .filter(|n| n % 10 < returning_pick % 10)
        .map(|n| format!("1380000{n:04}"))
        .collect();
    let report = analysis.finish(&before);
    assert_eq!(
        through_rollups(range, &cdrs, cuts, reverse, &before),
        report,
        "rolled up and merged, the figures differ from the direct fold"
    );

    let inside: Vec<&Cdr> = cdrs
        .iter()
        .filter(|c| (0..31 * 86_400).contains(&local_seconds(c)))
        .collect();
    assert_eq!(added, inside.len());
    let count = |f: &dyn Fn(&Cdr) -> bool| inside.iter().filter(|c| f(c)).count() as u64;
    assert_eq!(report.totals.calls, inside.len() as u64);
    assert_eq!(
        report.totals.answered,
        count(&|c| c.outcome == Outcome::Answered)
    );
    assert_eq!(
        report.totals.missed,
        count(&|c| MISSED.contains(&c.outcome))
    );
    assert_eq!(
        report.totals.refused,
        count(&|c| REFUSED.contains(&c.outcome))
    );
    for reason in REFUSED {
        assert_eq!(
            report
                .refused_by_reason
                .get(reason.as_str())
                .copied()
                .unwrap_or(0),
            count(&|c| c.outcome == reason)
        );
    }
    let reached = report.totals.answered + report.totals.missed;
    assert_eq!(
        report.answer_rate,
        (reached > 0).then(|| report.totals.answered as f64 / reached as f64)
    );
    let talk: u64 = inside
        .iter()
        .filter(|c| c.outcome == Outcome::Answered)
        .map(|c| u64::from(c.talk_seconds))
        .sum();
    assert_eq!(report.talk_seconds, talk);
    let rings: Vec<u64> = inside
        .iter()
        .filter_map(|c| {
            c.ring_at
                .map(|r| (r.as_millisecond() - c.setup_at.as_millisecond()) as u64)
        })
        .collect();
    assert_eq!(
        report.average_ring_ms,
        (!rings.is_empty()).then(|| rings.iter().sum::<u64>() / rings.len() as u64)
    );
    // Every day present; each day's calls and cost.
    assert_eq!(report.days.len(), 31);
    for day in 0..31i64 {
        let name = format!("2026-03-{:02}", day + 1);
        let of_day: Vec<&&Cdr> = inside
            .iter()
            .filter(|c| local_seconds(c).div_euclid(86_400) == day)
            .collect();
        let figures = &report.days[&name];
        assert_eq!(figures.counts.calls, of_day.len() as u64, "{name}");
        let cost = of_day.iter().fold(Money::ZERO, |s, c| {
            s.saturating_add(c.cost.unwrap_or_default())
        });
        assert_eq!(figures.cost, cost, "{name}");
    }
    // Hours, and weekday × hour (2026-03-01 is a Sunday).
    for hour in 0..24i64 {
        assert_eq!(
            report.hours[hour as usize].calls,
            count(&|c| local_seconds(c).rem_euclid(86_400) / 3600 == hour)
        );
    }
    for (row, weekday_from_sunday) in [1i64, 2, 3, 4, 5, 6, 0].iter().enumerate() {
        for hour in 0..24i64 {
            let expected = count(&|c| {
                let s = local_seconds(c);
                s.div_euclid(86_400) % 7 == *weekday_from_sunday
                    && s.rem_euclid(86_400) / 3600 == hour
            });
            assert_eq!(
                report.weekday_hours[row][hour as usize], expected,
                "row {row} hour {hour}"
            );
        }
    }
    // Regions.
    let mut provinces: BTreeMap<String, u64> = BTreeMap::new();
    for c in &inside {
        *provinces
            .entry(
                c.caller_province
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
            )
            .or_default() += 1;
    }
    assert_eq!(report.provinces, provinces);
    assert_eq!(report.cities.values().sum::<u64>(), inside.len() as u64);
    assert_eq!(
        report.cities.get("北京").copied().unwrap_or(0),
        count(&|c| c.caller_city.as_deref() == Some("北京"))
    );
    // Callers.
    let distinct: HashSet<&str> = inside.iter().map(|c| c.caller.as_str()).collect();
    let returning = distinct.iter().filter(|c| before.contains(**c)).count() as u64;
    assert_eq!(report.returning_callers, returning);
    assert_eq!(report.new_callers, distinct.len() as u64 - returning);
    // Phones.
    for phone in PHONES {
        let offered = count(&|c| c.attempts.iter().any(|a| a.phone == phone));
        let answered =
            count(&|c| c.answered_by.as_deref() == Some(phone) && c.outcome == Outcome::Answered);
        let figures = report.phones.get(phone).cloned().unwrap_or_default();
        assert_eq!(figures.offered, offered, "{phone}");
        assert_eq!(figures.answered, answered, "{phone}");
        assert_eq!(figures.missed, offered - answered, "{phone}");
    }
    // Menu choices and the cost of the range.
    assert_eq!(
        report.menu_choices.values().sum::<u64>(),
        count(&|c| c.menu_path.is_some())
    );
    let cost = inside.iter().fold(Money::ZERO, |s, c| {
        s.saturating_add(c.cost.unwrap_or_default())
    });
    assert_eq!(report.cost, cost);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_figure_matches_a_brute_force_count(
        calls in prop::collection::vec(call(), 0..300),
        pick in 0u8..10,
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        reverse in any::<bool>(),
    ) {
        check(calls, pick, &cuts, reverse);
    }
}

#[test]
fn a_backwards_or_overlong_range_is_refused() {
    assert!(DayRange::new(date(2026, 3, 2), date(2026, 3, 1)).is_err());
    assert!(DayRange::new(date(2026, 1, 1), date(2027, 1, 2)).is_err());
    assert!(DayRange::new(date(2026, 1, 1), date(2027, 1, 1)).is_ok());
    let day = DayRange::new(date(2026, 3, 1), date(2026, 3, 1)).unwrap();
    assert_eq!(day.start().to_string(), "2026-02-28T16:00:00Z");
    assert_eq!(day.end().to_string(), "2026-03-01T16:00:00Z");
}
