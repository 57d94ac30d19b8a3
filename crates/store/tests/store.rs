//! The CDR store on both backends (round trips, filters, batching, rejections), and the
//! SQLite store's own schema, outbox, errors and files.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use rusqlite::Connection;
use sihai_store::{
    Cdr, CdrFilter, CdrStore, HangupSide, Outcome, SCHEMA_VERSION, SqliteStore, StoreError,
    StoreOptions,
};

use common::backend::{Backend, TestStore};
use common::{alert_for, full_cdr, missed_cdr, ts};

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("cdr.db"), Duration::from_millis(5)).unwrap()
}

fn all(store: &dyn CdrStore) -> Vec<Cdr> {
    store.query(&CdrFilter::default()).unwrap()
}

both_backends! {
    fn round_trip_keeps_every_field(t) {
        let store = t.store();
        let full = sihai_store::Cdr {
            customer_id: Some("C1024".into()),
            ..full_cdr("call-full")
        };
        let empty = missed_cdr("call-empty", ts("2026-03-01T00:00:00Z"));
        store.record(full.clone(), None).unwrap();
        store.record(empty.clone(), None).unwrap();
        store.flush().unwrap();

        // Newest first.
        assert_eq!(all(store), vec![full, empty]);
    }
}

both_backends! {
    fn timestamps_keep_microseconds_and_drop_nanoseconds(t) {
        let store = t.store();
        let mut cdr = full_cdr("c");
        cdr.setup_at = ts("2026-03-02T01:59:58.123456789Z");
        store.record(cdr, None).unwrap();
        store.flush().unwrap();
        assert_eq!(all(store)[0].setup_at, ts("2026-03-02T01:59:58.123456Z"));
    }
}

both_backends! {
    fn every_outcome_and_side_round_trips(t) {
        let store = t.store();
        let base = ts("2026-03-01T00:00:00Z");
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            let mut cdr = missed_cdr(&format!("c{i}"), base + SignedDuration::from_secs(i as i64));
            cdr.outcome = outcome;
            cdr.hangup_side = Some(HangupSide::ALL[i % 3]);
            store.record(cdr, None).unwrap();
        }
        store.flush().unwrap();
        let got = all(store);
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            let cdr = got.iter().find(|c| c.call_id == format!("c{i}")).unwrap();
            assert_eq!(cdr.outcome, outcome);
            assert_eq!(cdr.hangup_side, Some(HangupSide::ALL[i % 3]));
            assert_eq!(outcome.as_str().parse::<Outcome>().unwrap(), outcome);
        }
        assert_eq!("no_answer".parse::<Outcome>().unwrap(), Outcome::NoAnswer);
        assert_eq!(
            "after_hours".parse::<Outcome>().unwrap(),
            Outcome::AfterHours
        );
        assert_eq!("system".parse::<HangupSide>().unwrap(), HangupSide::System);
        let err = "ringing".parse::<Outcome>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown outcome "ringing""#);
    }
}

/// Six calls over three days, two numbers, two callers, three outcomes.
fn filter_fixture(store: &dyn CdrStore) {
    let calls = [
        (
            "a",
            "4001111111",
            "acme",
            "13800000001",
            "2026-03-01T01:00:00Z",
            Outcome::Answered,
        ),
        (
            "b",
            "4001111111",
            "acme",
            "13800000002",
            "2026-03-01T02:00:00Z",
            Outcome::NoAnswer,
        ),
        (
            "c",
            "4002222222",
            "globex",
            "13800000001",
            "2026-03-02T01:00:00Z",
            Outcome::Busy,
        ),
        (
            "d",
            "4001111111",
            "acme",
            "13800000001",
            "2026-03-02T02:00:00Z",
            Outcome::Answered,
        ),
        (
            "e",
            "4002222222",
            "globex",
            "13800000002",
            "2026-03-03T01:00:00Z",
            Outcome::NoAnswer,
        ),
        (
            "f",
            "4001111111",
            "acme",
            "13800000002",
            "2026-03-03T02:00:00Z",
            Outcome::Answered,
        ),
    ];
    // Recorded out of order: query order must come from setup_at.
    for &(id, number, enterprise, caller, setup, outcome) in
        calls.iter().rev().step_by(2).chain(calls.iter().step_by(2))
    {
        let mut cdr = missed_cdr(id, ts(setup));
        cdr.number = number.into();
        cdr.enterprise = enterprise.into();
        cdr.caller = caller.into();
        cdr.outcome = outcome;
        store.record(cdr, None).unwrap();
    }
    store.flush().unwrap();
}

