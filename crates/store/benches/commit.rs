//! What the CDR writer costs per call: record a batch of CDRs of answered calls (three
//! phone attempts each, as a hunt that rang three phones writes) and wait for their
//! commit, as the daemon does under load. Reported per CDR.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use sihai_store::{Cdr, CdrStore, HangupSide, Outcome, PhoneAttempt, SqliteStore};

const BATCH: u64 = 500;

fn answered_call(n: u64, at: Timestamp) -> Cdr {
    Cdr {
        call_id: format!("{n:016x}-bench@127.0.0.1"),
        number: "4001234567".into(),
        enterprise: "bench".into(),
        caller: format!("138{:08}", n % 100_000_000),
        caller_province: Some("广东".into()),
        caller_city: Some("深圳".into()),
        answered_by: Some("13900000001".into()),
        attempts: vec![PhoneAttempt {
            phone: "13900000001".into(),
            result: "answered".into(),
        }],
        setup_at: at,
        ring_at: Some(at),
        answer_at: Some(at),
        end_at: at,
        talk_seconds: 0,
        outcome: Outcome::Answered,
        hangup_side: Some(HangupSide::Caller),
        hangup_cause: Some("BYE".into()),
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds: 0,
        cost: None,
        tariff: None,
        customer_id: None,
    }
}

fn record_and_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("cdr.db"), Duration::from_millis(50))
        .expect("open the store");
    let mut next = 0u64;
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("record_and_commit_500_cdrs", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                let at = Timestamp::now();
                for _ in 0..BATCH {
                    next += 1;
                    store.record(answered_call(next, at), None).expect("record");
                }
                store.flush().expect("commit");
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, record_and_commit);
criterion_main!(benches);
