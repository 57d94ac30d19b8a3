//! The SIP wire format (RFC 3261 §7, §19, §20, §25), with no I/O.
//!
//! [`Message::parse`] turns one datagram or one stream frame ([`framing::frame`]) into
//! a [`Message`] without copying; typed views ([`Via`], [`NameAddr`], [`Uri`], [`CSeq`])
//! are parsed on demand; [`validate`] says what is wrong with a request in the words
//! of a `400`; [`builder`] writes new messages and [`rewrite`] edits received ones for
//! forwarding without reparsing.
pub mod builder;
pub mod framing;
pub mod header;
pub mod message;
pub mod method;
pub mod name_addr;
pub mod net;
pub mod rewrite;
pub mod scan;
pub mod uri;
pub mod validate;
pub mod via;

pub use header::HeaderName;
pub use message::{CSeq, ContentLength, HeaderError, HeaderRef, Message, ParseError, Span};
pub use method::Method;
pub use name_addr::NameAddr;
pub use net::{Peer, Transport};
pub use uri::{Scheme, Uri};
pub use via::Via;
