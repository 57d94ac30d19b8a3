//! Rating one call, and the longest call an amount of money covers.

use jiff::Timestamp;
use smallvec::SmallVec;

use crate::MAX_CALL_SECONDS;
use crate::money::Money;
use crate::tariff::{BandId, CallerRegion, Tariff, Walk};

/// An answered call, as rating sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// When the caller's leg was answered: billing starts here.
    pub answered_at: Timestamp,
    /// Whole seconds from the answer to the hang-up: see [`billable_seconds`].
    pub seconds: u32,
    /// Where the caller is, if the region table knows the number.
    pub region: Option<CallerRegion<'a>>,
}

/// Whole seconds from `answered_at` to `ended_at`, truncated: 59.9 s is 59 s, and an
/// end before the answer is 0.
///
/// Truncated, not rounded up, because of the cut-off: a call whose money runs out after
/// N seconds is ended by a timer set for answer + N s, which always fires a little late;
/// rounding up would bill that call one increment more than the money covered. The
/// fraction dropped is under a second per call, and the increments round up anyway.
pub fn billable_seconds(answered_at: Timestamp, ended_at: Timestamp) -> u32 {
    let seconds = ended_at.duration_since(answered_at).as_secs();
    if seconds <= 0 {
        0
    } else {
        u32::try_from(seconds).unwrap_or(u32::MAX)
    }
}

/// The rate of one band over one stretch of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Which band ([`Tariff::band_name`] gives its name).
    pub band: BandId,
    /// Billed seconds from the answer at which the segment's first increment starts.
    pub offset: u32,
    /// Billed seconds: the lengths of the increments that start in this band.
    pub seconds: u32,
    pub rate_per_minute: Money,
    /// This segment's share of [`Rating::usage`]: see the crate's rounding rules.
    pub cost: Money,
}

/// What a call costs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    /// The call's seconds rounded up to its increments.
    pub billed_seconds: u32,
    /// The tariff's connect fee, or zero for a call billed no second.
    pub connect_fee: Money,
    /// What the billed time costs: the sum of the segments' costs.
    pub usage: Money,
    /// What is charged: `connect_fee + usage`, at most the tariff's maximum per call.
    pub cost: Money,
    /// The exact price of the billed time before rounding, in 1/60 of a unit: the sum
    /// over segments of rate per minute (in units) × seconds. `usage` is this divided by
    /// 60 and rounded up.
    pub exact_usage: u128,
    /// One per run of increments starting in the same band, in call order; a band in
    /// which no increment starts does not appear. Adjacent runs in the same band (e.g.
    /// across midnight) are one segment.
    pub segments: SmallVec<[Segment; 4]>,
}

impl Rating {
    /// Whether the maximum cost per call lowered the charge.
    pub fn is_capped(&self) -> bool {
        self.cost < self.connect_fee.saturating_add(self.usage)
    }
}

/// Rates `call` at `tariff`: see [`Tariff::rate`].
pub fn rate(tariff: &Tariff, call: &Call<'_>) -> Rating {
    tariff.rate(call)
}

/// The longest call `available` pays for: see [`Tariff::max_duration_for`].
pub fn max_duration_for(
    tariff: &Tariff,
    available: Money,
    answered_at: Timestamp,
    region: Option<CallerRegion<'_>>,
) -> u32 {
    tariff.max_duration_for(available, answered_at, region)
}

/// `ceil(exact / 60)` as money, saturating.
fn units_of(exact: u128) -> i64 {
    i64::try_from(exact.div_ceil(60)).unwrap_or(i64::MAX)
}

