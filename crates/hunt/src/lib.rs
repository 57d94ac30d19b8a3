//! The hunt sequencer (product step 7): which of a group's bound phones ring, when, and
//! when to give up.
//!
//! A [`Hunt`] decides and nothing else. The B2BUA call state machine owns the SIP legs:
//! it starts a leg when the hunt says [`HuntAction::Ring`], CANCELs it on
//! [`HuntAction::Cancel`], and reports how each leg's attempt ended with
//! [`Hunt::on_outcome`]. Like the transaction layer, the hunt has no threads, no
//! sockets and no clock of its own: every input carries the caller's `now`, the caller
//! sleeps until [`Hunt::poll_timeout`] and then calls [`Hunt::handle_timeout`], so a
//! test of "phone 1 does not answer in 15 s, phone 2 answers" runs in microseconds.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sihai_hunt::*;
//!
//! let phone = Phone { ring_timeout: Duration::from_secs(15), capacity: 1, weight: 1, enabled: true };
//! let mut state = GroupState::new(2); // one per group, shared by every call to it
//! let t0 = Instant::now();
//! let mut hunt = Hunt::new(Strategy::Sequential, vec![phone; 2], Duration::from_secs(60), t0, 7);
//! hunt.start(&mut state, t0);
//! assert_eq!(hunt.poll_action(), Some(HuntAction::Ring { phone: 0 }));
//! assert_eq!(hunt.poll_timeout(), Some(t0 + Duration::from_secs(15)));
//!
//! // Phone 0 rings out: the hunt cancels it and moves on to phone 1, which answers.
//! let t1 = t0 + Duration::from_secs(15);
//! hunt.handle_timeout(&mut state, t1);
//! assert_eq!(hunt.poll_action(), Some(HuntAction::Cancel { phone: 0 }));
//! assert_eq!(hunt.poll_action(), Some(HuntAction::Ring { phone: 1 }));
//! hunt.on_outcome(&mut state, 1, PhoneOutcome::Answered, t1 + Duration::from_secs(3));
//! assert_eq!(hunt.result(), Some(HuntResult::Answered { phone: 1 }));
//! assert_eq!(hunt.attempts(), &[(0, PhoneOutcome::NoAnswer), (1, PhoneOutcome::Answered)]);
//!
//! // The answered call holds phone 1's channel until it ends.
//! assert_eq!(state.active(1), 1);
//! Hunt::release(&mut state, 1, t1 + Duration::from_secs(90));
//! assert_eq!(state.active(1), 0);
//! ```
//!
//! # Strategies
//!
//! Every strategy first drops disabled phones; the rest are rung in an order fixed when
//! the hunt starts ([`Strategy`] describes each). All but [`Strategy::Simultaneous`]
//! ring one phone at a time and fail over to the next on [`PhoneOutcome::Busy`],
//! [`PhoneOutcome::NoAnswer`] (including the phone's own ring timeout),
//! [`PhoneOutcome::Failed`] and [`PhoneOutcome::Declined`] (a decline ends the hunt
//! for that phone only). Each phone is tried at most once per call.
//!
//! # Channels and the shared [`GroupState`]
//!
//! Calls to one group share a [`GroupState`]: the round-robin position, and per phone
//! its active channel count and when its last call ended. A phone whose count has
//! reached its [`Phone::capacity`] is skipped, checked at the moment it would ring (so
//! a concurrent call that took the last channel a second ago is seen). The hunt keeps
//! the counts itself, so they cannot drift:
//!
//! - emitting [`HuntAction::Ring`] takes a channel on that phone;
//! - any outcome other than [`PhoneOutcome::Answered`], and every
//!   [`HuntAction::Cancel`] the hunt issues, gives it back;
//! - an answered phone keeps its channel until the call ends and the daemon calls
//!   [`Hunt::release`], which also stamps the phone's last-call-ended instant for
//!   [`Strategy::LongestIdle`].
//!
//! The hunt touches the state only inside the calls that receive it (`&mut GroupState`,
//! no atomics, no locks). The daemon keeps one state per group for as long as it runs,
//! as a [`KeyedGroupState`] that knows each phone's identity: a reload that changes the
//! group's phone list (adds, removes or reorders phones) carries every phone's
//! channels in use and idle time over to its place in the new list, and a call hunted
//! on the old list reaches the state through [`KeyedGroupState::with_list`], which
//! translates its phone indexes, so its release frees the right phone and capacity
//! holds across the reload.
//!
//! # Late and stray outcomes
//!
//! An outcome for a phone that is not ringing in this hunt (never rung, already
//! finished, or already cancelled by the hunt) is ignored, so the B2BUA may report every
//! final response it sees, including the `487` that follows a CANCEL. In particular a
//! `200 OK` that races a Cancel changes nothing here: the hunt has already given that
//! channel back, and the B2BUA must ACK and BYE that leg and must not call
//! [`Hunt::release`] for it.
//!
//! # The failure sent to the caller
//!
//! When nobody answers, [`HuntResult::Failed`] carries the best failure seen, in this
//! order of precedence (the first that applies wins):
//!
//! | rank | seen during the hunt                                                   | status |
//! |------|------------------------------------------------------------------------|--------|
//! | —    | the caller hung up ([`Hunt::on_cancelled_by_caller`])                   | `487`  |
//! | 1    | a phone was [`Busy`](PhoneOutcome::Busy), or skipped at its capacity    | `486`  |
//! | 2    | a phone did not answer: its ring timeout, `408`/`480`, or the overall timeout cut it (or the hunt) short | `480` |
//! | 3    | a phone [`Declined`](PhoneOutcome::Declined) (a 6xx other than `600`)   | `603`  |
//! | 4    | a phone [`Failed`](PhoneOutcome::Failed): its status, preferring 4xx over 5xx, then the first seen; a status outside `400..=699` (such as a transport error reported as `0`) becomes `502` | e.g. `503` |
//! | 5    | nothing at all: no phone enabled, or an empty group                     | `480`  |
//!
//! So "busy everywhere" (every phone skipped at capacity) is `486`, and an overall
//! timeout with nothing better is `480`. A decline outranks a failure because a 5xx
//! says least about the enterprise, and a 5xx sent upstream invites the carrier to
//! retry the call elsewhere, ringing the phone that just declined; it ranks below busy
//! and no-answer because it speaks for one phone, not the whole group.

