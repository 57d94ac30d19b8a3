//! Several nodes on one PostgreSQL database: what only the PostgreSQL store promises.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sihai_store::{
    EntryKind, Money, NewEntry, RecoveryInfo, ReservationOutcome, ReservationRequest, Store,
    StoreError,
};

use common::backend::{Backend, TestStore};
use common::{alert_for, billed_cdr, missed_cdr, ts};

fn m(units: i64) -> Money {
    Money::from_units(units)
}

fn recharge(enterprise: &str, reference: &str, units: i64) -> NewEntry {
    NewEntry {
        enterprise: enterprise.into(),
        kind: EntryKind::Recharge,
        amount: m(units),
        reference: reference.into(),
        at: ts("2026-03-01T00:00:00Z"),
        actor: "cli".into(),
        note: None,
    }
}

fn admit(call: &str, want: i64, floor: i64) -> ReservationRequest {
    ReservationRequest {
        call_id: call.into(),
        enterprise: "acme".into(),
        want: m(want),
        floor: Some(m(floor)),
        recovery: RecoveryInfo {
            number: "4001234567".into(),
            caller: "13812345678".into(),
            caller_province: None,
            caller_city: None,
            tariff: "standard".into(),
            setup_at: ts("2026-03-02T00:00:00Z"),
            answered_at: None,
        },
    }
}

