//! SMPP 3.4 transmitter client for the missed-call SMS, sans-IO like the rest of sihai's
//! protocol cores: [`Session`] is fed bytes ([`Session::handle_input`]), the edge's
//! socket news ([`Session::handle_connected`], [`Session::handle_disconnected`]) and
//! the clock ([`Session::handle_timeout`]), and hands back bytes to write
//! ([`Session::poll_transmit`]), [`Event`]s and the next instant it must be woken at
//! ([`Session::poll_timeout`]). No socket, no thread, no sleep: every timer path (keep-
//! alive, response timeouts, reconnect backoff, rate limit) is tested on a virtual clock.
//!
//! Decisions a user of this crate must know:
//!
//! - **Transmitter only.** Receipts arrive on a transmitter bind from most SMSCs that
//!   support it; where an SMSC sends them only to a receiver, a second session would be
//!   needed (not built).
//! - **Text is always UCS-2** (`data_coding` 0x08): the texts are Chinese. Long texts go
//!   as concatenated parts with an 8-bit-reference UDH, 67 UTF-16 units per part, never
//!   splitting a surrogate pair.
//! - **At-least-once is the caller's.** A message whose submit timed out or whose link
//!   dropped mid-flight is reported as [`SubmitFailure::Timeout`] or
//!   [`SubmitFailure::ConnectionLost`]: the SMSC may or may not have it. Only
//!   [`SubmitFailure::NotSent`] is certain. The outbox decides whether to retry.
//! - **No jitter on the backoff**: one client per node talks to one SMSC, so there is no
//!   herd to spread.

mod error;
pub mod pdu;
mod rate;
pub mod receipt;
mod session;
pub mod text;

pub use error::{PduError, SubmitError, TextError};
pub use pdu::{Body, Pdu};
pub use rate::TokenBucket;
pub use receipt::{DeliveryReceipt, DeliveryState};
pub use session::{
    CloseReason, Event, MessageKey, OutgoingSms, Session, SessionConfig, SessionState,
    SubmitFailure,
};
