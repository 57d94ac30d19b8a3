//! Access for the admin API: users, sessions, API keys, the audit log, and the
//! version 7 -> 8 migration.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rusqlite::Connection;
use sihai_store::{
    AccessStore, AuditEntry, CdrFilter, CdrStore, NewAudit, NewUser, Role, SCHEMA_VERSION,
    SqliteStore, Store, StoreError, TenantChange, TenantEntry, TenantStore, User,
};

use common::backend::{Backend, TestStore};
use common::{full_cdr, ts};

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, Duration::from_millis(5)).unwrap()
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("sihai.db")
}

fn t0() -> Timestamp {
    ts("2026-03-02T08:00:00.123456Z")
}

fn later(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

fn new_user(login: &str, role: Role, enterprise: Option<&str>) -> NewUser {
    NewUser {
        login: login.into(),
        password_hash: format!("hash-of-{login}"),
        role,
        enterprise: enterprise.map(Into::into),
        at: t0(),
    }
}

fn operator(store: &dyn Store) -> User {
    store
        .add_user(new_user("ops", Role::Operator, None))
        .unwrap()
}

fn acme_admin(store: &dyn Store) -> User {
    store
        .add_user(new_user("alice", Role::EnterpriseAdmin, Some("acme")))
        .unwrap()
}

fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

fn audit_entry(at: Timestamp, enterprise: Option<&str>, target: &str) -> NewAudit {
    NewAudit {
        at,
        actor: "alice".into(),
        source: Some("192.0.2.7".into()),
        enterprise: enterprise.map(Into::into),
        action: "tenant.apply".into(),
        target: target.into(),
        before: Some("name = \"old\"\n".into()),
        after: None,
    }
}

#[test]
fn roles_have_stable_names() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        assert_eq!(role.to_string(), role.as_str());
    }
    assert_eq!(Role::Operator.as_str(), "operator");
    assert_eq!(Role::EnterpriseAdmin.as_str(), "enterprise_admin");
    assert_eq!(Role::EnterpriseViewer.as_str(), "enterprise_viewer");
    assert!("root".parse::<Role>().is_err());
}

both_backends! {
    fn users_are_added_found_and_listed(t) {
    let store = t.store();
    let ops = operator(store);
    let alice = acme_admin(store);
    let bob = store
        .add_user(new_user("bob", Role::EnterpriseViewer, Some("globex")))
        .unwrap();
    assert_eq!(
        ops,
        User {
            id: ops.id,
            login: "ops".into(),
            role: Role::Operator,
            enterprise: None,
            created_at: t0(),
            password_changed_at: t0(),
        }
    );
    assert_ne!(ops.id, alice.id);

    let (found, hash) = store.user_by_login("alice").unwrap().unwrap();
    assert_eq!(found, alice);
    assert_eq!(hash, "hash-of-alice");
    assert_eq!(store.user_by_login("nobody").unwrap(), None);
    // Logins are exact.
    assert_eq!(store.user_by_login("Alice").unwrap(), None);

    assert_eq!(
        store.users(None).unwrap(),
        vec![alice.clone(), bob.clone(), ops]
    );
    assert_eq!(store.users(Some("acme")).unwrap(), vec![alice]);
    assert_eq!(store.users(Some("globex")).unwrap(), vec![bob]);
    assert_eq!(store.users(Some("initech")).unwrap(), vec![]);
}
}

both_backends! {
    fn a_login_is_taken_once(t) {
    let store = t.store();
    let alice = acme_admin(store);
    let err = store
        .add_user(new_user("alice", Role::Operator, None))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UserExists { ref login, .. } if login == "alice"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("\"alice\" already exists"),
        "{err}"
    );
    assert_eq!(store.users(None).unwrap(), vec![alice]);
}
}

