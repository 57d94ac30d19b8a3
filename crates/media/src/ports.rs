//! The UDP ports the relay hands out to calls, from the range the operator opened in
//! the firewall.
//!
//! Each call leg gets a pair: an even RTP port and the odd RTCP port above it
//! (RFC 3550 §11). Ports are handed out least-recently-freed first, so a port a call
//! just gave back is the last to be reused: stragglers of the previous call's media
//! (a phone that keeps sending for a second after BYE) then find a closed socket
//! instead of a stranger's call. A port the daemon could not bind (another program
//! holds it) is quarantined: taken out of rotation until explicitly restored.
//!
//! The pool only does bookkeeping; the daemon binds the sockets.

use std::collections::VecDeque;

use thiserror::Error;

/// Why a pool cannot be built or a port cannot be returned to it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PoolError {
    /// The range is reversed or starts at port 0.
    #[error("invalid RTP port range {first}-{last}")]
    InvalidRange {
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// The range holds no even/odd pair.
    #[error("RTP port range {first}-{last} holds no even RTP port with its RTCP port")]
    NoPairs {
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// The port is not an RTP port of this pool (odd, or outside the range).
    #[error("port {0} is not an RTP port of this pool")]
    NotInPool(u16),
    /// The port is not allocated (double release, or never handed out).
    #[error("port {0} is not allocated")]
    NotAllocated(u16),
    /// The port is not quarantined (restore of a port in rotation).
    #[error("port {0} is not quarantined")]
    NotQuarantined(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortState {
    Free,
    Allocated,
    Quarantined,
}

/// The RTP/RTCP port pairs of a port range. Allocation and release are O(1);
/// quarantining a free port is O(n), which is fine for a bind failure.
#[derive(Debug, Clone)]
pub struct PortPool {
    /// The lowest RTP port; slot `i` is port `base + 2i`.
    base: u16,
    slots: Vec<PortState>,
    /// Indexes of exactly the free slots, least recently freed first.
    free_queue: VecDeque<u16>,
    available: usize,
    quarantined: usize,
}

impl PortPool {
    /// A pool of every pair (even RTP port, RTP + 1) that lies inside `first..=last`.
    pub fn new(first: u16, last: u16) -> Result<PortPool, PoolError> {
        if first == 0 || first > last {
            return Err(PoolError::InvalidRange { first, last });
        }
        let base = u32::from(first).next_multiple_of(2);
        // The highest RTP port whose RTCP port is still in range.
        let top = (u32::from(last) - 1) & !1;
        if base > top {
            return Err(PoolError::NoPairs { first, last });
        }
        let count = ((top - base) / 2 + 1) as usize;
        let base = u16::try_from(base).map_err(|_| PoolError::NoPairs { first, last })?;
        Ok(PortPool {
            base,
            slots: vec![PortState::Free; count],
            free_queue: (0..count as u16).collect(),
            available: count,
            quarantined: 0,
        })
    }

    /// Takes the least recently freed RTP port (RTCP is that port + 1), or `None`
    /// when every pair is allocated or quarantined.
    pub fn allocate(&mut self) -> Option<u16> {
        let index = self.free_queue.pop_front()?;
        self.slots[usize::from(index)] = PortState::Allocated;
        self.available -= 1;
        Some(self.port(index))
    }

    /// Gives an allocated port back; it will be handed out again only after every
    /// other free port. Releasing a port that is not allocated is an error and
    /// changes nothing, so a double release can never put a port in rotation twice.
    /// Releasing a quarantined port is also an error: restore it instead.
    pub fn release(&mut self, port: u16) -> Result<(), PoolError> {
        let index = self.index(port)?;
        let slot = &mut self.slots[usize::from(index)];
        if *slot != PortState::Allocated {
            return Err(PoolError::NotAllocated(port));
        }
        *slot = PortState::Free;
        self.available += 1;
        self.free_queue.push_back(index);
        Ok(())
    }

    /// Takes a port out of rotation (the daemon could not bind it, or its RTCP
    /// neighbour), whether it is allocated (the failed bind) or free. Quarantining a
    /// quarantined port does nothing.
    pub fn quarantine(&mut self, port: u16) -> Result<(), PoolError> {
        let index = self.index(port)?;
        let slot = &mut self.slots[usize::from(index)];
        match *slot {
            PortState::Quarantined => return Ok(()),
            PortState::Free => {
                self.available -= 1;
                self.free_queue.retain(|&queued| queued != index);
            }
            PortState::Allocated => {}
        }
        *slot = PortState::Quarantined;
        self.quarantined += 1;
        Ok(())
    }

    /// Puts a quarantined port back in rotation, behind every other free port.
    pub fn restore(&mut self, port: u16) -> Result<(), PoolError> {
        let index = self.index(port)?;
        let slot = &mut self.slots[usize::from(index)];
        if *slot != PortState::Quarantined {
            return Err(PoolError::NotQuarantined(port));
        }
        *slot = PortState::Free;
        self.quarantined -= 1;
        self.available += 1;
        self.free_queue.push_back(index);
        Ok(())
    }

    /// Pairs that [`PortPool::allocate`] can hand out now.
    pub fn available(&self) -> usize {
        self.available
    }

    /// Pairs in the range, whatever their state.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Pairs taken out of rotation.
    pub fn quarantined(&self) -> usize {
        self.quarantined
    }

    /// Pairs handed out and not yet released or quarantined.
    pub fn allocated(&self) -> usize {
        self.capacity() - self.available - self.quarantined
    }

    /// Whether `port` is currently allocated.
    pub fn is_allocated(&self, port: u16) -> bool {
        self.index(port)
            .is_ok_and(|index| self.slots[usize::from(index)] == PortState::Allocated)
    }

    fn port(&self, index: u16) -> u16 {
        self.base + 2 * index
    }

    fn index(&self, port: u16) -> Result<u16, PoolError> {
        let offset = port
            .checked_sub(self.base)
            .ok_or(PoolError::NotInPool(port))?;
        let index = offset / 2;
        if offset % 2 != 0 || usize::from(index) >= self.slots.len() {
            return Err(PoolError::NotInPool(port));
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_lie_inside_the_range() {
        let pool = PortPool::new(10_000, 10_009).unwrap();
        assert_eq!(pool.capacity(), 5);
        let odd_edges = PortPool::new(10_001, 10_010).unwrap();
        // 10002/3 .. 10008/9; 10010 has no RTCP port in range.
        assert_eq!(odd_edges.capacity(), 4);
        let mut single = PortPool::new(10_000, 10_001).unwrap();
        assert_eq!(single.allocate(), Some(10_000));
        assert_eq!(single.allocate(), None);
        let top = PortPool::new(65_534, 65_535).unwrap();
        assert_eq!(top.capacity(), 1);
        let whole = PortPool::new(1, u16::MAX).unwrap();
        assert_eq!(whole.capacity(), 32_767);
    }

    #[test]
    fn rejects_bad_ranges() {
        assert_eq!(
            PortPool::new(0, 100).unwrap_err(),
            PoolError::InvalidRange {
                first: 0,
                last: 100
            }
        );
        assert_eq!(
            PortPool::new(200, 100).unwrap_err(),
            PoolError::InvalidRange {
                first: 200,
                last: 100
            }
        );
        assert_eq!(
            PortPool::new(10_000, 10_000).unwrap_err(),
            PoolError::NoPairs {
                first: 10_000,
                last: 10_000
            }
        );
        assert_eq!(
            PortPool::new(10_001, 10_002).unwrap_err(),
            PoolError::NoPairs {
                first: 10_001,
                last: 10_002
            }
        );
        assert_eq!(
            PortPool::new(1, 1).unwrap_err(),
            PoolError::NoPairs { first: 1, last: 1 }
        );
        assert_eq!(
            PortPool::new(u16::MAX, u16::MAX).unwrap_err(),
            PoolError::NoPairs {
                first: u16::MAX,
                last: u16::MAX
            }
        );
    }

    #[test]
    fn hands_out_even_ports_round_robin() {
        let mut pool = PortPool::new(20_000, 20_007).unwrap();
        assert_eq!(pool.allocate(), Some(20_000));
        assert_eq!(pool.allocate(), Some(20_002));
        pool.release(20_000).unwrap();
        // The freed port goes to the back of the line.
        assert_eq!(pool.allocate(), Some(20_004));
        assert_eq!(pool.allocate(), Some(20_006));
        assert_eq!(pool.allocate(), Some(20_000));
        assert_eq!(pool.allocate(), None);
        assert_eq!(pool.available(), 0);
        assert_eq!(pool.allocated(), 4);
    }

    #[test]
    fn release_errors_change_nothing() {
        let mut pool = PortPool::new(20_000, 20_007).unwrap();
        let port = pool.allocate().unwrap();
        pool.release(port).unwrap();
        assert_eq!(pool.release(port), Err(PoolError::NotAllocated(port)));
        assert_eq!(pool.release(20_002), Err(PoolError::NotAllocated(20_002)));
        assert_eq!(pool.release(20_001), Err(PoolError::NotInPool(20_001)));
        assert_eq!(pool.release(19_998), Err(PoolError::NotInPool(19_998)));
        assert_eq!(pool.release(20_008), Err(PoolError::NotInPool(20_008)));
        assert_eq!(pool.available(), 4);
        let mut handed_out: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
        handed_out.sort_unstable();
        assert_eq!(handed_out, vec![20_000, 20_002, 20_004, 20_006]);
    }

    #[test]
    fn quarantine_takes_ports_out_of_rotation() {
        let mut pool = PortPool::new(30_000, 30_007).unwrap();
        let failed_bind = pool.allocate().unwrap();
        pool.quarantine(failed_bind).unwrap();
        pool.quarantine(30_004).unwrap();
        pool.quarantine(30_004).unwrap();
        assert_eq!(pool.quarantined(), 2);
        assert_eq!(pool.available(), 2);
        assert_eq!(
            pool.release(failed_bind),
            Err(PoolError::NotAllocated(failed_bind))
        );
        assert_eq!(pool.allocate(), Some(30_002));
        assert_eq!(pool.allocate(), Some(30_006));
        assert_eq!(pool.allocate(), None);
        assert!(pool.is_allocated(30_002));
        assert!(!pool.is_allocated(30_004));

        pool.restore(30_004).unwrap();
        assert_eq!(pool.restore(30_004), Err(PoolError::NotQuarantined(30_004)));
        assert_eq!(pool.restore(30_002), Err(PoolError::NotQuarantined(30_002)));
        assert_eq!(pool.allocate(), Some(30_004));
        assert_eq!(pool.allocate(), None);
        assert_eq!(
            (pool.allocated(), pool.quarantined(), pool.available()),
            (3, 1, 0)
        );
    }

    #[test]
    fn a_restored_free_port_goes_to_the_back_once() {
        let mut pool = PortPool::new(40_000, 40_003).unwrap();
        pool.quarantine(40_000).unwrap();
        pool.restore(40_000).unwrap();
        pool.quarantine(40_000).unwrap();
        pool.restore(40_000).unwrap();
        assert_eq!(pool.free_queue.len(), 2);
        assert_eq!(pool.allocate(), Some(40_002));
        assert_eq!(pool.allocate(), Some(40_000));
        assert_eq!(pool.allocate(), None);
        assert_eq!(pool.free_queue.len(), 0);
    }
}