fn ids(store: &dyn CdrStore, filter: CdrFilter) -> String {
    store
        .query(&filter)
        .unwrap()
        .iter()
        .map(|c| c.call_id.as_str())
        .collect()
}

both_backends! {
    fn filters(t) {
        let store = t.store();
        filter_fixture(store);

        assert_eq!(ids(store, CdrFilter::default()), "fedcba");
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    number: Some("4001111111".into()),
                    ..Default::default()
                }
            ),
            "fdba"
        );
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    enterprise: Some("globex".into()),
                    ..Default::default()
                }
            ),
            "ec"
        );
        // One call by its id; with its enterprise too, only if the call is that enterprise's.
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    call_id: Some("c".into()),
                    ..Default::default()
                }
            ),
            "c"
        );
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    call_id: Some("c".into()),
                    enterprise: Some("acme".into()),
                    ..Default::default()
                }
            ),
            ""
        );
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    call_id: Some("zz".into()),
                    ..Default::default()
                }
            ),
            ""
        );
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    caller: Some("13800000001".into()),
                    ..Default::default()
                }
            ),
            "dca"
        );
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    outcome: Some(Outcome::NoAnswer),
                    ..Default::default()
                }
            ),
            "eb"
        );
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    outcome: Some(Outcome::Failed),
                    ..Default::default()
                }
            ),
            ""
        );
        // since is inclusive, until exclusive.
        let day2 = CdrFilter {
            since: Some(ts("2026-03-02T01:00:00Z")),
            until: Some(ts("2026-03-03T01:00:00Z")),
            ..Default::default()
        };
        assert_eq!(ids(store, day2.clone()), "dc");
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    since: Some(ts("2026-03-02T01:00:00Z")),
                    ..Default::default()
                }
            ),
            "fedc"
        );
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    until: Some(ts("2026-03-02T01:00:00Z")),
                    ..Default::default()
                }
            ),
            "ba"
        );
        // limit keeps the newest.
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    limit: 2,
                    ..Default::default()
                }
            ),
            "fe"
        );
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    limit: 100,
                    ..Default::default()
                }
            ),
            "fedcba"
        );
        // Everything at once.
        let combined = CdrFilter {
            number: Some("4001111111".into()),
            caller: Some("13800000002".into()),
            outcome: Some(Outcome::Answered),
            since: Some(ts("2026-03-01T00:00:00Z")),
            until: Some(ts("2026-03-04T00:00:00Z")),
            limit: 1,
            ..Default::default()
        };
        assert_eq!(ids(store, combined), "f");
    }
}

both_backends! {
    fn keyset_pages_walk_every_call_once_newest_first(t) {
        let store = t.store();
        filter_fixture(store);
        // Three more calls at one instant, the newest of all: the cursor must order them
        // by their row, not skip or repeat any.
        for id in ["x", "y", "z"] {
            store
                .record(missed_cdr(id, ts("2026-03-04T00:00:00Z")), None)
                .unwrap();
        }
        store.flush().unwrap();
        let everything: String = ids(store, CdrFilter::default());
        assert_eq!(everything.len(), 9);
        assert!(everything.ends_with("fedcba"), "{everything}");

        for size in [1, 2, 4, 100] {
            let mut walked = String::new();
            let mut before = None;
            loop {
                let page = store
                    .query(&CdrFilter {
                        before: before.clone(),
                        limit: size,
                        ..Default::default()
                    })
                    .unwrap();
                assert!(page.len() <= size);
                walked.extend(page.iter().map(|c| c.call_id.as_str()));
                match page.last() {
                    Some(last) if page.len() == size => {
                        before = Some((last.setup_at, last.call_id.clone()));
                    }
                    _ => break,
                }
            }
            assert_eq!(walked, everything, "pages of {size}");
        }

        // The cursor combines with the other filters.
        let acme_after_d = CdrFilter {
            enterprise: Some("acme".into()),
            number: Some("4001111111".into()),
            before: Some((ts("2026-03-02T02:00:00Z"), "d".into())),
            ..Default::default()
        };
        assert_eq!(ids(store, acme_after_d), "ba");
    }
}

