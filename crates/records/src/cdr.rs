//! Call detail records, the phones a call tried, and the missed-call alert outbox.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How a call ended, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A bound phone answered.
    Answered,
    /// Phones rang and nobody answered before the timeouts.
    NoAnswer,
    /// Every phone tried was busy (or the number's concurrency limit was reached).
    Busy,
    /// Refused by screening other than the blacklist (whitelist mode, region block,
    /// anonymous caller, rate limit, unknown or suspended number).
    Rejected,
    /// The caller is on the number's blacklist.
    Blacklisted,
    /// The call arrived outside business hours.
    AfterHours,
    /// The enterprise's prepaid balance could not admit the call or ran out during it.
    OutOfCredit,
    /// A technical failure (no phone reachable, internal error).
    Failed,
    /// The caller hung up before anyone answered.
    Cancelled,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 9] = [
        Outcome::Answered,
        Outcome::NoAnswer,
        Outcome::Busy,
        Outcome::Rejected,
        Outcome::Blacklisted,
        Outcome::AfterHours,
        Outcome::OutOfCredit,
        Outcome::Failed,
        Outcome::Cancelled,
    ];

    /// The stable name stored in the database and shown in reports, e.g. `"no_answer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::NoAnswer => "no_answer",
            Outcome::Busy => "busy",
            Outcome::Rejected => "rejected",
            Outcome::Blacklisted => "blacklisted",
            Outcome::AfterHours => "after_hours",
            Outcome::OutOfCredit => "out_of_credit",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "outcome",
                value: s.to_owned(),
            })
    }
}

/// Which side ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupSide {
    /// The caller (the carrier trunk leg).
    Caller,
    /// The bound phone's leg.
    Phone,
    /// sihai itself: maximum duration, balance exhausted, shutdown.
    System,
}

impl HangupSide {
    /// Every side, in declaration order.
    pub const ALL: [HangupSide; 3] = [HangupSide::Caller, HangupSide::Phone, HangupSide::System];

    /// The stable name stored in the database and shown in reports, e.g. `"caller"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupSide::Caller => "caller",
            HangupSide::Phone => "phone",
            HangupSide::System => "system",
        }
    }
}

impl fmt::Display for HangupSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HangupSide {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HangupSide::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "hangup side",
                value: s.to_owned(),
            })
    }
}

/// A name that is not one of an enum's stable names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct ParseEnumError {
    /// What was being parsed, e.g. `"outcome"`.
    pub kind: &'static str,
    /// The text that did not match.
    pub value: String,
}

/// One bound phone tried while hunting, in the order tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneAttempt {
    /// The phone's number as bound.
    pub phone: String,
    /// What happened, e.g. `"answered"`, `"busy"`, `"no_answer"`, `"486"`, `"timeout"`.
    pub result: String,
}

/// A call detail record: one per call, answered or not.
///
/// Timestamps are kept to the microsecond (as PostgreSQL's `timestamptz` does);
/// sub-microsecond digits are dropped when stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdr {
    /// sihai's id for the call; unique across the store.
    pub call_id: String,
    /// The 400 number dialled, canonical (`4001234567`).
    pub number: String,
    /// The enterprise that owns the number.
    pub enterprise: String,
    /// The normalised caller number, or `"anonymous"`.
    pub caller: String,
    /// The caller's province, when the region lookup found one.
    pub caller_province: Option<String>,
    /// The caller's city, when the region lookup found one.
    pub caller_city: Option<String>,
    /// The bound phone that answered.
    pub answered_by: Option<String>,
    /// The phones tried, in order.
    pub attempts: Vec<PhoneAttempt>,
    /// When the INVITE arrived.
    pub setup_at: Timestamp,
    /// When the caller started hearing ringback.
    pub ring_at: Option<Timestamp>,
    /// When a phone answered.
    pub answer_at: Option<Timestamp>,
    /// When the call ended.
    pub end_at: Timestamp,
    /// Seconds from answer to end (0 when unanswered).
    pub talk_seconds: u32,
    /// How the call ended.
    pub outcome: Outcome,
    /// Which side hung up, when known.
    pub hangup_side: Option<HangupSide>,
    /// Why, e.g. `"BYE"`, `"487"`, `"max_duration"`.
    pub hangup_cause: Option<String>,
    /// The call's recording (a stereo WAV: caller left, phone right), when recorded.
    pub recording: Option<String>,
    /// The keys pressed through the plan's voice menu, level by level (`1>3`; an
    /// extension shows as its digits), when the call went through one; empty when the
    /// caller pressed nothing.
    pub menu_path: Option<String>,
    /// The `[[prompt]]` played to the caller instead of a bare error status (after
    /// hours, busy, no answer, suspended, refused), when one was.
    pub announcement: Option<String>,
    /// The seconds charged: the talk time from the caller's answer (a voice menu's time
    /// included) rounded up to the tariff's increments; 0 when nothing was billed.
    pub billed_seconds: u32,
    /// What the call cost the enterprise, posted to its ledger with this CDR; `None` when
    /// the enterprise is not billed by sihai (it names no tariff).
    pub cost: Option<crate::Money>,
    /// The tariff the call was rated with, when it was.
    pub tariff: Option<String>,
    /// The caller's id in the enterprise's CRM, when its lookup (来电弹屏) gave one.
    #[serde(default)]
    pub customer_id: Option<String>,
}

/// A missed-call notice to queue with its CDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAlert {
    /// The enterprise to tell.
    pub enterprise: String,
    /// Where to deliver it (webhook URL, or an `smpp:` target).
    pub url: String,
    /// The body to deliver, JSON.
    pub payload: String,
}

/// A missed-call notice waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissedCallAlert {
    /// The outbox row id, for `CdrStore::alert_delivered`
    /// and `CdrStore::alert_failed`.
    pub id: i64,
    /// The call the alert is about.
    pub call_id: String,
    /// The enterprise to tell.
    pub enterprise: String,
    /// Where to deliver it.
    pub url: String,
    /// The body to deliver, JSON.
    pub payload: String,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// When the alert is (next) due; the call's `end_at` for a new alert.
    pub next_attempt_at: Timestamp,
}

/// Which CDRs `CdrStore::query` (in `sihai-store`) returns. Every set field must
/// match; `Default` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrFilter {
    /// The one call with this id (unique): how the admin API finds a call's recording.
    pub call_id: Option<String>,
    /// The 400 number, canonical.
    pub number: Option<String>,
    /// The enterprise (an enterprise sees only its own calls).
    pub enterprise: Option<String>,
    /// The caller, exactly as stored.
    pub caller: Option<String>,
    /// Calls set up at or after this instant.
    pub since: Option<Timestamp>,
    /// Calls set up strictly before this instant.
    pub until: Option<Timestamp>,
    /// Calls with this outcome.
    pub outcome: Option<Outcome>,
    /// Calls with any of these outcomes; empty matches every outcome (with `outcome`
    /// set too, a call must match both).
    pub outcomes: Vec<Outcome>,
    /// Keyset pagination: only the calls after this one in the newest-first order, the
    /// call given as its `(setup_at, call_id)` (the last CDR of the previous page).
    /// Calls set up at the same instant are ordered as the store recorded them, so a
    /// walk page by page returns every call once, however many share an instant.
    pub before: Option<(Timestamp, String)>,
    /// At most this many CDRs (the newest); 0 means no limit.
    pub limit: usize,
}
