//! The SIP wire format (RFC 3261 §7, §19, §20, §25), with no I/O.
pub mod framing;
pub mod net;
