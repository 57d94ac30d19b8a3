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

/// A [`GroupState`] whose phones are known by identity (`K`: a number or URI), so that
/// it follows a group whose phone list a reload changes: every phone keeps its channels
/// in use, and its idle time, wherever it moves in the list, and a phone removed while
/// a call still holds one of its channels is remembered until that call ends. Calls
/// started on the old list keep their hunt (whose phone indexes are into the old list)
/// and reach the state through [`KeyedGroupState::with_list`], which translates.
///
/// Without this a reload that changed the list's shape started the group afresh, and
/// a phone at its capacity with calls still up from before was rung again.
#[derive(Debug, Clone)]
pub struct KeyedGroupState<K> {
    /// The identity of each phone `state` tracks: the current list first, in order,
    /// then removed phones with channels still in use.
    keys: Vec<K>,
    /// How many of `keys` are the current list.
    listed: usize,
    state: GroupState,
}

impl<K: PartialEq + Clone> KeyedGroupState<K> {
    /// The state of a group whose phones are `phones`, in list order, all idle.
    pub fn new(phones: Vec<K>) -> Self {
        KeyedGroupState {
            listed: phones.len(),
            state: GroupState::new(phones.len()),
            keys: phones,
        }
    }

    /// The state as hunts over the current list index it.
    pub fn current(&mut self) -> &mut GroupState {
        &mut self.state
    }

    /// The phone list became `phones`: each phone that was already tracked keeps its
    /// channel count and when its last call ended; a new phone starts idle; a removed
    /// phone is remembered while its channels are in use. Round robin resumes at the
    /// phone it would have rung next, if that phone is still listed.
    pub fn relist(&mut self, phones: &[K]) {
        let mut keys: Vec<K> = phones.to_vec();
        let mut state = GroupState::new(keys.len());
        for (index, key) in phones.iter().enumerate() {
            if let Some(old) = self.index_of(key) {
                state.phones[index] = self.state.phones.get(old).copied().unwrap_or_default();
            }
        }
        for (old, key) in self.keys.iter().enumerate() {
            let kept = self.state.phones.get(old).copied().unwrap_or_default();
            if kept.active > 0 && !phones.contains(key) {
                keys.push(key.clone());
                state.phones.push(kept);
            }
        }
        let next = self.state.round_robin;
        state.round_robin = self
            .keys
            .get(next)
            .filter(|_| next < self.listed)
            .and_then(|key| phones.iter().position(|k| k == key))
            .unwrap_or(if phones.is_empty() {
                0
            } else {
                next % phones.len()
            });
        self.keys = keys;
        self.listed = phones.len();
        self.state = state;
    }

    /// Runs `f` (a hunt's step) on the state as a hunt over the phone list `phones`
    /// indexes it — an older list, for a call that started before a reload — and
    /// carries what it changed back to the same phones by identity. A phone of that
    /// list no longer tracked starts idle, and is remembered if `f` took one of its
    /// channels.
    pub fn with_list<'k, R>(
        &mut self,
        phones: impl IntoIterator<Item = &'k K>,
        f: impl FnOnce(&mut GroupState) -> R,
    ) -> R
    where
        K: 'k,
    {
        let phones: Vec<(&K, Option<usize>)> = phones
            .into_iter()
            .map(|key| (key, self.index_of(key)))
            .collect();
        let mut view = GroupState::new(phones.len());
        for (slot, (_, tracked)) in view.phones.iter_mut().zip(&phones) {
            if let Some(index) = tracked {
                *slot = self.state.phones.get(*index).copied().unwrap_or_default();
            }
        }
        let result = f(&mut view);
        for ((key, tracked), changed) in phones.into_iter().zip(view.phones) {
            match tracked {
                Some(index) => {
                    if let Some(slot) = self.state.phones.get_mut(index) {
                        *slot = changed;
                    }
                }
                None if changed.active > 0 => {
                    self.keys.push(key.clone());
                    self.state.phones.push(changed);
                }
                None => {}
            }
        }
        result
    }

    /// Channels in use on the phone `key` (0 if it is not tracked).
    pub fn active(&self, key: &K) -> u32 {
        self.index_of(key)
            .map_or(0, |index| self.state.active(index))
    }

    /// When the last answered call on the phone `key` ended.
    pub fn last_ended(&self, key: &K) -> Option<Instant> {
        self.index_of(key)
            .and_then(|index| self.state.last_ended(index))
    }

    fn index_of(&self, key: &K) -> Option<usize> {
        self.keys.iter().position(|k| k == key)
    }
}
