//! The port pool under random allocate/release/quarantine/restore sequences, checked
//! against a plain model: no port is ever handed out twice, only even ports of the
//! range are handed out, the counters add up, and a freed port comes back only after
//! every port that was free before it.

use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;
use sihai_media::{PoolError, PortPool};

#[derive(Debug, Clone)]
enum Op {
    Allocate,
    Release(usize),
    Quarantine(u16),
    Restore(u16),
    ReleaseArbitrary(u16),
}

fn op(first: u16, last: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Allocate),
        4 => any::<usize>().prop_map(Op::Release),
        1 => (first.saturating_sub(3)..=last.saturating_add(3)).prop_map(Op::Quarantine),
        1 => (first.saturating_sub(3)..=last.saturating_add(3)).prop_map(Op::Restore),
        1 => (first.saturating_sub(3)..=last.saturating_add(3)).prop_map(Op::ReleaseArbitrary),
    ]
}

fn scenario() -> impl Strategy<Value = (u16, u16, Vec<Op>)> {
    (1000u16..1100, 2u16..40).prop_flat_map(|(first, width)| {
        let last = first + width;
        (
            Just(first),
            Just(last),
            prop::collection::vec(op(first, last), 0..400),
        )
    })
}

proptest! {
    #[test]
    fn never_hands_out_a_port_twice((first, last, ops) in scenario()) {
        let mut pool = PortPool::new(first, last).unwrap();
        let pairs: Vec<u16> = (first..last).filter(|port| port % 2 == 0).collect();
        prop_assert_eq!(pool.capacity(), pairs.len());

        // The model: free ports in reuse order, allocated ports, quarantined ports.
        let mut free: VecDeque<u16> = pairs.iter().copied().collect();
        let mut allocated: Vec<u16> = Vec::new();
        let mut quarantined: BTreeSet<u16> = BTreeSet::new();

        for op in ops {
            match op {
                Op::Allocate => {
                    let port = pool.allocate();
                    prop_assert_eq!(port, free.pop_front());
                    if let Some(port) = port {
                        prop_assert!(port % 2 == 0 && port >= first && port < last);
                        prop_assert!(!allocated.contains(&port));
                        allocated.push(port);
                    }
                }
                Op::Release(pick) => {
                    if allocated.is_empty() {
                        continue;
                    }
                    let port = allocated.swap_remove(pick % allocated.len());
                    prop_assert_eq!(pool.release(port), Ok(()));
                    free.push_back(port);
                    // Releasing again is refused and changes nothing.
                    prop_assert_eq!(pool.release(port), Err(PoolError::NotAllocated(port)));
                }
                Op::ReleaseArbitrary(port) => {
                    let result = pool.release(port);
                    if let Some(index) = allocated.iter().position(|&p| p == port) {
                        prop_assert_eq!(result, Ok(()));
                        allocated.swap_remove(index);
                        free.push_back(port);
                    } else if pairs.contains(&port) {
                        prop_assert_eq!(result, Err(PoolError::NotAllocated(port)));
                    } else {
                        prop_assert_eq!(result, Err(PoolError::NotInPool(port)));
                    }
                }
                Op::Quarantine(port) => {
                    let result = pool.quarantine(port);
                    if pairs.contains(&port) {
                        prop_assert_eq!(result, Ok(()));
                        allocated.retain(|&p| p != port);
                        free.retain(|&p| p != port);
                        quarantined.insert(port);
                    } else {
                        prop_assert_eq!(result, Err(PoolError::NotInPool(port)));
                    }
                }
                Op::Restore(port) => {
                    let result = pool.restore(port);
                    if quarantined.remove(&port) {
                        prop_assert_eq!(result, Ok(()));
                        free.push_back(port);
                    } else if pairs.contains(&port) {
                        prop_assert_eq!(result, Err(PoolError::NotQuarantined(port)));
                    } else {
                        prop_assert_eq!(result, Err(PoolError::NotInPool(port)));
                    }
                }
            }
            prop_assert_eq!(pool.available(), free.len());
            prop_assert_eq!(pool.quarantined(), quarantined.len());
            prop_assert_eq!(pool.allocated(), allocated.len());
            prop_assert_eq!(free.len() + allocated.len() + quarantined.len(), pairs.len());
        }

        // Draining the pool hands out exactly the model's free ports, in order.
        let drained: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
        prop_assert_eq!(drained, Vec::from(free));
        prop_assert_eq!(pool.available(), 0);
    }
}

#[test]
fn exhaustion_and_recovery() {
    let mut pool = PortPool::new(10_000, 10_199).unwrap();
    assert_eq!(pool.capacity(), 100);
    let ports: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
    assert_eq!(ports.len(), 100);
    assert_eq!(ports.iter().collect::<BTreeSet<_>>().len(), 100);
    assert_eq!(pool.allocate(), None);
    assert_eq!(pool.available(), 0);
    pool.release(10_050).unwrap();
    assert_eq!(pool.allocate(), Some(10_050));
    assert_eq!(pool.allocate(), None);
}

#[test]
fn a_freed_port_waits_for_every_other_free_port() {
    let mut pool = PortPool::new(20_000, 20_999).unwrap();
    let port = pool.allocate().unwrap();
    pool.release(port).unwrap();
    let before_reuse: Vec<u16> = (0..pool.capacity() - 1)
        .map(|_| pool.allocate().unwrap())
        .collect();
    assert!(!before_reuse.contains(&port));
    assert_eq!(pool.allocate(), Some(port));
}
