//! What prepaid billing costs a call on the caller's thread: one admission `reserve`
//! (the SIP event loop waits for its answer), and one whole cycle of admission plus
//! settlement (`record` of the CDR with its cost). The writer commits in the
//! background every 50 ms, as in the daemon; neither operation waits for it.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use sihai_store::{
    Cdr, CdrStore, EntryKind, HangupSide, LedgerStore, Money, NewEntry, Outcome, RecoveryInfo,
    ReservationRequest, SqliteStore,
};

fn request(call_id: &str, at: Timestamp) -> ReservationRequest {
    ReservationRequest {
        call_id: call_id.into(),
        enterprise: "bench".into(),
        want: Money::from_units(3_000),
        floor: Some(Money::from_units(100)),
        recovery: RecoveryInfo {
            number: "4001234567".into(),
            caller: "13812345678".into(),
            caller_province: Some("广东".into()),
            caller_city: Some("深圳".into()),
            tariff: "standard".into(),
            setup_at: at,
            answered_at: None,
        },
    }
}

fn cdr(call_id: &str, at: Timestamp) -> Cdr {
    Cdr {
        call_id: call_id.into(),
        number: "4001234567".into(),
        enterprise: "bench".into(),
        caller: "13812345678".into(),
        caller_province: Some("广东".into()),
        caller_city: Some("深圳".into()),
        answered_by: Some("13900000001".into()),
        attempts: Vec::new(),
        setup_at: at,
        ring_at: Some(at),
        answer_at: Some(at),
        end_at: at,
        talk_seconds: 60,
        outcome: Outcome::Answered,
        hangup_side: Some(HangupSide::Caller),
        hangup_cause: Some("BYE".into()),
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds: 60,
        cost: Some(Money::from_units(1_500)),
        tariff: Some("standard".into()),
        customer_id: None,
    }
}

fn reserve_and_settle(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("cdr.db"), Duration::from_millis(50))
        .expect("open the store");
    store
        .post(NewEntry {
            enterprise: "bench".into(),
            kind: EntryKind::Recharge,
            amount: Money::from_yuan(1_000_000_000).expect("in range"),
            reference: "bench".into(),
            at: Timestamp::now(),
            actor: "bench".into(),
            note: None,
        })
        .expect("recharge");
    let mut next = 0u64;
    let mut group = c.benchmark_group("ledger");
    group.bench_function("reserve_admission", |b| {
        b.iter(|| {
            next += 1;
            let id = format!("{next:016x}-r@bench");
            store
                .reserve(request(&id, Timestamp::now()))
                .expect("reserve")
        })
    });
    group.bench_function("reserve_then_settle", |b| {
        b.iter(|| {
            next += 1;
            let id = format!("{next:016x}-c@bench");
            let at = Timestamp::now();
            store.reserve(request(&id, at)).expect("reserve");
            store.record(cdr(&id, at), None).expect("settle");
        })
    });
    group.finish();
    store.flush().expect("everything commits");
    assert!(store.verify().expect("verify").is_empty());
}

criterion_group!(benches, reserve_and_settle);
criterion_main!(benches);
