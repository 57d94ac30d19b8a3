//! Creating listening sockets with the options that must be set before `bind()`.
//!
//! tokio's `bind` cannot set IPV6_V6ONLY, so on Linux (where `net.ipv6.bindv6only` is 0)
//! `[::]:5060` would also claim IPv4 and `0.0.0.0:5060` would then fail to bind. A SIP
//! server also wants a large UDP receive buffer to ride out bursts, and SO_REUSEADDR on
//! TCP listeners so a restart is not blocked by connections in TIME_WAIT.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

/// Requested SO_RCVBUF for UDP listeners; the kernel may cap it (`net.core.rmem_max`).
const UDP_RECV_BUFFER: usize = 4 * 1024 * 1024;
const TCP_BACKLOG: i32 = 1024;

fn new_socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

pub(crate) fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    // Best effort: a small buffer only costs drops under load, so it is not fatal.
    match socket.set_recv_buffer_size(UDP_RECV_BUFFER) {
        Ok(()) => {
            let got = socket.recv_buffer_size().unwrap_or(0);
            tracing::debug!(%addr, requested = UDP_RECV_BUFFER, got, "UDP receive buffer");
        }
        Err(error) => tracing::debug!(%addr, %error, "could not enlarge UDP receive buffer"),
    }
    // No SO_REUSEADDR on UDP: on Linux it would let a second process share the port and
    // take a share of the datagrams.
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

pub(crate) fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    // On Windows SO_REUSEADDR means "allow stealing a bound port", which we never want.
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    TcpListener::from_std(socket.into())
}
