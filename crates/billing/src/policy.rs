//! The operator's price list for one account: thresholds, fees and minimums. Values are
//! configuration (`[billing]`, overridden per `[[enterprise]]`), never code; the defaults
//! are the figures a 400 provider publishes (see docs/billing.md).

use sihai_rating::Money;

/// The rules one enterprise's account runs by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPolicy {
    /// A call is admitted only while the available balance is at least this (¥100).
    pub min_balance: Money,
    /// Below this balance the account is suspended (¥15).
    pub suspend_below: Money,
    /// Posted for each day (Asia/Shanghai) the account is suspended (¥1.65).
    pub suspended_daily_fee: Money,
    /// Days the balance stays below zero before the numbers are reclaimed (30).
    pub reclaim_after_days: u32,
    /// Each number's minimum spend per calendar month; a shortfall is posted after the
    /// month ends (¥50).
    pub monthly_minimum: Money,
    /// The smallest recharge accepted (¥600).
    pub min_recharge: Money,
    /// The enterprise is warned once when its balance falls below this (¥200).
    pub low_balance_warning: Money,
    /// Charged when an account is opened (¥0 by default).
    pub opening_fee: Money,
    /// Bound phones included in the service; each one beyond costs `extra_phone_fee`.
    pub included_phones: u32,
    /// Per bound phone beyond `included_phones`, per year (¥240).
    pub extra_phone_fee: Money,
    /// Recording a custom ringback (¥150, once).
    pub ringback_recording_fee: Money,
    /// Per switchboard extension, per year (¥150).
    pub extension_fee: Money,
}

const fn yuan(y: i64) -> Money {
    Money::from_units(y * Money::UNITS_PER_YUAN)
}

impl Default for AccountPolicy {
    /// The figures from the seeds' price list.
    fn default() -> Self {
        AccountPolicy {
            min_balance: yuan(100),
            suspend_below: yuan(15),
            suspended_daily_fee: Money::from_units(16_500),
            reclaim_after_days: 30,
            monthly_minimum: yuan(50),
            min_recharge: yuan(600),
            low_balance_warning: yuan(200),
            opening_fee: Money::ZERO,
            included_phones: 20,
            extra_phone_fee: yuan(240),
            ringback_recording_fee: yuan(150),
            extension_fee: yuan(150),
        }
    }
}
