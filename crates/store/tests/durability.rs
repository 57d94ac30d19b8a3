//! "Written durably when the call ends": a process that recorded CDRs is killed with
//! SIGKILL, and the CDRs are all there when the database is opened again.
//!
//! The parent test re-runs this test binary as a child (`SIHAI_STORE_CHILD` names the
//! database), which records K calls, makes sure they are committed, prints a `done` line, and
//! then keeps recording more calls with alerts until it is killed mid-stream. The parent
//! kills it with SIGKILL (no destructors, no clean close), reopens the database and
//! checks that all K are there, every field intact, and that the extra calls recorded
//! around the kill are each whole: a CDR with all its attempts and its alert, or nothing.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use rusqlite::Connection;
use sihai_store::{Cdr, CdrFilter, CdrStore, Outcome, SqliteStore};

use common::{alert_for, full_cdr, missed_cdr, ts};

const K: usize = 300;
const CHILD_DB: &str = "SIHAI_STORE_CHILD";
const CHILD_MODE: &str = "SIHAI_STORE_CHILD_MODE";
const DONE: &str = "sihai-store-child: done";

/// The calls the child records before saying `done`: answered and missed alternately,
/// every missed one with an alert.
fn call(i: usize) -> (Cdr, bool) {
    if i.is_multiple_of(2) {
        let mut cdr = full_cdr(&format!("call-{i}"));
        cdr.setup_at += SignedDuration::from_secs(i as i64);
        (cdr, false)
    } else {
        (
            missed_cdr(
                &format!("call-{i}"),
                ts("2026-03-01T00:00:00Z") + SignedDuration::from_secs(i as i64),
            ),
            true,
        )
    }
}

/// The child's side. Passes trivially when run as an ordinary test.
#[test]
fn child_process() {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let mode = std::env::var(CHILD_MODE).unwrap();
    let store = SqliteStore::open(Path::new(&db), Duration::from_millis(50)).unwrap();
    for i in 0..K {
        let (cdr, missed) = call(i);
        let alert = missed.then(|| alert_for(&cdr));
        store.record(cdr, alert).unwrap();
    }
    match mode.as_str() {
        // The daemon's shutdown path: flush says everything is committed.
        "flush" => store.flush().unwrap(),
        // The daemon's normal path: no flush, the batch commits by itself. Wait until
        // another connection can see all K (committed), without asking the store.
        "batch" => {
            let reader = Connection::open(&db).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while reader
                .query_row("SELECT count(*) FROM cdr", [], |r| r.get::<_, i64>(0))
                .unwrap()
                < K as i64
            {
                assert!(Instant::now() < deadline, "batch never committed");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        other => panic!("unknown mode {other}"),
    }
    // libtest has already printed "test child_process ... " on this line.
    println!("{DONE}");
    // Keep the writer busy until the kill lands, so it is likely mid-commit.
    for i in 0.. {
        let mut cdr = missed_cdr(&format!("extra-{i}"), ts("2026-04-01T00:00:00Z"));
        cdr.attempts = vec![
            sihai_store::PhoneAttempt {
                phone: "1".into(),
                result: "busy".into(),
            },
            sihai_store::PhoneAttempt {
                phone: "2".into(),
                result: "no_answer".into(),
            },
        ];
        let alert = alert_for(&cdr);
        store.record(cdr, Some(alert)).unwrap();
        if i % 64 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn kill_child_after_done(db: &Path, mode: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, db)
        .env(CHILD_MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.trim_end().ends_with(DONE) {
                let _ = tx.send(());
            }
        }
    });
    let said_done = rx.recv_timeout(Duration::from_secs(120));
    // Let it record and commit more for a few commit intervals, then SIGKILL at
    // whatever point the writer has reached.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    said_done.expect("the child never said done");
    assert_eq!(
        status.signal(),
        Some(9),
        "the child was not killed by SIGKILL: {status:?}"
    );
}

fn check_after_kill(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cdr.db");
    kill_child_after_done(&db, mode);

    // The kill left the WAL behind: nothing was checkpointed or closed cleanly.
    let wal = dir.path().join("cdr.db-wal");
    assert!(
        std::fs::metadata(&wal)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "no WAL left behind"
    );

    let store = SqliteStore::open(&db, Duration::from_millis(5)).unwrap();
    let got = store.query(&CdrFilter::default()).unwrap();
    for i in 0..K {
        let (want, _) = call(i);
        let found = got.iter().find(|c| c.call_id == want.call_id);
        assert_eq!(found, Some(&want), "call {i} after SIGKILL ({mode})");
    }
    let extras: Vec<&Cdr> = got
        .iter()
        .filter(|c| c.call_id.starts_with("extra-"))
        .collect();
    for cdr in &extras {
        assert_eq!(cdr.attempts.len(), 2, "{} lost attempts", cdr.call_id);
        assert_eq!(cdr.outcome, Outcome::NoAnswer);
    }
    let alerts = store
        .due_alerts(ts("2100-01-01T00:00:00Z"), 1_000_000)
        .unwrap();
    let missed = (0..K).filter(|i| call(*i).1).count();
    assert_eq!(
        alerts.len(),
        missed + extras.len(),
        "every missed CDR has exactly one alert"
    );
    for alert in &alerts {
        assert!(
            got.iter().any(|c| c.call_id == alert.call_id),
            "alert without CDR: {}",
            alert.call_id
        );
    }
    drop(store);
    let raw = Connection::open(&db).unwrap();
    let check: String = raw
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    eprintln!(
        "{mode}: {K} calls + {} extra survived SIGKILL",
        extras.len()
    );
}

#[test]
fn flushed_cdrs_survive_sigkill() {
    check_after_kill("flush");
}

#[test]
fn batch_committed_cdrs_survive_sigkill() {
    check_after_kill("batch");
}