both_backends! {
    fn a_user_must_match_its_role(t) {
    let store = t.store();
    for (user, why) in [
        (
            new_user("a", Role::EnterpriseAdmin, None),
            "needs an enterprise",
        ),
        (
            new_user("v", Role::EnterpriseViewer, None),
            "needs an enterprise",
        ),
        (new_user("e", Role::EnterpriseViewer, Some("")), "empty"),
        (new_user("o", Role::Operator, Some("acme")), "no enterprise"),
        (new_user("", Role::Operator, None), "login is empty"),
    ] {
        let err = store.add_user(user.clone()).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidUser { ref login, ref reason, .. }
                if *login == user.login && reason.contains(why)),
            "{user:?}: {err:?}"
        );
        assert_eq!(err.path(), t.store_path());
    }
    assert_eq!(store.users(None).unwrap(), vec![]);

    // The database refuses them too, whoever writes.
    for (login, role, enterprise) in [
        ("a", "enterprise_admin", None),
        ("o", "operator", Some("acme")),
        ("r", "root", None),
        ("", "operator", None),
    ] {
        let sql = "INSERT INTO app_user (login, password_hash, role, enterprise, created_at,
                                         password_changed_at)";
        match t.backend {
            Backend::Sqlite => {
                let err = Connection::open(t.sqlite_path())
                    .unwrap()
                    .execute(
                        &format!("{sql} VALUES (?1, 'h', ?2, ?3, 0, 0)"),
                        rusqlite::params![login, role, enterprise],
                    )
                    .unwrap_err();
                assert_eq!(
                    err.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::ConstraintViolation),
                    "{login}: {err}"
                );
            }
            Backend::Postgres => {
                let err = t
                    .db
                    .as_ref()
                    .unwrap()
                    .connect()
                    .execute(
                        &format!("{sql} VALUES ($1, 'h', $2, $3, 0, 0)"),
                        &[&login, &role, &enterprise],
                    )
                    .unwrap_err();
                assert_eq!(
                    err.code(),
                    Some(&postgres::error::SqlState::CHECK_VIOLATION),
                    "{login}: {err}"
                );
            }
        }
    }
}
}

both_backends! {
    fn sessions_are_created_read_expired_and_ended(t) {
    let store = t.store();
    let alice = acme_admin(store);
    let expires = later(3600);
    store
        .create_session(
            "tok-1",
            alice.id,
            "csrf-1",
            expires,
            Some("192.0.2.7"),
            t0(),
        )
        .unwrap();

    let session = store.session("tok-1", later(10)).unwrap().unwrap();
    assert_eq!(session.user, alice);
    assert_eq!(session.csrf_token, "csrf-1");
    assert_eq!(session.expires_at, expires);
    assert_eq!(store.session("tok-2", later(10)).unwrap(), None);

    // Expired at its expiry, not a microsecond later.
    assert!(
        store
            .session("tok-1", expires - SignedDuration::from_micros(1))
            .unwrap()
            .is_some()
    );
    assert_eq!(store.session("tok-1", expires).unwrap(), None);
    assert_eq!(store.session("tok-1", later(7200)).unwrap(), None);

    store.end_session("tok-1").unwrap();
    assert_eq!(store.session("tok-1", later(10)).unwrap(), None);
    // Ending an unknown session is not an error.
    store.end_session("tok-1").unwrap();

    // A session needs a user.
    let err = store
        .create_session("tok-3", alice.id + 100, "c", expires, None, t0())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UserNotFound { id, .. } if id == alice.id + 100),
        "{err:?}"
    );
}
}

both_backends! {
    fn a_new_session_forgets_the_users_expired_ones(t) {
    let store = t.store();
    let alice = acme_admin(store);
    let ops = operator(store);
    store
        .create_session("old", alice.id, "c", later(60), None, t0())
        .unwrap();
    store
        .create_session("live", alice.id, "c", later(600), None, t0())
        .unwrap();
    store
        .create_session("other", ops.id, "c", later(60), None, t0())
        .unwrap();
    store
        .create_session("new", alice.id, "c", later(700), None, later(120))
        .unwrap();
    assert_eq!(t.scalar("SELECT COUNT(*) FROM app_session"), 3);
    assert_eq!(
        t.scalar(
            "SELECT COUNT(*) FROM app_session WHERE token_hash IN ('live', 'new', 'other')"
        ),
        3
    );
}
}

