//! The prepaid ledger: accounts, their append-only entries, and the reservations that
//! calls in progress hold against a balance.
//!
//! Every amount is a [`Money`] (integer 1/10,000 yuan). A balance is never stored on its
//! own authority: it always equals the sum of the account's ledger entries, and
//! `sihai account verify` checks exactly that.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
pub use sihai_rating::Money;

use crate::ParseEnumError;

/// What a ledger entry is for. Credits are positive amounts, debits negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Money the enterprise paid in (positive).
    Recharge,
    /// One answered call's cost (negative); its reference is the call's id.
    CallCharge,
    /// What a number's calls fell short of its monthly minimum spend (negative); its
    /// reference names the number and the month.
    MonthlyMinimum,
    /// A one-off or yearly fee: opening, extra bound phones, ringback recording,
    /// switchboard extensions (negative).
    Fee,
    /// One day's fee while suspended (negative); its reference names the day.
    SuspensionDayFee,
    /// An operator's correction, either sign.
    Adjustment,
}

impl EntryKind {
    pub const ALL: [EntryKind; 6] = [
        EntryKind::Recharge,
        EntryKind::CallCharge,
        EntryKind::MonthlyMinimum,
        EntryKind::Fee,
        EntryKind::SuspensionDayFee,
        EntryKind::Adjustment,
    ];

    /// The stable name stored and shown, e.g. `"call_charge"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Recharge => "recharge",
            EntryKind::CallCharge => "call_charge",
            EntryKind::MonthlyMinimum => "monthly_minimum",
            EntryKind::Fee => "fee",
            EntryKind::SuspensionDayFee => "suspension_day_fee",
            EntryKind::Adjustment => "adjustment",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntryKind {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "ledger entry kind",
                value: s.to_owned(),
            })
    }
}

/// An entry to post. Posting is idempotent on (`enterprise`, `kind`, `reference`): a
/// second post with the same key changes nothing and returns the first entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    pub enterprise: String,
    pub kind: EntryKind,
    /// Positive credits the account, negative debits it.
    pub amount: Money,
    /// What makes this entry unique: the call id, the payment reference, `4001234567/2026-11`.
    pub reference: String,
    /// When it happened (a call charge: the call's end).
    pub at: Timestamp,
    /// Who posted it: `system`, `cli`, later an API user.
    pub actor: String,
    /// Free text for the statement, e.g. the fee's name.
    pub note: Option<String>,
}

/// A posted ledger entry. Entries are never updated or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Increases with every post across the store.
    pub id: i64,
    pub enterprise: String,
    pub kind: EntryKind,
    pub amount: Money,
    pub reference: String,
    pub at: Timestamp,
    pub actor: String,
    pub note: Option<String>,
    /// The account's balance right after this entry.
    pub balance_after: Money,
}

/// Where an account stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Calls are admitted while the balance is above the minimum.
    Active,
    /// Below the suspension threshold: callers hear the suspended announcement, a daily
    /// fee is posted; a recharge above the threshold resumes at once.
    Suspended,
    /// Negative for too long: the numbers answer `404` until an operator restores them.
    Reclaimed,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 3] = [
        AccountStatus::Active,
        AccountStatus::Suspended,
        AccountStatus::Reclaimed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Reclaimed => "reclaimed",
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountStatus {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "account status",
                value: s.to_owned(),
            })
    }
}

/// One enterprise's prepaid account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub enterprise: String,
    /// The sum of the account's ledger entries.
    pub balance: Money,
    /// What the calls in progress hold (the sum of their open reservations).
    pub reserved: Money,
    pub status: AccountStatus,
    /// When the status last changed (the account's opening, at first).
    pub status_since: Timestamp,
    /// When the balance last went below zero, while it stays there.
    pub negative_since: Option<Timestamp>,
    /// Set when the low-balance warning was sent; cleared when the balance rises above
    /// the warning level again, so the warning goes once per crossing.
    pub low_balance_warned: bool,
    /// When the account was opened: its numbers' month-end minimum starts the month after.
    pub opened_at: Timestamp,
}

impl Account {
    /// What a new call may still reserve: the balance minus every open reservation.
    pub fn available(&self) -> Money {
        self.balance.saturating_sub(self.reserved)
    }
}

/// A call's request for (more of) its reservation.
///
/// The first request for a call is its admission: granted only if the account is active
/// and its available balance is at least `floor` (the minimum balance to receive calls).
/// Later requests (renewals) take whatever is left up to `want`, down to zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRequest {
    pub call_id: String,
    pub enterprise: String,
    /// How much more this call wants to hold.
    pub want: Money,
    /// Admission: the available balance the account needs to admit a call; `None` for a
    /// renewal.
    pub floor: Option<Money>,
    /// What a restart needs to settle the call if the daemon dies during it.
    pub recovery: RecoveryInfo,
}

/// Enough about a call to settle it after a crash: who called what, under which tariff,
/// and when the call was answered (sent with the first request after the answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryInfo {
    pub number: String,
    pub caller: String,
    pub caller_province: Option<String>,
    pub caller_city: Option<String>,
    pub tariff: String,
    pub setup_at: Timestamp,
    pub answered_at: Option<Timestamp>,
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The available balance is below the minimum to receive calls (or, for a renewal,
    /// nothing is left).
    InsufficientBalance,
    /// The account is suspended.
    Suspended,
    /// The account's numbers are reclaimed.
    Reclaimed,
    /// The enterprise has no account in the store.
    NoAccount,
    /// The store could not be asked in time (its database is unreachable): nothing is
    /// known about the account, so the call is turned away to be retried (`503`), not
    /// told it is out of credit. On a renewal, the call keeps what it holds and asks
    /// again.
    Unavailable,
}

/// The store's answer to a [`ReservationRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationOutcome {
    /// `granted` more is held for the call (possibly less than wanted, possibly zero on a
    /// renewal); `held` is everything the call holds now.
    Granted { granted: Money, held: Money },
    /// Admission refused; nothing is held.
    Refused(Refusal),
}

/// A reservation still open in the store: a call in progress, or one that was in
/// progress when the daemon stopped without settling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenReservation {
    pub call_id: String,
    pub enterprise: String,
    pub held: Money,
    pub recovery: RecoveryInfo,
}
