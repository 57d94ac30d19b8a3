//! Property tests of the rating rules: random tariffs (increments, fees, caps, time and
//! region bands, holidays), answer instants and durations, checked against the rules as
//! the crate's README states them, and against a loop over increments.

use jiff::civil::{Date, date};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use sihai_rating::{
    BandId, BandSpec, Call, CallerRegion, DaySet, MAX_CALL_SECONDS, MinuteRange, Money, Rating,
    RegionCondition, Tariff, TariffSpec, TimeCondition, china_time_zone,
};

const PROVINCES: [&str; 3] = ["广东", "北京", "广西"];
const CITIES: [&str; 3] = ["深圳", "广州", "北京"];
const CALLERS: [Option<CallerRegion<'static>>; 4] = [
    None,
    Some(CallerRegion {
        province: "广东",
        city: "深圳",
    }),
    Some(CallerRegion {
        province: "广东",
        city: "广州",
    }),
    Some(CallerRegion {
        province: "北京",
        city: "北京",
    }),
];

/// 2026-11-01 00:00 in Shanghai, the start of the month the calls are answered in.
fn month_start() -> i64 {
    date(2026, 11, 1)
        .at(0, 0, 0, 0)
        .to_zoned(china_time_zone())
        .unwrap()
        .timestamp()
        .as_second()
}

fn november(day: u8) -> Date {
    date(2026, 11, day as i8)
}

fn band_strategy() -> impl Strategy<Value = (i64, Option<TimeCondition>, Option<RegionCondition>)> {
    let window = (0u16..1_440, 1u16..=600).prop_map(|(start, length)| {
        MinuteRange::new(start, (start + length).min(MinuteRange::MINUTES_PER_DAY))
    });
    let time = (1u8..=255, prop::collection::vec(window, 1..=3)).prop_map(|(days, windows)| {
        let mut set = DaySet::EMPTY;
        for (bit, kind) in [
            DaySet::weekday(jiff::civil::Weekday::Monday),
            DaySet::weekday(jiff::civil::Weekday::Tuesday),
            DaySet::weekday(jiff::civil::Weekday::Wednesday),
            DaySet::weekday(jiff::civil::Weekday::Thursday),
            DaySet::weekday(jiff::civil::Weekday::Friday),
            DaySet::weekday(jiff::civil::Weekday::Saturday),
            DaySet::weekday(jiff::civil::Weekday::Sunday),
            DaySet::HOLIDAYS,
        ]
        .into_iter()
        .enumerate()
        {
            if days & (1 << bit) != 0 {
                set = set.union(kind);
            }
        }
        TimeCondition { days: set, windows }
    });
    let region = (0u8..8, 0u8..8).prop_map(|(provinces, cities)| RegionCondition {
        provinces: PROVINCES
            .iter()
            .enumerate()
            .filter(|(i, _)| provinces & (1 << i) != 0)
            .map(|(_, p)| p.to_string())
            .collect(),
        cities: CITIES
            .iter()
            .enumerate()
            .filter(|(i, _)| cities & (1 << i) != 0)
            .map(|(_, c)| c.to_string())
            .collect(),
    });
    (
        0i64..=20_000,
        prop_oneof![1 => Just(None), 4 => time.prop_map(Some)],
        prop_oneof![7 => Just(None), 3 => region.prop_map(Some)],
    )
}

