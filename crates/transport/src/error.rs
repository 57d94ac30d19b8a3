//! Errors the transport hands back to its caller.
//!
//! Every variant names the address or peer involved, because "connection refused" on its
//! own says nothing when a proxy talks to hundreds of hops. Failures that happen later, on
//! a connection's own task (a peer resetting, a framing error), cannot be returned to
//! anyone; they close that connection and are logged with `tracing` instead.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use sihai_sip::net::{Peer, Transport};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("cannot bind {transport} listener on {addr}: {source}")]
    Bind {
        transport: Transport,
        addr: SocketAddr,
        source: io::Error,
    },

    #[error("no UDP listener of the address family of {addr} to send from")]
    NoUdpSocket { addr: SocketAddr },

    #[error("sending to {peer}: {source}")]
    Send { peer: Peer, source: io::Error },

    #[error("connecting to TCP:{addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },

    #[error("connecting to TCP:{addr}: no answer within {timeout:?}")]
    ConnectTimeout { addr: SocketAddr, timeout: Duration },

    #[error("not connecting to TCP:{addr}: the limit of {limit} TCP connections is reached")]
    TooManyConnections { addr: SocketAddr, limit: usize },

    /// The connection's send queue is full: the peer is not reading fast enough.
    #[error("send queue to {peer} is full")]
    Congested { peer: Peer },

    /// The connection closed between being picked and being handed the message.
    #[error("connection to {peer} closed before the message could be queued")]
    ConnectionClosed { peer: Peer },

    #[error("the transport has been shut down")]
    Shutdown,
}
