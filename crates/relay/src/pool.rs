//! Packet buffers that go round between the relay and the daemon, so the steady
//! state of a call (50 packets a second each way, for hours) allocates nothing.
//!
//! The relay hands each outgoing packet out as an owned `Vec<u8>`; once the daemon has
//! sent it, it gives the vector back with [`crate::CallMedia::recycle`] and the next
//! packet is written into it. A daemon that never gives buffers back still works,
//! at the price of one allocation per packet.

/// Capacity of a new buffer: a 120 ms G.711 packet with its header fits.
pub const BUFFER_CAPACITY: usize = 1024;

/// Buffers larger than this (grown by an unusually large forwarded packet) are freed
/// rather than kept, so one odd packet does not pin memory for the call's lifetime.
const MAX_KEPT_CAPACITY: usize = 4 * BUFFER_CAPACITY;

/// Buffers kept per call: more than a call ever has in flight between two polls.
const MAX_KEPT_BUFFERS: usize = 8;

/// Empty buffers ready for the next packet.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Vec<Vec<u8>>,
}

impl BufferPool {
    /// An empty buffer, reused if one is available.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUFFER_CAPACITY))
    }

    /// Keeps `buffer` for a later packet, if it is worth keeping.
    pub(crate) fn give_back(&mut self, mut buffer: Vec<u8>) {
        if self.free.len() >= MAX_KEPT_BUFFERS
            || buffer.capacity() < BUFFER_CAPACITY
            || buffer.capacity() > MAX_KEPT_CAPACITY
        {
            return;
        }
        if self.free.capacity() == 0 {
            self.free.reserve_exact(MAX_KEPT_BUFFERS);
        }
        buffer.clear();
        self.free.push(buffer);
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_what_is_given_back() {
        let mut pool = BufferPool::default();
        let mut buffer = pool.take();
        assert!(buffer.is_empty());
        assert_eq!(buffer.capacity(), BUFFER_CAPACITY);
        buffer.extend_from_slice(&[1, 2, 3]);
        let address = buffer.as_ptr();
        pool.give_back(buffer);
        let again = pool.take();
        assert!(again.is_empty(), "cleared on the way back");
        assert_eq!(again.as_ptr(), address);
    }

    #[test]
    fn refuses_odd_sizes_and_keeps_a_bounded_number() {
        let mut pool = BufferPool::default();
        pool.give_back(Vec::with_capacity(16));
        pool.give_back(Vec::with_capacity(MAX_KEPT_CAPACITY + 1));
        assert_eq!(pool.kept(), 0);
        for _ in 0..MAX_KEPT_BUFFERS + 3 {
            pool.give_back(Vec::with_capacity(BUFFER_CAPACITY));
        }
        assert_eq!(pool.kept(), MAX_KEPT_BUFFERS);
    }
}
