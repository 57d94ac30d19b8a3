//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5).
//!
//! It retransmits the INVITE over UDP until the far end shows a sign of life (Timer A,
//! doubling without cap, bounded by Timer B), and it owns the ACK for a non-2xx final
//! response: that ACK is hop-by-hop, built here (§17.1.1.3) and resent for every
//! retransmission of the final until Timer D, so the TU sees the final once. A 2xx
//! ends the transaction: its ACK is end-to-end and the TU's (§13.2.2.4).

use std::time::Duration;

use bytes::Bytes;
use sihai_sip::builder::MessageBuilder;
use sihai_sip::{Message, Peer};

use crate::context::ClientCtx;
use crate::timer::Timer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub(crate) struct ClientInvite {
    state: State,
    request: Message,
    destination: Peer,
    /// The next Timer A interval: T1, doubling (no cap: Timer B ends it first).
    a_interval: Duration,
    /// Built on the first non-2xx final, resent for each retransmission of it.
    ack: Option<Bytes>,
    /// The TU sent a CANCEL for this INVITE (§9.1).
    cancelled: bool,
}

impl ClientInvite {
    pub(crate) fn new(request: Message, destination: Peer) -> ClientInvite {
        ClientInvite {
            state: State::Calling,
            request,
            destination,
            a_interval: Duration::ZERO,
            ack: None,
            cancelled: false,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// Sends the INVITE and arms Timers A (UDP only) and B.
    pub(crate) fn start(&mut self, ctx: &mut ClientCtx<'_>) {
        ctx.send(self.destination, self.request.wire());
        if !self.destination.transport.is_reliable() {
            self.a_interval = ctx.config().t1;
            ctx.arm(Timer::A, self.a_interval);
        }
        ctx.arm(Timer::B, ctx.config().t1x64());
    }

    pub(crate) fn on_response(&mut self, ctx: &mut ClientCtx<'_>, response: Message) {
        let status = response.status().unwrap_or_default();
        match (self.state, status) {
            (State::Calling | State::Proceeding, 100..=199) => {
                if self.state == State::Calling {
                    // The server has it: no more retransmissions, and no Timer B.
                    ctx.disarm(Timer::A);
                    ctx.disarm(Timer::B);
                    self.state = State::Proceeding;
                    if self.cancelled {
                        ctx.arm(Timer::CancelGuard, ctx.config().t1x64());
                    }
                }
                ctx.pass_up(response);
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                ctx.disarm(Timer::A);
                ctx.disarm(Timer::B);
                ctx.disarm(Timer::CancelGuard);
                self.state = State::Terminated;
                ctx.pass_up(response);
            }
            (State::Calling | State::Proceeding, _) => {
                ctx.disarm(Timer::A);
                ctx.disarm(Timer::B);
                ctx.disarm(Timer::CancelGuard);
                let ack = MessageBuilder::ack_for(&self.request, &response)
                    .build()
                    .wire();
                ctx.send(self.destination, ack.clone());
                self.ack = Some(ack);
                self.state = State::Completed;
                let wait = if self.destination.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    ctx.config().timer_d()
                };
                if wait.is_zero() {
                    self.state = State::Terminated;
                } else {
                    ctx.arm(Timer::D, wait);
                }
                ctx.pass_up(response);
            }
            (State::Completed, 300..=699) => {
                // The server did not get our ACK and retransmitted its final.
                if let Some(ack) = &self.ack {
                    ctx.send(self.destination, ack.clone());
                }
            }
            // A 2xx after a non-2xx final comes from another fork (RFC 3261 would drop
            // it here); the TU must ACK and BYE it, so it goes up.
            (State::Completed, 200..=299) => ctx.pass_up(response),
            _ => {}
        }
    }

    /// The TU sent a CANCEL for this INVITE. §9.1: if no final response follows within
    /// 64*T1, the INVITE transaction is given up. In Calling Timer B already bounds it;
    /// the guard starts once a provisional response moved us to Proceeding.
    pub(crate) fn on_cancel_sent(&mut self, ctx: &mut ClientCtx<'_>) {
        if self.cancelled {
            return;
        }
        self.cancelled = true;
        if self.state == State::Proceeding {
            ctx.arm(Timer::CancelGuard, ctx.config().t1x64());
        }
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut ClientCtx<'_>, timer: Timer) {
        match (self.state, timer) {
            (State::Calling, Timer::A) => {
                ctx.send(self.destination, self.request.wire());
                self.a_interval = self.a_interval.saturating_mul(2);
                ctx.arm(Timer::A, self.a_interval);
            }
            (State::Calling, Timer::B) | (State::Proceeding, Timer::CancelGuard) => {
                ctx.disarm(Timer::A);
                ctx.timeout();
                self.state = State::Terminated;
            }
            (State::Completed, Timer::D) => self.state = State::Terminated,
            _ => {}
        }
    }
}
