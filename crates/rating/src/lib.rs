#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// Money is integers only; the property tests also scan the sources for float types.
#![deny(clippy::float_arithmetic)]

mod money;
mod rate;
mod tariff;

pub use money::{ExactMoney, Money, ParseMoneyError};
pub use rate::{Call, Rating, Segment, billable_seconds, max_duration_for, rate};
pub use tariff::{
    BASE_BAND, BandId, BandProblem, BandSpec, CallerRegion, DaySet, MAX_BANDS,
    MAX_INCREMENT_SECONDS, MinuteRange, RegionCondition, Tariff, TariffError, TariffSpec,
    TimeCondition, china_time_zone,
};

/// The longest call rated: one week. A longer duration is rated as this, and
/// [`max_duration_for`] never answers more. The call layer's own maximum call duration
/// should be well below it.
pub const MAX_CALL_SECONDS: u32 = 7 * 86_400;
