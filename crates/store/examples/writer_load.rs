//! What the store's writer thread costs a call, with and without billing: drives a
//! store as the daemon does at a steady call rate (admission `reserve`, answer,
//! `record` of the CDR after the talk time), in real time, and reports the CPU the
//! writer and checkpointer threads used per call, read from `/proc/self/task`.
//!
//!     cargo run --release -p sihai-store --example writer_load -- [billed|plain] [RATE] [SECONDS]
//!
//! The daemon's whole-process figures (`benches/cps/run`) include this; this isolates
//! it, with much less noise than a SIP ramp, to compare changes to the writer.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use sihai_store::{
    Cdr, CdrStore, EntryKind, HangupSide, LedgerStore, Money, NewEntry, Outcome, RecoveryInfo,
    ReservationRequest, SqliteStore,
};

/// The daemon's pacing: it hands the store work as calls arrive, every few ms.
const TICK: Duration = Duration::from_millis(5);

fn main() {
    let mut args = std::env::args().skip(1);
    let billed = match args.next().as_deref() {
        None | Some("billed") => true,
        Some("plain") => false,
        Some(other) => panic!("first argument: billed or plain, not {other}"),
    };
    let rate: u64 = args
        .next()
        .map_or(3000, |a| a.parse().expect("RATE: calls per second"));
    let seconds: u64 = args.next().map_or(8, |a| a.parse().expect("SECONDS"));
    let talk = Duration::from_secs(1);

    let dir = tempfile::tempdir_in(".").expect("a temporary directory here (the disk under test)");
    let store = SqliteStore::open(&dir.path().join("load.db"), Duration::from_millis(50))
        .expect("open the store");
    if billed {
        store
            .post(NewEntry {
                enterprise: "bench".into(),
                kind: EntryKind::Recharge,
                amount: Money::from_yuan(1_000_000_000).expect("in range"),
                reference: "load".into(),
                at: Timestamp::now(),
                actor: "bench".into(),
                note: None,
            })
            .expect("recharge");
    }

    // One second of warm-up at the same rate, so the measured window starts with a full
    // second of calls in progress, as a step of the harness does.
    let total = rate * (seconds + 1);
    let warm = rate;
    let started = Instant::now();
    let mut open: std::collections::VecDeque<(u64, Instant, Timestamp)> = Default::default();
    let mut next = 0u64;
    let mut ended = 0u64;
    let mut before = None;
    while ended < total {
        let now = Instant::now();
        let due = ((now - started).as_secs_f64() * rate as f64) as u64;
        while next < due.min(total) {
            next += 1;
            let at = Timestamp::now();
            let id = format!("{next}-4242@127.0.0.1");
            if billed {
                store.reserve(request(&id, at)).expect("reserve");
                store.mark_answered(&id, at).expect("answer");
            }
            open.push_back((next, now, at));
        }
        while open
            .front()
            .is_some_and(|(_, t, _)| now.duration_since(*t) >= talk)
        {
            let (n, _, at) = open.pop_front().expect("just looked");
            store
                .record(cdr(&format!("{n}-4242@127.0.0.1"), at, billed), None)
                .expect("record");
            ended += 1;
            if ended == warm {
                before = Some(threads());
            }
        }
        std::thread::sleep(TICK);
    }
    store.flush().expect("everything commits");
    let after = threads();
    let before = before.expect("the warm-up ended");
    let calls = total - warm;
    println!(
        "{} {rate}/s for {seconds} s ({calls} calls measured):",
        if billed { "billed" } else { "plain" }
    );
    for (name, ticks) in &after {
        let was = before
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, t)| *t);
        let used = ticks - was;
        println!(
            "  {name:<18} {used:>5} ticks  {:>6.2} us/call",
            used as f64 * 10_000.0 / calls as f64
        );
    }
    if billed {
        assert!(
            store.verify().expect("verify").is_empty(),
            "the ledger verifies"
        );
    }
}

/// CPU ticks (utime + stime, 1/100 s) of this process's store threads, by name.
fn threads() -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("a task").path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let comm = comm.trim().to_owned();
        if !comm.starts_with("sihai-cdr") {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        match out.iter_mut().find(|(n, _)| *n == comm) {
            Some((_, t)) => *t += ticks,
            None => out.push((comm, ticks)),
        }
    }
    out.sort();
    out
}

fn request(call_id: &str, at: Timestamp) -> ReservationRequest {
    ReservationRequest {
        call_id: call_id.into(),
        enterprise: "bench".into(),
        want: Money::from_units(3_000),
        floor: Some(Money::from_units(100)),
        recovery: RecoveryInfo {
            number: "4001234567".into(),
            caller: "sipp".into(),
            caller_province: None,
            caller_city: None,
            tariff: "bench".into(),
            setup_at: at,
            answered_at: None,
        },
    }
}

fn cdr(call_id: &str, at: Timestamp, billed: bool) -> Cdr {
    Cdr {
        call_id: call_id.into(),
        number: "4001234567".into(),
        enterprise: "bench".into(),
        caller: "sipp".into(),
        caller_province: None,
        caller_city: None,
        answered_by: Some("13900000001".into()),
        attempts: vec![sihai_store::PhoneAttempt {
            phone: "13900000001".into(),
            result: "answered".into(),
        }],
        setup_at: at,
        ring_at: Some(at),
        answer_at: Some(at),
        end_at: Timestamp::now(),
        talk_seconds: 1,
        outcome: Outcome::Answered,
        hangup_side: Some(HangupSide::Caller),
        hangup_cause: Some("BYE".into()),
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds: if billed { 6 } else { 0 },
        cost: billed.then(|| Money::from_units(300)),
        tariff: billed.then(|| "bench".into()),
        customer_id: None,
    }
}
