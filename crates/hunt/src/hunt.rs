//! One call's hunt: the order to try, the legs ringing now with their deadlines, the
//! overall deadline, and what the B2BUA should do next.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::failure::Failures;
use crate::order::{self, Rng};
use crate::{GroupState, HuntAction, HuntResult, Phone, PhoneIndex, PhoneOutcome, Strategy};

/// The hunt for one call. See the [crate documentation](crate) for the protocol.
#[derive(Debug, Clone)]
pub struct Hunt {
    strategy: Strategy,
    /// Shared by every call to the group: a call does not copy the phone list.
    phones: Arc<[Phone]>,
    rng: Rng,
    /// When the whole hunt gives up (`None`: a timeout too long to represent).
    deadline: Option<Instant>,
    phase: Phase,
    /// Phones not tried yet, in order (one-at-a-time strategies only).
    pending: VecDeque<PhoneIndex>,
    /// Legs ringing now, in the order they were rung. While [`Phase::Hunting`] it is
    /// never empty: when the last leg ends, the next phone rings or the hunt finishes.
    ringing: Vec<Ringing>,
    actions: VecDeque<HuntAction>,
    attempts: Vec<(PhoneIndex, PhoneOutcome)>,
    skipped: Vec<PhoneIndex>,
    failures: Failures,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Created, [`Hunt::start`] not called yet.
    Ready,
    Hunting,
    Done(HuntResult),
}

#[derive(Debug, Clone, Copy)]
struct Ringing {
    phone: PhoneIndex,
    /// When its ring timeout fires (`None`: too far away to represent).
    deadline: Option<Instant>,
}

impl Hunt {
    /// A hunt over `phones` (the group's list, in priority order) that gives up
    /// `overall_timeout` after `now`. `rng_seed` fixes the order of
    /// [`Strategy::Random`] and [`Strategy::Weighted`]: the daemon passes a fresh random
    /// seed per call, tests a constant. Nothing happens until [`Hunt::start`].
    /// `phones` is typically an `Arc<[Phone]>` built once per group.
    pub fn new(
        strategy: Strategy,
        phones: impl Into<Arc<[Phone]>>,
        overall_timeout: Duration,
        now: Instant,
        rng_seed: u64,
    ) -> Hunt {
        Hunt {
            strategy,
            phones: phones.into(),
            rng: Rng::new(rng_seed),
            deadline: now.checked_add(overall_timeout),
            phase: Phase::Ready,
            pending: VecDeque::new(),
            ringing: Vec::new(),
            actions: VecDeque::new(),
            attempts: Vec::new(),
            skipped: Vec::new(),
            failures: Failures::default(),
        }
    }

    /// Fixes the order from the strategy and `state`, and rings the first phone (all
    /// phones, for [`Strategy::Simultaneous`]) that is below its capacity. If none can
    /// ring, the hunt finishes at once with [`HuntResult::Failed`]. Under
    /// [`Strategy::RoundRobin`] it moves the group's position to just after the first
    /// phone it rang (and leaves it if it rang none). Only the first call does anything.
    pub fn start(&mut self, state: &mut GroupState, now: Instant) {
        if self.phase != Phase::Ready {
            return;
        }
        self.phase = Phase::Hunting;
        state.fit(self.phones.len());
        if self.deadline.is_some_and(|d| d <= now) {
            self.failures.no_answer();
            self.finish_failed();
            return;
        }
        let order = order::order(self.strategy, &self.phones, state, &mut self.rng);
        if self.strategy == Strategy::Simultaneous {
            for phone in order {
                self.try_ring(state, phone, now);
            }
        } else {
            self.pending = order.into();
        }
        self.advance(state, now);
        if self.strategy == Strategy::RoundRobin
            && let Some(first) = self.ringing.first()
        {
            state.set_round_robin((first.phone + 1) % self.phones.len());
        }
    }

    /// The next thing the B2BUA should do, in order; `None` when there is nothing now.
    pub fn poll_action(&mut self) -> Option<HuntAction> {
        self.actions.pop_front()
    }

    /// The leg to `phone` ended its attempt with `outcome`. [`PhoneOutcome::Answered`]
    /// finishes the hunt with [`HuntResult::Answered`] and cancels every other ringing
    /// phone (recorded as [`PhoneOutcome::NoAnswer`]); any other outcome gives the
    /// phone's channel back and moves on to the next phone, or finishes with
    /// [`HuntResult::Failed`] when none is left. Ignored unless `phone` is ringing in
    /// this hunt.
    pub fn on_outcome(
        &mut self,
        state: &mut GroupState,
        phone: PhoneIndex,
        outcome: PhoneOutcome,
        now: Instant,
    ) {
        if self.phase != Phase::Hunting {
            return;
        }
        let Some(pos) = self.ringing.iter().position(|r| r.phone == phone) else {
            return;
        };
        self.ringing.remove(pos);
        self.attempts.push((phone, outcome));
        match outcome {
            PhoneOutcome::Answered => {
                self.cancel_ringing(state);
                self.pending.clear();
                self.phase = Phase::Done(HuntResult::Answered { phone });
                return;
            }
            PhoneOutcome::Busy => self.failures.busy(),
            PhoneOutcome::NoAnswer => self.failures.no_answer(),
            PhoneOutcome::Declined => self.failures.declined(),
            PhoneOutcome::Failed(status) => self.failures.failed(status),
        }
        state.give_back(phone);
        self.advance(state, now);
    }