both_backends! {
    fn outcomes_match_any_of_a_set(t) {
        let store = t.store();
        filter_fixture(store);
        let missed = CdrFilter {
            outcomes: vec![Outcome::NoAnswer, Outcome::Busy],
            ..Default::default()
        };
        assert_eq!(ids(store, missed.clone()), "ecb");
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    enterprise: Some("acme".into()),
                    ..missed.clone()
                }
            ),
            "b"
        );
        assert_eq!(
            ids(
                store,
                CdrFilter {
                    outcome: Some(Outcome::Busy),
                    ..missed
                }
            ),
            "c"
        );
    }
}

#[test]
fn database_is_wal_with_a_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dirs/cdr.db");
    let store = SqliteStore::open(&path, Duration::from_millis(5)).unwrap();
    assert_eq!(store.path(), path);

    let raw = Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 12);
    let tables: Vec<String> = raw
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "account",
            "alert_outbox",
            "analytics_caller",
            "analytics_day",
            "analytics_month_caller",
            "analytics_watermark",
            "api_key",
            "app_session",
            "app_user",
            "audio",
            "audit",
            "cdr",
            "cdr_attempt",
            "ledger",
            "node_alive",
            "node_clock",
            "reservation",
            "sqlite_sequence",
            "tenant_entry",
            "tenant_meta",
            "tenant_source"
        ]
    );
    drop(raw);

    // Reopening an up-to-date database changes nothing and loses nothing.
    store.record(full_cdr("x"), None).unwrap();
    store.close().unwrap();
    let store = SqliteStore::open(&path, Duration::from_millis(5)).unwrap();
    assert_eq!(all(&store), vec![full_cdr("x")]);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    SqliteStore::open(&path, Duration::from_millis(5))
        .unwrap()
        .close()
        .unwrap();
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();

    let err = SqliteStore::open(&path, Duration::from_millis(5))
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: SCHEMA_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.path(), path);
    assert!(
        err.to_string()
            .starts_with(&format!("{}: schema version 99", path.display())),
        "{err}"
    );
}

