//! Where a message came from or goes to: the transport and the remote socket address.
//!
//! These live in the wire-format crate because Via headers name transports and
//! response routing (RFC 3261 §18.2.2, RFC 3581) is a pure function of a Via and the
//! address a request arrived from.

use std::fmt;
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The token used in Via headers and `transport=` URI parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Stream transports deliver reliably, so the transaction layer does not retransmit.
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// Case-insensitive match of a Via transport token; `None` for transports we do not run.
    pub fn from_token(token: &str) -> Option<Transport> {
        if token.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if token.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else {
            None
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The far end of a hop: which transport and which socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Peer {
    pub fn new(transport: Transport, addr: SocketAddr) -> Self {
        Peer { transport, addr }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}