fn tariff_strategy() -> impl Strategy<Value = Tariff> {
    let increment = prop_oneof![Just(1u32), Just(6), Just(60), 1u32..=120];
    let first = prop::option::of(prop_oneof![Just(60u32), Just(30), 1u32..=120]);
    (
        0i64..=20_000,
        increment,
        first,
        prop_oneof![Just(None), (0i64..=5_000).prop_map(Some)],
        prop_oneof![7 => Just(None), 3 => (1i64..=300_000).prop_map(Some)],
        prop::collection::vec(band_strategy(), 0..=4),
        prop::collection::vec(1u8..=30, 0..=4),
        prop::collection::vec(1u8..=30, 0..=3),
    )
        .prop_map(
            |(rate, increment, first, fee, cap, bands, holidays, workdays)| {
                let connect_fee = Money::from_units(fee.unwrap_or(0));
                let bands = bands
                    .into_iter()
                    .enumerate()
                    .map(|(i, (rate, time, region))| BandSpec {
                        name: format!("b{i}"),
                        rate_per_minute: Money::from_units(rate),
                        // A band needs a condition: every day, all day, if none was drawn.
                        time: if time.is_none()
                            && region
                                .as_ref()
                                .is_none_or(|r| r.provinces.is_empty() && r.cities.is_empty())
                        {
                            Some(TimeCondition {
                                days: DaySet::ALL,
                                windows: vec![MinuteRange::ALL_DAY],
                            })
                        } else {
                            time
                        },
                        region: region.filter(|r| !r.provinces.is_empty() || !r.cities.is_empty()),
                    })
                    .collect();
                let holidays: Vec<Date> = holidays.into_iter().map(november).collect();
                let workdays = workdays
                    .into_iter()
                    .map(november)
                    .filter(|d| !holidays.contains(d))
                    .collect();
                Tariff::new(TariffSpec {
                    name: "random".into(),
                    rate_per_minute: Money::from_units(rate),
                    increment,
                    first_increment: first,
                    connect_fee,
                    max_cost: cap.map(|extra| Money::from_units(connect_fee.units() + extra)),
                    bands,
                    holidays,
                    workdays,
                })
                .expect("the strategy draws valid tariffs")
            },
        )
}

/// An answer instant in November 2026, with a fraction of a second.
fn answer_strategy() -> impl Strategy<Value = Timestamp> {
    (0i64..29 * 86_400, 0i32..1_000_000_000)
        .prop_map(|(second, nanos)| Timestamp::new(month_start() + second, nanos).unwrap())
}

fn call(answered_at: Timestamp, seconds: u32, caller: usize) -> Call<'static> {
    Call {
        answered_at,
        seconds,
        region: CALLERS[caller],
    }
}

fn later(at: Timestamp, seconds: u32) -> Timestamp {
    at.checked_add(SignedDuration::from_secs(i64::from(seconds)))
        .unwrap()
}

/// What a loop over increments gives: each increment's length at the rate of the band in
/// force when it starts, and the runs of increments per band.
fn increment_by_increment(tariff: &Tariff, call: &Call<'_>) -> (u128, Vec<(BandId, u32)>) {
    let billed = tariff.billed_seconds(call.seconds);
    let mut exact = 0u128;
    let mut runs: Vec<(BandId, u32)> = Vec::new();
    let mut start = 0u32;
    while start < billed {
        let length = if start == 0 {
            tariff.first_increment()
        } else {
            tariff.increment()
        };
        let band = tariff.band_at(later(call.answered_at, start), call.region);
        exact += u128::from(tariff.band_rate(band).units().unsigned_abs()) * u128::from(length);
        match runs.last_mut() {
            Some((last, seconds)) if *last == band => *seconds += length,
            _ => runs.push((band, length)),
        }
        start += length;
    }
    (exact, runs)
}

fn is_boundary(tariff: &Tariff, seconds: u32) -> bool {
    tariff.billed_seconds(seconds) == seconds
}