#[test]
fn errors_name_the_database_file() {
    let dir = tempfile::tempdir().unwrap();

    // The parent "directory" is a file.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "not a directory").unwrap();
    let path = blocker.join("cdr.db");
    let err = SqliteStore::open(&path, Duration::from_millis(5))
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );

    // Not an SQLite file.
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let err = SqliteStore::open(&path, Duration::from_millis(5))
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with(&path.display().to_string()), "{text}");
    assert!(text.contains("not a database"), "{text}");

    // Outbox operations on a missing id.
    let store = open(&dir);
    let err = store.alert_delivered(42).unwrap_err();
    assert!(
        matches!(err, StoreError::AlertNotFound { id: 42, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("cdr.db: no missed-call alert with id 42"),
        "{err}"
    );
    let err = store.alert_failed(42, Timestamp::now(), false).unwrap_err();
    assert!(
        matches!(err, StoreError::AlertNotFound { id: 42, .. }),
        "{err:?}"
    );
}

both_backends! {
    fn outbox_operations_on_a_missing_id_are_not_found(t) {
        let store = t.store();
        let err = store.alert_delivered(42).unwrap_err();
        assert!(
            matches!(err, StoreError::AlertNotFound { id: 42, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("no missed-call alert with id 42"),
            "{err}"
        );
        let err = store.alert_failed(42, Timestamp::now(), true).unwrap_err();
        assert!(
            matches!(err, StoreError::AlertNotFound { id: 42, .. }),
            "{err:?}"
        );
    }
}

/// SQLite: `due_alerts` does not claim, so the same alerts come back until delivered or
/// rescheduled (PostgreSQL's claiming outbox: tests/postgres_nodes.rs).
#[test]
fn outbox_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let store = SqliteStore::open(&path, Duration::from_millis(5)).unwrap();
    let t0 = ts("2026-03-01T00:00:00Z");
    let missed = missed_cdr("missed-1", t0);
    let late = missed_cdr("missed-2", t0 + SignedDuration::from_secs(60));
    store.record(full_cdr("answered"), None).unwrap();
    store
        .record(missed.clone(), Some(alert_for(&missed)))
        .unwrap();
    store.record(late.clone(), Some(alert_for(&late))).unwrap();
    store.flush().unwrap();
    assert_eq!(store.pending_alerts().unwrap(), 2);

    // Due from the call's end.
    assert!(
        store
            .due_alerts(missed.end_at - SignedDuration::from_secs(1), 10)
            .unwrap()
            .is_empty()
    );
    let due = store.due_alerts(missed.end_at, 10).unwrap();
    assert_eq!(due.len(), 1);
    let first = &due[0];
    assert_eq!(first.call_id, "missed-1");
    assert_eq!(first.enterprise, "globex");
    assert_eq!(first.url, "https://crm.example.com/missed");
    assert_eq!(
        first.payload,
        r#"{"call_id":"missed-1","caller":"anonymous"}"#
    );
    assert_eq!(first.attempts, 0);
    assert_eq!(first.next_attempt_at, missed.end_at);
    let far = t0 + SignedDuration::from_hours(24);
    assert_eq!(store.due_alerts(far, 10).unwrap().len(), 2);
    assert_eq!(store.due_alerts(far, 1).unwrap().len(), 1);
    assert!(store.due_alerts(far, 0).unwrap().is_empty());

    // A failure with backoff pushes it back and counts the attempt.
    let retry = missed.end_at + SignedDuration::from_mins(10);
    store.alert_failed(first.id, retry, false).unwrap();
    let due: Vec<_> = store.due_alerts(late.end_at, 10).unwrap();
    assert_eq!(
        due.iter().map(|a| a.call_id.as_str()).collect::<Vec<_>>(),
        ["missed-2"]
    );
    let due = store.due_alerts(retry, 10).unwrap();
    assert_eq!(
        due.iter().map(|a| a.call_id.as_str()).collect::<Vec<_>>(),
        ["missed-2", "missed-1"]
    );
    assert_eq!(due[1].attempts, 1);
    assert_eq!(due[1].next_attempt_at, retry);
    let second = due[0].clone();

    // Giving up keeps the row but it is never due again.
    store.alert_failed(second.id, far, true).unwrap();
    assert_eq!(
        store
            .due_alerts(far + SignedDuration::from_hours(1000), 10)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.pending_alerts().unwrap(),
        1,
        "a dead alert is no backlog"
    );
    let dead = store.dead_alerts(0).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].call_id, "missed-2");
    assert_eq!(dead[0].attempts, 1);

    // Reopening keeps the outbox as it was.
    store.close().unwrap();
    let store = SqliteStore::open(&path, Duration::from_millis(5)).unwrap();
    let due = store.due_alerts(far, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].call_id, "missed-1");
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].next_attempt_at, retry);
    assert_eq!(store.dead_alerts(10).unwrap().len(), 1);

    // Delivered removes it.
    store.alert_delivered(due[0].id).unwrap();
    assert!(store.due_alerts(far, 10).unwrap().is_empty());
    assert_eq!(store.pending_alerts().unwrap(), 0);
    assert!(matches!(
        store.alert_delivered(due[0].id),
        Err(StoreError::AlertNotFound { .. })
    ));
    // The CDRs are untouched by outbox operations.
    assert_eq!(all(&store).len(), 3);
}

