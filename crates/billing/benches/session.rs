//! The CPU one call's billing costs outside the store: admission request, the store's
//! grant, the answer (which computes the cut-off), one renewal and its grant, and the
//! settlement that rates the call — on a tariff of three time bands, for a call that
//! crosses all three. The store's side (reserve and settle, ~6 µs with SQLite) is
//! measured by `crates/store/benches/ledger.rs`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use sihai_billing::{CallBilling, CallParams, Due, Verdict};
use sihai_rating::{BandSpec, DaySet, MinuteRange, Money, Tariff, TariffSpec, TimeCondition};
use sihai_records::ReservationOutcome;

fn money(text: &str) -> Money {
    text.parse().expect("a valid amount")
}

/// Base ¥0.20/min; night (00:00–08:00) ¥0.15; peak (08:00–09:00, Monday to Friday)
/// ¥0.30; 60 s then 6 s increments.
fn tariff() -> Arc<Tariff> {
    let band = |name: &str, rate: &str, days, start, end| BandSpec {
        name: name.into(),
        rate_per_minute: money(rate),
        time: Some(TimeCondition {
            days,
            windows: vec![MinuteRange::new(start, end)],
        }),
        region: None,
    };
    Arc::new(
        Tariff::new(TariffSpec {
            first_increment: Some(60),
            increment: 6,
            bands: vec![
                band("night", "0.15", DaySet::ALL, 0, 8 * 60),
                band("peak", "0.30", DaySet::WORKWEEK, 8 * 60, 9 * 60),
            ],
            ..TariffSpec::flat("three-bands", money("0.20"))
        })
        .expect("a valid tariff"),
    )
}

fn session(c: &mut Criterion) {
    let tariff = tariff();
    // Monday 2026-11-23 07:30 in Shanghai; the call lasts two hours.
    let setup_at: Timestamp = "2026-11-22T23:30:00Z".parse().expect("an instant");
    let ended_at: Timestamp = "2026-11-23T01:30:00Z".parse().expect("an instant");
    let params = CallParams {
        call_id: "4e102eceb32b7794-b20".into(),
        enterprise: "acme".into(),
        tariff,
        floor: money("100"),
        reservation_seconds: 300,
        number: "4001234567".into(),
        caller: "13800138000".into(),
        caller_province: Some("广东".into()),
        caller_city: Some("深圳".into()),
        setup_at,
    };
    let grant = |want: Money, held: Money| ReservationOutcome::Granted {
        granted: want,
        held: held.saturating_add(want),
    };
    c.bench_function(
        "billing/one call: admit, answer, renew, settle (3 bands)",
        |b| {
            b.iter(|| {
                let now = Instant::now();
                let (mut billing, request) = CallBilling::admit(black_box(params.clone()));
                let verdict = billing.on_outcome(grant(request.want, Money::ZERO), now);
                debug_assert_eq!(verdict, Verdict::Admit);
                billing.on_answer(setup_at, now);
                let renew_at = billing.poll_timeout().unwrap_or(now);
                if let Some(Due::Renew(request)) = billing.on_timeout(renew_at) {
                    billing.on_outcome(grant(request.want, billing.held()), renew_at);
                }
                let _ = billing.poll_timeout().map(|at| at + Duration::from_secs(1));
                black_box(billing.settle(ended_at))
            })
        },
    );
    // The common case: a call shorter than its first chunk, so one reservation and one
    // settlement.
    let short_end: Timestamp = "2026-11-22T23:32:10Z".parse().expect("an instant");
    c.bench_function(
        "billing/one reserve-settle cycle: admit, answer, settle",
        |b| {
            b.iter(|| {
                let now = Instant::now();
                let (mut billing, request) = CallBilling::admit(black_box(params.clone()));
                billing.on_outcome(grant(request.want, Money::ZERO), now);
                billing.on_answer(setup_at, now);
                black_box(billing.settle(short_end))
            })
        },
    );
}

criterion_group!(benches, session);
criterion_main!(benches);
