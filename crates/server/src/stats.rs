//! Counters for what the endpoint did with each message and call, shared with whoever
//! reports them (the log, the admin API's `GET /api/v1/node`). Atomics only: the
//! signalling loop is their one writer and never waits for a reader; they are tallies,
//! not locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use jiff::Timestamp;
pub use sihai_metrics::LatencyHistogram;
use sihai_records::{Cdr, Outcome};
use sihai_transaction::SipCounters;

/// How many whole seconds [`Stats::snapshot`]'s call setup rate is taken over.
pub const SETUP_RATE_SECONDS: u64 = 10;
/// How many minutes (the current one included) the answer rate is taken over.
pub const ANSWER_RATE_MINUTES: u64 = 60;

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
    /// Calls in progress (in setup, ringing, in a voice menu or talking), as of the
    /// signalling loop's last turn.
    pub calls_in_progress: AtomicU64,
    /// New calls: initial INVITEs handed to call control, since start.
    pub calls_offered: AtomicU64,
    /// Finished calls by how they ended, since start (the groups of traffic analysis:
    /// answered, missed as `sihai_analytics::MISSED` says, refused).
    pub calls_answered: AtomicU64,
    pub calls_missed: AtomicU64,
    pub calls_refused: AtomicU64,
    /// SIP messages by method and class (the transaction layer and the core count).
    pub sip: Arc<SipCounters>,
    /// 1 while the node drains on its way to stopping (new calls refused), else 0.
    pub draining: AtomicU64,
    /// New calls answered `503` because the node was draining (they have no CDR).
    pub calls_refused_draining: AtomicU64,
    /// Transactions live or lingering, as of the signalling loop's last turn.
    pub transactions: AtomicU64,
    /// Answered calls still talking, as of the signalling loop's last turn.
    pub calls_talking: AtomicU64,
    /// Calls holding (or waiting for) a prepaid reservation, as of the last turn.
    pub reservations_open: AtomicU64,
    /// The relay's port pairs: free, and in all (0 when the relay is off).
    pub relay_ports_free: AtomicU64,
    pub relay_ports: AtomicU64,
    /// RTP packets the relay forwarded, and dropped, on calls that ended.
    pub relay_packets: AtomicU64,
    pub relay_dropped: AtomicU64,
    /// Finished calls by [`Outcome`], in [`Outcome::ALL`] order.
    pub outcomes: [AtomicU64; Outcome::ALL.len()],
    /// Talk time of finished calls, seconds: with the answered count, the average
    /// call duration.
    pub talk_seconds: AtomicU64,
    /// Phones tried by hunts, by [`HUNT_RESULTS`].
    pub hunt_attempts: [AtomicU64; HUNT_RESULTS.len()],
    /// RFC 6076 session request delay: the INVITE's arrival to the first ringing,
    /// answer or final response, every finished call.
    pub session_request_delay: LatencyHistogram,
    /// The INVITE's arrival to the answer, answered calls.
    pub answer_delay: LatencyHistogram,
    /// CRM lookups by how they came out, in [`CRM_RESULTS`] order (published once a
    /// turn from the B2BUA's counts).
    pub crm_lookups: [AtomicU64; CRM_RESULTS.len()],
    /// Answered calls cut off when their money ran out.
    pub billing_cutoffs: AtomicU64,
    /// Missed-call and account notices: delivered, attempts failed, given up.
    pub alerts_delivered: AtomicU64,
    pub alerts_failed: AtomicU64,
    pub alerts_given_up: AtomicU64,
    /// Notices in the outbox not yet delivered, as of the delivery worker's last poll.
    pub alerts_backlog: AtomicU64,
    /// New calls per wall-clock second, the last few seconds.
    setups: Window<1, 16>,
    /// Answered and missed calls per wall-clock minute, the last hour.
    answered: Window<60, 64>,
    missed: Window<60, 64>,
}

/// Counts per period of `PERIOD` seconds (of Unix time) in a ring of `N` slots, each
/// stamped with its period: one writer bumps, any reader sums the periods it wants,
/// without a lock. A slot is reused only `N` periods later, so a reader summing fewer
/// than `N - 1` periods never meets one being reset.
#[derive(Debug)]
struct Window<const PERIOD: u64, const N: usize> {
    slots: [Slot; N],
}

#[derive(Debug, Default)]
struct Slot {
    period: AtomicU64,
    count: AtomicU64,
}

impl<const PERIOD: u64, const N: usize> Default for Window<PERIOD, N> {
    fn default() -> Self {
        Window {
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }
}

impl<const PERIOD: u64, const N: usize> Window<PERIOD, N> {
    fn period_of(at: Timestamp) -> u64 {
        u64::try_from(at.as_second()).unwrap_or(0) / PERIOD
    }

