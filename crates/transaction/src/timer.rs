//! One timer queue for every transaction, so that the caller sleeps on a single
//! instant ([`crate::TransactionLayer::poll_timeout`]) however many transactions run.
//!
//! Cancelling a timer never searches the heap: a transaction records the deadline of
//! each timer it has armed ([`Armed`]), and a heap entry whose deadline is no longer
//! recorded there (disarmed, re-armed, or its transaction gone) is stale and skipped
//! when it reaches the top. Entries name their transaction by slab slot and
//! generation, so an entry outliving its transaction can never fire on a newcomer that
//! reused the slot or the key.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

/// The RFC 3261 Table 4 timers this layer runs, plus the §9.1 CANCEL guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// INVITE request retransmission (client, unreliable).
    A,
    /// INVITE transaction timeout (client, Calling).
    B,
    /// Wait time for response retransmissions (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmission (client, unreliable).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmission (server, unreliable).
    G,
    /// Wait time for ACK (server INVITE, Completed).
    H,
    /// Wait time for ACK retransmissions (server INVITE, Confirmed).
    I,
    /// Wait time for request retransmissions (server non-INVITE, Completed).
    J,
    /// Wait time for response retransmissions (client non-INVITE, Completed).
    K,
    /// §9.1: 64*T1 after the TU sent a CANCEL without a final response coming, the
    /// client INVITE transaction is given up.
    CancelGuard,
}

/// A transaction's slot in the layer's slab and which occupant of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxId {
    pub(crate) index: usize,
    pub(crate) generation: u32,
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    /// Ties broken in arming order, so equal deadlines fire first-in first-out.
    seq: u64,
    id: TxId,
    timer: Timer,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest deadline on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl TimerQueue {
    pub(crate) fn push(&mut self, at: Instant, id: TxId, timer: Timer) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            id,
            timer,
        });
    }

    pub(crate) fn peek(&self) -> Option<(Instant, TxId, Timer)> {
        self.heap.peek().map(|e| (e.at, e.id, e.timer))
    }

    pub(crate) fn pop(&mut self) {
        self.heap.pop();
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn retain(&mut self, mut live: impl FnMut(Instant, TxId, Timer) -> bool) {
        self.heap.retain(|e| live(e.at, e.id, e.timer));
    }
}

/// The timers a transaction has armed and their deadlines. No machine runs more than
/// two at once (A+B, E+F, G+H), so two slots suffice and cost no allocation.
#[derive(Debug, Default)]
pub(crate) struct Armed([Option<(Timer, Instant)>; 2]);

impl Armed {
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.0
            .iter()
            .flatten()
            .find(|(t, _)| *t == timer)
            .map(|(_, at)| *at)
    }

    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        let slot = match self
            .0
            .iter()
            .position(|s| s.is_some_and(|(t, _)| t == timer))
        {
            Some(i) => i,
            None => match self.0.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    debug_assert!(
                        false,
                        "more than two timers armed: {:?} and {timer:?}",
                        self.0
                    );
                    1
                }
            },
        };
        self.0[slot] = Some((timer, at));
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        for slot in &mut self.0 {
            if slot.is_some_and(|(t, _)| t == timer) {
                *slot = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_ties_in_arming_order() {
        let t0 = Instant::now();
        let id = TxId {
            index: 0,
            generation: 0,
        };
        let mut q = TimerQueue::default();
        q.push(t0 + Duration::from_secs(2), id, Timer::B);
        q.push(t0 + Duration::from_secs(1), id, Timer::A);
        q.push(t0 + Duration::from_secs(1), id, Timer::E);
        let mut order = Vec::new();
        while let Some((_, _, timer)) = q.peek() {
            order.push(timer);
            q.pop();
        }
        assert_eq!(order, [Timer::A, Timer::E, Timer::B]);
    }

    #[test]
    fn armed_replaces_and_clears() {
        let t0 = Instant::now();
        let mut a = Armed::default();
        a.set(Timer::G, t0);
        a.set(Timer::H, t0 + Duration::from_secs(1));
        a.set(Timer::G, t0 + Duration::from_secs(2));
        assert_eq!(a.get(Timer::G), Some(t0 + Duration::from_secs(2)));
        a.clear(Timer::G);
        assert_eq!(a.get(Timer::G), None);
        assert_eq!(a.get(Timer::H), Some(t0 + Duration::from_secs(1)));
        a.set(Timer::I, t0);
        assert_eq!(a.get(Timer::I), Some(t0));
    }
}
