//! Accounts, the ledger and reservations, on both backends (and what is SQLite's own).

mod common;

use std::path::Path;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rusqlite::Connection;
use sihai_store::{
    AccountStatus, CdrFilter, CdrStore, EntryKind, LedgerStore, Money, NewEntry, Posted, Problem,
    RecoveryInfo, Refusal, ReservationOutcome, ReservationRequest, Spender, SqliteStore,
    StoreError,
};

use common::backend::{Backend, TestStore};
use common::{billed_cdr, full_cdr, ts};

/// Runs raw SQL on the test's database, behind the store's back.
fn raw_exec(t: &TestStore, sql: &str) {
    match t.backend {
        Backend::Sqlite => Connection::open(t.sqlite_path())
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
        Backend::Postgres => t.db.as_ref().unwrap().connect().batch_execute(sql).unwrap(),
    }
}

/// The daemon's last sign of life as stored: SQLite's one clock, or this node's.
fn stored_alive_at(t: &TestStore) -> Option<i64> {
    match t.backend {
        Backend::Sqlite => Connection::open(t.sqlite_path())
            .unwrap()
            .query_row("SELECT alive_at FROM node_clock", [], |r| r.get(0))
            .unwrap(),
        Backend::Postgres => {
            t.db.as_ref()
                .unwrap()
                .connect()
                .query_opt(
                    "SELECT alive_at FROM node_alive WHERE node = $1",
                    &[&t.node],
                )
                .unwrap()
                .map(|r| r.get(0))
        }
    }
}

fn m(units: i64) -> Money {
    Money::from_units(units)
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, Duration::from_millis(5)).unwrap()
}

fn db(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("cdr.db")
}

fn recharge(enterprise: &str, reference: &str, units: i64) -> NewEntry {
    NewEntry {
        enterprise: enterprise.into(),
        kind: EntryKind::Recharge,
        amount: m(units),
        reference: reference.into(),
        at: ts("2026-03-01T00:00:00Z"),
        actor: "cli".into(),
        note: Some("bank transfer".into()),
    }
}

fn recovery() -> RecoveryInfo {
    RecoveryInfo {
        number: "4001234567".into(),
        caller: "13812345678".into(),
        caller_province: Some("广东".into()),
        caller_city: Some("深圳".into()),
        tariff: "standard".into(),
        setup_at: ts("2026-03-02T01:59:58.123456Z"),
        answered_at: None,
    }
}

fn admit(call: &str, enterprise: &str, want: i64, floor: i64) -> ReservationRequest {
    ReservationRequest {
        call_id: call.into(),
        enterprise: enterprise.into(),
        want: m(want),
        floor: Some(m(floor)),
        recovery: recovery(),
    }
}

fn renew(call: &str, enterprise: &str, want: i64) -> ReservationRequest {
    ReservationRequest {
        floor: None,
        ..admit(call, enterprise, want, 0)
    }
}

fn granted(granted: i64, held: i64) -> ReservationOutcome {
    ReservationOutcome::Granted {
        granted: m(granted),
        held: m(held),
    }
}

both_backends! {
    fn opening_an_account_is_idempotent(t) {
        let store = t.store();
        let at = ts("2026-03-01T00:00:00Z");
        let a = store.open_account("acme", at).unwrap();
        assert_eq!(a.balance, Money::ZERO);
        assert_eq!(a.reserved, Money::ZERO);
        assert_eq!(a.status, AccountStatus::Active);
        assert_eq!(a.status_since, at);
        assert_eq!(a.negative_since, None);
        assert!(!a.low_balance_warned);
        store.post(recharge("acme", "r1", 100)).unwrap();
        // Opening again changes nothing.
        let again = store
            .open_account("acme", ts("2026-04-01T00:00:00Z"))
            .unwrap();
        assert_eq!(again.balance, m(100));
        assert_eq!(again.status_since, at);
        assert_eq!(store.account("acme").unwrap(), Some(again));
        assert_eq!(store.account("nobody").unwrap(), None);
        store.open_account("beta", at).unwrap();
        let names: Vec<_> = store
            .accounts()
            .unwrap()
            .into_iter()
            .map(|a| a.enterprise)
            .collect();
        assert_eq!(names, ["acme", "beta"]);
    }
}

