//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! A non-INVITE client retransmits its request until it hears a final response, so the
//! server side's whole job is to hand the request to the TU once and to answer every
//! retransmission with the last response sent, for as long as retransmissions can
//! still arrive (Timer J, 64*T1 over UDP; none over a stream).
//!
//! The layer also runs CANCEL through this machine, answering it itself (§9.2).
//!
//! Completed over UDP is all waiting: the layer takes the final response out of the
//! machine and runs that state itself, compactly, until Timer J
//! (`layer.rs`, lingering transactions).

use bytes::Bytes;
use sihai_sip::{Message, Peer};

use crate::context::ServerCtx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

impl State {
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Trying => "Trying",
            State::Proceeding => "Proceeding",
            State::Completed => "Completed",
            State::Terminated => "Terminated",
        }
    }
}

#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    state: State,
    reply_to: Peer,
    /// Only the bytes: answering retransmissions is all it is kept for, for 64*T1
    /// over UDP, and the parsed header index would be most of what it weighs.
    last_response: Option<Bytes>,
}

impl ServerNonInvite {
    pub(crate) fn new(reply_to: Peer) -> ServerNonInvite {
        ServerNonInvite {
            state: State::Trying,
            reply_to,
            last_response: None,
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// The request came again. In Trying there is nothing to answer with yet: the
    /// retransmission is absorbed, and the TU is not told twice.
    pub(crate) fn on_retransmission(&mut self, ctx: &mut ServerCtx<'_>) {
        if matches!(self.state, State::Proceeding | State::Completed)
            && let Some(response) = &self.last_response
        {
            ctx.send(self.reply_to, response.clone());
        }
    }

    pub(crate) fn on_tu_response(
        &mut self,
        ctx: &mut ServerCtx<'_>,
        response: Message,
    ) -> Result<(), State> {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return Err(self.state);
        }
        let provisional = response.status().is_some_and(|s| s < 200);
        let wire = response.wire();
        ctx.send(self.reply_to, wire.clone());
        self.last_response = Some(wire);
        if provisional {
            self.state = State::Proceeding;
            return Ok(());
        }
        // Over a stream nothing is retransmitted, so there is nothing to wait for.
        self.state = if self.reply_to.transport.is_reliable() {
            State::Terminated
        } else {
            State::Completed
        };
        Ok(())
    }

    /// Completed: the final response is sent and only its retransmission is left to do.
    pub(crate) fn is_completed(&self) -> bool {
        self.state == State::Completed
    }

    /// The final response, for the layer to answer retransmissions with while it waits
    /// out Timer J.
    pub(crate) fn into_last_response(self) -> Option<Bytes> {
        self.last_response
    }
}
