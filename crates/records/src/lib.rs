//! The records that sihai's call core produces and that every store backend keeps.
//!
//! They live here, apart from any database driver, so that the sans-IO call core, the
//! rating crate and each store backend (SQLite today, PostgreSQL next) depend on one
//! pure crate: the stores depend on the records, never the records (or the call core)
//! on a store.

mod cdr;
mod json;
mod ledger;
mod tenant;

pub use cdr::{
    Cdr, CdrFilter, HangupSide, MissedCallAlert, NewAlert, Outcome, ParseEnumError, PhoneAttempt,
};
pub use json::json_string;
pub use ledger::{
    Account, AccountStatus, EntryKind, LedgerEntry, Money, NewEntry, OpenReservation, RecoveryInfo,
    Refusal, ReservationOutcome, ReservationRequest,
};
pub use tenant::TenantEntry;