both_backends! {
    fn posting_is_idempotent_and_keeps_balance_after_and_negative_since(t) {
        let store = t.store();
        // Posting opens the account.
        let first = store.post(recharge("acme", "pay-1", 50_000)).unwrap();
        assert!(first.is_new());
        assert_eq!(first.entry().balance_after, m(50_000));
        assert_eq!(first.entry().note.as_deref(), Some("bank transfer"));
        // The same key again: nothing changes, the first entry comes back.
        let again = store.post(recharge("acme", "pay-1", 50_000)).unwrap();
        assert_eq!(again, Posted::Already(first.entry().clone()));
        assert_eq!(store.account("acme").unwrap().unwrap().balance, m(50_000));
        // The same key with another amount is an error, not silently accepted.
        let err = store.post(recharge("acme", "pay-1", 60_000)).unwrap_err();
        assert!(
            matches!(&err, StoreError::ConflictingEntry { posted, asked, .. }
                if *posted == m(50_000) && *asked == m(60_000)),
            "{err}"
        );
        assert!(err.to_string().contains("pay-1"), "{err}");

        // Into the red: negative_since is the entry's time, and stays while negative.
        let fee = |reference: &str, units: i64, at: &str| NewEntry {
            enterprise: "acme".into(),
            kind: EntryKind::Fee,
            amount: m(units),
            reference: reference.into(),
            at: ts(at),
            actor: "system".into(),
            note: None,
        };
        let p = store
            .post(fee("opening", -80_000, "2026-03-02T00:00:00Z"))
            .unwrap();
        assert_eq!(p.entry().balance_after, m(-30_000));
        let a = store.account("acme").unwrap().unwrap();
        assert_eq!(a.negative_since, Some(ts("2026-03-02T00:00:00Z")));
        store
            .post(fee("phones", -1, "2026-03-03T00:00:00Z"))
            .unwrap();
        let a = store.account("acme").unwrap().unwrap();
        assert_eq!(a.negative_since, Some(ts("2026-03-02T00:00:00Z")));
        // Back above zero clears it.
        let mut pay2 = recharge("acme", "pay-2", 30_001);
        pay2.at = ts("2026-03-04T00:00:00Z");
        store.post(pay2).unwrap();
        let a = store.account("acme").unwrap().unwrap();
        assert_eq!((a.balance, a.negative_since), (m(0), None));

        let entries = store.ledger("acme", None, None).unwrap();
        let afters: Vec<_> = entries.iter().map(|e| e.balance_after.units()).collect();
        assert_eq!(afters, [50_000, -30_000, -30_001, 0]);
        // A window: since inclusive, until exclusive, oldest first.
        let window = store
            .ledger(
                "acme",
                Some(ts("2026-03-02T00:00:00Z")),
                Some(ts("2026-03-03T00:00:00Z")),
            )
            .unwrap();
        assert_eq!(window.len(), 1);
        assert_eq!(window[0].reference, "opening");
        assert!(store.verify().unwrap().is_empty());
    }
}

both_backends! {
    fn status_and_low_balance_flag(t) {
        let store = t.store();
        let at = ts("2026-03-05T00:00:00Z");
        assert!(matches!(
            store.set_status("acme", AccountStatus::Suspended, at),
            Err(StoreError::NoAccount { .. })
        ));
        assert!(matches!(
            store.set_low_balance_warned("acme", true),
            Err(StoreError::NoAccount { .. })
        ));
        store
            .open_account("acme", ts("2026-03-01T00:00:00Z"))
            .unwrap();
        store
            .set_status("acme", AccountStatus::Suspended, at)
            .unwrap();
        // The same status again keeps its `since`.
        store
            .set_status("acme", AccountStatus::Suspended, ts("2026-03-06T00:00:00Z"))
            .unwrap();
        store.set_low_balance_warned("acme", true).unwrap();
        let a = store.account("acme").unwrap().unwrap();
        assert_eq!(
            (a.status, a.status_since, a.low_balance_warned),
            (AccountStatus::Suspended, at, true)
        );
    }
}