    fn slot(&self, period: u64) -> &Slot {
        // N is a small constant: the index fits.
        &self.slots[usize::try_from(period % N as u64).unwrap_or(0)]
    }

    /// One more at `at` (the one writer only).
    fn add(&self, at: Timestamp) {
        let period = Self::period_of(at);
        let slot = self.slot(period);
        if slot.period.load(Ordering::Acquire) != period {
            slot.count.store(0, Ordering::Relaxed);
            slot.period.store(period, Ordering::Release);
        }
        slot.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The count of the `periods` periods ending with the one `back` periods before
    /// `at`'s (0: `at`'s own, still going).
    fn sum(&self, at: Timestamp, back: u64, periods: u64) -> u64 {
        let last = Self::period_of(at).saturating_sub(back);
        (0..periods.min(N as u64 - 1))
            .filter_map(|i| last.checked_sub(i))
            .map(|period| {
                let slot = self.slot(period);
                if slot.period.load(Ordering::Acquire) == period {
                    slot.count.load(Ordering::Relaxed)
                } else {
                    0
                }
            })
            .sum()
    }
}

impl Stats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A new call was handed to call control at `at`.
    pub(crate) fn call_offered(&self, at: Timestamp) {
        Stats::bump(&self.calls_offered);
        self.setups.add(at);
    }

    /// A finished call's record: its outcome, talk time, phones tried and delays.
    pub(crate) fn call_recorded(&self, cdr: &Cdr) {
        self.call_ended(cdr.outcome, cdr.end_at);
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == cdr.outcome) {
            Stats::bump(&self.outcomes[i]);
        }
        self.talk_seconds
            .fetch_add(u64::from(cdr.talk_seconds), Ordering::Relaxed);
        if cdr.outcome == Outcome::OutOfCredit && cdr.answer_at.is_some() {
            Stats::bump(&self.billing_cutoffs);
        }
        for attempt in &cdr.attempts {
            Stats::bump(&self.hunt_attempts[hunt_result_index(&attempt.result)]);
        }
        let first_answer = cdr.ring_at.or(cdr.answer_at).unwrap_or(cdr.end_at);
        // A negative span (the wall clock stepped back) counts as zero.
        let span = |from: Timestamp, to: Timestamp| {
            std::time::Duration::try_from(to.duration_since(from)).unwrap_or_default()
        };
        self.session_request_delay
            .observe(span(cdr.setup_at, first_answer));
        if let Some(answer_at) = cdr.answer_at {
            self.answer_delay.observe(span(cdr.setup_at, answer_at));
        }
    }

    /// A call ended with `outcome` at `at`.
    pub(crate) fn call_ended(&self, outcome: Outcome, at: Timestamp) {
        if outcome == Outcome::Answered {
            Stats::bump(&self.calls_answered);
            self.answered.add(at);
        } else if sihai_analytics::MISSED.contains(&outcome) {
            Stats::bump(&self.calls_missed);
            self.missed.add(at);
        } else {
            Stats::bump(&self.calls_refused);
        }
    }