impl Tariff {
    /// Rates `call`: its billed seconds, cost and one segment per band it meets.
    ///
    /// The work is proportional to the number of band changes the call meets, not to
    /// its length or its number of increments. Durations above [`MAX_CALL_SECONDS`] are
    /// rated as that.
    pub fn rate(&self, call: &Call<'_>) -> Rating {
        let seconds = u64::from(call.seconds.min(MAX_CALL_SECONDS));
        let mut rating = Rating {
            billed_seconds: 0,
            connect_fee: Money::ZERO,
            usage: Money::ZERO,
            cost: Money::ZERO,
            exact_usage: 0,
            segments: SmallVec::new(),
        };
        if seconds == 0 {
            return rating;
        }
        let walk = Walk::new(self, call.answered_at, call.region);
        let mut exact: u128 = 0;
        let mut start = 0u64;
        let mut current = walk.step(0);
        loop {
            let (band, mut end) = current;
            // Runs of the same band (a window followed by another of the same band,
            // midnight) are one segment.
            let mut next = None;
            while end < seconds {
                let step = walk.step(end);
                if step.0 != band {
                    next = Some(step);
                    break;
                }
                end = step.1;
            }
            // The increments starting in [start, end) cover the billed seconds from the
            // first boundary at or after `start` to the first at or after `end` (or the
            // call's end).
            let from = self.ceil_boundary(start);
            let to = self.ceil_boundary(end.min(seconds));
            if to > from {
                let rate = self.band_rate(band);
                let before = exact;
                // Rates are validated non-negative.
                exact += u128::from(rate.units().unsigned_abs()) * u128::from(to - from);
                let share = Money::from_units(units_of(exact).saturating_sub(units_of(before)));
                let length = (to - from) as u32;
                match rating.segments.last_mut() {
                    // The band between them had no increment starting in it.
                    Some(last) if last.band == band => {
                        last.seconds += length;
                        last.cost = last.cost.saturating_add(share);
                    }
                    _ => rating.segments.push(Segment {
                        band,
                        offset: from as u32,
                        seconds: length,
                        rate_per_minute: rate,
                        cost: share,
                    }),
                }
            }
            match next {
                Some(step) => {
                    start = end;
                    current = step;
                }
                None => break,
            }
        }
        let billed = self.ceil_boundary(seconds);
        rating.billed_seconds = billed as u32;
        rating.exact_usage = exact;
        rating.usage = Money::from_units(units_of(exact));
        rating.connect_fee = self.connect_fee();
        let total = rating.connect_fee.saturating_add(rating.usage);
        rating.cost = match self.max_cost() {
            Some(max_cost) => total.min(max_cost),
            None => total,
        };
        rating
    }