both_backends! {
    fn admission_is_refused_by_account_status_and_balance(t) {
        let store = t.store();
        let at = ts("2026-03-01T00:00:00Z");
        assert_eq!(
            store.reserve(admit("c1", "acme", 100, 10)).unwrap(),
            ReservationOutcome::Refused(Refusal::NoAccount)
        );
        store.post(recharge("acme", "r", 500)).unwrap();
        assert_eq!(
            store.reserve(admit("c1", "acme", 100, 501)).unwrap(),
            ReservationOutcome::Refused(Refusal::InsufficientBalance)
        );
        store
            .set_status("acme", AccountStatus::Suspended, at)
            .unwrap();
        assert_eq!(
            store.reserve(admit("c1", "acme", 100, 10)).unwrap(),
            ReservationOutcome::Refused(Refusal::Suspended)
        );
        store
            .set_status("acme", AccountStatus::Reclaimed, at)
            .unwrap();
        assert_eq!(
            store.reserve(admit("c1", "acme", 100, 10)).unwrap(),
            ReservationOutcome::Refused(Refusal::Reclaimed)
        );
        store.flush().unwrap();
        // A refusal holds nothing.
        assert_eq!(store.open_reservations().unwrap().1, vec![]);
        assert_eq!(store.account("acme").unwrap().unwrap().reserved, m(0));
    }
}

both_backends! {
    fn admission_grants_what_is_available_and_renewal_down_to_zero(t) {
        let store = t.store();
        store.post(recharge("acme", "r", 500)).unwrap();
        assert_eq!(
            store.reserve(admit("c1", "acme", 300, 100)).unwrap(),
            granted(300, 300)
        );
        // Partial: only 200 is left.
        assert_eq!(
            store.reserve(admit("c2", "acme", 300, 100)).unwrap(),
            granted(200, 200)
        );
        // Nothing is left: the next admission is refused ...
        assert_eq!(
            store.reserve(admit("c3", "acme", 300, 1)).unwrap(),
            ReservationOutcome::Refused(Refusal::InsufficientBalance)
        );
        // ... and a renewal is granted zero, recording the answer time.
        let mut r = renew("c1", "acme", 300);
        r.recovery.answered_at = Some(ts("2026-03-02T02:00:05Z"));
        assert_eq!(store.reserve(r).unwrap(), granted(0, 300));
        store.flush().unwrap();
        let a = store.account("acme").unwrap().unwrap();
        assert_eq!(
            (a.balance, a.reserved, a.available()),
            (m(500), m(500), m(0))
        );
        let (_, open) = store.open_reservations().unwrap();
        let c1 = open.iter().find(|o| o.call_id == "c1").unwrap();
        assert_eq!(c1.held, m(300));
        assert_eq!(c1.recovery.answered_at, Some(ts("2026-03-02T02:00:05Z")));
        assert_eq!(c1.recovery.caller_city.as_deref(), Some("深圳"));
        // A recharge makes room for the renewal.
        store.post(recharge("acme", "r2", 50)).unwrap();
        assert_eq!(
            store.reserve(renew("c2", "acme", 300)).unwrap(),
            granted(50, 250)
        );
        assert!(store.verify().unwrap().is_empty());
    }
}

both_backends! {
    fn settling_charges_once_and_releases_the_reservation(t) {
        let store = t.store();
        store.post(recharge("acme", "r", 10_000)).unwrap();
        store.reserve(admit("call-1", "acme", 3_000, 100)).unwrap();
        store
            .mark_answered("call-1", ts("2026-03-02T02:00:05Z"))
            .unwrap();
        store.flush().unwrap();
        assert_eq!(
            store.open_reservations().unwrap().1[0].recovery.answered_at,
            Some(ts("2026-03-02T02:00:05Z"))
        );

        let cdr = billed_cdr("call-1", "acme", Some(1_234));
        store.record(cdr.clone(), None).unwrap();
        if t.backend == Backend::Sqlite {
            // The book sees the settlement at once, before the commit.
            assert_eq!(t.sqlite().book_view("acme").unwrap(), Some((m(8_766), m(0))));
        }
        store.flush().unwrap();
        let a = store.account("acme").unwrap().unwrap();
        assert_eq!((a.balance, a.reserved), (m(8_766), m(0)));
        assert_eq!(store.open_reservations().unwrap().1, vec![]);
        let charge = store.ledger("acme", None, None).unwrap().pop().unwrap();
        assert_eq!(charge.kind, EntryKind::CallCharge);
        assert_eq!(charge.amount, m(-1_234));
        assert_eq!(charge.reference, "call-1");
        assert_eq!(charge.at, cdr.end_at);
        assert_eq!(charge.actor, "system");
        // The CDR keeps what it was billed.
        assert_eq!(
            store.query(&CdrFilter::default()).unwrap(),
            vec![cdr.clone()]
        );

        // The same call recorded again (a restart's recovery, say) never charges twice.
        let mut again = cdr.clone();
        again.cost = Some(m(9_999));
        store.record(again, None).unwrap();
        assert!(matches!(store.flush(), Err(StoreError::Rejected { .. })));
        let a = store.account("acme").unwrap().unwrap();
        assert_eq!(a.balance, m(8_766));
        if t.backend == Backend::Sqlite {
            assert_eq!(t.sqlite().book_view("acme").unwrap(), Some((m(8_766), m(0))));
        }
        assert_eq!(store.ledger("acme", None, None).unwrap().len(), 2);
        assert!(store.verify().unwrap().is_empty());
    }
}

