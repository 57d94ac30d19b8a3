//! The PostgreSQL store's local spool: CDRs and settlements recorded while the database
//! is unreachable are kept on the node's disk and committed exactly once when it is back,
//! by the running writer or by the next start.
//!
//! Each test runs a PostgreSQL server of its own (`scripts/pg-test-server`, under
//! `target/pg-spool-test/<test>`), since it stops it: the suite's shared server must not
//! go away under the other tests.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sihai_store::{
    CdrFilter, CdrStore, EntryKind, LedgerStore, Money, NewEntry, PgOptions, PgStore, RecoveryInfo,
    ReservationOutcome, ReservationRequest,
};

use common::{alert_for, billed_cdr, missed_cdr, ts};

/// A PostgreSQL server of the test's own, stopped when dropped (a failed test too).
struct PgServer {
    dir: PathBuf,
    port: u16,
    admin: String,
    db: Option<String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-server")
}

impl PgServer {
    fn start(name: &str, port: u16) -> PgServer {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/pg-spool-test")
            .join(name);
        let mut server = PgServer {
            dir,
            port,
            admin: String::new(),
            db: None,
        };
        server.admin = server.up();
        server
    }

    /// Starts the server (creating its cluster the first time); returns the admin URL.
    fn up(&self) -> String {
        let out = std::process::Command::new(script())
            .arg("start")
            .arg(&self.dir)
            .arg(self.port.to_string())
            .output()
            .expect("run scripts/pg-test-server");
        assert!(
            out.status.success(),
            "cannot start the PostgreSQL test server: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("a URL")
            .trim()
            .to_owned()
    }

    fn down(&self) {
        let status = std::process::Command::new(script())
            .arg("stop")
            .arg(&self.dir)
            .status()
            .expect("run scripts/pg-test-server");
        assert!(status.success());
    }

    /// A fresh database on the server (dropped with the server guard); its URL.
    fn database(&mut self) -> String {
        let name = format!(
            "spool_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let mut client = postgres::Client::connect(&self.admin, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = self.admin.rsplit_once('/').unwrap().0.to_owned();
        self.db = Some(name.clone());
        format!("{base}/{name}")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(name) = &self.db
            && let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls)
        {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
        let _ = std::process::Command::new(script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

fn options(spool: &Path) -> PgOptions {
    let mut options = PgOptions::new("node-a");
    options.commit_interval = Duration::from_millis(5);
    options.pool_size = 4;
    options.connect_timeout = Duration::from_millis(500);
    options.spool = Some(spool.to_path_buf());
    options
}

fn m(units: i64) -> Money {
    Money::from_units(units)
}

fn recharge(units: i64) -> NewEntry {
    NewEntry {
        enterprise: "acme".into(),
        kind: EntryKind::Recharge,
        amount: m(units),
        reference: "pay".into(),
        at: ts("2026-03-01T00:00:00Z"),
        actor: "cli".into(),
        note: None,
    }
}

fn admit(call: &str, want: i64) -> ReservationRequest {
    ReservationRequest {
        call_id: call.into(),
        enterprise: "acme".into(),
        want: m(want),
        floor: Some(m(1)),
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

/// The spool's files: (name, lines).
fn spool_files(dir: &Path) -> Vec<(String, usize)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, usize)> = entries
        // Not the directory's lock file.
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .map(|e| {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap();
            (
                e.file_name().into_string().unwrap(),
                text.lines().filter(|l| !l.trim().is_empty()).count(),
            )
        })
        .collect();
    files.sort();
    files
}

fn spooled_lines(dir: &Path) -> usize {
    spool_files(dir).iter().map(|(_, n)| n).sum()
}

/// A funded account with one call reserved (2,000 held), as at a call's admission.
fn funded_with_a_call(store: &PgStore) {
    store.post(recharge(10_000)).unwrap();
    let granted = store.reserve(admit("call-1", 2_000)).unwrap();
    assert!(
        matches!(granted, ReservationOutcome::Granted { .. }),
        "{granted:?}"
    );
}

/// The call charged 700 from the CDR recorded while the database was away, and three
/// unbilled calls (one with a missed-call alert).
fn record_during_outage(store: &PgStore) {
    store
        .record(billed_cdr("call-1", "acme", Some(700)), None)
        .unwrap();
    for i in 0..3 {
        let cdr = missed_cdr(&format!("free-{i}"), ts("2026-03-02T01:00:00Z"));
        let alert = (i == 0).then(|| alert_for(&cdr));
        store.record(cdr, alert).unwrap();
    }
}

/// Everything recorded during the outage is stored once, the call charged once, and
/// the books balance.
fn assert_settled_once(store: &PgStore) {
    let cdrs = store.query(&CdrFilter::default()).unwrap();
    let mut ids: Vec<_> = cdrs.iter().map(|c| c.call_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["call-1", "free-0", "free-1", "free-2"]);
    let charges: Vec<_> = store
        .ledger("acme", None, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::CallCharge)
        .collect();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0].amount, m(-700));
    let account = store.account("acme").unwrap().unwrap();
    assert_eq!((account.balance, account.reserved), (m(9_300), m(0)));
    let (_, open) = store.open_reservations().unwrap();
    assert!(open.is_empty(), "{open:?}");
    assert_eq!(store.verify().unwrap(), vec![]);
}

fn alerts_queued(url: &str) -> i64 {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap()
        .query_one("SELECT count(*) FROM alert_outbox", &[])
        .unwrap()
        .get(0)
}

#[test]
fn cdrs_spooled_during_an_outage_are_replayed_once_after_a_kill() {
    let mut server = PgServer::start("kill", 55461);
    let url = server.database();
    let spool = tempfile::tempdir().unwrap();
    let store = PgStore::open(&url, options(spool.path())).unwrap();
    funded_with_a_call(&store);
    store.flush().unwrap();

    server.down();
    record_during_outage(&store);
    // Durable on this node: the durability gate lets the final responses go.
    store.wait_committed().expect("spooled");
    // Not committed: a flush says so.
    let err = store.flush().expect_err("the database is down");
    assert!(
        matches!(
            err,
            sihai_store::StoreError::Unreachable { .. } | sihai_store::StoreError::Postgres { .. }
        ),
        "{err}"
    );
    assert_eq!(
        spooled_lines(spool.path()),
        4,
        "{:?}",
        spool_files(spool.path())
    );

    store.simulate_kill();
    server.up();
    let store = PgStore::open(&url, options(spool.path())).unwrap();
    // Replayed at open, before anything else.
    assert_eq!(spool_files(spool.path()), vec![]);
    store
        .flush()
        .expect("no rejection reported for replayed CDRs");
    assert_settled_once(&store);
    assert_eq!(alerts_queued(&url), 1);
    store.close().unwrap();
}

#[test]
fn the_running_writer_commits_the_spooled_batch_when_the_database_returns() {
    let mut server = PgServer::start("reconnect", 55462);
    let url = server.database();
    let spool = tempfile::tempdir().unwrap();
    let store = PgStore::open(&url, options(spool.path())).unwrap();
    funded_with_a_call(&store);
    store.flush().unwrap();

    server.down();
    record_during_outage(&store);
    store.wait_committed().expect("spooled");
    assert!(store.flush().is_err());
    assert_eq!(spooled_lines(spool.path()), 4);

    server.up();
    // The writer's own retry (backoff at most 5 s) commits the batch and empties the
    // spool; nobody flushes meanwhile.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !spool_files(spool.path()).is_empty() {
        assert!(Instant::now() < deadline, "the spool was never emptied");
        std::thread::sleep(Duration::from_millis(100));
    }
    store.flush().expect("committed");
    assert_settled_once(&store);
    store.close().unwrap();

    // A later start finds nothing to replay, and nothing is charged twice.
    let store = PgStore::open(&url, options(spool.path())).unwrap();
    store.flush().unwrap();
    assert_settled_once(&store);
    assert_eq!(alerts_queued(&url), 1);
    store.close().unwrap();
}

#[test]
fn a_replayed_cdr_already_stored_is_neither_rejected_nor_charged_again() {
    let mut server = PgServer::start("replay", 55463);
    let url = server.database();
    let spool = tempfile::tempdir().unwrap();
    let store = PgStore::open(&url, options(spool.path())).unwrap();
    funded_with_a_call(&store);
    let cdr = billed_cdr("call-1", "acme", Some(700));
    store.record(cdr.clone(), None).unwrap();
    store.flush().unwrap();

    // As a run killed after its batch committed but before it removed the spool file
    // would leave it; and a file with a line that cannot be read, beside a good one.
    let line = |cdr: &sihai_store::Cdr| {
        serde_json::json!({ "record": { "cdr": cdr, "alert": null } }).to_string()
    };
    std::fs::write(
        spool.path().join("spool-00000000000000000001-000001.jsonl"),
        format!("{}\n", line(&cdr)),
    )
    .unwrap();
    let late = missed_cdr("late-1", ts("2026-03-02T02:00:00Z"));
    std::fs::write(
        spool.path().join("spool-00000000000000000002-000001.jsonl"),
        format!("{}\n{{\"record\": {{\"cdr\n", line(&late)),
    )
    .unwrap();

    // Another process opening the store (a CLI command beside the daemon) leaves the
    // spool to the store holding it.
    let other = PgStore::open(&url, options(spool.path())).unwrap();
    let filter = CdrFilter {
        call_id: Some("late-1".into()),
        ..CdrFilter::default()
    };
    assert_eq!(other.query(&filter).unwrap().len(), 0);
    assert_eq!(spool_files(spool.path()).len(), 2);
    other.close().unwrap();
    store.close().unwrap();

    let store = PgStore::open(&url, options(spool.path())).unwrap();
    store
        .flush()
        .expect("no rejection for a replayed CDR already stored");
    let charges = store
        .ledger("acme", None, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::CallCharge)
        .count();
    assert_eq!(charges, 1);
    let account = store.account("acme").unwrap().unwrap();
    assert_eq!((account.balance, account.reserved), (m(9_300), m(0)));
    assert_eq!(store.verify().unwrap(), vec![]);
    // The readable line of the damaged file was replayed; the file is kept aside.
    assert_eq!(store.query(&filter).unwrap().len(), 1);
    let names: Vec<String> = spool_files(spool.path())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["spool-00000000000000000002-000001.jsonl.corrupt"],
        "{names:?}"
    );
    store.close().unwrap();
}