both_backends! {
    fn the_reader_sees_a_session_as_soon_as_it_is_created_or_ended(t) {
    let store = t.store();
    let alice = acme_admin(store);
    // Warm the reader's statements and snapshot first, so that a stale read would show.
    assert_eq!(store.session("tok-0", t0()).unwrap(), None);
    for i in 0..200 {
        let token = format!("tok-{i}");
        store
            .create_session(&token, alice.id, "c", later(60), None, t0())
            .unwrap();
        assert!(
            store.session(&token, t0()).unwrap().is_some(),
            "session {i} not seen at once"
        );
        store.end_session(&token).unwrap();
        assert_eq!(
            store.session(&token, t0()).unwrap(),
            None,
            "session {i} still seen"
        );
    }

    // Another store on the same file (another process: the CLI, a second API worker)
    // sees them too.
    let other = t.open_another("node-b");
    store
        .create_session("shared", alice.id, "c", later(60), None, t0())
        .unwrap();
    assert!(other.session("shared", t0()).unwrap().is_some());
    other.end_session("shared").unwrap();
    assert_eq!(store.session("shared", t0()).unwrap(), None);
}
}

both_backends! {
    fn setting_a_password_ends_every_session_of_the_user(t) {
    let store = t.store();
    let alice = acme_admin(store);
    let ops = operator(store);
    for token in ["a1", "a2"] {
        store
            .create_session(token, alice.id, "c", later(600), None, t0())
            .unwrap();
    }
    store
        .create_session("o1", ops.id, "c", later(600), None, t0())
        .unwrap();

    store
        .set_password(alice.id, "new-hash", later(5), None)
        .unwrap();
    assert_eq!(store.session("a1", later(10)).unwrap(), None);
    assert_eq!(store.session("a2", later(10)).unwrap(), None);
    assert!(store.session("o1", later(10)).unwrap().is_some());
    let (user, hash) = store.user_by_login("alice").unwrap().unwrap();
    assert_eq!(hash, "new-hash");
    assert_eq!(user.password_changed_at, later(5));
    assert_eq!(user.created_at, t0());

    let err = store.set_password(9999, "h", later(5), None).unwrap_err();
    assert!(
        matches!(err, StoreError::UserNotFound { id: 9999, .. }),
        "{err:?}"
    );
}
}

both_backends! {
    fn a_password_set_from_a_session_keeps_that_session_only(t) {
    let store = t.store();
    let alice = acme_admin(store);
    let ops = operator(store);
    for token in ["here", "elsewhere"] {
        store
            .create_session(token, alice.id, "c", later(600), None, t0())
            .unwrap();
    }
    store
        .create_session("o1", ops.id, "c", later(600), None, t0())
        .unwrap();
    store
        .set_password(alice.id, "new-hash", later(5), Some("here"))
        .unwrap();
    assert!(store.session("here", later(10)).unwrap().is_some());
    assert_eq!(store.session("elsewhere", later(10)).unwrap(), None);
    // Another user's session of the same token text is not "kept" by it.
    store
        .set_password(ops.id, "new-hash", later(6), Some("here"))
        .unwrap();
    assert_eq!(store.session("o1", later(10)).unwrap(), None);
    assert!(store.session("here", later(10)).unwrap().is_some());
}
}

both_backends! {
    fn api_keys_are_listed_without_their_hash_and_revoked_only_by_their_owner(t) {
    let store = t.store();
    let alice = acme_admin(store);
    let ops = operator(store);
    let crm = store.add_api_key("key-1", alice.id, "crm", t0()).unwrap();
    let backup = store
        .add_api_key("key-2", alice.id, "backup", later(1))
        .unwrap();
    let mon = store.add_api_key("key-3", ops.id, "mon", t0()).unwrap();
    let listed = store.api_keys(alice.id).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|k| (k.id, k.user_id, k.name.as_str(), k.created_at))
            .collect::<Vec<_>>(),
        [
            (crm, alice.id, "crm", t0()),
            (backup, alice.id, "backup", later(1))
        ]
    );
    // Revoking names the owner: alice's id does not reach the operator's key.
    assert!(!store.remove_api_key(alice.id, mon).unwrap());
    assert!(store.user_by_api_key("key-3").unwrap().is_some());
    assert!(store.remove_api_key(alice.id, crm).unwrap());
    assert!(!store.remove_api_key(alice.id, crm).unwrap());
    assert_eq!(store.user_by_api_key("key-1").unwrap(), None);
    assert!(store.user_by_api_key("key-2").unwrap().is_some());
    assert_eq!(store.api_keys(alice.id).unwrap().len(), 1);
    assert_eq!(store.api_keys(9999).unwrap(), []);
}
}

