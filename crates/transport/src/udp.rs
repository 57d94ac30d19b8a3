//! UDP: one socket per listen address, a receive loop per socket, and the choice of which
//! socket a reply leaves from.
//!
//! Replies should leave from the socket the request arrived on: many NATs and SIP peers
//! only accept a response from the address they sent to (RFC 3261 §18.2.2, RFC 3581).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sihai_sip::net::{Peer, Transport};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::batch::RecvBuffers;
use crate::stats::bump;
use crate::{Received, Shared};

/// Pause after a receive error so a persistent one cannot spin the loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

pub(crate) struct UdpListener {
    /// The bound address (port 0 resolved); also what `Received::local` reports.
    pub local: SocketAddr,
    pub socket: Arc<UdpSocket>,
}

/// Delivers every datagram on `socket` to the sink until the sink closes. Cancelled at
/// shutdown. Reads everything queued at each wake-up, up to a batch per system call.
pub(crate) async fn receive_loop(
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    sink: mpsc::Sender<Received>,
) {
    let mut buffers = RecvBuffers::new();
    loop {
        let received = match socket.readable().await {
            Ok(()) => buffers.receive(&socket),
            Err(error) => Err(error),
        };
        match received {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => {
                tracing::debug!(%local, %error, "UDP receive error");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        }
        for (data, from) in buffers.datagrams() {
            // Empty datagrams and bare CRLFs are keep-alive noise some UAs send over UDP.
            if data.iter().all(|&b| b == b'\r' || b == b'\n') {
                continue;
            }
            bump(&shared.counters.udp_datagrams_received);
            let received = Received {
                data: Bytes::copy_from_slice(data),
                source: Peer::new(Transport::Udp, from),
                local,
            };
            if sink.send(received).await.is_err() {
                tracing::debug!(%local, "sink closed; stopping UDP receive");
                return;
            }
        }
    }
}

/// The socket to send to `to` from: the one bound to `via_local` if there is one of the
/// right address family, else the first socket of that family.
pub(crate) fn pick(
    listeners: &[UdpListener],
    to: SocketAddr,
    via_local: Option<SocketAddr>,
) -> Option<&UdpListener> {
    let same_family = |l: &&UdpListener| l.local.is_ipv4() == to.is_ipv4();
    via_local
        .and_then(|want| {
            listeners
                .iter()
                .filter(same_family)
                .find(|l| l.local == want)
        })
        .or_else(|| listeners.iter().find(same_family))
}
