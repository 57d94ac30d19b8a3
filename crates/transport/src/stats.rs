//! Counters an operator wants when the switch misbehaves: is traffic arriving, are
//! peers sending garbage, are connections piling up or being refused.
//!
//! Plain relaxed atomics bumped on the hot paths; [`TransportStats`] is a snapshot for
//! whatever exports metrics. No metrics library is pulled in here.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A snapshot of the transport's counters. Counts are totals since `bind`, except
/// `tcp_connections_open`, which is the current number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    pub udp_datagrams_received: u64,
    pub tcp_messages_received: u64,
    /// Messages `send` accepted: UDP datagrams sent, TCP messages queued on a connection.
    pub messages_sent: u64,
    pub send_errors: u64,
    pub tcp_connections_open: usize,
    pub tcp_connections_accepted: u64,
    pub tcp_connections_connected: u64,
    /// Inbound connections closed at once because `max_tcp_connections` was reached.
    pub tcp_connections_refused: u64,
    pub tcp_idle_closed: u64,
    /// Connections closed because the byte stream could not be framed.
    pub framing_errors: u64,
    /// RFC 5626 double-CRLF pings answered with a CRLF pong.
    pub keepalive_pongs: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub udp_datagrams_received: AtomicU64,
    pub tcp_messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub send_errors: AtomicU64,
    /// Also the admission counter for `max_tcp_connections` (see `tcp::Slot`).
    pub tcp_connections_open: AtomicUsize,
    pub tcp_connections_accepted: AtomicU64,
    pub tcp_connections_connected: AtomicU64,
    pub tcp_connections_refused: AtomicU64,
    pub tcp_idle_closed: AtomicU64,
    pub framing_errors: AtomicU64,
    pub keepalive_pongs: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> TransportStats {
        TransportStats {
            udp_datagrams_received: self.udp_datagrams_received.load(Relaxed),
            tcp_messages_received: self.tcp_messages_received.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            tcp_connections_open: self.tcp_connections_open.load(Relaxed),
            tcp_connections_accepted: self.tcp_connections_accepted.load(Relaxed),
            tcp_connections_connected: self.tcp_connections_connected.load(Relaxed),
            tcp_connections_refused: self.tcp_connections_refused.load(Relaxed),
            tcp_idle_closed: self.tcp_idle_closed.load(Relaxed),
            framing_errors: self.framing_errors.load(Relaxed),
            keepalive_pongs: self.keepalive_pongs.load(Relaxed),
        }
    }
}