both_backends! {
    fn api_keys_find_their_user(t) {
    let store = t.store();
    let alice = acme_admin(store);
    let ops = operator(store);
    let k1 = store.add_api_key("key-1", alice.id, "crm", t0()).unwrap();
    let k2 = store
        .add_api_key("key-2", ops.id, "monitoring", t0())
        .unwrap();
    assert_ne!(k1, k2);
    assert_eq!(store.user_by_api_key("key-1").unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_api_key("key-2").unwrap(), Some(ops));
    assert_eq!(store.user_by_api_key("key-3").unwrap(), None);

    // A key hash is one key.
    let err = store
        .add_api_key("key-1", alice.id, "again", t0())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Sqlite { .. } | StoreError::Postgres { .. }),
        "{err:?}"
    );
    let err = store.add_api_key("key-4", 9999, "x", t0()).unwrap_err();
    assert!(
        matches!(err, StoreError::UserNotFound { id: 9999, .. }),
        "{err:?}"
    );
}
}

both_backends! {
    fn removing_a_user_removes_its_sessions_and_keys(t) {
    let store = t.store();
    let alice = acme_admin(store);
    let ops = operator(store);
    store
        .create_session("a1", alice.id, "c", later(600), None, t0())
        .unwrap();
    store
        .create_session("o1", ops.id, "c", later(600), None, t0())
        .unwrap();
    store.add_api_key("ka", alice.id, "crm", t0()).unwrap();
    store.add_api_key("ko", ops.id, "mon", t0()).unwrap();
    store.audit(audit_entry(t0(), Some("acme"), "x")).unwrap();

    assert!(store.remove_user(alice.id).unwrap());
    assert!(!store.remove_user(alice.id).unwrap());
    assert_eq!(store.user_by_login("alice").unwrap(), None);
    assert_eq!(store.session("a1", later(1)).unwrap(), None);
    assert_eq!(store.user_by_api_key("ka").unwrap(), None);
    assert_eq!(
        t.scalar(
            &format!(
                "SELECT (SELECT COUNT(*) FROM app_session WHERE user_id = {0})
                      + (SELECT COUNT(*) FROM api_key WHERE user_id = {0})",
                alice.id
            )
        ),
        0
    );
    // The others', and the audit log, stay.
    assert!(store.session("o1", later(1)).unwrap().is_some());
    assert_eq!(store.user_by_api_key("ko").unwrap(), Some(ops.clone()));
    assert_eq!(store.audit_log(None, 0).unwrap().len(), 1);
    assert_eq!(store.users(None).unwrap(), vec![ops]);
    // The login is free again.
    acme_admin(store);
}
}

both_backends! {
    fn the_audit_log_reads_newest_first_by_enterprise(t) {
    let store = t.store();
    let a1 = store
        .audit(audit_entry(later(1), Some("acme"), "group/sales"))
        .unwrap();
    let g1 = store
        .audit(audit_entry(later(2), Some("globex"), "group/desk"))
        .unwrap();
    let n1 = store.audit(audit_entry(later(3), None, "node")).unwrap();
    // Appended later but stamped earlier: ordered by when it happened.
    let a0 = store
        .audit(audit_entry(later(0), Some("acme"), "group/old"))
        .unwrap();
    // Same instant: the later appended first.
    let a2 = store
        .audit(audit_entry(later(3), Some("acme"), "group/new"))
        .unwrap();

    let ids = |entries: Vec<AuditEntry>| entries.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(store.audit_log(None, 0).unwrap()), [a2, n1, g1, a1, a0]);
    assert_eq!(ids(store.audit_log(None, 2).unwrap()), [a2, n1]);
    assert_eq!(ids(store.audit_log(Some("acme"), 0).unwrap()), [a2, a1, a0]);
    assert_eq!(ids(store.audit_log(Some("acme"), 1).unwrap()), [a2]);
    assert_eq!(ids(store.audit_log(Some("globex"), 10).unwrap()), [g1]);
    assert_eq!(
        ids(store.audit_log(Some("initech"), 10).unwrap()),
        Vec::<i64>::new()
    );

    let entry = store.audit_log(Some("globex"), 1).unwrap().remove(0);
    assert_eq!(
        entry,
        AuditEntry {
            id: g1,
            at: later(2),
            actor: "alice".into(),
            source: Some("192.0.2.7".into()),
            enterprise: Some("globex".into()),
            action: "tenant.apply".into(),
            target: "group/desk".into(),
            before: Some("name = \"old\"\n".into()),
            after: None,
        }
    );
}
}

