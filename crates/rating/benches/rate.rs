//! The CPU rating costs per call: `rate` of a two-hour call that crosses three bands
//! (night, peak, base), as settlement does once per call, and `max_duration_for` of an
//! amount that runs out in the third band, as the cut-off does once per reservation.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use sihai_rating::{
    BandSpec, Call, CallerRegion, DaySet, MinuteRange, Money, Tariff, TariffSpec, TimeCondition,
    max_duration_for, rate,
};

fn money(text: &str) -> Money {
    text.parse().expect("a valid amount")
}

/// Base ¥0.20/min; night (00:00–08:00, every day) ¥0.15; peak (08:00–09:00, Monday to
/// Friday) ¥0.30; 60 s then 6 s increments, a ¥0.10 connect fee.
fn tariff() -> Tariff {
    let band = |name: &str, rate: &str, days, start, end| BandSpec {
        name: name.into(),
        rate_per_minute: money(rate),
        time: Some(TimeCondition {
            days,
            windows: vec![MinuteRange::new(start, end)],
        }),
        region: None,
    };
    Tariff::new(TariffSpec {
        first_increment: Some(60),
        increment: 6,
        connect_fee: money("0.10"),
        bands: vec![
            band("night", "0.15", DaySet::ALL, 0, 8 * 60),
            band("peak", "0.30", DaySet::WORKWEEK, 8 * 60, 9 * 60),
        ],
        holidays: vec![jiff::civil::date(2026, 10, 1)],
        ..TariffSpec::flat("three-bands", money("0.20"))
    })
    .expect("a valid tariff")
}

fn rating(c: &mut Criterion) {
    let tariff = tariff();
    // Monday 2026-11-23 07:30 in Shanghai.
    let answered_at: Timestamp = "2026-11-22T23:30:00Z".parse().expect("an instant");
    let call = Call {
        answered_at,
        seconds: 7_200,
        region: Some(CallerRegion {
            province: "广东",
            city: "深圳",
        }),
    };
    let rated = rate(&tariff, &call);
    assert_eq!(rated.segments.len(), 3, "{rated:?}");
    // ¥0.10 + 30 min × ¥0.15 + 60 min × ¥0.30 + 30 min × ¥0.20.
    assert_eq!(rated.cost, money("28.60"));
    // ¥30 − ¥0.10 − ¥4.50 − ¥18 leaves ¥7.40: 37 minutes into the base band.
    let available = money("30");
    assert_eq!(
        max_duration_for(&tariff, available, answered_at, call.region),
        7_620
    );

    let mut group = c.benchmark_group("rating");
    group.bench_function("rate_three_bands", |b| {
        b.iter(|| rate(black_box(&tariff), black_box(&call)))
    });
    group.bench_function("max_duration_three_bands", |b| {
        b.iter(|| {
            max_duration_for(
                black_box(&tariff),
                black_box(available),
                black_box(answered_at),
                black_box(call.region),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, rating);
criterion_main!(benches);
