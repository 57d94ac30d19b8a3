//! Tenant data: revisioned entries, refused stale changes, the configuration file's
//! source record, and the version 6 -> 7 migration.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::Duration;

use rusqlite::Connection;
use sihai_store::{
    Applied, CdrFilter, CdrStore, EntryKind, LedgerStore, NewEntry, SqliteStore, Store, StoreError,
    StoredEntry, TenantChange, TenantData, TenantEntry, TenantStore,
};

use common::backend::{Backend, TestStore};
use common::{full_cdr, ts};

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, Duration::from_millis(5)).unwrap()
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("sihai.db")
}

fn entry(section: &str, key: &str, enterprise: Option<&str>, body: &str) -> TenantEntry {
    TenantEntry {
        section: section.into(),
        key: key.into(),
        enterprise: enterprise.map(Into::into),
        body: body.into(),
    }
}

fn stored(e: TenantEntry, revision: i64) -> StoredEntry {
    StoredEntry { entry: e, revision }
}

fn sales(body: &str) -> TenantEntry {
    entry("group", "sales", Some("acme"), body)
}

fn number() -> TenantEntry {
    entry(
        "number",
        "4001234567",
        Some("acme"),
        "number = \"4001234567\"\n",
    )
}

fn tariff() -> TenantEntry {
    entry(
        "tariff",
        "standard",
        None,
        "name = \"standard\"\nper_minute = \"0.10\"\n",
    )
}

fn upsert(entries: Vec<TenantEntry>, base: Option<i64>) -> TenantChange {
    TenantChange {
        upserts: entries,
        base_revision: base,
        ..TenantChange::default()
    }
}

fn remove(keys: &[(&str, &str)], base: Option<i64>) -> TenantChange {
    TenantChange {
        removals: keys
            .iter()
            .map(|(s, k)| (s.to_string(), k.to_string()))
            .collect(),
        base_revision: base,
        ..TenantChange::default()
    }
}

/// The three entries of [`number`], [`sales`] and [`tariff`], applied at revision 1.
fn seeded(path: &Path) -> SqliteStore {
    let store = open(path);
    seed(&store);
    store
}

/// Applies the three entries of [`number`], [`sales`] and [`tariff`] at revision 1.
fn seed(store: &dyn Store) {
    let applied = store
        .apply_tenant(upsert(
            vec![tariff(), sales("members = [\"alice\"]\n"), number()],
            Some(0),
        ))
        .unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 1,
            changed: 3
        }
    );
}

both_backends! {
    fn a_new_store_has_no_tenant_data(t) {
    let store = t.store();
    assert_eq!(store.tenant().unwrap(), TenantData::default());
    assert_eq!(store.tenant_revision().unwrap(), 0);
    assert_eq!(store.tenant_source("/etc/sihai/sihai.toml").unwrap(), None);
}
}

both_backends! {
    fn applied_entries_read_back_with_their_revisions(t) {
    seed(t.store());
    let store = t.store();
    assert_eq!(store.tenant_revision().unwrap(), 1);
    assert_eq!(
        store.tenant().unwrap(),
        TenantData {
            revision: 1,
            entries: vec![
                stored(sales("members = [\"alice\"]\n"), 1),
                stored(number(), 1),
                stored(tariff(), 1),
            ],
        }
    );

    // A second change stamps only what it writes.
    let applied = store
        .apply_tenant(upsert(
            vec![sales("members = [\"alice\", \"bob\"]\n"), number()],
            Some(1),
        ))
        .unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 2,
            changed: 1
        }
    );
    assert_eq!(
        store.tenant().unwrap().entries,
        vec![
            stored(sales("members = [\"alice\", \"bob\"]\n"), 2),
            stored(number(), 1),
            stored(tariff(), 1),
        ]
    );
}
}

both_backends! {
    fn applying_the_same_entries_again_changes_nothing(t) {
    seed(t.store());
    let store = t.store();
    let before = store.tenant().unwrap();
    for base in [Some(0), Some(1), None] {
        let applied = store
            .apply_tenant(upsert(
                vec![number(), tariff(), sales("members = [\"alice\"]\n")],
                base,
            ))
            .unwrap();
        assert_eq!(
            applied,
            Applied {
                revision: 1,
                changed: 0
            }
        );
    }
    assert_eq!(store.tenant().unwrap(), before);

    // The enterprise is part of the entry: moving it is a change.
    let mut moved = number();
    moved.enterprise = Some("globex".into());
    let applied = store
        .apply_tenant(upsert(vec![moved.clone()], Some(1)))
        .unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 2,
            changed: 1
        }
    );
    assert!(store.tenant().unwrap().entries.contains(&stored(moved, 2)));
}
}