    /// The longest call, in seconds, that `available` pays for when answered at
    /// `answered_at` by a caller from `region`: an increment boundary `m` with
    /// `rate(m).cost <= available < rate(m + 1).cost`, so a call cut at `m` seconds
    /// costs no more than `available` and a second more would.
    ///
    /// 0 if `available` does not cover the connect fee and the first increment
    /// (including when it is negative). The answer is at most [`MAX_CALL_SECONDS`]
    /// (rounded down to a boundary): a free tariff, a maximum cost per call within
    /// `available` or a large balance give that. Like [`Tariff::rate`], the work is
    /// proportional to the number of band changes, not of increments.
    pub fn max_duration_for(
        &self,
        available: Money,
        answered_at: Timestamp,
        region: Option<CallerRegion<'_>>,
    ) -> u32 {
        let horizon = self.floor_boundary(u64::from(MAX_CALL_SECONDS));
        if available < self.connect_fee() {
            return 0;
        }
        if self
            .max_cost()
            .is_some_and(|max_cost| max_cost <= available)
        {
            return horizon as u32;
        }
        // cost = connect fee + ceil(exact / 60) <= available  <=>  exact <= 60 × (available - fee).
        let Some(left) = available.checked_sub(self.connect_fee()) else {
            return 0;
        };
        let mut budget = u128::from(left.units().unsigned_abs()) * 60;
        let (first, next) = (
            u64::from(self.first_increment()),
            u64::from(self.increment()),
        );
        let walk = Walk::new(self, answered_at, region);
        // `paid`: the end of the increments paid for so far, always a boundary.
        let mut paid = 0u64;
        let mut start = 0u64;
        while paid < horizon {
            let (band, end) = walk.step(start);
            let end = end.min(horizon);
            let rate = u128::from(self.band_rate(band).units().unsigned_abs());
            if paid == 0 {
                // The first increment starts at 0, in the first band.
                let price = rate * u128::from(first);
                if price > budget {
                    return 0;
                }
                budget -= price;
                paid = first;
            }
            if paid < end {
                // Increments start at paid, paid + n, ... < end.
                let count = (end - paid).div_ceil(next);
                let price = rate * u128::from(next);
                // A free band (price 0) affords every increment in it.
                let affordable = budget
                    .checked_div(price)
                    .map_or(count, |n| u64::try_from(n).unwrap_or(u64::MAX).min(count));
                budget -= u128::from(affordable) * price;
                paid += affordable * next;
                if affordable < count {
                    break;
                }
            }
            start = end;
        }
        self.floor_boundary(paid.min(horizon)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tariff::{
        BandSpec, DaySet, MinuteRange, RegionCondition, TariffSpec, TimeCondition,
    };

    fn m(text: &str) -> Money {
        text.parse().unwrap()
    }

    /// Shanghai wall-clock time → instant.
    fn at(text: &str) -> Timestamp {
        text.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(crate::china_time_zone())
            .unwrap()
            .timestamp()
    }

    fn flat(rate: &str, first: Option<u32>, increment: u32) -> Tariff {
        Tariff::new(TariffSpec {
            first_increment: first,
            increment,
            ..TariffSpec::flat("flat", m(rate))
        })
        .unwrap()
    }

    fn call(answered: &str, seconds: u32) -> Call<'static> {
        Call {
            answered_at: at(answered),
            seconds,
            region: None,
        }
    }

    /// Base ¥0.20; peak ¥0.30 on workdays 08:00–18:00; ¥0.10 on holidays all day.
    /// 2026-10-01 (Thursday) is a holiday, 2026-09-27 (Sunday) a make-up working day.
    fn peak_tariff(first: Option<u32>, increment: u32) -> Tariff {
        Tariff::new(TariffSpec {
            first_increment: first,
            increment,
            bands: vec![
                BandSpec {
                    name: "holiday".into(),
                    rate_per_minute: m("0.10"),
                    time: Some(TimeCondition {
                        days: DaySet::HOLIDAYS,
                        windows: vec![MinuteRange::ALL_DAY],
                    }),
                    region: None,
                },
                BandSpec {
                    name: "peak".into(),
                    rate_per_minute: m("0.30"),
                    time: Some(TimeCondition {
                        days: DaySet::WORKWEEK,
                        windows: vec![MinuteRange::new(8 * 60, 18 * 60)],
                    }),
                    region: None,
                },
            ],
            holidays: vec![jiff::civil::date(2026, 10, 1)],
            workdays: vec![jiff::civil::date(2026, 9, 27)],
            ..TariffSpec::flat("peak", m("0.20"))
        })
        .unwrap()
    }

    /// `band seconds cost` per segment, the cost with every decimal.
    fn segments(tariff: &Tariff, rating: &Rating) -> Vec<String> {
        rating
            .segments
            .iter()
            .map(|s| {
                format!(
                    "{} {}s {}",
                    tariff.band_name(s.band),
                    s.seconds,
                    s.cost.exact()
                )
            })
            .collect()
    }

    /// `band seconds` per segment.
    fn bands(tariff: &Tariff, rating: &Rating) -> Vec<String> {
        rating
            .segments
            .iter()
            .map(|s| format!("{} {}s", tariff.band_name(s.band), s.seconds))
            .collect()
    }

    #[test]
    fn per_started_minute_as_the_seeds_sell_it() {
        let t = flat("0.30", None, 60);
        let cost = |s| t.rate(&call("2026-11-23T10:00", s)).cost.to_string();
        assert_eq!(cost(0), "0.00", "a call billed no second costs nothing");
        assert_eq!(cost(1), "0.30");
        assert_eq!(cost(60), "0.30");
        assert_eq!(cost(61), "0.60");
        assert_eq!(cost(3_600), "18.00");
        let r = t.rate(&call("2026-11-23T10:00", 61));
        assert_eq!(r.billed_seconds, 120);
        assert_eq!(r.exact_usage, 3_000 * 120);
    }

    #[test]
    fn first_increment_then_shorter_ones() {
        let t = flat("0.30", Some(60), 6);
        let r = t.rate(&call("2026-11-23T10:00", 61));
        assert_eq!(r.billed_seconds, 66);
        assert_eq!(r.cost, m("0.33"));
        assert_eq!(t.rate(&call("2026-11-23T10:00", 5)).billed_seconds, 60);
    }

    #[test]
    fn per_second_rounds_the_call_up_once_to_the_unit() {
        // ¥0.10/min is 16.67 units a second: rounded once per call, not per second.
        let t = flat("0.10", None, 1);
        let usage = |s| t.rate(&call("2026-11-23T10:00", s)).usage.units();
        assert_eq!(usage(1), 17);
        assert_eq!(
            usage(7),
            117,
            "7000/60 = 116.67, up to 117, not 7 × 17 = 119"
        );
        assert_eq!(usage(60), 1_000);
        assert_eq!(usage(61), 1_017);
    }

    #[test]
    fn connect_fee_and_maximum_cost() {
        let t = Tariff::new(TariffSpec {
            connect_fee: m("0.10"),
            max_cost: Some(m("5")),
            ..TariffSpec::flat("capped", m("0.30"))
        })
        .unwrap();
        let r = t.rate(&call("2026-11-23T10:00", 30));
        assert_eq!(
            (r.connect_fee, r.usage, r.cost),
            (m("0.10"), m("0.30"), m("0.40"))
        );
        assert!(!r.is_capped());
        assert_eq!(t.rate(&call("2026-11-23T10:00", 0)).cost, Money::ZERO);
        let long = t.rate(&call("2026-11-23T10:00", 3_600));
        assert_eq!((long.usage, long.cost), (m("18"), m("5")));
        assert!(long.is_capped());
    }

    #[test]
    fn a_call_crossing_into_peak_is_rated_per_band() {
        // Monday 07:59:30 for 90 s: with 60 s increments the first starts in the base band
        // (all of it at ¥0.20, although half of it is after 08:00), the second in peak.
        let t = peak_tariff(None, 60);
        let r = t.rate(&call("2026-11-23T07:59:30", 90));
        assert_eq!(segments(&t, &r), ["base 60s 0.20", "peak 60s 0.30"]);
        assert_eq!(r.cost, m("0.50"));
        assert_eq!((r.segments[0].offset, r.segments[1].offset), (0, 60));
        // Per second: 30 s at ¥0.20 and 60 s at ¥0.30.
        let t = peak_tariff(None, 1);
        let r = t.rate(&call("2026-11-23T07:59:30", 90));
        assert_eq!(segments(&t, &r), ["base 30s 0.10", "peak 60s 0.30"]);
        // Three bands: base, peak, base again after 18:00; one segment each.
        let r = t.rate(&call("2026-11-23T07:00", 12 * 3_600));
        assert_eq!(bands(&t, &r), ["base 3600s", "peak 36000s", "base 3600s"]);
        assert_eq!(r.cost, m("204"), "¥12 + ¥180 + ¥12");
    }

    #[test]
    fn an_increment_straddling_an_edge_is_charged_where_it_starts() {
        let t = peak_tariff(None, 60);
        // Starts at 17:59:59 in peak: the whole minute is peak, then one base minute.
        let r = t.rate(&call("2026-11-23T17:59:59", 61));
        assert_eq!(segments(&t, &r), ["peak 60s 0.30", "base 60s 0.20"]);
        // A 2-minute call from 07:59:01: increments at 07:59:01 (base) and 08:00:01 (peak).
        let r = t.rate(&call("2026-11-23T07:59:01", 120));
        assert_eq!(r.cost, m("0.50"));
        // The answer's fraction of a second is dropped for band purposes.
        let answered = at("2026-11-23T07:59:59.999");
        let r = t.rate(&Call {
            answered_at: answered,
            seconds: 60,
            region: None,
        });
        assert_eq!(t.band_name(r.segments[0].band), "base");
    }

    #[test]
    fn holidays_and_make_up_working_days() {
        let t = peak_tariff(None, 60);
        let band = |answered: &str| t.band_name(t.band_at(at(answered), None)).to_string();
        assert_eq!(
            band("2026-10-01T10:00"),
            "holiday",
            "National Day, a Thursday"
        );
        assert_eq!(
            band("2026-10-02T10:00"),
            "peak",
            "a Friday not listed as holiday"
        );
        assert_eq!(
            band("2026-09-27T10:00"),
            "peak",
            "make-up working day on a Sunday"
        );
        assert_eq!(band("2026-09-26T10:00"), "base", "an ordinary Saturday");
        assert_eq!(
            band("2026-11-23T18:00"),
            "base",
            "window ends are exclusive"
        );
        // From Wednesday 23:59 across midnight into the holiday (one segment for its
        // whole day), then Friday's base night, peak day and base evening.
        let r = t.rate(&call("2026-09-30T23:59", 2 * 86_400));
        assert_eq!(
            bands(&t, &r),
            [
                "base 60s",
                "holiday 86400s",
                "base 28800s",
                "peak 36000s",
                "base 21540s"
            ]
        );
    }

    #[test]
    fn caller_region_bands_and_their_order() {
        let region_band = |name: &str, rate: &str, provinces: &[&str], cities: &[&str]| BandSpec {
            name: name.into(),
            rate_per_minute: m(rate),
            time: None,
            region: Some(RegionCondition {
                provinces: provinces.iter().map(|s| s.to_string()).collect(),
                cities: cities.iter().map(|s| s.to_string()).collect(),
            }),
        };
        let t = Tariff::new(TariffSpec {
            bands: vec![
                region_band("shenzhen", "0.12", &[], &["深圳"]),
                region_band("guangdong", "0.15", &["广东"], &[]),
                // Never chosen for 广东 callers: an earlier band always applies.
                region_band("south", "0.18", &["广东", "广西"], &[]),
            ],
            ..TariffSpec::flat("regional", m("0.30"))
        })
        .unwrap();
        let cost = |province: &'static str, city: &'static str| {
            let region = (!province.is_empty()).then_some(CallerRegion { province, city });
            let r = t.rate(&Call {
                answered_at: at("2026-11-23T10:00"),
                seconds: 60,
                region,
            });
            (t.band_name(r.segments[0].band).to_string(), r.cost)
        };
        assert_eq!(cost("广东", "深圳"), ("shenzhen".into(), m("0.12")));
        assert_eq!(cost("广东", "广州"), ("guangdong".into(), m("0.15")));
        assert_eq!(cost("广西", "南宁"), ("south".into(), m("0.18")));
        assert_eq!(cost("北京", "北京"), ("base".into(), m("0.30")));
        assert_eq!(cost("", ""), ("base".into(), m("0.30")), "unknown region");
    }

    #[test]
    fn region_and_time_conditions_combine() {
        let t = Tariff::new(TariffSpec {
            bands: vec![BandSpec {
                name: "guangdong-peak".into(),
                rate_per_minute: m("0.25"),
                time: Some(TimeCondition {
                    days: DaySet::WORKWEEK,
                    windows: vec![MinuteRange::new(8 * 60, 18 * 60)],
                }),
                region: Some(RegionCondition {
                    provinces: vec!["广东".into()],
                    cities: vec![],
                }),
            }],
            ..TariffSpec::flat("mixed", m("0.20"))
        })
        .unwrap();
        let gd = Some(CallerRegion {
            province: "广东",
            city: "深圳",
        });
        let bj = Some(CallerRegion {
            province: "北京",
            city: "北京",
        });
        let name = |at_: &str, region| t.band_name(t.band_at(at(at_), region)).to_string();
        assert_eq!(name("2026-11-23T10:00", gd), "guangdong-peak");
        assert_eq!(name("2026-11-23T20:00", gd), "base");
        assert_eq!(name("2026-11-23T10:00", bj), "base");
    }

    #[test]
    fn billable_seconds_truncates() {
        let answered = at("2026-11-23T10:00:00.250");
        let seconds = |end: &str| billable_seconds(answered, at(end));
        assert_eq!(seconds("2026-11-23T10:00:59.999"), 59);
        assert_eq!(seconds("2026-11-23T10:01:00.250"), 60);
        assert_eq!(seconds("2026-11-23T10:00:00.900"), 0);
        assert_eq!(
            seconds("2026-11-23T09:00:00"),
            0,
            "an end before the answer"
        );
    }

    #[test]
    fn max_duration_per_minute() {
        let t = flat("0.30", None, 60);
        let max = |available: &str| t.max_duration_for(m(available), at("2026-11-23T10:00"), None);
        assert_eq!(max("1.00"), 180, "three minutes are ¥0.90, four ¥1.20");
        assert_eq!(max("1.20"), 240);
        assert_eq!(max("0.29"), 0);
        assert_eq!(max("0"), 0);
        assert_eq!(max("-5"), 0);
        let with_fee = Tariff::new(TariffSpec {
            connect_fee: m("0.10"),
            ..TariffSpec::flat("fee", m("0.30"))
        })
        .unwrap();
        let max =
            |available: &str| with_fee.max_duration_for(m(available), at("2026-11-23T10:00"), None);
        assert_eq!(max("1.00"), 180);
        assert_eq!(max("0.95"), 120);
        assert_eq!(max("0.39"), 0, "fee and first minute not covered");
        assert_eq!(max("0.40"), 60);
    }

    #[test]
    fn max_duration_per_second_matches_the_rounding() {
        let t = flat("0.10", None, 1);
        let answered = at("2026-11-23T10:00");
        // ¥0.01 = 100 units: 6 s cost 100 (exactly), 7 s cost 117.
        assert_eq!(t.max_duration_for(m("0.01"), answered, None), 6);
        assert_eq!(
            t.rate(&Call {
                answered_at: answered,
                seconds: 6,
                region: None
            })
            .cost,
            m("0.01")
        );
        assert_eq!(t.max_duration_for(m("0.0016"), answered, None), 0);
        assert_eq!(t.max_duration_for(m("0.0017"), answered, None), 1);
    }

    #[test]
    fn max_duration_across_bands() {
        // From 07:58 with ¥1.00: two base minutes (¥0.40), then two peak minutes (¥0.60).
        let t = peak_tariff(None, 60);
        assert_eq!(
            t.max_duration_for(m("1.00"), at("2026-11-23T07:58"), None),
            240
        );
        assert_eq!(
            t.max_duration_for(m("0.99"), at("2026-11-23T07:58"), None),
            180
        );
        // 60 then 6: the first minute in base at 07:59:30, then 6 s steps in peak.
        let t = peak_tariff(Some(60), 6);
        let max = t.max_duration_for(m("0.50"), at("2026-11-23T07:59:30"), None);
        // ¥0.20 + k × ¥0.03 <= ¥0.50 → k = 10.
        assert_eq!(max, 120);
    }

    #[test]
    fn max_duration_is_capped_at_the_horizon() {
        let free = flat("0", None, 60);
        let answered = at("2026-11-23T10:00");
        assert_eq!(
            free.max_duration_for(Money::ZERO, answered, None),
            MAX_CALL_SECONDS
        );
        let capped = Tariff::new(TariffSpec {
            max_cost: Some(m("5")),
            ..TariffSpec::flat("capped", m("0.30"))
        })
        .unwrap();
        assert_eq!(
            capped.max_duration_for(m("5"), answered, None),
            MAX_CALL_SECONDS
        );
        assert_eq!(capped.max_duration_for(m("4.99"), answered, None), 16 * 60);
        let rich = flat("0.30", None, 60);
        assert_eq!(
            rich.max_duration_for(m("1000000"), answered, None),
            MAX_CALL_SECONDS
        );
    }
}
