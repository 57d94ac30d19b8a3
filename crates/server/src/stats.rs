//! Counters for what the endpoint did with each message, shared with whoever reports
//! them (logs now, Prometheus later). Relaxed atomics: they are tallies, not locks.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    /// Messages that were not SIP at all (dropped silently).
    pub unparsable: AtomicU64,
    /// Requests answered with a 4xx/5xx by validation.
    pub rejected_requests: AtomicU64,
    /// Responses that failed validation or matched no transaction (dropped).
    pub dropped_responses: AtomicU64,
    pub stray_acks: AtomicU64,
    pub requests: AtomicU64,
    pub transaction_timeouts: AtomicU64,
    pub transport_errors: AtomicU64,
    /// Requests from addresses that are no trunk answered with one stateless 403/481.
    pub untrusted_rejected: AtomicU64,
    /// Requests from addresses that are no trunk dropped unanswered (`untrusted =
    /// "drop"`, and every ACK).
    pub untrusted_dropped: AtomicU64,
    /// Requests from a known scanner's User-Agent, dropped from any source.
    pub scanners_dropped: AtomicU64,
    /// Requests over their source's `max_requests_per_source`, dropped.
    pub flood_limited: AtomicU64,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A point-in-time copy for reports and tests.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            received: get(&self.received),
            unparsable: get(&self.unparsable),
            rejected_requests: get(&self.rejected_requests),
            dropped_responses: get(&self.dropped_responses),
            stray_acks: get(&self.stray_acks),
            requests: get(&self.requests),
            transaction_timeouts: get(&self.transaction_timeouts),
            transport_errors: get(&self.transport_errors),
            untrusted_rejected: get(&self.untrusted_rejected),
            untrusted_dropped: get(&self.untrusted_dropped),
            scanners_dropped: get(&self.scanners_dropped),
            flood_limited: get(&self.flood_limited),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    pub received: u64,
    pub unparsable: u64,
    pub rejected_requests: u64,
    pub dropped_responses: u64,
    pub stray_acks: u64,
    pub requests: u64,
    pub transaction_timeouts: u64,
    pub transport_errors: u64,
    pub untrusted_rejected: u64,
    pub untrusted_dropped: u64,
    pub scanners_dropped: u64,
    pub flood_limited: u64,
}
