//! `[billing]`: the node's prepaid billing settings, and the account policy (price list,
//! thresholds) every billed enterprise runs by unless its `[enterprise.billing]`
//! overrides a key.
//!
//! Money is written as a string of yuan (`"0.30"`, `"1.65"`, exact to 1/10,000 yuan) or
//! as a TOML integer meaning whole yuan (`600`). A TOML float is refused: it is binary,
//! so `0.3` is not 0.30, and no float comes near money in sihai.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use serde::de::Visitor;
use sihai_billing::AccountPolicy;
use sihai_rating::Money;
use toml::Spanned;

use crate::check;
use crate::diagnostics::Diagnostics;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "billing";

/// Talk time one reservation covers when `reservation_minutes` is not written.
pub const DEFAULT_RESERVATION_MINUTES: u32 = 5;
/// Longest chunk: an hour of talk time held at once is plenty, and a larger chunk locks
/// up more of a small balance than a call needs.
const MAX_RESERVATION_MINUTES: u32 = 60;
/// How often the account lifecycle job runs when `lifecycle_interval_s` is not written.
pub const DEFAULT_LIFECYCLE_INTERVAL_S: u64 = 60;
/// Once an hour at the least: the daily fee and suspensions are per day, so an hour late
/// is the most that is tolerable.
const MAX_LIFECYCLE_INTERVAL_S: u64 = 3_600;
/// Ten years of arrears before reclaiming a number is already more than any operator
/// waits.
const MAX_RECLAIM_AFTER_DAYS: u32 = 3_650;
/// Far above any enterprise's bound phones.
const MAX_INCLUDED_PHONES: u32 = 100_000;

/// The `[billing]` section, validated. Present (all defaults) when the file has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingConfig {
    /// Talk time each reservation holds money for (a call reserves again, chunk by
    /// chunk, while it lasts); 1 to 60 minutes, default
    /// [`DEFAULT_RESERVATION_MINUTES`].
    pub reservation_minutes: u32,
    /// How often the account lifecycle job (suspension, daily fee, reclaim, month-end
    /// minimum, low-balance warning) runs; 1 s to 1 h, default 60 s.
    pub lifecycle_interval: Duration,
    /// The policy of every billed enterprise, before its `[enterprise.billing]`
    /// overrides. Keys not written are [`AccountPolicy::default`]'s.
    pub policy: AccountPolicy,
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            reservation_minutes: DEFAULT_RESERVATION_MINUTES,
            lifecycle_interval: Duration::from_secs(DEFAULT_LIFECYCLE_INTERVAL_S),
            policy: AccountPolicy::default(),
        }
    }
}

/// An amount of money as written: a string of yuan, or an integer of whole yuan.
#[derive(Debug)]
pub(crate) enum RawMoney {
    Text(String),
    Yuan(i64),
}

impl<'de> Deserialize<'de> for RawMoney {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;

        impl Visitor<'_> for MoneyVisitor {
            type Value = RawMoney;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an amount of yuan as a string such as \"0.30\", or whole yuan such as 600",
                )
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawMoney, E> {
                Ok(RawMoney::Text(text.to_owned()))
            }

            fn visit_i64<E: serde::de::Error>(self, yuan: i64) -> Result<RawMoney, E> {
                Ok(RawMoney::Yuan(yuan))
            }

            fn visit_u64<E: serde::de::Error>(self, yuan: u64) -> Result<RawMoney, E> {
                i64::try_from(yuan)
                    .map(RawMoney::Yuan)
                    .map_err(|_| E::custom(format!("{yuan} yuan is out of range")))
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<RawMoney, E> {
                Err(E::custom(format!(
                    "{value} is a TOML float, which cannot hold most amounts exactly; \
                     write money as a string, e.g. \"{value}\""
                )))
            }
        }

        deserializer.deserialize_any(MoneyVisitor)
    }
}

/// The amount `raw` writes; reported (and `None`) when it is not one.
pub(crate) fn money(
    raw: &Spanned<RawMoney>,
    field: impl FnOnce() -> String,
    diagnostics: &mut Diagnostics,
) -> Option<Money> {
    let parsed = match raw.get_ref() {
        RawMoney::Text(text) => text
            .parse::<Money>()
            .map_err(|error| format!("invalid amount {text:?}: {error}")),
        RawMoney::Yuan(yuan) => {
            Money::from_yuan(*yuan).ok_or_else(|| format!("{yuan} yuan is out of range"))
        }
    };
    match parsed {
        Ok(amount) => Some(amount),
        Err(message) => {
            diagnostics.report(Some(raw.span()), field(), message);
            None
        }
    }
}

/// `[billing]` or `[enterprise.billing]` as written: the same keys, so an override reads
/// like the defaults it overrides. The node-wide keys are refused in an enterprise's
/// table with a message saying where they belong.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a billing table")]
pub(crate) struct RawBilling {
    reservation_minutes: Option<Spanned<u64>>,
    lifecycle_interval_s: Option<Spanned<u64>>,
    min_balance: Option<Spanned<RawMoney>>,
    suspend_below: Option<Spanned<RawMoney>>,
    suspended_daily_fee: Option<Spanned<RawMoney>>,
    reclaim_after_days: Option<Spanned<u64>>,
    monthly_minimum: Option<Spanned<RawMoney>>,
    min_recharge: Option<Spanned<RawMoney>>,
    low_balance_warning: Option<Spanned<RawMoney>>,
    opening_fee: Option<Spanned<RawMoney>>,
    included_phones: Option<Spanned<u64>>,
    extra_phone_fee: Option<Spanned<RawMoney>>,
    ringback_recording_fee: Option<Spanned<RawMoney>>,
    extension_fee: Option<Spanned<RawMoney>>,
}

