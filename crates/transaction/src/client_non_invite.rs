//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
//!
//! Non-INVITE requests are answered quickly or not at all, so the request is
//! retransmitted over UDP with an interval that grows only to T2 (Timer E), keeps
//! going at T2 after a provisional response (which proves the server alive but not
//! that our later retransmissions are unneeded), and the whole exchange is bounded by
//! Timer F. After the final response, Timer K absorbs its retransmissions so the TU
//! sees it once: the layer runs that Completed state itself, compactly, once the
//! machine reaches it (`layer.rs`, lingering transactions).

use std::time::Duration;

use bytes::Bytes;
use sihai_sip::{Message, Peer};

use crate::context::ClientCtx;
use crate::timer::Timer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    state: State,
    /// Only the bytes: retransmitting is all the request is kept for, and a held
    /// transaction (Timer K) should not pin the parsed header index.
    request: Bytes,
    destination: Peer,
    /// The next Timer E interval: T1 doubling to T2 in Trying, T2 in Proceeding.
    e_interval: Duration,
}

impl ClientNonInvite {
    pub(crate) fn new(request: Message, destination: Peer) -> ClientNonInvite {
        ClientNonInvite {
            state: State::Trying,
            request: request.wire(),
            destination,
            e_interval: Duration::ZERO,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// Completed: the final response came; only its retransmissions are left to absorb.
    pub(crate) fn is_completed(&self) -> bool {
        self.state == State::Completed
    }

    /// Sends the request and arms Timers E (UDP only) and F.
    pub(crate) fn start(&mut self, ctx: &mut ClientCtx<'_>) {
        ctx.send(self.destination, self.request.clone());
        if !self.destination.transport.is_reliable() {
            self.e_interval = ctx.config().t1;
            ctx.arm(Timer::E, self.e_interval);
        }
        ctx.arm(Timer::F, ctx.config().t1x64());
    }

    pub(crate) fn on_response(&mut self, ctx: &mut ClientCtx<'_>, response: Message) {
        let provisional = response.status().is_some_and(|s| s < 200);
        match self.state {
            State::Trying | State::Proceeding if provisional => {
                self.state = State::Proceeding;
                ctx.pass_up(response);
            }
            State::Trying | State::Proceeding => {
                ctx.disarm(Timer::E);
                ctx.disarm(Timer::F);
                // Over a stream, or with T4 zero, there is nothing to wait for.
                self.state =
                    if self.destination.transport.is_reliable() || ctx.config().t4.is_zero() {
                        State::Terminated
                    } else {
                        State::Completed
                    };
                ctx.pass_up(response);
            }
            // Retransmitted responses: the TU has the final already.
            State::Completed | State::Terminated => {}
        }
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut ClientCtx<'_>, timer: Timer) {
        match (self.state, timer) {
            (State::Trying | State::Proceeding, Timer::E) => {
                ctx.send(self.destination, self.request.clone());
                self.e_interval = if self.state == State::Proceeding {
                    ctx.config().t2
                } else {
                    self.e_interval.saturating_mul(2).min(ctx.config().t2)
                };
                ctx.arm(Timer::E, self.e_interval);
            }
            (State::Trying | State::Proceeding, Timer::F) => {
                ctx.disarm(Timer::E);
                ctx.timeout();
                self.state = State::Terminated;
            }
            _ => {}
        }
    }
}