both_backends! {
    fn reopening_keeps_everything(t) {
    let store = t.store();
    let alice = acme_admin(store);
    let ops = operator(store);
    store
        .create_session("tok", alice.id, "csrf", later(600), Some("192.0.2.7"), t0())
        .unwrap();
    store.add_api_key("key", ops.id, "mon", t0()).unwrap();
    let id = store.audit(audit_entry(t0(), Some("acme"), "x")).unwrap();
    // Written without a flush or a close: durable on return, like a kill right after.
    t.kill_and_reopen();

    let store = t.store();
    assert_eq!(store.users(None).unwrap(), vec![alice.clone(), ops.clone()]);
    assert_eq!(
        store.user_by_login("alice").unwrap().unwrap().1,
        "hash-of-alice"
    );
    let session = store.session("tok", later(1)).unwrap().unwrap();
    assert_eq!((session.user, session.csrf_token), (alice, "csrf".into()));
    assert_eq!(store.user_by_api_key("key").unwrap(), Some(ops));
    let log = store.audit_log(None, 0).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].id, id);
}
}

#[test]
fn corrupt_rows_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = open(&path);
    let alice = acme_admin(&store);
    store
        .create_session("tok", alice.id, "c", later(600), None, t0())
        .unwrap();
    store.add_api_key("key", alice.id, "crm", t0()).unwrap();
    let audit = store.audit(audit_entry(t0(), Some("acme"), "x")).unwrap();

    let raw = Connection::open(&path).unwrap();
    let corrupt = |sql: &str| {
        raw.execute_batch(&format!(
            "PRAGMA ignore_check_constraints = ON; {sql}; PRAGMA ignore_check_constraints = OFF;"
        ))
        .unwrap()
    };
    let is_corrupt = |err: StoreError, table: &str, rowid: i64, what: &str| {
        assert!(
            matches!(err, StoreError::Corrupt { table: t, rowid: r, ref detail, .. }
                if t == table && r == rowid && detail.contains(what)),
            "{err:?}"
        );
    };

    // A session with an expiry that is not an instant.
    corrupt("UPDATE app_session SET expires_at = 'tomorrow'");
    let err = store.session("tok", later(1)).unwrap_err();
    let session_rowid: i64 = raw
        .query_row("SELECT rowid FROM app_session", [], |r| r.get(0))
        .unwrap();
    is_corrupt(err, "app_session", session_rowid, "expires_at");
    corrupt(&format!("UPDATE app_session SET expires_at = {}", i64::MAX));
    is_corrupt(
        store.session("tok", later(1)).unwrap_err(),
        "app_session",
        session_rowid,
        "timestamp",
    );

    // A user with an unknown role, then with a bad instant.
    corrupt("UPDATE app_user SET role = 'root'");
    is_corrupt(
        store.user_by_login("alice").unwrap_err(),
        "app_user",
        alice.id,
        "unknown role \"root\"",
    );
    is_corrupt(store.users(None).unwrap_err(), "app_user", alice.id, "root");
    is_corrupt(
        store.user_by_api_key("key").unwrap_err(),
        "app_user",
        alice.id,
        "root",
    );
    corrupt("UPDATE app_user SET role = 'enterprise_admin', created_at = 'x'");
    is_corrupt(
        store.user_by_login("alice").unwrap_err(),
        "app_user",
        alice.id,
        "created_at",
    );
    // A password hash that is not text.
    corrupt("UPDATE app_user SET created_at = 0, password_hash = X'00FF'");
    is_corrupt(
        store.user_by_login("alice").unwrap_err(),
        "app_user",
        alice.id,
        "password_hash",
    );

    corrupt(&format!("UPDATE audit SET at = {}", i64::MIN));
    is_corrupt(
        store.audit_log(None, 0).unwrap_err(),
        "audit",
        audit,
        "timestamp",
    );
}