mod failure;
mod hunt;
mod order;
mod state;

use std::time::Duration;

pub use hunt::Hunt;
pub use state::{GroupState, KeyedGroupState};

/// A phone's position in its group's phone list (the list order is the priority order).
pub type PhoneIndex = usize;

/// How a group's phones are hunted. Disabled phones are never rung under any strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// One at a time in list order: the list order is the priority.
    Sequential,
    /// One at a time in list order, starting after the phone that was rung first on the
    /// previous call to the group (remembered in [`GroupState`], advanced once per call),
    /// wrapping around: N calls spread evenly over the phones.
    RoundRobin,
    /// One at a time in a uniformly random order (a random permutation).
    Random,
    /// One at a time in weighted random order without replacement: the first phone is
    /// drawn with probability proportional to its [`Phone::weight`], the next from the
    /// rest, and so on. Phones of weight 0 come last, in list order.
    Weighted,
    /// All phones at once; the first to answer wins and the others are cancelled.
    Simultaneous,
    /// One at a time, the phone whose last call ended longest ago first; phones that
    /// never had a call (since the group state was created) come before all others.
    /// Ties keep list order.
    LongestIdle,
}

/// One bound phone of a group, as the hunt sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phone {
    /// How long it may ring before the hunt cancels it and moves on.
    pub ring_timeout: Duration,
    /// How many calls it carries at once (1 for a handset, e.g. 30 for a trunk). A
    /// phone with capacity 0 is always skipped as busy.
    pub capacity: u32,
    /// Its share under [`Strategy::Weighted`]; ignored by the other strategies.
    pub weight: u32,
    /// A disabled phone is never rung.
    pub enabled: bool,
}

/// How one phone's attempt ended, as the B2BUA reports it to [`Hunt::on_outcome`].
/// [`PhoneOutcome::from_final_status`] maps a final response status to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneOutcome {
    /// A 2xx: this phone takes the call.
    Answered,
    /// `486 Busy Here` or `600 Busy Everywhere`.
    Busy,
    /// The phone's ring timeout, `408 Request Timeout` or `480 Temporarily Unavailable`.
    /// The hunt also records this for the phones it cancels.
    NoAnswer,
    /// A 6xx other than `600` (e.g. `603 Decline`): this phone is done, the hunt moves on.
    Declined,
    /// Any other failure, with its status: 5xx, other 4xx, or a transport error (report
    /// those as `503`, as RFC 3261 §8.1.3.1 treats them).
    Failed(u16),
}

impl PhoneOutcome {
    /// The outcome a final response with `status` means; `None` for a provisional
    /// (1xx) response, which ends nothing.
    pub fn from_final_status(status: u16) -> Option<PhoneOutcome> {
        Some(match status {
            100..=199 => return None,
            200..=299 => PhoneOutcome::Answered,
            486 | 600 => PhoneOutcome::Busy,
            408 | 480 => PhoneOutcome::NoAnswer,
            601..=699 => PhoneOutcome::Declined,
            other => PhoneOutcome::Failed(other),
        })
    }
}

/// What the hunt wants the B2BUA to do, drained with [`Hunt::poll_action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HuntAction {
    /// Start a leg (send an INVITE) to this phone. Its channel is already counted.
    Ring { phone: PhoneIndex },
    /// CANCEL the leg to this phone. Its channel is already given back, and whatever
    /// final response the leg gets afterwards is ignored by the hunt.
    Cancel { phone: PhoneIndex },
}

/// How the hunt ended, from [`Hunt::result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HuntResult {
    /// This phone answered; connect the caller to it. Its channel stays counted until
    /// [`Hunt::release`].
    Answered { phone: PhoneIndex },
    /// Nobody answered: send the caller this final status, the best failure seen (see
    /// the precedence table in the [crate documentation](crate)).
    Failed { status: u16 },
}
