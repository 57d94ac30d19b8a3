//! The bounded reads a bill and the API's ledger pages use agree with the whole ledger
//! read and counted by hand, for any mix of entries around a period: `ledger_totals`
//! (opening, closing, count and sum per kind), `ledger_entries` walked page by page
//! (with and without call charges), and `charged_calls` against the CDRs themselves.
//! On both backends.

mod common;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use sihai_store::{CdrFilter, EntryKind, KindTotal, LedgerQuery, Money, NewEntry};

use common::backend::{Backend, TestStore};
use common::{billed_cdr, ts};

const ENTERPRISE: &str = "acme";

#[derive(Debug, Clone)]
enum Item {
    /// A posted entry (not a call charge) `minutes` after the start of the test's day.
    Entry { kind: u8, units: i64, minutes: i64 },
    /// A call set up `minutes` after the start, talking a minute, costing `units` (a
    /// free call when zero: no charge, not a charged call).
    Call { units: i64, minutes: i64 },
    /// Another enterprise's call, which must count nowhere.
    Foreign { units: i64, minutes: i64 },
}

fn item() -> impl Strategy<Value = Item> {
    // Minutes 0..300 around a period of [100, 200): before, inside and after it.
    prop_oneof![
        3 => (0u8..5, -5_000i64..50_000, 0i64..300)
            .prop_map(|(kind, units, minutes)| Item::Entry { kind, units, minutes }),
        4 => (0i64..3_000, 0i64..300).prop_map(|(units, minutes)| Item::Call { units, minutes }),
        1 => (1i64..3_000, 0i64..300).prop_map(|(units, minutes)| Item::Foreign { units, minutes }),
    ]
}

fn kind(n: u8) -> EntryKind {
    match n {
        0 => EntryKind::Recharge,
        1 => EntryKind::Adjustment,
        2 => EntryKind::Fee,
        3 => EntryKind::MonthlyMinimum,
        _ => EntryKind::SuspensionDayFee,
    }
}

fn at(minutes: i64) -> Timestamp {
    ts("2026-03-10T00:00:00Z")
        .checked_add(SignedDuration::from_mins(minutes))
        .expect("in range")
}

fn check(backend: Backend, items: Vec<Item>, page: usize) {
    let t = TestStore::new(backend);
    let store = t.store();
    store.open_account(ENTERPRISE, at(0)).expect("account");
    store.open_account("beta", at(0)).expect("account");
    for (n, item) in items.iter().enumerate() {
        match *item {
            Item::Entry {
                kind: k,
                units,
                minutes,
            } => {
                store
                    .post(NewEntry {
                        enterprise: ENTERPRISE.into(),
                        kind: kind(k),
                        amount: Money::from_units(units),
                        reference: format!("ref-{n}"),
                        at: at(minutes),
                        actor: "test".into(),
                        note: None,
                    })
                    .expect("post");
            }
            Item::Call { units, minutes } | Item::Foreign { units, minutes } => {
                let enterprise = if matches!(item, Item::Foreign { .. }) {
                    "beta"
                } else {
                    ENTERPRISE
                };
                let mut cdr = billed_cdr(&format!("call-{n}"), enterprise, Some(units));
                cdr.setup_at = at(minutes);
                cdr.ring_at = Some(at(minutes));
                cdr.answer_at = Some(at(minutes));
                cdr.end_at = at(minutes + 1);
                store.record(cdr, None).expect("record");
            }
        }
    }
    store.flush().expect("commit");
    let (since, until) = (at(100), at(200));

    // By hand, from the whole ledger in its (at, id) order.
    let all = store.ledger(ENTERPRISE, None, None).expect("ledger");
    let before: Vec<_> = all.iter().filter(|e| e.at < since).collect();
    let inside: Vec<_> = all
        .iter()
        .filter(|e| e.at >= since && e.at < until)
        .cloned()
        .collect();
    let opening = before.last().map_or(Money::ZERO, |e| e.balance_after);
    let closing = inside.last().map_or(opening, |e| e.balance_after);
    let mut by_kind: Vec<KindTotal> = Vec::new();
    for e in &inside {
        match by_kind.iter_mut().find(|t| t.kind == e.kind) {
            Some(t) => {
                t.entries += 1;
                t.amount = t.amount.saturating_add(e.amount);
            }
            None => by_kind.push(KindTotal {
                kind: e.kind,
                entries: 1,
                amount: e.amount,
            }),
        }
    }
    let totals = store
        .ledger_totals(ENTERPRISE, since, until)
        .expect("totals");
    assert_eq!(totals.opening, opening);
    assert_eq!(totals.closing, closing);
    let mut got = totals.by_kind.clone();
    got.sort_by_key(|t| t.kind.as_str());
    by_kind.sort_by_key(|t| t.kind.as_str());
    assert_eq!(got, by_kind);

    // Page by page, the same entries in the same order; without call charges, the rest.
    for without_call_charges in [false, true] {
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let entries = store
                .ledger_entries(
                    ENTERPRISE,
                    &LedgerQuery {
                        since: Some(since),
                        until: Some(until),
                        after,
                        without_call_charges,
                        limit: page,
                    },
                )
                .expect("page");
            assert!(entries.len() <= page);
            let full = entries.len() == page;
            after = entries.last().map(|e| (e.at, e.id));
            walked.extend(entries);
            if !full {
                break;
            }
        }
        let expected: Vec<_> = inside
            .iter()
            .filter(|e| !without_call_charges || e.kind != EntryKind::CallCharge)
            .cloned()
            .collect();
        assert_eq!(
            walked, expected,
            "without call charges: {without_call_charges}"
        );
    }

    // The charged calls, against the CDRs themselves.
    let cdrs = store
        .query(&CdrFilter {
            enterprise: Some(ENTERPRISE.into()),
            since: Some(since),
            until: Some(until),
            limit: 0,
            ..CdrFilter::default()
        })
        .expect("CDRs");
    let charged: Vec<_> = cdrs
        .iter()
        .filter(|c| c.cost.is_some_and(|m| m > Money::ZERO))
        .collect();
    let cost = charged.iter().fold(Money::ZERO, |sum, c| {
        sum.saturating_add(c.cost.unwrap_or_default())
    });
    assert_eq!(
        store
            .charged_calls(ENTERPRISE, since, until)
            .expect("charged calls"),
        (charged.len() as u64, cost)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn bounded_reads_agree_with_the_whole_ledger(items in prop::collection::vec(item(), 0..40), page in 1usize..6) {
        check(Backend::Sqlite, items, page);
    }
}

proptest! {
    // Each case creates a PostgreSQL database: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn bounded_reads_agree_with_the_whole_ledger_on_postgres(items in prop::collection::vec(item(), 0..40), page in 1usize..6) {
        check(Backend::Postgres, items, page);
    }
}

both_backends! {
    fn an_empty_period_closes_at_its_opening_balance(t) {
        an_empty_period(t.backend);
    }
}

fn an_empty_period(backend: Backend) {
    check(
        backend,
        vec![
            Item::Entry {
                kind: 0,
                units: 10_000,
                minutes: 10,
            },
            Item::Call {
                units: 250,
                minutes: 20,
            },
            Item::Entry {
                kind: 1,
                units: -100,
                minutes: 250,
            },
        ],
        2,
    );
}