#[test]
fn two_nodes_admitting_at_once_never_hold_more_than_the_balance() {
    let t = TestStore::new(Backend::Postgres);
    let a = t.store();
    let b = t.open_another("node-b");
    a.post(recharge("acme", "pay", 100_000)).unwrap();
    const THREADS: usize = 4;
    const CALLS: usize = 25;
    // Each call wants 700 with a floor of 500: 100,000 admits at most 142 calls of 700
    // and one partial grant; far more ask.
    let granted: Vec<(String, i64, usize)> = std::thread::scope(|scope| {
        let nodes: [&dyn Store; 2] = [a, &*b];
        let handles: Vec<_> = (0..THREADS * 2)
            .map(|i| {
                let node = nodes[i % 2];
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for c in 0..CALLS {
                        let id = format!("t{i}-c{c}");
                        match node.reserve(admit(&id, 700, 500)).unwrap() {
                            ReservationOutcome::Granted { granted, held } => {
                                assert_eq!(granted, held);
                                mine.push((id, granted.units(), i % 2));
                            }
                            ReservationOutcome::Refused(_) => {}
                        }
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let total: i64 = granted.iter().map(|(_, g, _)| g).sum();
    assert!(total <= 100_000, "granted {total}");
    // Every admission but the last needed 500 available: at least 99,500 is held.
    assert!(total > 99_500, "granted only {total}");
    let account = a.account("acme").unwrap().unwrap();
    assert_eq!(account.reserved, m(total));
    assert_eq!(a.verify().unwrap(), vec![]);

    // Each node settles its own calls, at 300 each.
    for (id, _, node) in &granted {
        let store: &dyn Store = if *node == 0 { a } else { &*b };
        store
            .record(billed_cdr(id, "acme", Some(300)), None)
            .unwrap();
    }
    a.flush().unwrap();
    b.flush().unwrap();
    let account = a.account("acme").unwrap().unwrap();
    assert_eq!(account.reserved, m(0));
    assert_eq!(account.balance, m(100_000 - 300 * granted.len() as i64));
    assert_eq!(a.verify().unwrap(), vec![]);
}

/// The event loop's way: hundreds of reservations asked at once without waiting
/// (`reserve_then`), on two nodes, grouped into transactions by each store. Each is
/// answered once, and together they never hold more than the balance.
#[test]
fn reservations_asked_without_waiting_on_two_nodes_never_hold_more_than_the_balance() {
    let t = TestStore::new(Backend::Postgres);
    let a = t.store();
    let b = t.open_another("node-b");
    a.post(recharge("acme", "pay", 100_000)).unwrap();
    // Another enterprise's calls in the same groups, unaffected by acme's money.
    a.post(recharge("beta", "pay", 1_000_000)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    const CALLS: usize = 400;
    for c in 0..CALLS {
        let node: &dyn Store = if c % 2 == 0 { a } else { &*b };
        let mut request = admit(&format!("c{c}"), 700, 500);
        if c % 4 == 3 {
            request.enterprise = "beta".into();
        }
        let (tx, id, enterprise, node_index) = (
            tx.clone(),
            request.call_id.clone(),
            request.enterprise.clone(),
            c % 2,
        );
        node.reserve_then(
            request,
            Box::new(move |result| {
                let _ = tx.send((id, enterprise, node_index, result));
            }),
        );
    }
    drop(tx);
    let answers: Vec<_> = rx.iter().collect();
    assert_eq!(answers.len(), CALLS, "every reservation answered once");
    let mut granted = Vec::new();
    let mut acme_total = 0;
    for (id, enterprise, node, result) in answers {
        match result.expect("answered") {
            ReservationOutcome::Granted { granted: g, .. } => {
                if enterprise == "acme" {
                    acme_total += g.units();
                } else {
                    // beta has money for every one of its calls.
                    assert_eq!(g, m(700));
                }
                granted.push((id, enterprise, node));
            }
            ReservationOutcome::Refused(why) => {
                assert_eq!(enterprise, "acme", "beta refused: {why:?}");
                assert_eq!(why, sihai_store::Refusal::InsufficientBalance);
            }
        }
    }
    assert!(acme_total <= 100_000, "granted {acme_total}");
    assert!(acme_total > 99_500, "granted only {acme_total}");
    assert_eq!(a.account("acme").unwrap().unwrap().reserved, m(acme_total));
    assert_eq!(a.verify().unwrap(), vec![]);
    for (id, enterprise, node) in &granted {
        let store: &dyn Store = if *node == 0 { a } else { &*b };
        store
            .record(billed_cdr(id, enterprise, Some(300)), None)
            .unwrap();
    }
    a.flush().unwrap();
    b.flush().unwrap();
    assert_eq!(a.account("acme").unwrap().unwrap().reserved, m(0));
    assert_eq!(a.account("beta").unwrap().unwrap().reserved, m(0));
    assert_eq!(a.verify().unwrap(), vec![]);
}

#[test]
fn each_node_recovers_only_its_own_calls_with_its_own_alive_at() {
    let mut t = TestStore::new(Backend::Postgres);
    t.store().post(recharge("acme", "pay", 10_000)).unwrap();
    let b = t.open_another("node-b");
    t.store().reserve(admit("a-1", 1_000, 1)).unwrap();
    t.store().reserve(admit("a-2", 1_000, 1)).unwrap();
    b.reserve(admit("b-1", 1_000, 1)).unwrap();
    // Both nodes stamp (each its own row) once they reserve.
    t.store().flush().unwrap();
    b.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let alive = |node: &str| -> Option<i64> {
        t.db.as_ref()
            .unwrap()
            .connect()
            .query_opt("SELECT alive_at FROM node_alive WHERE node = $1", &[&node])
            .unwrap()
            .map(|r| r.get(0))
    };
    let stamped_a = alive("node-a").expect("node-a stamped");
    assert!(alive("node-b").is_some());

    let before_kill = Timestamp::now();
    t.kill_and_reopen();
    let (alive_at, open) = t.store().open_reservations().unwrap();
    let alive_at = alive_at.expect("node-a's alive_at");
    assert!(alive_at <= before_kill);
    // As found at open, this node's own.
    assert!(alive_at.as_microsecond() >= stamped_a);
    let ids: Vec<_> = open.iter().map(|o| o.call_id.as_str()).collect();
    assert_eq!(ids, ["a-1", "a-2"]);

    let (_, open_b) = b.open_reservations().unwrap();
    let ids: Vec<_> = open_b.iter().map(|o| o.call_id.as_str()).collect();
    assert_eq!(ids, ["b-1"]);
}

#[test]
fn a_cdr_recorded_on_both_nodes_is_charged_once() {
    let t = TestStore::new(Backend::Postgres);
    let a = t.store();
    let b = t.open_another("node-b");
    a.post(recharge("acme", "pay", 10_000)).unwrap();
    a.reserve(admit("shared", 2_000, 1)).unwrap();
    let cdr = billed_cdr("shared", "acme", Some(700));
    // Both at once: one stores and charges it, the other finds it stored.
    let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let stores: [&dyn Store; 2] = [a, &*b];
        let handles: Vec<_> = stores
            .into_iter()
            .map(|store| {
                let cdr = cdr.clone();
                scope.spawn(move || {
                    store.record(cdr, None).unwrap();
                    store.flush()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let rejected = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Rejected { .. })))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((ok, rejected), (1, 1), "{results:?}");
    let account = a.account("acme").unwrap().unwrap();
    assert_eq!((account.balance, account.reserved), (m(9_300), m(0)));
    let charges = a
        .ledger("acme", None, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::CallCharge)
        .count();
    assert_eq!(charges, 1);
    assert_eq!(a.verify().unwrap(), vec![]);
}

#[test]
fn due_alerts_are_claimed_by_one_node_each() {
    let t = TestStore::new(Backend::Postgres);
    let a = t.store();
    let b = t.open_another("node-b");
    let t0 = ts("2026-03-01T00:00:00Z");
    for i in 0..60 {
        let cdr = missed_cdr(&format!("m{i}"), t0 + SignedDuration::from_secs(i));
        a.record(cdr.clone(), Some(alert_for(&cdr))).unwrap();
    }
    a.flush().unwrap();
    // Every node sees the one backlog.
    assert_eq!(a.pending_alerts().unwrap(), 60);
    assert_eq!(b.pending_alerts().unwrap(), 60);
    let now = t0 + SignedDuration::from_hours(1);
    // Both nodes' workers drain the outbox at once, a few at a time.
    let taken: Vec<Vec<String>> = std::thread::scope(|scope| {
        let stores: [&dyn Store; 2] = [a, &*b];
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let store = stores[i % 2];
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let due = store.due_alerts(now, 3).unwrap();
                        if due.is_empty() {
                            break;
                        }
                        mine.extend(due.into_iter().map(|alert| alert.call_id));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<&String> = taken.iter().flatten().collect();
    let distinct: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), 60, "an alert was handed out twice or lost");
    assert_eq!(distinct.len(), 60);
}

#[test]
fn a_claimed_alert_is_due_again_after_its_lease() {
    let t = TestStore::new(Backend::Postgres);
    let store = t.store();
    let t0 = ts("2026-03-01T00:00:00Z");
    let missed = missed_cdr("missed", t0);
    store
        .record(missed.clone(), Some(alert_for(&missed)))
        .unwrap();
    store.flush().unwrap();
    let due = store.due_alerts(missed.end_at, 10).unwrap();
    assert_eq!(due.len(), 1);
    // Returned as it was due, not as leased.
    assert_eq!(due[0].next_attempt_at, missed.end_at);
    assert_eq!(due[0].attempts, 0);
    // Claimed: not handed out again (to this node or another) until the lease ends ...
    assert!(store.due_alerts(missed.end_at, 10).unwrap().is_empty());
    assert!(
        store
            .due_alerts(missed.end_at + SignedDuration::from_secs(59), 10)
            .unwrap()
            .is_empty()
    );
    // ... after which a node that died mid-delivery leaves it to be retried.
    let again = store
        .due_alerts(missed.end_at + SignedDuration::from_secs(60), 10)
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, due[0].id);
    // A failure reschedules it (overriding the lease), and counts the attempt.
    let retry = missed.end_at + SignedDuration::from_mins(10);
    store.alert_failed(due[0].id, retry, false).unwrap();
    let later = store.due_alerts(retry, 10).unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!((later[0].attempts, later[0].next_attempt_at), (1, retry));
    store.alert_delivered(later[0].id).unwrap();
    assert!(
        store
            .due_alerts(retry + SignedDuration::from_hours(1), 10)
            .unwrap()
            .is_empty()
    );
}

/// A batch of CDRs is one transaction: when the database refuses one CDR for its data
/// (PostgreSQL's text cannot hold a NUL byte, SQLite's can), the whole transaction rolls
/// back, the batch runs again one CDR at a time, the refused CDR is rejected alone, and
/// the others are stored and charged exactly once; every reservation is released and
/// the pool's connections stay usable.
#[test]
fn a_cdr_the_database_refuses_is_rejected_alone_and_the_rest_of_its_batch_is_charged_once() {
    let t = TestStore::new(Backend::Postgres);
    let store = t.store();
    store.post(recharge("acme", "pay", 10_000)).unwrap();
    for call in ["ok-1", "bad", "ok-2"] {
        assert!(matches!(
            store.reserve(admit(call, 1_000, 0)).unwrap(),
            ReservationOutcome::Granted { .. }
        ));
    }
    let mut bad = billed_cdr("bad", "acme", Some(300));
    bad.caller = "138\0".into();
    store
        .record(billed_cdr("ok-1", "acme", Some(300)), None)
        .unwrap();
    store.record(bad, None).unwrap();
    store
        .record(billed_cdr("ok-2", "acme", Some(300)), None)
        .unwrap();
    let err = store.flush().unwrap_err();
    let StoreError::Rejected { rejected, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        rejected
            .iter()
            .map(|r| r.call_id.as_str())
            .collect::<Vec<_>>(),
        ["bad"],
        "{err}"
    );

    let account = store.account("acme").unwrap().unwrap();
    assert_eq!(
        account.balance,
        m(10_000 - 600),
        "two calls charged once each"
    );
    assert_eq!(account.reserved, m(0), "every reservation released");
    assert_eq!(store.verify().unwrap(), vec![]);

    // The pool's connections are idle, not inside a transaction: the next batch and the
    // next reservations commit.
    assert!(matches!(
        store.reserve(admit("next", 1_000, 0)).unwrap(),
        ReservationOutcome::Granted { .. }
    ));
    store
        .record(billed_cdr("next", "acme", Some(300)), None)
        .unwrap();
    store.flush().unwrap();
    let account = store.account("acme").unwrap().unwrap();
    assert_eq!(account.balance, m(10_000 - 900));
    assert_eq!(account.reserved, m(0));
    assert_eq!(store.verify().unwrap(), vec![]);
}