/// The validation pass for `[billing]`; `raw` is `None` when the file has none.
pub(crate) fn validate(
    raw: Option<Spanned<RawBilling>>,
    diagnostics: &mut Diagnostics,
) -> BillingConfig {
    let Some(raw) = raw.map(Spanned::into_inner) else {
        return BillingConfig::default();
    };
    let reservation_minutes = check::bounded_u32(
        raw.reservation_minutes.as_ref(),
        DEFAULT_RESERVATION_MINUTES,
        1..=MAX_RESERVATION_MINUTES,
        || format!("{SECTION}.reservation_minutes"),
        diagnostics,
    );
    let lifecycle_interval = check::seconds(
        raw.lifecycle_interval_s.as_ref(),
        DEFAULT_LIFECYCLE_INTERVAL_S,
        1..=MAX_LIFECYCLE_INTERVAL_S,
        || format!("{SECTION}.lifecycle_interval_s"),
        diagnostics,
    );
    let policy = policy(&AccountPolicy::default(), &raw, SECTION, diagnostics);
    BillingConfig {
        reservation_minutes,
        lifecycle_interval,
        policy,
    }
}

/// An enterprise's policy: `base` (the `[billing]` policy) with the keys `raw` writes
/// replaced. `field` is the table's path, `enterprise[0].billing`.
pub(crate) fn override_policy(
    base: &AccountPolicy,
    raw: &RawBilling,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> AccountPolicy {
    for (key, written) in [
        ("reservation_minutes", &raw.reservation_minutes),
        ("lifecycle_interval_s", &raw.lifecycle_interval_s),
    ] {
        if let Some(written) = written {
            diagnostics.report(
                Some(written.span()),
                format!("{field}.{key}"),
                format!("{key} is node-wide, not per enterprise; set it in [billing]"),
            );
        }
    }
    policy(base, raw, field, diagnostics)
}

/// `base` with the policy keys `raw` writes, each checked; then the rules between keys.
fn policy(
    base: &AccountPolicy,
    raw: &RawBilling,
    table: &str,
    diagnostics: &mut Diagnostics,
) -> AccountPolicy {
    let mut policy = base.clone();
    // A prepaid account never runs on credit, so no threshold is below zero, and a
    // negative fee would be a credit posted by the lifecycle job: write a recharge.
    let mut amount = |raw: &Option<Spanned<RawMoney>>, key: &str, target: &mut Money| {
        let Some(raw) = raw else { return };
        let Some(value) = money(raw, || format!("{table}.{key}"), diagnostics) else {
            return;
        };
        if value.is_negative() {
            diagnostics.report(
                Some(raw.span()),
                format!("{table}.{key}"),
                format!(
                    "must not be negative (it is {value}): accounts are prepaid, so \
                     thresholds and fees are 0 or more"
                ),
            );
            return;
        }
        *target = value;
    };
    amount(&raw.min_balance, "min_balance", &mut policy.min_balance);
    amount(
        &raw.suspend_below,
        "suspend_below",
        &mut policy.suspend_below,
    );
    amount(
        &raw.suspended_daily_fee,
        "suspended_daily_fee",
        &mut policy.suspended_daily_fee,
    );
    amount(
        &raw.monthly_minimum,
        "monthly_minimum",
        &mut policy.monthly_minimum,
    );
    amount(&raw.min_recharge, "min_recharge", &mut policy.min_recharge);
    amount(
        &raw.low_balance_warning,
        "low_balance_warning",
        &mut policy.low_balance_warning,
    );
    amount(&raw.opening_fee, "opening_fee", &mut policy.opening_fee);
    amount(
        &raw.extra_phone_fee,
        "extra_phone_fee",
        &mut policy.extra_phone_fee,
    );
    amount(
        &raw.ringback_recording_fee,
        "ringback_recording_fee",
        &mut policy.ringback_recording_fee,
    );
    amount(
        &raw.extension_fee,
        "extension_fee",
        &mut policy.extension_fee,
    );
    policy.reclaim_after_days = check::bounded_u32(
        raw.reclaim_after_days.as_ref(),
        base.reclaim_after_days,
        1..=MAX_RECLAIM_AFTER_DAYS,
        || format!("{table}.reclaim_after_days"),
        diagnostics,
    );
    policy.included_phones = check::bounded_u32(
        raw.included_phones.as_ref(),
        base.included_phones,
        0..=MAX_INCLUDED_PHONES,
        || format!("{table}.included_phones"),
        diagnostics,
    );

    // Calls stop below min_balance; the account is suspended below suspend_below. A
    // suspension threshold above the admission one would suspend accounts that may
    // still call. Checked on the resolved policy, so an override that lowers
    // min_balance under the inherited suspend_below is caught too, but only where one
    // of the two is written (an inherited conflict is reported once, at [billing]).
    if policy.suspend_below > policy.min_balance {
        let site = match (&raw.suspend_below, &raw.min_balance) {
            (Some(written), _) => Some((written.span(), "suspend_below")),
            (None, Some(written)) => Some((written.span(), "min_balance")),
            (None, None) => None,
        };
        if let Some((span, key)) = site {
            report_order(span, table, key, &policy, diagnostics);
        }
    }
    policy
}

fn report_order(
    span: Range<usize>,
    table: &str,
    key: &str,
    policy: &AccountPolicy,
    diagnostics: &mut Diagnostics,
) {
    diagnostics.report(
        Some(span),
        format!("{table}.{key}"),
        format!(
            "suspend_below ({}) must not exceed min_balance ({}): calls are refused below \
             min_balance, and only then, lower still, is the account suspended",
            policy.suspend_below, policy.min_balance
        ),
    );
}