both_backends! {
    fn an_unbilled_or_free_call_releases_without_charging(t) {
        let store = t.store();
        store.post(recharge("acme", "r", 1_000)).unwrap();
        store.reserve(admit("free", "acme", 500, 1)).unwrap();
        store.reserve(admit("unbilled", "acme", 500, 1)).unwrap();
        store
            .record(billed_cdr("free", "acme", Some(0)), None)
            .unwrap();
        store
            .record(billed_cdr("unbilled", "acme", None), None)
            .unwrap();
        store.flush().unwrap();
        let a = store.account("acme").unwrap().unwrap();
        assert_eq!((a.balance, a.reserved), (m(1_000), m(0)));
        assert_eq!(store.ledger("acme", None, None).unwrap().len(), 1);
        let cdrs = store.query(&CdrFilter::default()).unwrap();
        let unbilled = cdrs.iter().find(|c| c.call_id == "unbilled").unwrap();
        assert_eq!((unbilled.cost, unbilled.tariff.as_deref()), (None, None));
    }
}

both_backends! {
    /// SQLite: another process on the file; PostgreSQL: another node on the database.
    fn a_recharge_by_another_process_is_seen_within_the_book_s_refresh_interval(t) {
        let daemon = t.store();
        daemon
            .open_account("acme", ts("2026-03-01T00:00:00Z"))
            .unwrap();
        assert_eq!(
            daemon.reserve(admit("c1", "acme", 100, 1)).unwrap(),
            ReservationOutcome::Refused(Refusal::InsufficientBalance)
        );
        // The CLI: its own store on the same database.
        let cli = t.open_another("cli");
        cli.post(recharge("acme", "cli-pay", 700)).unwrap();
        drop(cli);
        // The daemon's book looks for other connections' changes every 50 ms at most.
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(
            daemon.reserve(admit("c1", "acme", 100, 1)).unwrap(),
            granted(100, 100)
        );
        // A status change too.
        let cli = t.open_another("cli");
        cli.set_status("acme", AccountStatus::Suspended, ts("2026-03-02T00:00:00Z"))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(
            daemon.reserve(admit("c2", "acme", 100, 1)).unwrap(),
            ReservationOutcome::Refused(Refusal::Suspended)
        );
        // A settlement committed meanwhile by the daemon is not lost by the reload.
        daemon
            .record(billed_cdr("c1", "acme", Some(60)), None)
            .unwrap();
        daemon.flush().unwrap();
        cli.set_status("acme", AccountStatus::Active, ts("2026-03-03T00:00:00Z"))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert_eq!(
            daemon.reserve(admit("c3", "acme", 10_000, 1)).unwrap(),
            granted(640, 640)
        );
    }
}

