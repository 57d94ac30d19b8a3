//! Prepaid billing, pure and sans-IO: no clock, socket or store of its own. The daemon
//! feeds these state machines instants and store replies, and carries out what they ask.
//!
//! - [`policy`]: the operator's price list for an account (`[billing]` with
//!   per-enterprise overrides), as data.
//! - [`session`]: one call's reservation, renewals, cut-off and settlement.
//! - [`fees`]: the price list's other fees (opening, extra bound phones, ringback
//!   recordings, switchboard extensions) due for what an enterprise has configured, as
//!   ready ledger entries with idempotent references.
//! - [`lifecycle`]: an account's lifecycle as a pure function of (account, policy, now):
//!   suspension and resumption, the daily fee while suspended (caught up after an
//!   outage), reclaim, the low-balance warning, and each number's month-end minimum, all
//!   as ready ledger entries with idempotent references.
#![forbid(unsafe_code)]
#![deny(clippy::float_arithmetic)]

pub mod fees;
pub mod lifecycle;
pub mod policy;
pub mod session;

pub use fees::{
    Billables, extension_reference, extra_phone_reference, fees_due, ringback_reference,
};
pub use lifecycle::{
    LifecycleAction, Month, ParseMonthError, Review, day_fee_day, day_fee_reference, days_until,
    monthly_minimum, monthly_minimum_reference, months_due, reclaim_due_at, review,
};
pub use policy::AccountPolicy;
pub use session::{CallBilling, CallParams, Due, Phase, Settlement, Verdict};
