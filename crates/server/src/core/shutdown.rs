//! The node's graceful shutdown, as events and instants like everything else in the
//! core: the daemon only turns each SIGTERM (or SIGINT) into [`Core::shut_down`] and asks
//! [`Core::poll_shutdown`] after every step whether it may exit.
//!
//! 1. The first request starts the drain: new calls (INVITEs without a To tag that are
//!    no retransmission of a call in progress) and OPTIONS get `503` with
//!    `Retry-After`, so that carriers try another node and a dispatcher probing with
//!    OPTIONS takes this one out of its set; calls in progress and their in-dialog
//!    requests go on as usual.
//! 2. When no call is left, or at the end of the drain time, or at a second request,
//!    the calls left are ended by the node ([`sihai_call::B2bua::end_all_calls`]: BYE to
//!    both legs, `503` and CANCEL for calls in setup, a CDR each).
//! 3. Our last requests (those BYEs and CANCELs, or a BYE relayed for a call that ended
//!    by itself) then get [`HANG_UP_GRACE`] to be answered, retransmitted meanwhile by
//!    their transactions; an unresponsive peer costs that long and no more. A further
//!    request stops waiting at once.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use sihai_sip::Message;
use sihai_transaction::ServerKey;
use tracing::{debug, info, warn};

use super::{Core, new_tag};
use crate::responder;
use crate::stats::Stats;

/// `Retry-After` (seconds) of the `503`s a shutting-down node sends: long enough for a
/// carrier to turn to another node, short enough that a node restarted for an upgrade
/// gets traffic back soon.
pub const RETRY_AFTER_S: u32 = 5;

/// How long our last BYEs and CANCELs get to be answered before the node stops anyway:
/// with T1 = 500 ms a request unanswered is sent four times meanwhile (0, 0.5, 1.5,
/// 3.5 s), and a peer that answers at all answers well within it.
pub const HANG_UP_GRACE: Duration = Duration::from_secs(4);

/// How often at most the drain logs how many calls are left.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Where the node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lifecycle {
    Serving,
    /// New calls are refused while the calls in progress end by themselves, until
    /// `until`; the calls left then are ended by the node.
    Draining {
        until: Instant,
    },
    /// No call is left; our last requests get until `until` to be answered.
    HangingUp {
        until: Instant,
    },
    /// Done: the daemon may flush its store and exit.
    Stopped,
}

/// What the drain last logged about the calls left, so that it logs a change at most
/// once per [`PROGRESS_INTERVAL`].
#[derive(Debug, Default)]
pub(super) struct DrainProgress {
    logged_left: usize,
    next_log: Option<Instant>,
}

impl Lifecycle {
    /// The instant the shutdown has to move on at, if it has one.
    pub(super) fn deadline(self) -> Option<Instant> {
        match self {
            Lifecycle::Draining { until } | Lifecycle::HangingUp { until } => Some(until),
            Lifecycle::Serving | Lifecycle::Stopped => None,
        }
    }
}

impl Core {
    /// One request to stop (SIGTERM, SIGINT). The first starts the drain, for
    /// `drain_timeout` at most (zero: the calls are ended now); the second ends the
    /// calls left now; any later one stops waiting for the answers to our last requests.
    pub fn shut_down(&mut self, now: Instant, wall: Timestamp, drain_timeout: Duration) {
        match self.lifecycle {
            Lifecycle::Serving => {
                self.draining = true;
                let calls = self.calls.calls_left();
                info!(
                    calls,
                    drain_timeout_s = drain_timeout.as_secs(),
                    "draining: new calls and OPTIONS get 503, calls in progress go on"
                );
                self.drain_progress = DrainProgress {
                    logged_left: calls,
                    next_log: Some(now + PROGRESS_INTERVAL),
                };
                self.lifecycle = Lifecycle::Draining {
                    until: now + drain_timeout,
                };
                if drain_timeout.is_zero() {
                    self.end_calls_left(now, wall, "no drain time");
                }
            }
            Lifecycle::Draining { .. } => {
                self.end_calls_left(now, wall, "second shutdown request");
            }
            Lifecycle::HangingUp { .. } => {
                info!(
                    unanswered = self.calls.requests_in_flight(),
                    "shutdown requested again: not waiting for the last answers"
                );
                self.lifecycle = Lifecycle::HangingUp { until: now };
            }
            Lifecycle::Stopped => {}
        }
    }

    /// Whether the node may exit now. Moves the shutdown on (the drain is over when no
    /// call is left); ask after every step once [`Core::shut_down`] was called.
    pub fn poll_shutdown(&mut self, now: Instant, wall: Timestamp) -> bool {
        self.advance_shutdown(now, wall);
        self.lifecycle == Lifecycle::Stopped
    }

    /// Whether new calls are refused.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Calls in progress, those waiting for the store to admit them included.
    pub fn calls_left(&self) -> usize {
        self.calls.calls_left()
    }

    pub(super) fn advance_shutdown(&mut self, now: Instant, wall: Timestamp) {
        if let Lifecycle::Draining { until } = self.lifecycle {
            let left = self.calls.calls_left();
            if left == 0 {
                info!("drain complete: no call left");
                self.lifecycle = Lifecycle::HangingUp {
                    until: now + HANG_UP_GRACE,
                };
            } else if now >= until {
                self.end_calls_left(now, wall, "drain time over");
            } else if left != self.drain_progress.logged_left
                && self.drain_progress.next_log.is_none_or(|at| now >= at)
            {
                info!(calls_left = left, "draining");
                self.drain_progress = DrainProgress {
                    logged_left: left,
                    next_log: Some(now + PROGRESS_INTERVAL),
                };
            }
        }
        if let Lifecycle::HangingUp { until } = self.lifecycle {
            let unanswered = self.calls.requests_in_flight();
            if unanswered == 0 {
                info!("shutdown complete: no call left, every request answered");
                self.lifecycle = Lifecycle::Stopped;
            } else if now >= until {
                warn!(
                    unanswered,
                    "shutdown complete: stopping with requests unanswered"
                );
                self.lifecycle = Lifecycle::Stopped;
            }
        }
    }

    /// Answers a new call or an OPTIONS probe while draining: `503` with `Retry-After`.
    pub(super) fn refuse_while_draining(
        &mut self,
        now: Instant,
        key: &ServerKey,
        request: &Message,
    ) {
        if request.method() == Some(sihai_sip::Method::Invite) {
            // No CDR is written for these (the carrier tries another node): the
            // metrics are where an operator sees how many calls an upgrade turned away.
            Stats::bump(&self.stats.calls_refused_draining);
        }
        let answer = responder::unavailable(RETRY_AFTER_S);
        let response = answer.build(request, &new_tag(), &self.user_agent);
        if let Err(err) = self.transactions.respond(now, key, response) {
            debug!(%err, "could not respond");
        }
    }

    /// Ends every call left (see [`sihai_call::B2bua::end_all_calls`]) and waits for
    /// the answers to what that sent.
    fn end_calls_left(&mut self, now: Instant, wall: Timestamp, why: &str) {
        let left = self.calls.calls_left();
        info!(calls = left, "{why}: ending the calls left");
        self.calls
            .end_all_calls(&mut self.transactions, RETRY_AFTER_S, now, wall);
        self.drain_events(now, wall);
        self.lifecycle = Lifecycle::HangingUp {
            until: now + HANG_UP_GRACE,
        };
    }
}
