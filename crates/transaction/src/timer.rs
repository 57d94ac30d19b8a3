//! One timer queue for every transaction, so that the caller sleeps on a single
//! instant ([`crate::TransactionLayer::poll_timeout`]) however many transactions run.
//!
//! Cancelling a timer never searches the queue: a transaction records the deadline of
//! each timer it has armed ([`Armed`]), and a queued entry whose deadline is no longer
//! recorded there (disarmed, re-armed, or its transaction gone) is stale and skipped
//! when it comes first. Entries name their transaction by slab slot and
//! generation, so an entry outliving its transaction can never fire on a newcomer that
//! reused the slot or the key.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

/// The RFC 3261 Table 4 timers this layer runs, plus the §9.1 CANCEL guard. Timers J
/// and K are not here: the layer keeps the transactions that wait for them apart
/// (`layer.rs`, lingering transactions).
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

/// Deadlines, earliest first.
///
/// Almost every timer is armed for one of a handful of durations (64*T1 for B, F, H,
/// J and the CANCEL guard, T4 for I and K, T1 doubling to T2 for A, E and G), and
/// `now` only moves forward, so the deadlines armed with one duration come in order.
/// Each duration gets a FIFO lane: arming is a push at the back and the earliest
/// deadline is one of the lanes' fronts. A single binary heap held every one of them
/// before, and at 8,000 calls/s its ~800,000 entries (mostly 32 s timers, many already
/// stale) made each pop sift through cold memory: 7 % of the signalling thread.
/// A deadline that would break its lane's order (a caller whose clock went back) or
/// a duration beyond the lanes goes to a heap, which stays small.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    lanes: Vec<Lane>,
    heap: BinaryHeap<Entry>,
    seq: u64,
}

#[derive(Debug)]
struct Lane {
    after: Duration,
    entries: VecDeque<Entry>,
}

/// More distinct durations than this is not a configuration of T1, T2 and T4 but
/// something unusual; those go to the heap.
const MAX_LANES: usize = 16;

/// Where the earliest entry is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Head {
    Lane(usize),
    Heap,
}

impl TimerQueue {
    /// `at` is `after` from the caller's now.
    pub(crate) fn push(&mut self, at: Instant, after: Duration, id: TxId, timer: Timer) {
        self.seq += 1;
        let entry = Entry {
            at,
            seq: self.seq,
            id,
            timer,
        };
        let lane = match self.lanes.iter().position(|l| l.after == after) {
            Some(i) => Some(i),
            None if self.lanes.len() < MAX_LANES => {
                self.lanes.push(Lane {
                    after,
                    entries: VecDeque::new(),
                });
                Some(self.lanes.len() - 1)
            }
            None => None,
        };
        match lane.map(|i| &mut self.lanes[i].entries) {
            Some(entries) if entries.back().is_none_or(|last| last.at <= at) => {
                entries.push_back(entry);
            }
            _ => self.heap.push(entry),
        }
    }

    /// The earliest entry and where it is: the lanes' fronts and the heap's top, ties
    /// to the one armed first.
    fn head(&self) -> Option<(Head, &Entry)> {
        let mut best = self.heap.peek().map(|e| (Head::Heap, e));
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(e) = lane.entries.front()
                && best.is_none_or(|(_, b)| (e.at, e.seq) < (b.at, b.seq))
            {
                best = Some((Head::Lane(i), e));
            }
        }
        best
    }

    /// The earliest deadline, what it is for, and a handle to pop it with.
    pub(crate) fn peek(&self) -> Option<(Instant, TxId, Timer, Head)> {
        self.head().map(|(head, e)| (e.at, e.id, e.timer, head))
    }

    /// Removes the entry [`TimerQueue::peek`] returned `head` for.
    pub(crate) fn pop(&mut self, head: Head) {
        match head {
            Head::Lane(i) => {
                self.lanes[i].entries.pop_front();
            }
            Head::Heap => {
                self.heap.pop();
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.lanes.iter().map(|l| l.entries.len()).sum::<usize>()
    }

    pub(crate) fn retain(&mut self, mut live: impl FnMut(Instant, TxId, Timer) -> bool) {
        for lane in &mut self.lanes {
            lane.entries.retain(|e| live(e.at, e.id, e.timer));
            if lane.entries.capacity() > 4 * lane.entries.len().max(64) {
                lane.entries.shrink_to_fit();
            }
        }
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

    const ID: TxId = TxId {
        index: 0,
        generation: 0,
    };

    fn drain(q: &mut TimerQueue) -> Vec<(Instant, Timer)> {
        let mut order = Vec::new();
        while let Some((at, _, timer, head)) = q.peek() {
            order.push((at, timer));
            q.pop(head);
        }
        order
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn earliest_first_ties_in_arming_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.push(t0 + ms(2000), ms(2000), ID, Timer::B);
        q.push(t0 + ms(1000), ms(1000), ID, Timer::A);
        q.push(t0 + ms(1000), ms(1000), ID, Timer::E);
        // Same deadline from another lane, armed later: fires after A and E.
        q.push(t0 + ms(1000), ms(500), ID, Timer::G);
        let order: Vec<Timer> = drain(&mut q).into_iter().map(|(_, t)| t).collect();
        assert_eq!(order, [Timer::A, Timer::E, Timer::G, Timer::B]);
    }

    #[test]
    fn lanes_and_the_heap_merge_into_one_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        // Time moves on while three durations are armed, as in a run of calls.
        for step in 0..50u64 {
            let now = t0 + ms(step * 7);
            q.push(now + ms(500), ms(500), ID, Timer::A);
            q.push(now + ms(32_000), ms(32_000), ID, Timer::B);
            q.push(now + ms(5_000), ms(5_000), ID, Timer::D);
        }
        // The caller's clock went back: this one cannot join its lane's back.
        q.push(t0 + ms(5_001), ms(5_000), ID, Timer::I);
        // More durations than lanes: the rest go to the heap.
        for d in 0..(MAX_LANES as u64 + 4) {
            q.push(t0 + ms(100 + d), ms(100 + d), ID, Timer::H);
        }
        assert_eq!(q.len(), 150 + 1 + MAX_LANES + 4);
        assert!(!q.heap.is_empty(), "the out-of-order and overflow entries");
        let fired = drain(&mut q);
        assert_eq!(fired.len(), 150 + 1 + MAX_LANES + 4);
        assert!(
            fired.windows(2).all(|w| w[0].0 <= w[1].0),
            "deadlines out of order"
        );
        let i = fired.iter().position(|&(_, t)| t == Timer::I).unwrap();
        assert_eq!(fired[i - 1], (t0 + ms(5_000), Timer::D));
        assert_eq!(fired[i + 1], (t0 + ms(5_007), Timer::D));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn retain_keeps_the_order_of_what_it_keeps() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        for n in 0..300u64 {
            let timer = if n % 3 == 0 { Timer::H } else { Timer::F };
            q.push(t0 + ms(n) + ms(32_000), ms(32_000), ID, timer);
        }
        q.push(t0, ms(1), ID, Timer::H);
        q.push(t0 + ms(1), ms(1), ID, Timer::F);
        q.retain(|_, _, timer| timer == Timer::H);
        let fired = drain(&mut q);
        assert_eq!(fired.len(), 101);
        assert!(fired.iter().all(|&(_, t)| t == Timer::H));
        assert!(fired.windows(2).all(|w| w[0].0 < w[1].0));
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