both_backends! {
    fn a_killed_daemon_finds_its_open_calls_and_settles_each_once(t) {
        let store = t.store();
        store.post(recharge("acme", "r", 10_000)).unwrap();
        assert_eq!(
            store.reserve(admit("answered", "acme", 3_000, 1)).unwrap(),
            granted(3_000, 3_000)
        );
        store.reserve(admit("ringing", "acme", 2_000, 1)).unwrap();
        store
            .mark_answered("answered", ts("2026-03-02T02:00:05Z"))
            .unwrap();
        store.wait_committed().unwrap();
        // SQLite: queued but never committed, lost with the process. PostgreSQL: a
        // reservation is committed when granted, so it outlives the kill.
        store.reserve(admit("lost", "acme", 1_000, 1)).unwrap();
        let (expected, held): (&[&str], i64) = match t.backend {
            Backend::Sqlite => (&["answered", "ringing"], 5_000),
            Backend::Postgres => (&["answered", "lost", "ringing"], 6_000),
        };
        let before_kill = Timestamp::now();
        t.kill_and_reopen();

        let store = t.store();
        let (alive, open) = store.open_reservations().unwrap();
        let alive = alive.expect("the killed daemon stamped alive_at");
        assert!(alive <= before_kill);
        let ids: Vec<_> = open.iter().map(|o| o.call_id.as_str()).collect();
        assert_eq!(ids, expected);
        assert_eq!(
            open[0].recovery.answered_at,
            Some(ts("2026-03-02T02:00:05Z"))
        );
        // The orphans still hold their money until settled.
        if t.backend == Backend::Sqlite {
            assert_eq!(
                t.sqlite().book_view("acme").unwrap(),
                Some((m(10_000), m(5_000)))
            );
        }
        assert_eq!(store.account("acme").unwrap().unwrap().reserved, m(held));
        assert_eq!(
            store.reserve(admit("new", "acme", 10_000, 1)).unwrap(),
            granted(10_000 - held, 10_000 - held)
        );
        // Settle each the way the daemon does: record its CDR with the computed cost.
        for o in &open {
            let cost = if o.recovery.answered_at.is_some() {
                700
            } else {
                0
            };
            store
                .record(billed_cdr(&o.call_id, "acme", Some(cost)), None)
                .unwrap();
        }
        store.flush().unwrap();
        // A second recovery pass (say the daemon died again mid-recovery) charges nothing.
        for o in &open {
            store
                .record(billed_cdr(&o.call_id, "acme", Some(700)), None)
                .unwrap();
        }
        assert!(matches!(store.flush(), Err(StoreError::Rejected { .. })));
        let a = store.account("acme").unwrap().unwrap();
        assert_eq!((a.balance, a.reserved), (m(9_300), m(10_000 - held)));
        assert!(store.verify().unwrap().is_empty());
    }
}

both_backends! {
    /// PostgreSQL: a store of the same node that never reserves (the CLI, or a restarted
    /// node still settling its previous run's calls) does not stamp it either.
    fn a_cli_process_does_not_stamp_alive_at(t) {
        let store = t.store();
        store.post(recharge("acme", "r", 10_000)).unwrap();
        store.reserve(admit("c", "acme", 3_000, 1)).unwrap();
        store.flush().unwrap();
        let node = t.node.clone();
        t.close();
        let stamped = stored_alive_at(t);
        assert!(stamped.is_some());
        // The CLI opens the store, posts and reads, for longer than the alive tick.
        let cli = t.open_another(&node);
        cli.post(recharge("acme", "r2", 1)).unwrap();
        std::thread::sleep(sihai_store::ALIVE_TICK + Duration::from_millis(300));
        cli.record(full_cdr("unrelated"), None).unwrap();
        cli.flush().unwrap();
        drop(cli);
        assert_eq!(stored_alive_at(t), stamped);
    }
}

both_backends! {
    fn spent_sums_call_charges_by_number_and_enterprise(t) {
        let store = t.store();
        store.post(recharge("acme", "r", 100_000)).unwrap();
        let mut a = billed_cdr("a", "acme", Some(100));
        a.end_at = ts("2026-03-10T00:00:00Z");
        let mut b = billed_cdr("b", "acme", Some(250));
        b.number = "4007654321".into();
        b.end_at = ts("2026-03-11T00:00:00Z");
        let mut c = billed_cdr("c", "acme", Some(1_000));
        c.end_at = ts("2026-04-01T00:00:00Z"); // next month
        for cdr in [a, b, c] {
            store.record(cdr, None).unwrap();
        }
        store.flush().unwrap();
        let (since, until) = (ts("2026-03-01T00:00:00Z"), ts("2026-04-01T00:00:00Z"));
        assert_eq!(
            store
                .spent(Spender::Enterprise("acme"), since, until)
                .unwrap(),
            m(350)
        );
        assert_eq!(
            store
                .spent(Spender::Number("4001234567"), since, until)
                .unwrap(),
            m(100)
        );
        assert_eq!(
            store
                .spent(Spender::Number("4007654321"), since, until)
                .unwrap(),
            m(250)
        );
        assert_eq!(
            store
                .spent(Spender::Enterprise("nobody"), since, until)
                .unwrap(),
            m(0)
        );
    }
}

