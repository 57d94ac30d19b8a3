//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7).
//!
//! It exists so that an INVITE is handed to the TU once however often the client
//! retransmits it, and so that a non-2xx final response reaches the client reliably
//! even over UDP: the final is retransmitted (Timer G) until the ACK arrives, and the
//! transaction gives up after Timer H. A 2xx ends the transaction at once; the TU
//! retransmits it (§13.3.1.4), because the ACK for a 2xx is end-to-end and may come
//! from anywhere along the dialog's route.
//!
//! The transaction never sends `100 Trying` on its own: the TU does (see the crate
//! documentation).

use std::time::Duration;

use sihai_sip::{Message, Peer};

use crate::context::ServerCtx;
use crate::timer::Timer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Proceeding,
    Completed,
    Confirmed,
    Terminated,
}

impl State {
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Proceeding => "Proceeding",
            State::Completed => "Completed",
            State::Confirmed => "Confirmed",
            State::Terminated => "Terminated",
        }
    }
}

#[derive(Debug)]
pub(crate) struct ServerInvite {
    state: State,
    /// Computed once from the top Via and the source (§18.2.2): every response and
    /// retransmission goes there.
    reply_to: Peer,
    /// The most recent response sent: what a retransmitted INVITE is answered with.
    last_response: Option<Message>,
    /// The next Timer G interval: T1, doubling, capped at T2.
    g_interval: Duration,
}

impl ServerInvite {
    pub(crate) fn new(reply_to: Peer) -> ServerInvite {
        ServerInvite {
            state: State::Proceeding,
            reply_to,
            last_response: None,
            g_interval: Duration::ZERO,
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// The To tag of the final response, once one was sent: RFC 2543 ACK matching
    /// compares it with the ACK's. `None` until a final response was sent.
    pub(crate) fn final_to_tag(&self) -> Option<Option<&str>> {
        if !matches!(self.state, State::Completed | State::Confirmed) {
            return None;
        }
        let response = self.last_response.as_ref()?;
        Some(response.to().ok().and_then(|to| to.tag()))
    }

    /// The To tag the TU chose for this INVITE, if a response carried one: the `200`
    /// to a CANCEL should carry the same (§9.2).
    pub(crate) fn to_tag(&self) -> Option<&str> {
        self.last_response.as_ref()?.to().ok()?.tag()
    }

    /// The INVITE came again: the client did not hear our last response.
    pub(crate) fn on_retransmission(&mut self, ctx: &mut ServerCtx<'_>) {
        match self.state {
            State::Proceeding | State::Completed => self.resend(ctx),
            // Confirmed: the ACK came, the client has our answer; absorb.
            State::Confirmed | State::Terminated => {}
        }
    }

    /// The ACK for our non-2xx final response. Returns whether it was absorbed; an ACK
    /// before any final response means nothing here and is dropped by the caller.
    pub(crate) fn on_ack(&mut self, ctx: &mut ServerCtx<'_>) -> bool {
        match self.state {
            State::Completed => {
                ctx.disarm(Timer::G);
                ctx.disarm(Timer::H);
                self.state = State::Confirmed;
                // Timer I absorbs ACK retransmissions; a stream delivers none.
                let wait = if self.reply_to.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    ctx.config().t4
                };
                if wait.is_zero() {
                    self.state = State::Terminated;
                } else {
                    ctx.arm(Timer::I, wait);
                }
                true
            }
            State::Confirmed => true,
            State::Proceeding | State::Terminated => false,
        }
    }

    /// The TU answers. Refused (with the state's name) once a final response was sent.
    pub(crate) fn on_tu_response(
        &mut self,
        ctx: &mut ServerCtx<'_>,
        response: Message,
    ) -> Result<(), State> {
        if self.state != State::Proceeding {
            return Err(self.state);
        }
        let status = response.status().unwrap_or_default();
        ctx.send(self.reply_to, response.wire());
        match status {
            100..=199 => self.last_response = Some(response),
            200..=299 => {
                // The dialog retransmits the 2xx and absorbs the ACK (§13.3.1.4).
                self.last_response = Some(response);
                self.state = State::Terminated;
            }
            _ => {
                self.last_response = Some(response);
                self.state = State::Completed;
                if !self.reply_to.transport.is_reliable() {
                    self.g_interval = ctx.config().t1;
                    ctx.arm(Timer::G, self.g_interval);
                }
                ctx.arm(Timer::H, ctx.config().t1x64());
            }
        }
        Ok(())
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut ServerCtx<'_>, timer: Timer) {
        match (self.state, timer) {
            (State::Completed, Timer::G) => {
                self.resend(ctx);
                self.g_interval = self.g_interval.saturating_mul(2).min(ctx.config().t2);
                ctx.arm(Timer::G, self.g_interval);
            }
            (State::Completed, Timer::H) => {
                // The ACK never came (§17.2.1): tell the TU, which may tear down.
                ctx.disarm(Timer::G);
                ctx.timeout();
                self.state = State::Terminated;
            }
            (State::Confirmed, Timer::I) => self.state = State::Terminated,
            _ => {}
        }
    }

    fn resend(&self, ctx: &mut ServerCtx<'_>) {
        if let Some(response) = &self.last_response {
            ctx.send(self.reply_to, response.wire());
        }
    }
}