both_backends! {
    fn a_stale_change_is_refused_whole_and_names_what_changed(t) {
    seed(t.store());
    let store = t.store();
    // Two editors read revision 1; the first applies a change to the group and the tariff.
    let first = store
        .apply_tenant(upsert(
            vec![
                sales("members = [\"carol\"]\n"),
                entry("tariff", "standard", None, "per_minute = \"0.12\"\n"),
            ],
            Some(1),
        ))
        .unwrap();
    assert_eq!(first.revision, 2);
    let after_first = store.tenant().unwrap();

    // The second, still at revision 1, edits the group, the tariff and a new menu, with
    // its file as the source.
    let mut second = upsert(
        vec![
            entry("menu", "main", Some("acme"), "keys = {}\n"),
            sales("members = [\"dave\"]\n"),
            entry("tariff", "standard", None, "per_minute = \"0.08\"\n"),
        ],
        Some(1),
    );
    second.source = Some(("/etc/sihai/sihai.toml".into(), "digest-2".into()));
    let err = store.apply_tenant(second.clone()).unwrap_err();
    match &err {
        StoreError::StaleTenant { base, changed, .. } => {
            assert_eq!(*base, 1);
            assert_eq!(
                changed,
                &vec![
                    ("group".to_string(), "sales".to_string(), 2),
                    ("tariff".to_string(), "standard".to_string(), 2),
                ]
            );
        }
        other => panic!("expected StaleTenant, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(
            "the tenant data changed since revision 1: group \"sales\" (revision 2), \
             tariff \"standard\" (revision 2)"
        ),
        "{message}"
    );
    assert_eq!(err.path(), t.store_path());
    // Nothing was written: not the menu, not the source.
    assert_eq!(store.tenant().unwrap(), after_first);
    assert_eq!(store.tenant_source("/etc/sihai/sihai.toml").unwrap(), None);

    // A removal conflicts too.
    let err = store
        .apply_tenant(remove(&[("group", "sales")], Some(1)))
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleTenant { .. }), "{err:?}");

    // Rebased on what it read again, the same change goes through.
    second.base_revision = Some(2);
    let applied = store.apply_tenant(second).unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 3,
            changed: 3
        }
    );
}
}

both_backends! {
    fn changes_to_other_entries_do_not_conflict(t) {
    seed(t.store());
    let store = t.store();
    store
        .apply_tenant(upsert(vec![sales("members = []\n")], Some(1)))
        .unwrap();
    // Based on revision 1, but touching only entries unchanged since (and one that
    // already reads as the editor wants: no change, no conflict).
    let applied = store
        .apply_tenant(TenantChange {
            upserts: vec![
                entry("number", "4001234567", Some("acme"), "number = \"x\"\n"),
                sales("members = []\n"),
            ],
            removals: vec![("tariff".into(), "standard".into())],
            base_revision: Some(1),
            source: None,
            ..TenantChange::default()
        })
        .unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 3,
            changed: 2
        }
    );
}
}

both_backends! {
    fn a_forced_change_overwrites_whatever_changed(t) {
    seed(t.store());
    let store = t.store();
    store
        .apply_tenant(upsert(vec![sales("members = [\"carol\"]\n")], Some(1)))
        .unwrap();
    let applied = store
        .apply_tenant(upsert(vec![sales("members = [\"dave\"]\n")], None))
        .unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 3,
            changed: 1
        }
    );
    let applied = store
        .apply_tenant(remove(&[("group", "sales")], None))
        .unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 4,
            changed: 1
        }
    );
    assert_eq!(
        store.tenant().unwrap().entries,
        vec![stored(number(), 1), stored(tariff(), 1)]
    );
}
}

