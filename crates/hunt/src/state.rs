//! What calls to one group share: the round-robin position and, per phone, the
//! channels in use and when its last call ended. The daemon owns one per group (and per
//! configuration snapshot) and lends it to a [`Hunt`](crate::Hunt) call by call; only
//! the hunt changes it, so the counts follow the rings, cancels and releases exactly.

use std::time::Instant;

use crate::PhoneIndex;

/// State shared by all calls to one group. See the [crate documentation](crate) for
/// who changes what, and when.
#[derive(Debug, Clone, Default)]
pub struct GroupState {
    phones: Vec<PhoneState>,
    /// Where the next round-robin call starts.
    round_robin: PhoneIndex,
}

#[derive(Debug, Clone, Copy, Default)]
struct PhoneState {
    active: u32,
    last_ended: Option<Instant>,
}

impl GroupState {
    /// The state of a group of `phones` phones, all idle and never used.
    pub fn new(phones: usize) -> Self {
        GroupState {
            phones: vec![PhoneState::default(); phones],
            round_robin: 0,
        }
    }

    /// How many phones it tracks. It grows to fit a hunt with more phones rather than
    /// fail, though one state per configuration snapshot never needs to.
    pub fn len(&self) -> usize {
        self.phones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.phones.is_empty()
    }

    /// Channels in use on `phone`: legs ringing plus answered calls not yet released
    /// (0 for a phone it does not track).
    pub fn active(&self, phone: PhoneIndex) -> u32 {
        self.phones.get(phone).map_or(0, |p| p.active)
    }

    /// Channels in use on all phones together.
    pub fn total_active(&self) -> u64 {
        self.phones.iter().map(|p| u64::from(p.active)).sum()
    }

    /// When the last answered call on `phone` ended (`None`: never, since this state
    /// was created).
    pub fn last_ended(&self, phone: PhoneIndex) -> Option<Instant> {
        self.phones.get(phone).and_then(|p| p.last_ended)
    }

    /// The phone the next round-robin call starts from (or the first enabled one after
    /// it).
    pub fn round_robin_next(&self) -> PhoneIndex {
        self.round_robin
    }

    pub(crate) fn fit(&mut self, phones: usize) {
        if self.phones.len() < phones {
            self.phones.resize(phones, PhoneState::default());
        }
    }

    pub(crate) fn set_round_robin(&mut self, next: PhoneIndex) {
        self.round_robin = next;
    }

    /// A leg to `phone` starts ringing.
    pub(crate) fn take(&mut self, phone: PhoneIndex) {
        self.fit(phone + 1);
        let p = &mut self.phones[phone];
        p.active = p.active.saturating_add(1);
    }

    /// A leg to `phone` ended without a call: its channel is free again.
    pub(crate) fn give_back(&mut self, phone: PhoneIndex) {
        if let Some(p) = self.phones.get_mut(phone) {
            p.active = p.active.saturating_sub(1);
        }
    }

    /// An answered call on `phone` ended at `now`.
    pub(crate) fn call_ended(&mut self, phone: PhoneIndex, now: Instant) {
        if let Some(p) = self.phones.get_mut(phone) {
            p.active = p.active.saturating_sub(1);
            p.last_ended = Some(p.last_ended.map_or(now, |t| t.max(now)));
        }
    }
}