    /// The caller hung up before anyone answered: every ringing phone gets
    /// [`HuntAction::Cancel`] (recorded as [`PhoneOutcome::NoAnswer`]) and the hunt
    /// finishes with `Failed { status: 487 }`. Ignored once the hunt has finished.
    pub fn on_cancelled_by_caller(&mut self, state: &mut GroupState, _now: Instant) {
        if matches!(self.phase, Phase::Done(_)) {
            return;
        }
        self.cancel_ringing(state);
        self.pending.clear();
        self.phase = Phase::Done(HuntResult::Failed { status: 487 });
    }

    /// Runs the timers due at `now`: past the overall deadline, every ringing phone is
    /// cancelled and the hunt finishes with [`HuntResult::Failed`]; otherwise each phone
    /// past its ring timeout is cancelled as [`PhoneOutcome::NoAnswer`] and the hunt
    /// moves on. Calling it early, late or repeatedly is harmless.
    pub fn handle_timeout(&mut self, state: &mut GroupState, now: Instant) {
        if self.phase != Phase::Hunting {
            return;
        }
        if self.deadline.is_some_and(|d| d <= now) {
            self.cancel_ringing(state);
            self.pending.clear();
            self.failures.no_answer();
            self.finish_failed();
            return;
        }
        let mut i = 0;
        while i < self.ringing.len() {
            let Ringing { phone, deadline } = self.ringing[i];
            if deadline.is_some_and(|d| d <= now) {
                self.ringing.remove(i);
                self.actions.push_back(HuntAction::Cancel { phone });
                state.give_back(phone);
                self.attempts.push((phone, PhoneOutcome::NoAnswer));
                self.failures.no_answer();
            } else {
                i += 1;
            }
        }
        self.advance(state, now);
    }

    /// When [`Hunt::handle_timeout`] should next run: the earliest ring timeout or the
    /// overall deadline. `None` before [`Hunt::start`] and once the hunt has finished.
    /// Releases the working space of a finished hunt (the phones not tried, spent
    /// actions), keeping what the call record needs. A no-op while hunting.
    pub fn compact(&mut self) {
        if !matches!(self.phase, Phase::Done(_)) || !self.actions.is_empty() {
            return;
        }
        self.pending = VecDeque::new();
        self.actions = VecDeque::new();
        self.ringing.shrink_to_fit();
        self.attempts.shrink_to_fit();
        self.skipped.shrink_to_fit();
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Hunting {
            return None;
        }
        self.ringing
            .iter()
            .filter_map(|r| r.deadline)
            .chain(self.deadline)
            .min()
    }

    /// How the hunt ended; `None` while it runs.
    pub fn result(&self) -> Option<HuntResult> {
        match self.phase {
            Phase::Done(result) => Some(result),
            Phase::Ready | Phase::Hunting => None,
        }
    }

    /// The answered call on `phone` has ended at `now`: gives its channel back and
    /// records the instant for [`Strategy::LongestIdle`]. Call it once per
    /// [`HuntResult::Answered`], on the state the hunt ran with.
    pub fn release(state: &mut GroupState, phone: PhoneIndex, now: Instant) {
        state.call_ended(phone, now);
    }

    /// The phones rung so far with how each attempt ended, in the order the attempts
    /// ended (for the call record). Phones the hunt cancelled, because another answered,
    /// the caller hung up or time ran out, appear as [`PhoneOutcome::NoAnswer`].
    pub fn attempts(&self) -> &[(PhoneIndex, PhoneOutcome)] {
        &self.attempts
    }

    /// The phones passed over because they were at capacity when their turn came, in
    /// that order (for the call record and per-phone analytics).
    pub fn skipped(&self) -> &[PhoneIndex] {
        &self.skipped
    }

    /// The strategy this hunt runs.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Rings `phone` if it is below capacity now, else notes it busy.
    fn try_ring(&mut self, state: &mut GroupState, phone: PhoneIndex, now: Instant) {
        if state.active(phone) >= self.phones[phone].capacity {
            self.skipped.push(phone);
            self.failures.busy();
            return;
        }
        state.take(phone);
        let deadline = now.checked_add(self.phones[phone].ring_timeout);
        self.ringing.push(Ringing { phone, deadline });
        self.actions.push_back(HuntAction::Ring { phone });
    }

    /// Keeps a leg ringing: when none is, rings the next phone that can, or finishes.
    fn advance(&mut self, state: &mut GroupState, now: Instant) {
        while self.ringing.is_empty() {
            match self.pending.pop_front() {
                Some(phone) => self.try_ring(state, phone, now),
                None => {
                    self.finish_failed();
                    return;
                }
            }
        }
    }

    fn cancel_ringing(&mut self, state: &mut GroupState) {
        for Ringing { phone, .. } in self.ringing.drain(..) {
            self.actions.push_back(HuntAction::Cancel { phone });
            state.give_back(phone);
            self.attempts.push((phone, PhoneOutcome::NoAnswer));
        }
    }

    fn finish_failed(&mut self) {
        self.phase = Phase::Done(HuntResult::Failed {
            status: self.failures.status(),
        });
    }
}