both_backends! {
    fn removals_delete_and_missing_keys_change_nothing(t) {
    seed(t.store());
    let store = t.store();
    let applied = store
        .apply_tenant(remove(
            &[("tariff", "standard"), ("group", "sales"), ("menu", "nope")],
            Some(1),
        ))
        .unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 2,
            changed: 2
        }
    );
    assert_eq!(
        store.tenant().unwrap(),
        TenantData {
            revision: 2,
            entries: vec![stored(number(), 1)],
        }
    );
    // Removing them again (or anything absent) is not a change, stale base or not.
    let applied = store
        .apply_tenant(remove(&[("tariff", "standard"), ("menu", "nope")], Some(0)))
        .unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 2,
            changed: 0
        }
    );
    // An empty change is no change either.
    assert_eq!(
        store.apply_tenant(TenantChange::default()).unwrap(),
        Applied {
            revision: 2,
            changed: 0
        }
    );
}
}

both_backends! {
    fn a_key_listed_twice_takes_the_last_upsert_and_a_removal_wins(t) {
    seed(t.store());
    let store = t.store();
    let applied = store
        .apply_tenant(TenantChange {
            upserts: vec![
                sales("members = [\"x\"]\n"),
                sales("members = [\"y\"]\n"),
                tariff(),
                entry("tariff", "standard", None, "per_minute = \"1\"\n"),
            ],
            removals: vec![("tariff".into(), "standard".into())],
            base_revision: Some(1),
            source: None,
            ..TenantChange::default()
        })
        .unwrap();
    assert_eq!(
        applied,
        Applied {
            revision: 2,
            changed: 2
        }
    );
    assert_eq!(
        store.tenant().unwrap().entries,
        vec![stored(sales("members = [\"y\"]\n"), 2), stored(number(), 1)]
    );
}
}

both_backends! {
    fn the_source_is_recorded_with_the_resulting_revision(t) {
    let store = t.store();
    let origin = "/etc/sihai/sihai.toml";
    let mut change = upsert(vec![number(), tariff()], Some(0));
    change.source = Some((origin.into(), "sha256:aaa".into()));
    assert_eq!(store.apply_tenant(change.clone()).unwrap().revision, 1);
    assert_eq!(
        store.tenant_source(origin).unwrap(),
        Some(("sha256:aaa".into(), 1))
    );

    // Another editor changes something; the file is applied again unchanged but with a
    // new digest (a comment edited): nothing changes, the source moves to the current
    // revision.
    store
        .apply_tenant(upsert(vec![sales("members = []\n")], None))
        .unwrap();
    change.base_revision = Some(2);
    change.source = Some((origin.into(), "sha256:bbb".into()));
    assert_eq!(
        store.apply_tenant(change).unwrap(),
        Applied {
            revision: 2,
            changed: 0
        }
    );
    assert_eq!(
        store.tenant_source(origin).unwrap(),
        Some(("sha256:bbb".into(), 2))
    );
    assert_eq!(store.tenant_source("/elsewhere.toml").unwrap(), None);
}
}

both_backends! {
    fn a_reopened_store_has_the_tenant_data(t) {
    seed(t.store());
    let mut change = upsert(vec![sales("members = [\"bob\"]\n")], Some(1));
    change.source = Some(("tenant.toml".into(), "d".into()));
    t.store().apply_tenant(change).unwrap();
    let before = t.store().tenant().unwrap();
    t.reopen();

    let store = t.store();
    assert_eq!(store.tenant().unwrap(), before);
    assert_eq!(store.tenant_revision().unwrap(), 2);
    assert_eq!(
        store.tenant_source("tenant.toml").unwrap(),
        Some(("d".into(), 2))
    );
}
}

both_backends! {
    fn another_connection_sees_an_apply_as_soon_as_it_returns(t) {
    seed(t.store());
    assert_eq!(
        t.scalar("SELECT (SELECT COUNT(*) FROM tenant_entry) * 100 + revision FROM tenant_meta"),
        301
    );
    // And the store sees another process's (another node's) apply.
    let other = t.open_another("node-b");
    other
        .apply_tenant(remove(&[("group", "sales")], Some(1)))
        .unwrap();
    let store = t.store();
    assert_eq!(store.tenant_revision().unwrap(), 2);
    assert_eq!(store.tenant().unwrap().entries.len(), 2);
}
}