fn tenant_entry() -> TenantEntry {
    TenantEntry {
        section: "group".into(),
        key: "sales".into(),
        enterprise: Some("acme".into()),
        body: "name = \"sales\"\n".into(),
    }
}

#[test]
fn a_version_7_database_gains_the_access_tables_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = open(&path);
    store.record(full_cdr("before-upgrade"), None).unwrap();
    let applied = store
        .apply_tenant(TenantChange {
            upserts: vec![tenant_entry()],
            base_revision: Some(0),
            ..TenantChange::default()
        })
        .unwrap();
    assert_eq!(applied.revision, 1);
    store.close().unwrap();
    // What a version 7 database looks like.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(common::DOWN_TO_V7).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master
             WHERE name IN ('app_user', 'app_session', 'api_key', 'audit')",
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
    let tenant = store.tenant().unwrap();
    assert_eq!(tenant.revision, 1);
    assert_eq!(tenant.entries.len(), 1);
    assert_eq!(tenant.entries[0].entry, tenant_entry());
    assert_eq!(store.users(None).unwrap(), vec![]);
    assert_eq!(store.audit_log(None, 0).unwrap(), vec![]);
    let alice = acme_admin(&store);
    store
        .create_session("tok", alice.id, "c", later(60), None, t0())
        .unwrap();
    assert!(store.session("tok", t0()).unwrap().is_some());
    store.close().unwrap();

    assert_eq!(count(&path, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(
        count(
            &path,
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'
             AND name IN ('app_session_user', 'audit_enterprise_at')"
        ),
        2
    );
}

/// PostgreSQL's typed columns and CHECKs keep out most of what SQLite's test writes;
/// what gets past them (an instant out of range, a role whose CHECK was dropped) is an
/// error too.
#[test]
fn corrupt_rows_are_errors_not_panics_on_postgres() {
    let t = TestStore::new(Backend::Postgres);
    let store = t.store();
    let alice = acme_admin(store);
    store
        .create_session("tok", alice.id, "c", later(600), None, t0())
        .unwrap();
    store.add_api_key("key", alice.id, "crm", t0()).unwrap();
    let audit = store.audit(audit_entry(t0(), Some("acme"), "x")).unwrap();
    let is_corrupt = |err: StoreError, table: &str, rowid: i64, what: &str| {
        assert!(
            matches!(err, StoreError::Corrupt { table: t, rowid: r, ref detail, .. }
                if t == table && r == rowid && detail.contains(what)),
            "{err:?}"
        );
    };

    t.execute(&format!("UPDATE app_session SET expires_at = {}", i64::MAX));
    is_corrupt(
        store.session("tok", later(1)).unwrap_err(),
        "app_session",
        0,
        "expires_at",
    );
    t.execute(
        "ALTER TABLE app_user DROP CONSTRAINT app_user_role_check;
         UPDATE app_user SET role = 'root'",
    );
    is_corrupt(
        store.user_by_login("alice").unwrap_err(),
        "app_user",
        alice.id,
        "unknown role \"root\"",
    );
    is_corrupt(store.users(None).unwrap_err(), "app_user", alice.id, "root");
    is_corrupt(
        store.user_by_api_key("key").unwrap_err(),
        "app_user",
        alice.id,
        "root",
    );
    t.execute(&format!(
        "UPDATE app_user SET role = 'enterprise_admin', created_at = {}",
        i64::MIN
    ));
    is_corrupt(
        store.user_by_login("alice").unwrap_err(),
        "app_user",
        alice.id,
        "created_at",
    );
    t.execute(&format!("UPDATE audit SET at = {}", i64::MIN));
    is_corrupt(
        store.audit_log(None, 0).unwrap_err(),
        "audit",
        audit,
        "instant",
    );
}