fn check_breakdown(tariff: &Tariff, rating: &Rating) -> Result<(), TestCaseError> {
    let seconds: u32 = rating.segments.iter().map(|s| s.seconds).sum();
    prop_assert_eq!(seconds, rating.billed_seconds);
    let costs: i64 = rating.segments.iter().map(|s| s.cost.units()).sum();
    prop_assert_eq!(costs, rating.usage.units());
    prop_assert_eq!(
        rating.exact_usage.div_ceil(60),
        rating.usage.units() as u128
    );
    for segment in &rating.segments {
        let exact = i128::from(segment.rate_per_minute.units()) * i128::from(segment.seconds);
        let shown = i128::from(segment.cost.units()) * 60;
        prop_assert!(
            (shown - exact).abs() < 60,
            "segment {segment:?} off by a unit or more"
        );
        prop_assert_eq!(segment.rate_per_minute, tariff.band_rate(segment.band));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A band-crossing call equals the sum of its parts: the proportional walk gives
    /// exactly what charging every increment at its starting band gives, segment by
    /// segment; the segments add up to the billed seconds and the usage.
    #[test]
    fn rating_equals_increment_by_increment(
        tariff in tariff_strategy(),
        answered_at in answer_strategy(),
        seconds in prop_oneof![0u32..=600, 0u32..=20_000],
        caller in 0usize..4,
    ) {
        let call = call(answered_at, seconds, caller);
        let rating = tariff.rate(&call);
        let (exact, runs) = increment_by_increment(&tariff, &call);
        prop_assert_eq!(rating.exact_usage, exact);
        let segments: Vec<(BandId, u32)> = rating.segments.iter().map(|s| (s.band, s.seconds)).collect();
        prop_assert_eq!(segments, runs);
        check_breakdown(&tariff, &rating)?;
    }

    /// Split at an increment boundary, a call with equal increments is two calls whose
    /// exact prices add up to its own; the rounded costs differ by at most one unit.
    #[test]
    fn a_call_is_the_sum_of_its_parts(
        tariff in tariff_strategy(),
        answered_at in answer_strategy(),
        increments in 2u32..=400,
        split in 1u32..400,
        caller in 0usize..4,
    ) {
        prop_assume!(tariff.first_increment() == tariff.increment());
        let n = tariff.increment();
        let split = 1 + split % (increments - 1);
        let whole = tariff.rate(&call(answered_at, increments * n, caller));
        let head = tariff.rate(&call(answered_at, split * n, caller));
        let tail = tariff.rate(&call(later(answered_at, split * n), (increments - split) * n, caller));
        prop_assert_eq!(whole.exact_usage, head.exact_usage + tail.exact_usage);
        prop_assert_eq!(whole.billed_seconds, head.billed_seconds + tail.billed_seconds);
        let parts = head.usage.units() + tail.usage.units();
        prop_assert!(whole.usage.units() <= parts && parts <= whole.usage.units() + 1);
    }

    /// Longer never costs less, and is never billed less.
    #[test]
    fn cost_never_decreases_with_duration(
        tariff in tariff_strategy(),
        answered_at in answer_strategy(),
        seconds in 0u32..=20_000,
        more in 1u32..=400,
        caller in 0usize..4,
    ) {
        let short = tariff.rate(&call(answered_at, seconds, caller));
        let long = tariff.rate(&call(answered_at, seconds + more, caller));
        prop_assert!(short.cost <= long.cost, "{} s cost {}, {} s cost {}", seconds, short.cost, seconds + more, long.cost);
        prop_assert!(short.billed_seconds <= long.billed_seconds);
        prop_assert!(short.exact_usage <= long.exact_usage);
    }

    /// Billed seconds: 0 for 0, else the first increment then whole further increments,
    /// covering the duration by less than one increment.
    #[test]
    fn billed_seconds_are_whole_increments(tariff in tariff_strategy(), seconds in 0u32..=100_000) {
        let billed = tariff.billed_seconds(seconds);
        let (first, next) = (tariff.first_increment(), tariff.increment());
        if seconds == 0 {
            prop_assert_eq!(billed, 0);
        } else if seconds <= first {
            prop_assert_eq!(billed, first);
        } else {
            prop_assert!(billed >= seconds);
            prop_assert_eq!((billed - first) % next, 0);
            prop_assert!(billed - seconds < next);
        }
    }

    /// The connect fee is charged on every call billed a second, the cap is never
    /// exceeded, and nothing else changes the charge.
    #[test]
    fn connect_fee_and_maximum_cost_are_respected(
        tariff in tariff_strategy(),
        answered_at in answer_strategy(),
        seconds in 0u32..=20_000,
        caller in 0usize..4,
    ) {
        let rating = tariff.rate(&call(answered_at, seconds, caller));
        if seconds == 0 {
            prop_assert_eq!(rating.cost, Money::ZERO);
            prop_assert!(rating.segments.is_empty());
            return Ok(());
        }
        prop_assert_eq!(rating.connect_fee, tariff.connect_fee());
        let total = rating.connect_fee.checked_add(rating.usage).unwrap();
        match tariff.max_cost() {
            Some(cap) => {
                prop_assert!(rating.cost <= cap);
                prop_assert_eq!(rating.cost, total.min(cap));
                prop_assert!(rating.cost >= tariff.connect_fee());
            }
            None => prop_assert_eq!(rating.cost, total),
        }
    }

    /// The longest call money covers is what `rate` charges: it costs no more than
    /// what is available, a second more would (unless at the horizon), and it ends on
    /// an increment boundary.
    #[test]
    fn max_duration_is_consistent_with_rate(
        tariff in tariff_strategy(),
        answered_at in answer_strategy(),
        available in prop_oneof![0i64..=2_000, 0i64..=200_000],
        caller in 0usize..4,
    ) {
        let available = Money::from_units(available);
        let region = CALLERS[caller];
        let max = tariff.max_duration_for(available, answered_at, region);
        // The largest boundary within MAX_CALL_SECONDS.
        let ceiling = tariff.billed_seconds(MAX_CALL_SECONDS);
        let horizon = if ceiling == MAX_CALL_SECONDS { ceiling } else { ceiling - tariff.increment() };
        prop_assert!(is_boundary(&tariff, max));
        prop_assert!(max <= horizon);
        let at_max = tariff.rate(&Call { answered_at, seconds: max, region });
        prop_assert!(at_max.cost <= available, "{} s cost {} > {}", max, at_max.cost, available);
        if max < horizon {
            let beyond = tariff.rate(&Call { answered_at, seconds: max + 1, region });
            prop_assert!(beyond.cost > available, "{} s cost {} <= {}", max + 1, beyond.cost, available);
        }
    }

    /// Exact display parses back to the same amount; the two-decimal display parses
    /// back to the amount rounded half away from zero to the fen.
    #[test]
    fn money_display_round_trips(units in any::<i64>()) {
        let money = Money::from_units(units);
        prop_assert_eq!(money.exact().to_string().parse::<Money>(), Ok(money));
        let rounded = money.round_to_fen();
        prop_assert_eq!(money.to_string().parse::<Money>(), Ok(rounded));
        let error = i128::from(rounded.units()) - i128::from(units);
        prop_assert!(error.abs() <= 50);
        // Half away from zero: exactly half a fen moves away from zero.
        if units.unsigned_abs() % 100 == 50 {
            prop_assert_eq!(error.signum(), i128::from(units.signum()));
        }
        if units % 100 == 0 {
            prop_assert_eq!(money.to_string().parse::<Money>(), Ok(money));
        }
    }

    /// Any well-formed decimal is read exactly.
    #[test]
    fn money_parses_decimals_exactly(
        negative in any::<bool>(),
        whole in 0u64..=999_999_999_999,
        decimals in "[0-9]{0,4}",
    ) {
        let text = format!(
            "{}{whole}{}{decimals}",
            if negative { "-" } else { "" },
            if decimals.is_empty() { "" } else { "." },
        );
        let mut fraction = 0i64;
        for (i, digit) in decimals.bytes().enumerate() {
            fraction += i64::from(digit - b'0') * 10i64.pow(3 - i as u32);
        }
        let magnitude = whole as i64 * 10_000 + fraction;
        let expected = if negative { -magnitude } else { magnitude };
        prop_assert_eq!(text.parse::<Money>(), Ok(Money::from_units(expected)));
    }
}

/// "No float anywhere": the crate's sources name no float type or float conversion.
#[test]
fn no_float_in_the_crate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // Spelled in pieces so that this file passes its own scan.
    let forbidden = [
        ["f", "32"].concat(),
        ["f", "64"].concat(),
        ["as_secs", "_f"].concat(),
        ["from_secs", "_f"].concat(),
    ];
    let mut scanned = 0;
    for dir in ["src", "tests", "benches"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for word in &forbidden {
                    assert!(
                        !text.contains(word.as_str()),
                        "{} mentions {word}",
                        path.display()
                    );
                }
                scanned += 1;
            }
        }
    }
    assert!(scanned >= 5, "scanned {scanned} files");
}
