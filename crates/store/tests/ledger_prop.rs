//! Any interleaving of admissions, renewals, settlements (via `record`), repeated
//! records, recharges, flushes and kills keeps the books straight: the in-memory book
//! matches a model at every step and the database after every commit; balance equals
//! the sum of entries, reserved the sum of open reservations; no call is charged twice,
//! and every charge is its CDR's cost.
//!
//! On both backends. PostgreSQL has no in-memory book: a reservation commits when it is
//! granted and a settlement with its CDR's batch, so there the run flushes after each
//! settlement (the model of what is available is then exact) and compares the
//! committed account with the model at every step; its kills lose what is queued (an
//! answer time) but never a granted reservation.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use sihai_store::{
    CdrFilter, EntryKind, Money, NewEntry, RecoveryInfo, Refusal, ReservationOutcome,
    ReservationRequest, Store,
};

use common::backend::{Backend, TestStore};
use common::{billed_cdr, ts};

const ENTERPRISE: &str = "acme";
const CALLS: usize = 5;

#[derive(Debug, Clone)]
enum Step {
    Admit {
        call: usize,
        want: i64,
        floor: i64,
    },
    Renew {
        call: usize,
        want: i64,
        answered: bool,
    },
    /// Ends the call, costing `percent` of what it holds.
    Settle {
        call: usize,
        percent: i64,
    },
    /// Records an already settled call again, at another cost.
    Rerecord,
    Recharge(i64),
    Flush,
    Kill,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..CALLS, 0..2_000i64, 0..600i64)
            .prop_map(|(call, want, floor)| Step::Admit { call, want, floor }),
        3 => (0..CALLS, 0..1_500i64, any::<bool>())
            .prop_map(|(call, want, answered)| Step::Renew { call, want, answered }),
        3 => (0..CALLS, 0..=100i64).prop_map(|(call, percent)| Step::Settle { call, percent }),
        1 => Just(Step::Rerecord),
        2 => (0..3_000i64).prop_map(Step::Recharge),
        1 => Just(Step::Flush),
        1 => Just(Step::Kill),
    ]
}

fn open(backend: Backend) -> TestStore {
    // Commits only when told (or a full batch): a kill loses everything queued.
    TestStore::with_commit_interval(backend, Duration::from_secs(3600))
}

/// What the store says the account holds now: SQLite's book (queued settlements
/// included), PostgreSQL's committed row.
fn view(t: &TestStore) -> Option<(Money, Money)> {
    match t.backend {
        Backend::Sqlite => t.sqlite().book_view(ENTERPRISE).unwrap(),
        Backend::Postgres => t
            .store()
            .account(ENTERPRISE)
            .unwrap()
            .map(|a| (a.balance, a.reserved)),
    }
}

fn request(call_id: &str, want: i64, floor: Option<i64>, answered: bool) -> ReservationRequest {
    ReservationRequest {
        call_id: call_id.into(),
        enterprise: ENTERPRISE.into(),
        want: Money::from_units(want),
        floor: floor.map(Money::from_units),
        recovery: RecoveryInfo {
            number: "4001234567".into(),
            caller: "13812345678".into(),
            caller_province: None,
            caller_city: None,
            tariff: "standard".into(),
            setup_at: ts("2026-03-02T00:00:00Z"),
            answered_at: answered.then(|| ts("2026-03-02T00:00:10Z")),
        },
    }
}

/// What the store should say.
#[derive(Default)]
struct Model {
    /// Recharges minus the costs of settled calls (committed or queued).
    balance: i64,
    /// Open calls of this run: id -> held.
    open: HashMap<String, i64>,
    /// Each slot's current call generation, so a settled slot starts a new call.
    generation: [u32; CALLS],
    settled: Vec<String>,
    recharges: u32,
    /// Charges posted for calls that held nothing (their reservation lost to a kill).
    unheld: i64,
}

impl Model {
    fn id(&self, slot: usize) -> String {
        format!("call-{slot}-{}", self.generation[slot])
    }
    fn reserved(&self) -> i64 {
        self.open.values().sum()
    }
    fn available(&self) -> i64 {
        self.balance - self.reserved()
    }
}

/// The database agrees with itself, with the book, and with every CDR.
fn check_committed(t: &TestStore, model: &Model) {
    let store: &dyn Store = t.store();
    assert_eq!(store.verify().unwrap(), vec![]);
    let account = store.account(ENTERPRISE).unwrap().unwrap();
    assert_eq!(view(t), Some((account.balance, account.reserved)));
    assert_eq!(account.balance.units(), model.balance);
    assert_eq!(account.reserved.units(), model.reserved());
    // Costs never exceed holds and grants never exceed what is available.
    // (A call whose reservation a kill lost may still be charged when its CDR comes:
    // that charge had no hold behind it.)
    assert!(
        account.balance.units() + model.unheld >= account.reserved.units(),
        "{account:?}"
    );
    let charges: HashMap<String, i64> = store
        .ledger(ENTERPRISE, None, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::CallCharge)
        .map(|e| (e.reference, -e.amount.units()))
        .collect();
    let cdrs = store.query(&CdrFilter::default()).unwrap();
    let mut charged = 0;
    for cdr in &cdrs {
        let cost = cdr.cost.map_or(0, |c| c.units());
        assert_eq!(
            charges.get(&cdr.call_id).copied().unwrap_or(0),
            cost,
            "{}",
            cdr.call_id
        );
        charged += usize::from(cost > 0);
    }
    // No charge without its CDR.
    assert_eq!(charges.len(), charged);
}