both_backends! {
    fn duplicate_call_id_is_rejected_with_its_alert_and_reported_once(t) {
        let store = t.store();
        let t0 = ts("2026-03-01T00:00:00Z");
        let first = missed_cdr("dup", t0);
        store.record(first.clone(), None).unwrap();
        store.flush().unwrap();

        let mut again = missed_cdr("dup", t0 + SignedDuration::from_secs(5));
        again.caller = "13800000009".into();
        let other = missed_cdr("other", t0 + SignedDuration::from_secs(10));
        store
            .record(again.clone(), Some(alert_for(&again)))
            .unwrap();
        store
            .record(other.clone(), Some(alert_for(&other)))
            .unwrap();
        let err = store.flush().unwrap_err();
        let StoreError::Rejected { rejected, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].call_id, "dup");
        let reason = match t.backend {
            Backend::Sqlite => "UNIQUE",
            Backend::Postgres => "already stored",
        };
        assert!(rejected[0].reason.contains(reason), "{err}");
        assert!(
            err.to_string().contains(r#"1 CDR(s) rejected: call "dup""#),
            "{err}"
        );

        // The rest of the batch committed; the rejected CDR's alert went with it.
        assert_eq!(all(store), vec![other.clone(), first]);
        let due = store
            .due_alerts(t0 + SignedDuration::from_hours(1), 10)
            .unwrap();
        assert_eq!(
            due.iter().map(|a| a.call_id.as_str()).collect::<Vec<_>>(),
            ["other"]
        );
        // Reported once.
        store.flush().unwrap();
    }
}

mod commits_on_its_own_within_the_interval {
    use super::*;