    /// The calls in progress now (set by the signalling loop).
    pub(crate) fn set_calls_in_progress(&self, calls: usize) {
        self.calls_in_progress
            .store(u64::try_from(calls).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The call figures at `now`: the setup rate over the [`SETUP_RATE_SECONDS`] whole
    /// seconds before `now`'s, answered and missed calls over the current minute and
    /// the [`ANSWER_RATE_MINUTES`]` - 1` before it.
    pub fn calls(&self, now: Timestamp) -> CallStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let setups = self.setups.sum(now, 1, SETUP_RATE_SECONDS);
        CallStats {
            in_progress: get(&self.calls_in_progress),
            offered: get(&self.calls_offered),
            answered: get(&self.calls_answered),
            missed: get(&self.calls_missed),
            refused: get(&self.calls_refused),
            // Counts of a few seconds are far below 2^52: exact as f64.
            setups_per_second: setups as f64 / SETUP_RATE_SECONDS as f64,
            answered_last_hour: self.answered.sum(now, 0, ANSWER_RATE_MINUTES),
            missed_last_hour: self.missed.sum(now, 0, ANSWER_RATE_MINUTES),
        }
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

/// How a CRM lookup came out, as metric label values (see
/// [`sihai_call::b2bua::CrmCounts`]).
pub const CRM_RESULTS: [&str; 5] = ["cached", "known", "unknown", "failed", "timed_out"];

/// What a hunt's attempt on one phone came to, as metric label values: a bounded set
/// (a phone's status code folds into `busy` or `rejected`).
pub const HUNT_RESULTS: [&str; 7] = [
    "answered",
    "busy",
    "no_answer",
    "rejected",
    "at_capacity",
    "unreachable",
    "other",
];

fn hunt_result_index(result: &str) -> usize {
    let label = match result {
        "answered" => "answered",
        "486" | "600" => "busy",
        "no_answer" | "timeout" | "480" | "408" => "no_answer",
        "at_capacity" => "at_capacity",
        "transport_error" => "unreachable",
        r if r.parse::<u16>().is_ok() => "rejected",
        _ => "other",
    };
    HUNT_RESULTS
        .iter()
        .position(|r| *r == label)
        .unwrap_or(HUNT_RESULTS.len() - 1)
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

/// What the admin API may read of the running node: atomics the signalling loop
/// publishes, never a lock it takes or a reader it waits for.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub stats: Arc<Stats>,
    /// When the daemon started.
    pub started_at: Timestamp,
    /// The tenant revision the running configuration was assembled from.
    tenant_revision: Arc<AtomicI64>,
    /// The store's CDR writer: its queue and commits.
    pub store: Arc<sihai_store::WriterStats>,
}

impl NodeView {
    pub(crate) fn new(
        stats: Arc<Stats>,
        started_at: Timestamp,
        tenant_revision: Arc<AtomicI64>,
        store: Arc<sihai_store::WriterStats>,
    ) -> NodeView {
        NodeView {
            stats,
            started_at,
            tenant_revision,
            store,
        }
    }

    /// The tenant revision in force: a write through the API is in force once this
    /// reaches its revision.
    pub fn tenant_revision(&self) -> i64 {
        self.tenant_revision.load(Ordering::Relaxed)
    }
}

/// The call figures of [`Stats::calls`]: totals since start, and the recent rates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CallStats {
    pub in_progress: u64,
    pub offered: u64,
    pub answered: u64,
    pub missed: u64,
    pub refused: u64,
    /// New calls per second over the last [`SETUP_RATE_SECONDS`] whole seconds.
    pub setups_per_second: f64,
    pub answered_last_hour: u64,
    pub missed_last_hour: u64,
}

impl CallStats {
    /// answered ÷ (answered + missed) over the last hour, as traffic analysis computes
    /// it (a refused call never reached a phone); `None` without such calls.
    pub fn answer_rate_last_hour(&self) -> Option<f64> {
        let offered = self.answered_last_hour + self.missed_last_hour;
        (offered > 0).then(|| self.answered_last_hour as f64 / offered as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).expect("a time")
    }

    #[test]
    fn setups_are_counted_per_second_over_the_last_ten_whole_seconds() {
        let stats = Stats::default();
        // 1_800_000_000 is a multiple of 60 and of 1: second 0 starts a minute.
        for second in [0, 0, 3, 9, 10, 10, 10] {
            stats.call_offered(at(second));
        }
        // At second 10 (still going): the whole seconds 0..=9 hold 4 setups.
        let calls = stats.calls(at(10));
        assert_eq!(calls.offered, 7);
        assert!((calls.setups_per_second - 0.4).abs() < 1e-9, "{calls:?}");
        // At 11: 1..=10, so the two of second 0 are out and the three of 10 in.
        assert!((stats.calls(at(11)).setups_per_second - 0.5).abs() < 1e-9);
        // Long after: none, though the slots still hold old periods.
        assert_eq!(stats.calls(at(100)).setups_per_second, 0.0);
        // A slot is reset when its second comes round again (112 takes 0's).
        stats.call_offered(at(112));
        assert!((stats.calls(at(113)).setups_per_second - 0.1).abs() < 1e-9);
    }

    #[test]
    fn the_answer_rate_is_answered_over_answered_and_missed_in_the_last_hour() {
        let stats = Stats::default();
        assert_eq!(stats.calls(at(0)).answer_rate_last_hour(), None);
        stats.call_ended(Outcome::Answered, at(0));
        stats.call_ended(Outcome::Answered, at(61));
        stats.call_ended(Outcome::NoAnswer, at(62));
        stats.call_ended(Outcome::Cancelled, at(3_000));
        stats.call_ended(Outcome::Blacklisted, at(3_000));
        stats.call_ended(Outcome::OutOfCredit, at(3_000));
        let calls = stats.calls(at(3_000));
        assert_eq!((calls.answered, calls.missed, calls.refused), (2, 2, 2));
        assert_eq!(calls.answer_rate_last_hour(), Some(0.5));
        // 59 minutes later, the minute of the first call is out of the hour.
        let later = stats.calls(at(60 * 60));
        assert_eq!((later.answered_last_hour, later.missed_last_hour), (1, 2));
        assert_eq!(stats.calls(at(100_000)).answer_rate_last_hour(), None);
    }

    #[test]
    fn calls_in_progress_are_what_the_loop_last_set() {
        let stats = Stats::default();
        stats.set_calls_in_progress(3);
        assert_eq!(stats.calls(at(0)).in_progress, 3);
        stats.set_calls_in_progress(0);
        assert_eq!(stats.calls(at(0)).in_progress, 0);
    }
}