fn run(backend: Backend, steps: Vec<Step>) {
    let mut t = open(backend);
    t.store()
        .open_account(ENTERPRISE, ts("2026-03-01T00:00:00Z"))
        .unwrap();
    let mut model = Model::default();
    for step in steps {
        let store: &dyn Store = t.store();
        match step {
            Step::Admit { call, want, floor } => {
                let id = model.id(call);
                let available = model.available();
                let got = store
                    .reserve(request(&id, want, Some(floor), false))
                    .unwrap();
                if available < floor {
                    assert_eq!(
                        got,
                        ReservationOutcome::Refused(Refusal::InsufficientBalance)
                    );
                } else {
                    let grant = want.min(available.max(0));
                    let held = model.open.get(&id).copied().unwrap_or(0) + grant;
                    assert_eq!(
                        got,
                        ReservationOutcome::Granted {
                            granted: Money::from_units(grant),
                            held: Money::from_units(held)
                        }
                    );
                    model.open.insert(id, held);
                }
            }
            Step::Renew {
                call,
                want,
                answered,
            } => {
                let id = model.id(call);
                let Some(&held) = model.open.get(&id) else {
                    continue; // renewals come only for admitted calls
                };
                let grant = want.min(model.available().max(0));
                let got = store.reserve(request(&id, want, None, answered)).unwrap();
                assert_eq!(
                    got,
                    ReservationOutcome::Granted {
                        granted: Money::from_units(grant),
                        held: Money::from_units(held + grant)
                    }
                );
                model.open.insert(id, held + grant);
            }
            Step::Settle { call, percent } => {
                let id = model.id(call);
                let Some(held) = model.open.remove(&id) else {
                    continue;
                };
                let cost = held * percent / 100;
                store
                    .record(billed_cdr(&id, ENTERPRISE, Some(cost)), None)
                    .unwrap();
                if backend == Backend::Postgres {
                    // No book counts a queued settlement: commit it (see above).
                    store.flush().unwrap();
                }
                model.balance -= cost;
                model.generation[call] += 1;
                model.settled.push(id);
            }
            Step::Rerecord => {
                let Some(id) = model.settled.last().cloned() else {
                    continue;
                };
                store.flush().unwrap();
                // A kill may have lost the call's first record along with its
                // reservation: then this record is its first, and charges.
                let known = store
                    .query(&CdrFilter::default())
                    .unwrap()
                    .iter()
                    .any(|c| c.call_id == id);
                store
                    .record(billed_cdr(&id, ENTERPRISE, Some(1)), None)
                    .unwrap();
                // Otherwise rejected as a duplicate: never charged again.
                let _ = store.flush();
                if !known {
                    model.balance -= 1;
                    model.unheld += 1;
                }
                check_committed(&t, &model);
            }
            Step::Recharge(amount) => {
                model.recharges += 1;
                let entry = NewEntry {
                    enterprise: ENTERPRISE.into(),
                    kind: EntryKind::Recharge,
                    amount: Money::from_units(amount),
                    reference: format!("pay-{}", model.recharges),
                    at: ts("2026-03-01T00:00:00Z"),
                    actor: "cli".into(),
                    note: None,
                };
                store.post(entry).unwrap();
                model.balance += amount;
            }
            Step::Flush => {
                store.flush().unwrap();
                check_committed(&t, &model);
            }
            Step::Kill => {
                t.kill_and_reopen();
                let store: &dyn Store = t.store();
                // What survived decides the model: the committed balance, and the
                // reservations still open, each settled now (at half its hold).
                let (_, orphans) = store.open_reservations().unwrap();
                let account = store.account(ENTERPRISE).unwrap().unwrap();
                let held: i64 = orphans.iter().map(|o| o.held.units()).sum();
                assert_eq!(account.reserved.units(), held);
                assert_eq!(view(&t), Some((account.balance, account.reserved)));
                model.balance = account.balance.units();
                model.open.clear();
                for o in orphans {
                    let cost = o.held.units() / 2;
                    store
                        .record(billed_cdr(&o.call_id, ENTERPRISE, Some(cost)), None)
                        .unwrap();
                    model.balance -= cost;
                    model.settled.push(o.call_id);
                }
                for g in &mut model.generation {
                    *g += 1000; // the killed run's calls are gone
                }
                store.flush().unwrap();
                check_committed(&t, &model);
            }
        }
        // The store tracks the model at every step, commit or not.
        assert_eq!(
            view(&t),
            Some((
                Money::from_units(model.balance),
                Money::from_units(model.reserved())
            ))
        );
    }
    t.store().flush().unwrap();
    check_committed(&t, &model);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn the_books_balance_whatever_happens(steps in proptest::collection::vec(step(), 1..40)) {
        run(Backend::Sqlite, steps);
    }
}

proptest! {
    // Each case creates a PostgreSQL database and each kill reopens the store: fewer.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_books_balance_whatever_happens_on_postgres(steps in proptest::collection::vec(step(), 1..40)) {
        run(Backend::Postgres, steps);
    }
}

both_backends! {
    /// Found by the proptest (a model bug, kept as a case): a kill loses both a call's
    /// reservation and its settlement, so its next record is its first and charges.
    fn a_call_lost_whole_in_a_kill_is_charged_by_its_next_record(t) {
        a_call_lost_whole(t.backend);
    }
}

fn a_call_lost_whole(backend: Backend) {
    run(
        backend,
        vec![
            Step::Recharge(108),
            Step::Admit {
                call: 3,
                want: 0,
                floor: 0,
            },
            Step::Settle {
                call: 3,
                percent: 0,
            },
            Step::Kill,
            Step::Rerecord,
        ],
    );
}
