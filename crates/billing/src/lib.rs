//! Prepaid billing, pure and sans-IO: no clock, socket or store of its own. The daemon
//! feeds these state machines instants and store replies, and carries out what they ask.
//!
//! - [`policy`]: the operator's price list for an account (`[billing]` with
//!   per-enterprise overrides), as data.
//! - [`session`]: one call's reservation, renewals, cut-off and settlement.
#![forbid(unsafe_code)]
#![deny(clippy::float_arithmetic)]

pub mod policy;
pub mod session;

pub use policy::AccountPolicy;
pub use session::{CallBilling, CallParams, Due, Phase, Settlement, Verdict};
