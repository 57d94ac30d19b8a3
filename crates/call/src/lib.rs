//! B2BUA call control for 400-number calls, sans-IO.
//!
//! A call is two or more SIP dialogs with nothing in common on the wire: the inbound leg
//! (sihai is the UAS toward the carrier) and one outbound leg per bound phone tried
//! (sihai is the UAC), each with its own Call-ID, tags and CSeq. [`B2bua`] routes a new
//! INVITE ([`sihai_routing`]), admits it against the number's limits, hunts the group
//! ([`sihai_hunt`]), relays provisional and final responses, ACKs and BYEs per leg,
//! relays in-dialog requests, enforces the maximum call duration, and emits one
//! [`sihai_records::Cdr`] (plus a missed-call alert when nobody answered) when the call
//! ends, however it ends.
//!
//! Like the transaction layer it drives, it has no clock and no sockets: the server core
//! feeds it transaction events with the current instant and wall-clock time, and polls
//! it for datagrams to send, its next timer and finished call records.

pub mod b2bua;
pub mod dialog;
pub mod media;

pub use b2bua::{B2bua, B2buaConfig};