both_backends! {
    fn of_two_editors_racing_on_one_entry_exactly_one_wins(t) {
    seed(t.store());
    let store = t.store();
    let barrier = Barrier::new(2);
    let results: Vec<_> = std::thread::scope(|scope| {
        let editors: Vec<_> = ["carol", "dave"]
            .into_iter()
            .map(|who| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    store.apply_tenant(upsert(
                        vec![sales(&format!("members = [\"{who}\"]\n"))],
                        Some(1),
                    ))
                })
            })
            .collect();
        editors.into_iter().map(|e| e.join().unwrap()).collect()
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    let stale = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::StaleTenant { .. })))
        .count();
    assert_eq!((won, stale), (1, 1), "{results:?}");
    assert_eq!(store.tenant_revision().unwrap(), 2);
}

    /// Two nodes applying at once, each many changes to entries of its own: every
    /// change gets a revision of its own (no two commits share one, none is lost).
    fn concurrent_editors_on_two_nodes_get_one_revision_each(t) {
    let other = t.open_another("node-b");
    let store = t.store();
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        for (node, s) in [("a", store), ("b", &*other)] {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for i in 0..20 {
                    let applied = s
                        .apply_tenant(upsert(
                            vec![entry("group", &format!("{node}{i}"), Some("acme"), "x = 1\n")],
                            None,
                        ))
                        .unwrap();
                    assert_eq!(applied.changed, 1);
                }
            });
        }
    });
    let data = store.tenant().unwrap();
    assert_eq!(data.revision, 40);
    let mut revisions: Vec<i64> = data.entries.iter().map(|e| e.revision).collect();
    revisions.sort();
    assert_eq!(revisions, (1..=40).collect::<Vec<_>>());
}
}

#[test]
fn a_corrupt_entry_is_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = seeded(&path);
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE tenant_entry SET revision = 'soon' WHERE section = 'tariff'",
            [],
        )
        .unwrap();
    let err = store.tenant().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "tenant_entry",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .apply_tenant(upsert(vec![tariff()], Some(1)))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { ref detail, .. } if detail.contains("standard")),
        "{err:?}"
    );
}

#[test]
fn a_version_6_database_gains_the_tenant_tables_and_keeps_its_cdrs() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = open(&path);
    store.record(full_cdr("before-upgrade"), None).unwrap();
    store
        .post(NewEntry {
            enterprise: "acme".into(),
            kind: EntryKind::Recharge,
            amount: sihai_store::Money::from_units(1_000),
            reference: "pay-1".into(),
            at: ts("2026-03-01T00:00:00Z"),
            actor: "ops".into(),
            note: None,
        })
        .unwrap();
    store.close().unwrap();
    // What a version 6 database looks like.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(common::DOWN_TO_V6).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'tenant%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    drop(conn);

    let store = open(&path);
    assert_eq!(
        store.query(&CdrFilter::default()).unwrap(),
        vec![full_cdr("before-upgrade")]
    );
    assert_eq!(
        store.account("acme").unwrap().unwrap().balance.units(),
        1_000
    );
    assert_eq!(store.tenant().unwrap(), TenantData::default());
    assert_eq!(
        store
            .apply_tenant(upsert(vec![number()], Some(0)))
            .unwrap()
            .revision,
        1
    );
    store.close().unwrap();

    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, sihai_store::SCHEMA_VERSION);
    let indexes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master
             WHERE type = 'index' AND name = 'tenant_entry_enterprise'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 1);
}

both_backends! {
    fn entries_keep_the_order_they_were_first_written_in_within_their_section(t) {
    let store = t.store();
    let group = |key: &str| entry("group", key, Some("acme"), &format!("name = \"{key}\"\n"));
    store
        .apply_tenant(TenantChange {
            upserts: vec![
                group("sales"),
                group("desk"),
                tariff(),
                group("after-hours"),
            ],
            base_revision: None,
            ..TenantChange::default()
        })
        .unwrap();
    // A later change to an existing entry keeps its place; a new one goes last.
    store
        .apply_tenant(TenantChange {
            upserts: vec![
                group("billing"),
                entry("group", "sales", Some("acme"), "changed = 1\n"),
            ],
            base_revision: None,
            ..TenantChange::default()
        })
        .unwrap();
    let keys: Vec<(String, String)> = store
        .tenant()
        .unwrap()
        .entries
        .into_iter()
        .map(|s| (s.entry.section, s.entry.key))
        .collect();
    let expected: Vec<(String, String)> = [
        ("group", "sales"),
        ("group", "desk"),
        ("group", "after-hours"),
        ("group", "billing"),
        ("tariff", "standard"),
    ]
    .iter()
    .map(|(s, k)| (s.to_string(), k.to_string()))
    .collect();
    assert_eq!(keys, expected);
}
}