    fn body(backend: Backend) {
        let t = TestStore::with_commit_interval(backend, Duration::from_millis(20));
        let store = t.store();
        let count = || -> i64 {
            match backend {
                Backend::Sqlite => Connection::open(t.sqlite_path())
                    .unwrap()
                    .query_row("SELECT count(*) FROM cdr", [], |r| r.get(0))
                    .unwrap(),
                Backend::Postgres => {
                    t.db.as_ref()
                        .unwrap()
                        .connect()
                        .query_one("SELECT count(*) FROM cdr", &[])
                        .unwrap()
                        .get(0)
                }
            }
        };
        let started = Instant::now();
        for i in 0..3 {
            store.record(full_cdr(&format!("c{i}")), None).unwrap();
        }
        // No flush: the writer commits by itself.
        while count() < 3 {
            assert!(started.elapsed() < Duration::from_secs(10), "not committed");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn sqlite() {
        body(Backend::Sqlite)
    }

    #[test]
    fn postgres() {
        body(Backend::Postgres)
    }
}

mod dropping_the_store_commits_what_is_queued {
    use super::*;

    fn body(backend: Backend) {
        let mut t = TestStore::with_commit_interval(backend, Duration::from_secs(3600));
        // An hour-long interval: only the first record commits before the close.
        for i in 0..50 {
            t.store().record(full_cdr(&format!("c{i}")), None).unwrap();
        }
        t.close();
        t.commit_interval = Duration::from_millis(5);
        t.reopen();
        assert_eq!(all(t.store()).len(), 50);
    }

    #[test]
    fn sqlite() {
        body(Backend::Sqlite)
    }

    #[test]
    fn postgres() {
        body(Backend::Postgres)
    }
}

both_backends! {
    fn many_threads_many_batches(t) {
        let store = t.store();
        let t0 = ts("2026-03-01T00:00:00Z");
        std::thread::scope(|scope| {
            for t in 0..4 {
                scope.spawn(move || {
                    for i in 0..500 {
                        let cdr =
                            missed_cdr(&format!("t{t}-{i}"), t0 + SignedDuration::from_secs(i));
                        let alert = (i % 10 == 0).then(|| alert_for(&cdr));
                        store.record(cdr, alert).unwrap();
                    }
                    store.flush().unwrap();
                });
            }
        });
        store.flush().unwrap();
        assert_eq!(store.query(&CdrFilter::default()).unwrap().len(), 2000);
        assert_eq!(
            store
                .due_alerts(t0 + SignedDuration::from_hours(1), 1000)
                .unwrap()
                .len(),
            200
        );
    }
}

fn locked_store(path: &std::path::Path) -> (SqliteStore, Connection) {
    let options = StoreOptions {
        commit_interval: Duration::from_millis(5),
        busy_timeout: Duration::from_millis(50),
        ..Default::default()
    };
    let store = SqliteStore::open_with(path, options).unwrap();
    // Another process holds the write lock.
    let blocker = Connection::open(path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    (store, blocker)
}

#[test]
fn a_failed_commit_keeps_the_batch_and_retries_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let (store, blocker) = locked_store(&path);
    let missed = missed_cdr("a", ts("2026-03-01T00:00:00Z"));
    store
        .record(missed.clone(), Some(alert_for(&missed)))
        .unwrap();
    let err = store.flush().unwrap_err();
    assert!(
        matches!(err, StoreError::Commit { pending: 1, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.starts_with(&path.display().to_string()), "{text}");
    assert!(text.contains("database is locked"), "{text}");

    store.record(full_cdr("b"), None).unwrap();
    let err = store.flush().unwrap_err();
    assert!(
        matches!(err, StoreError::Commit { pending: 2, .. }),
        "{err:?}"
    );

    // Once the lock is gone the writer retries on its own, without a flush.
    blocker.execute_batch("COMMIT").unwrap();
    let started = Instant::now();
    while blocker
        .query_row("SELECT count(*) FROM cdr", [], |r| r.get::<_, i64>(0))
        .unwrap()
        < 2
    {
        assert!(started.elapsed() < Duration::from_secs(20), "never retried");
        std::thread::sleep(Duration::from_millis(10));
    }
    store.flush().unwrap();
    assert_eq!(all(&store).len(), 2);
    assert_eq!(
        store
            .due_alerts(ts("2026-03-02T00:00:00Z"), 10)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn closing_while_commits_fail_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let (store, _blocker) = locked_store(&path);
    store.record(full_cdr("a"), None).unwrap();
    let err = store.close().unwrap_err();
    assert!(
        matches!(err, StoreError::Commit { pending: 1, .. }),
        "{err:?}"
    );
}

mod wait_committed_returns_at_once_when_nothing_is_pending {
    use super::*;

    fn body(backend: Backend) {
        let t = TestStore::with_commit_interval(backend, Duration::from_secs(3600));
        let store = t.store();
        store.wait_committed().unwrap();
        store.record(full_cdr("first"), None).unwrap();
        store.flush().unwrap();
        // The interval since that commit has not passed, but nothing is queued.
        store.wait_committed().unwrap();
        assert_eq!(all(store).len(), 1);
    }

    #[test]
    fn sqlite() {
        body(Backend::Sqlite)
    }

    #[test]
    fn postgres() {
        body(Backend::Postgres)
    }
}

mod wait_committed_shares_the_next_regular_commit {
    use super::*;

    fn body(backend: Backend) {
        let interval = Duration::from_millis(400);
        let t = TestStore::with_commit_interval(backend, interval);
        let store = t.store();
        // An idle store commits the first record at once; the next waits for the interval.
        store.record(full_cdr("opens-the-interval"), None).unwrap();
        store.flush().unwrap();
        let committed_at = Instant::now();
        store.record(full_cdr("a"), None).unwrap();
        std::thread::scope(|scope| {
            let waiters: Vec<_> = ["b", "c"]
                .into_iter()
                .map(|id| {
                    store.record(full_cdr(id), None).unwrap();
                    scope.spawn(move || store.wait_committed())
                })
                .collect();
            store.wait_committed().unwrap();
            for waiter in waiters {
                waiter.join().unwrap().unwrap();
            }
        });
        // Waiting did not hurry the commit (a flush would have committed at once) ...
        assert!(committed_at.elapsed() >= interval - Duration::from_millis(50));
        // ... and everything recorded before the wait is there.
        assert_eq!(all(store).len(), 4);
    }

    #[test]
    fn sqlite() {
        body(Backend::Sqlite)
    }

    #[test]
    fn postgres() {
        body(Backend::Postgres)
    }
}

#[test]
fn a_version_1_database_gains_the_recording_and_menu_columns_and_keeps_its_cdrs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let store = open_at(&path);
    store.record(full_cdr("before-upgrade"), None).unwrap();
    store.close().unwrap();
    // What a version 1 database looks like.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(common::DOWN_TO_V4).unwrap();
    conn.execute_batch(
        "ALTER TABLE cdr DROP COLUMN announcement; ALTER TABLE cdr DROP COLUMN menu_path;
         ALTER TABLE cdr DROP COLUMN recording; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);

    let store = open_at(&path);
    let mut recorded = full_cdr("after-upgrade");
    recorded.recording = Some("recordings/acme/2026-11-23/x.wav".into());
    recorded.menu_path = Some("2>8001".into());
    store.record(recorded.clone(), None).unwrap();
    store.flush().unwrap();
    let all = all(&store);
    assert_eq!(all.len(), 2);
    assert!(all.contains(&recorded));
    assert!(
        all.iter().any(|c| c.call_id == "before-upgrade"
            && c.recording.is_none()
            && c.menu_path.is_none())
    );
}

#[test]
fn a_version_3_database_gains_the_announcement_column_and_keeps_its_cdrs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let store = open_at(&path);
    store.record(full_cdr("before-upgrade"), None).unwrap();
    store.close().unwrap();
    // What a version 3 database looks like.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(common::DOWN_TO_V4).unwrap();
    conn.execute_batch("ALTER TABLE cdr DROP COLUMN announcement; PRAGMA user_version = 3;")
        .unwrap();
    drop(conn);

    let store = open_at(&path);
    let mut announced = full_cdr("after-upgrade");
    announced.outcome = Outcome::AfterHours;
    announced.announcement = Some("after-hours".into());
    store.record(announced.clone(), None).unwrap();
    store.flush().unwrap();
    let all = all(&store);
    assert_eq!(all.len(), 2);
    assert!(all.contains(&announced));
    assert!(
        all.iter()
            .any(|c| c.call_id == "before-upgrade" && c.announcement.is_none())
    );
}

fn open_at(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path, Duration::from_millis(5)).unwrap()
}

#[test]
fn the_checkpointer_moves_committed_cdrs_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let store = open(&dir);
    let file_size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = file_size();
    let base = ts("2026-03-01T00:00:00Z");
    for i in 0..2000 {
        store
            .record(missed_cdr(&format!("c{i}"), base), None)
            .unwrap();
    }
    store.flush().unwrap();
    // Commits only append to the WAL (no connection checkpoints on commit); the
    // database file grows when the checkpointer copies the pages over.
    let deadline = Instant::now() + Duration::from_secs(5);
    while file_size() <= before {
        assert!(
            Instant::now() < deadline,
            "the database file is still {before} bytes 5 s after the commit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(all(&store).len(), 2000);
}

both_backends! {
    fn the_writer_counts_what_it_queues_and_each_commit(t) {
        let store = t.store();
        let stats = store.writer_stats();
        let t0 = ts("2026-03-01T00:00:00Z");
        for i in 0..3 {
            store
                .record(missed_cdr(&format!("q{i}"), t0), None)
                .unwrap();
        }
        store.flush().unwrap();
        assert_eq!(stats.queued.load(Ordering::Relaxed), 0, "all committed");
        let (sum, commits, buckets) = stats.commits.read();
        assert!(commits >= 1, "{buckets:?}");
        assert!(sum > 0.0);
        assert_eq!(stats.commit_failures.load(Ordering::Relaxed), 0);
        assert_eq!(all(store).len(), 3);
    }
}
