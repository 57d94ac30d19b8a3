//! RFC 3261 §17 transactions, sans-IO: the four state machines (client and server,
//! INVITE and non-INVITE) and the layer that matches messages to them.
//!
//! The layer owns no socket, no thread and no clock. The caller feeds it what happened
//! ([`TransactionLayer::handle_received`], [`TransactionLayer::send_request`],
//! [`TransactionLayer::respond`], [`TransactionLayer::handle_timeout`],
//! [`TransactionLayer::handle_transport_error`]) with the current [`Instant`](std::time::Instant), then
//! drains what it wants done ([`TransactionLayer::poll_transmit`],
//! [`TransactionLayer::poll_event`]) and sleeps until
//! [`TransactionLayer::poll_timeout`]. Keeping time and I/O outside means every timer
//! path is tested with a virtual clock in microseconds, and the same core runs under
//! any event loop.
//!
//! Decisions a user of this crate must know:
//!
//! - **100 Trying is the TU's job.** The layer never invents a provisional response; the
//!   TU sends `100 Trying` through [`TransactionLayer::respond`] as soon as it sees an
//!   INVITE (§17.2.1 allows either; the TU knows whether it will answer within 200 ms
//!   and can skip it then).
//! - **2xx to INVITE ends the server transaction** (RFC 3261, not RFC 6026): the layer
//!   sends the 2xx once; retransmitting it until the ACK arrives is the TU's (dialog's)
//!   job (§13.3.1.4), and that ACK surfaces as [`Event::StrayAck`]. A retransmitted
//!   INVITE arriving after that creates a new transaction, which the dialog recognises.
//! - **2xx to a client INVITE ends the client transaction**: the 2xx is passed up, and
//!   its retransmissions (and 2xx from other forks) come up as
//!   [`Event::StrayResponse`]; the TU ACKs them itself (§13.2.2.4).
//! - **CANCEL is answered by the layer** (§9.2): `200` when it matches an INVITE server
//!   transaction, `481` otherwise; the TU only hears [`Event::Cancelled`], and only
//!   while that INVITE still awaits its final response.
//! - **No Timer C** (§16.6 step 11): a client INVITE that got a provisional response
//!   waits for its final one for as long as the TU lets it; CANCEL is the TU's call.

mod client_invite;
mod client_non_invite;
mod context;
pub mod counters;
mod error;
mod key;
mod layer;
mod server_invite;
mod server_non_invite;
mod timer;

use std::time::Duration;

use bytes::Bytes;
use sihai_sip::{Message, Peer};

pub use counters::SipCounters;
pub use error::TransactionError;
pub use key::{ClientKey, ServerKey, TransactionKey};
pub use layer::TransactionLayer;

/// The RFC 3261 §17.1.1.1 timer base values; every other timer derives from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate: first retransmission interval; 64*T1 bounds a transaction.
    pub t1: Duration,
    /// Cap on the retransmission interval of non-INVITE requests and INVITE finals.
    pub t2: Duration,
    /// How long a message may linger in the network: Timers I and K.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// A retransmission interval of zero would fire forever at the same instant, so T1
    /// is at least 1 ms and T2 at least T1.
    pub(crate) fn sanitized(self) -> TimerConfig {
        let t1 = self.t1.max(Duration::from_millis(1));
        TimerConfig {
            t1,
            t2: self.t2.max(t1),
            t4: self.t4,
        }
    }

    /// 64*T1: Timers B, F, H and J.
    pub(crate) fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D must outlast the server's Timer H window of retransmitted finals: at
    /// least 32 s (Table 4), and 64*T1 when T1 is configured above its default.
    pub(crate) fn timer_d(&self) -> Duration {
        Duration::from_secs(32).max(self.t1x64())
    }
}

/// Bytes the caller must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: Peer,
    pub payload: Bytes,
}

/// What the transaction user (TU) needs to know.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new request, with the server transaction created for it. Retransmissions of it
    /// are absorbed and never come up again. Never an ACK (ACK has no transaction) and
    /// never a CANCEL (the layer answers those itself; see [`Event::Cancelled`]).
    Request {
        key: ServerKey,
        request: Message,
        source: Peer,
    },
    /// An ACK that matched no INVITE server transaction: the ACK for a 2xx, which
    /// belongs to the dialog (§17.2.3, §13.3.1.4).
    StrayAck { request: Message, source: Peer },
    /// A CANCEL matched this INVITE server transaction while it had not yet sent a final
    /// response. The layer has already answered the CANCEL with `200`; the TU should
    /// now answer the INVITE with `487` (§9.2) unless it has a final response ready.
    Cancelled { invite: ServerKey },
    /// A response for a client transaction: provisional ones, the first final one, and
    /// for INVITE a 2xx that arrives after a non-2xx final (another fork: the TU must
    /// ACK and BYE it). Retransmitted non-2xx finals are absorbed.
    Response { key: ClientKey, response: Message },
    /// A response that matched no client transaction, e.g. a retransmitted 2xx to an
    /// INVITE whose transaction ended on the first 2xx.
    StrayResponse { response: Message, source: Peer },
    /// Timer B or F (client: no final response came) or H (server: no ACK came for a
    /// non-2xx final). A [`Event::Terminated`] for the same key follows.
    Timeout { key: TransactionKey },
    /// The transport could not deliver for this transaction (§17.1.4, §17.2.4). A
    /// [`Event::Terminated`] for the same key follows.
    TransportError { key: TransactionKey },
    /// The transaction is gone; its key may be reused. Also sent for the CANCEL server
    /// transactions the layer runs on its own, whose keys the TU never saw.
    Terminated { key: TransactionKey },
}