both_backends! {
    fn verify_names_what_is_off(t) {
        let store = t.store();
        store.post(recharge("acme", "r1", 100)).unwrap();
        store.post(recharge("acme", "r2", 50)).unwrap();
        store.reserve(admit("c", "acme", 10, 1)).unwrap();
        store.flush().unwrap();
        assert!(store.verify().unwrap().is_empty());
        raw_exec(
            t,
            "UPDATE account SET balance = 151, reserved = 0;
             UPDATE ledger SET balance_after = 149 WHERE reference = 'r2';",
        );
        let found = t.store().verify().unwrap();
        let problems: Vec<_> = found.iter().map(|d| d.problem.clone()).collect();
        assert_eq!(
            problems,
            [
                Problem::Balance {
                    stored: m(151),
                    ledger_sum: m(150)
                },
                Problem::Reserved {
                    stored: m(0),
                    held_sum: m(10)
                },
                Problem::BalanceAfter {
                    entry_id: 2,
                    stored: m(149),
                    expected: m(150)
                },
            ]
        );
        assert!(
            found[0].to_string().starts_with("acme: balance 0.0151"),
            "{}",
            found[0]
        );
    }
}

#[test]
fn a_version_4_database_gains_the_ledger_and_keeps_its_cdrs() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = open(&path);
    store.record(full_cdr("before-upgrade"), None).unwrap();
    store.close().unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(common::DOWN_TO_V4).unwrap();
    drop(conn);

    let store = open(&path);
    let cdrs = store.query(&CdrFilter::default()).unwrap();
    assert_eq!(cdrs, vec![full_cdr("before-upgrade")]);
    assert_eq!((cdrs[0].billed_seconds, cdrs[0].cost), (0, None));
    store.post(recharge("acme", "r", 100)).unwrap();
    store
        .record(billed_cdr("after-upgrade", "acme", Some(40)), None)
        .unwrap();
    store.flush().unwrap();
    assert_eq!(store.account("acme").unwrap().unwrap().balance, m(60));
    assert_eq!(store.query(&CdrFilter::default()).unwrap().len(), 2);
}

both_backends! {
    fn the_alive_clock_ticks_while_calls_are_open(t) {
        let store = t.store();
        store.post(recharge("acme", "r", 100)).unwrap();
        store.reserve(admit("c", "acme", 10, 1)).unwrap();
        store.flush().unwrap();
        let first = stored_alive_at(t).expect("stamped");
        std::thread::sleep(sihai_store::ALIVE_TICK + Duration::from_millis(500));
        let later = stored_alive_at(t).expect("stamped");
        assert!(
            SignedDuration::from_micros(later - first) >= SignedDuration::from_millis(900),
            "alive_at moved {}µs",
            later - first
        );
    }
}

#[test]
fn a_version_5_database_keeps_its_open_reservations_when_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = open(&path);
    store
        .open_account("acme", ts("2026-03-01T00:00:00Z"))
        .unwrap();
    store.post(recharge("acme", "pay", 1_000)).unwrap();
    assert_eq!(
        store.reserve(admit("open-call", "acme", 300, 1)).unwrap(),
        granted(300, 300)
    );
    store.close().unwrap();
    // What version 5 wrote: the reservation as a rowid table with an enterprise index.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(common::DOWN_TO_V6).unwrap();
    conn.execute_batch(
        "CREATE TABLE reservation_v5 (
             call_id TEXT PRIMARY KEY, enterprise TEXT NOT NULL REFERENCES account (enterprise),
             held INTEGER NOT NULL, number TEXT NOT NULL, caller TEXT NOT NULL,
             caller_province TEXT, caller_city TEXT, tariff TEXT NOT NULL,
             setup_at INTEGER NOT NULL, answered_at INTEGER);
         INSERT INTO reservation_v5 SELECT * FROM reservation;
         DROP TABLE reservation;
         ALTER TABLE reservation_v5 RENAME TO reservation;
         CREATE INDEX reservation_enterprise ON reservation (enterprise);
         PRAGMA user_version = 5;",
    )
    .unwrap();
    drop(conn);

    let store = open(&path);
    let (_, open_calls) = store.open_reservations().unwrap();
    assert_eq!(open_calls.len(), 1);
    assert_eq!(open_calls[0].call_id, "open-call");
    assert_eq!(open_calls[0].held.units(), 300);
    assert_eq!(store.verify().unwrap(), vec![]);
    let account = store.account("acme").unwrap().unwrap();
    assert_eq!(account.reserved.units(), 300);
}