both_backends! {
    fn every_entry_a_change_writes_is_audited_in_its_transaction(t) {
    let store = t.store();
    let change = |upserts, removals| TenantChange {
        upserts,
        removals,
        base_revision: None,
        actor: "acme-admin".into(),
        actor_source: Some("192.0.2.7".into()),
        at: jiff::Timestamp::now(),
        ..TenantChange::default()
    };
    store
        .apply_tenant(change(vec![sales("a = 1\n"), tariff()], Vec::new()))
        .unwrap();
    // Nothing changes: nothing is audited.
    store
        .apply_tenant(change(vec![sales("a = 1\n")], Vec::new()))
        .unwrap();
    store
        .apply_tenant(change(
            vec![sales("a = 2\n")],
            vec![("tariff".into(), "standard".into())],
        ))
        .unwrap();
    let log = store.audit_log(None, 0).unwrap();
    let seen: Vec<(&str, &str, Option<&str>, Option<&str>)> = log
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.target.as_str(),
                a.before.as_deref(),
                a.after.as_deref(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.contains(&("put", "group/sales", Some("a = 1\n"), Some("a = 2\n"))));
    assert!(seen.contains(&(
        "delete",
        "tariff/standard",
        Some(tariff().body.as_str()),
        None
    )));
    assert!(
        log.iter()
            .all(|a| a.actor == "acme-admin" && a.source.as_deref() == Some("192.0.2.7"))
    );
    // An enterprise sees its own entries' history, not the operator's tariff.
    let acme = store.audit_log(Some("acme"), 0).unwrap();
    assert!(acme.iter().all(|a| a.target == "group/sales"), "{acme:?}");
    assert_eq!(acme.len(), 2);
}
}

both_backends! {
    /// PostgreSQL pushes every node's change to the others at once (`LISTEN
    /// sihai_tenant`); SQLite has no push and the daemon polls.
    fn another_nodes_change_is_pushed_within_a_second(t) {
    let Some(mut changes) = t.store().tenant_changes() else {
        assert_eq!(t.backend, Backend::Sqlite, "PostgreSQL pushes changes");
        return;
    };
    assert_eq!(*changes.borrow_and_update(), 0);
    let other = t.open_another("node-b");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for revision in 1..=3 {
        other
            .apply_tenant(upsert(
                vec![sales(&format!("members = [\"r{revision}\"]\n"))],
                None,
            ))
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(1),
                changes.wait_for(|&seen| seen >= revision),
            )
            .await
            .expect("pushed within a second")
            .expect("the listener is running");
        });
    }
    // A change that changes nothing bumps no revision and pushes nothing.
    other
        .apply_tenant(upsert(vec![sales("members = [\"r3\"]\n")], None))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!changes.has_changed().unwrap());
    // A second receiver shares the one listener and starts at the revision as it is.
    assert_eq!(*t.store().tenant_changes().unwrap().borrow(), 3);
}
}

/// The listener's connection broken (the server restarted, a proxy dropped it): it
/// reconnects and pushes the revision as it is, so a change made while it was away is
/// not missed.
#[test]
fn the_tenant_listener_reconnects_and_catches_up() {
    let t = TestStore::new(Backend::Postgres);
    let mut changes = t.store().tenant_changes().unwrap();
    let other = t.open_another("node-b");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let wait = |changes: &mut tokio::sync::watch::Receiver<i64>, revision: i64| {
        runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                changes.wait_for(|&seen| seen >= revision),
            )
            .await
            .expect("pushed in time")
            .expect("the listener is running");
        })
    };
    other
        .apply_tenant(upsert(vec![sales("a = 1\n")], None))
        .unwrap();
    wait(&mut changes, 1);
    let mut admin = t.db.as_ref().unwrap().connect();
    let killed = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'sihai node-a tenant listener'",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(killed, 1);
    other
        .apply_tenant(upsert(vec![sales("a = 2\n")], None))
        .unwrap();
    wait(&mut changes, 2);
    other
        .apply_tenant(upsert(vec![sales("a = 3\n")], None))
        .unwrap();
    wait(&mut changes, 3);
}
