//! The socket edge of sihai: SIP over UDP and TCP on tokio.
//!
//! The protocol crates are sans-IO; this crate is the only place that owns sockets. It
//! moves bytes and nothing more: datagrams are delivered as they arrive, TCP streams are
//! cut into messages with [`sihai_sip::framing::frame`], and every message goes to one
//! `mpsc` sink together with where it came from. Sending is the reverse: a [`Peer`] and the
//! bytes. Parsing, routing and retransmission belong to the layers above.
//!
//! - `socket`: creating sockets with the options tokio cannot set.
//! - `udp`: receive loops and picking the socket a reply leaves from.
//! - `tcp`: connections, framing, idle timeout, the connection table.

mod batch;
mod error;
mod socket;
mod stats;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use sihai_sip::framing::FrameLimits;
use sihai_sip::net::{Peer, Transport};
use tokio::sync::{mpsc, watch};

pub use error::TransportError;
pub use stats::TransportStats;
pub use tcp::CONNECT_TIMEOUT;

use stats::{Counters, add, bump};
use udp::UdpListener;

#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Every socket to listen on. Port 0 picks a free port (see [`Transports::local_addrs`]).
    pub listen: Vec<(Transport, SocketAddr)>,
    /// A TCP connection with no bytes moving either way for this long is closed. A write
    /// that makes no progress for this long also closes it.
    pub tcp_idle_timeout: Duration,
    /// Inbound and outbound TCP connections together; inbound ones beyond it are closed
    /// as soon as they are accepted, outbound ones are not attempted.
    pub max_tcp_connections: usize,
    pub limits: FrameLimits,
}

/// A datagram or a framed stream message, with where it came from and which local socket got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub data: Bytes,
    pub source: Peer,
    /// UDP: the address the receiving socket is bound to (as in `local_addrs`, so it can be
    /// passed back as `via_local`). TCP: the connection's local address.
    pub local: SocketAddr,
}

/// The sending handle, and owner of every socket and task.
///
/// Cheap to clone. Everything is closed by [`Transports::shutdown`] or when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// What `send` needs; taken at shutdown so the sockets close and the sink can too.
    live: RwLock<Option<Live>>,
    local_addrs: Vec<(Transport, SocketAddr)>,
    /// Dropping it (with the last `Transports`) stops every task, as `shutdown` does.
    shutdown: watch::Sender<bool>,
}

struct Live {
    udp: Vec<UdpListener>,
    /// For connections `send` opens. Tasks hold their own clones, so the sink closes once
    /// the transport is shut down and every task has ended.
    sink: mpsc::Sender<Received>,
}

/// What the receive and connection tasks share.
pub(crate) struct Shared {
    limits: FrameLimits,
    tcp_idle_timeout: Duration,
    max_tcp_connections: usize,
    connections: tcp::Connections,
    counters: Counters,
    /// Becomes `true` at shutdown; a closed channel (all `Transports` dropped) means the same.
    shutdown: watch::Receiver<bool>,
}

impl Transports {
    /// Binds every listener (fails with context naming the address if one can't be bound),
    /// spawns receive tasks, and delivers every received message to `sink`.
    ///
    /// Nothing is spawned unless every listener binds. Must be called within a tokio runtime.
    pub async fn bind(
        config: TransportConfig,
        sink: mpsc::Sender<Received>,
    ) -> Result<Transports, TransportError> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        let mut local_addrs = Vec::new();
        for &(transport, addr) in &config.listen {
            let bound = match transport {
                Transport::Udp => socket::bind_udp(addr).and_then(|socket| {
                    let local = socket.local_addr()?;
                    udp.push(UdpListener {
                        local,
                        socket: Arc::new(socket),
                    });
                    Ok(local)
                }),
                Transport::Tcp => socket::bind_tcp(addr).and_then(|listener| {
                    let local = listener.local_addr()?;
                    tcp.push((listener, local));
                    Ok(local)
                }),
            }
            .map_err(|source| TransportError::Bind {
                transport,
                addr,
                source,
            })?;
            local_addrs.push((transport, bound));
        }

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            limits: config.limits,
            tcp_idle_timeout: config.tcp_idle_timeout,
            max_tcp_connections: config.max_tcp_connections,
            connections: tcp::Connections::default(),
            counters: Counters::default(),
            shutdown: shutdown_rx.clone(),
        });
        for listener in &udp {
            let receive = udp::receive_loop(
                Arc::clone(&shared),
                Arc::clone(&listener.socket),
                listener.local,
                sink.clone(),
            );
            tokio::spawn(until_shutdown(shutdown_rx.clone(), receive));
        }
        for (listener, local) in tcp {
            let accept = tcp::accept_loop(Arc::clone(&shared), listener, local, sink.clone());
            tokio::spawn(until_shutdown(shutdown_rx.clone(), accept));
        }
        tracing::info!(listening = ?local_addrs, "SIP transports bound");

        Ok(Transports {
            inner: Arc::new(Inner {
                shared,
                live: RwLock::new(Some(Live { udp, sink })),
                local_addrs,
                shutdown: shutdown_tx,
            }),
        })
    }

    /// The bound addresses, in configuration order, with port 0 resolved.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.inner.local_addrs.clone()
    }

    /// Sends one message; [`Transports::send_via`] without a preferred local socket.
    pub async fn send(&self, peer: Peer, data: Bytes) -> Result<(), TransportError> {
        self.send_via(peer, None, data).await
    }

    /// Sends one message.
    ///
    /// UDP: `send_to` from the listener socket bound to `via_local` if it is given and of
    /// the destination's address family (pass [`Received::local`] of the request when
    /// responding), else from the first listener of that family.
    ///
    /// TCP: over the existing connection to `peer.addr`, inbound or outbound (connections are
    /// reused in both directions, RFC 3261 §18), else over a new one, connecting with
    /// [`CONNECT_TIMEOUT`]. `via_local` is ignored. `Ok` means queued on the connection, not
    /// yet written; if the peer is too slow to drain the queue this fails with
    /// [`TransportError::Congested`] rather than waiting.
    pub async fn send_via(
        &self,
        peer: Peer,
        via_local: Option<SocketAddr>,
        data: Bytes,
    ) -> Result<(), TransportError> {
        let result = match peer.transport {
            Transport::Udp => self.send_udp(peer, via_local, data).await,
            Transport::Tcp => self.send_tcp(peer, data).await,
        };
        let counters = &self.inner.shared.counters;
        bump(if result.is_ok() {
            &counters.messages_sent
        } else {
            &counters.send_errors
        });
        result
    }

    /// Sends every message and returns the ones that failed, with why. Drains
    /// `messages` and keeps its capacity for the next burst.
    ///
    /// Runs of UDP messages leaving from the same socket go out several per system call
    /// (`sendmmsg` on Linux), in order: under load that is one kernel entry, and one
    /// wake-up of each receiving process, per burst instead of per message. UDP messages
    /// leave from the first listener of their address family (as [`Transports::send`]);
    /// TCP messages are queued on their connections one by one, as by `send`.
    pub async fn send_all(&self, messages: &mut Vec<(Peer, Bytes)>) -> Vec<(Peer, TransportError)> {
        let counters = &self.inner.shared.counters;
        let mut failed = Vec::new();
        let mut start = 0;
        while start < messages.len() {
            let peer = messages[start].0;
            if peer.transport == Transport::Tcp {
                match self.send_tcp(peer, messages[start].1.clone()).await {
                    Ok(()) => bump(&counters.messages_sent),
                    Err(error) => {
                        bump(&counters.send_errors);
                        failed.push((peer, error));
                    }
                }
                start += 1;
                continue;
            }
            let ipv4 = peer.addr.is_ipv4();
            let end = start
                + messages[start..]
                    .iter()
                    .take_while(|(p, _)| p.transport == Transport::Udp && p.addr.is_ipv4() == ipv4)
                    .count();
            let socket = self.with_live(|live| {
                udp::pick(&live.udp, peer.addr, None).map(|l| Arc::clone(&l.socket))
            });
            let socket = match socket {
                Ok(Some(socket)) => socket,
                Ok(None) | Err(_) => {
                    for &(peer, _) in &messages[start..end] {
                        bump(&counters.send_errors);
                        failed.push((
                            peer,
                            match socket {
                                Err(_) => TransportError::Shutdown,
                                Ok(_) => TransportError::NoUdpSocket { addr: peer.addr },
                            },
                        ));
                    }
                    start = end;
                    continue;
                }
            };
            while start < end {
                let peer = messages[start].0;
                match batch::send(&socket, &messages[start..end]) {
                    Ok(0) => {
                        // sendmmsg sends at least one datagram or fails; never spin.
                        let source = std::io::Error::from(std::io::ErrorKind::WriteZero);
                        send_failed(counters, &mut failed, peer, source);
                        start += 1;
                    }
                    Ok(sent) => {
                        add(&counters.messages_sent, sent);
                        start += sent;
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        if let Err(error) = socket.writable().await {
                            send_failed(counters, &mut failed, peer, error);
                            start += 1;
                        }
                    }
                    Err(error) => {
                        // The first datagram of the batch failed (say, no route to its
                        // host): report it and carry on with the next.
                        send_failed(counters, &mut failed, peer, error);
                        start += 1;
                    }
                }
            }
        }
        messages.clear();
        failed
    }

    async fn send_udp(
        &self,
        peer: Peer,
        via_local: Option<SocketAddr>,
        data: Bytes,
    ) -> Result<(), TransportError> {
        let socket = self.with_live(|live| {
            udp::pick(&live.udp, peer.addr, via_local)
                .map(|l| Arc::clone(&l.socket))
                .ok_or(TransportError::NoUdpSocket { addr: peer.addr })
        })??;
        socket
            .send_to(&data, peer.addr)
            .await
            .map_err(|source| TransportError::Send { peer, source })?;
        Ok(())
    }

    async fn send_tcp(&self, peer: Peer, mut data: Bytes) -> Result<(), TransportError> {
        let sink = self.with_live(|live| live.sink.clone())?;
        let shared = &self.inner.shared;
        if let Some(queue) = shared.connections.queue(peer.addr) {
            match queue.try_send(data) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(TransportError::Congested { peer });
                }
                // It closed just now; fall through and open a new one.
                Err(mpsc::error::TrySendError::Closed(back)) => data = back,
            }
        }
        let queue = tcp::connect(shared, peer.addr, sink).await?;
        queue.try_send(data).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => TransportError::Congested { peer },
            mpsc::error::TrySendError::Closed(_) => TransportError::ConnectionClosed { peer },
        })
    }

    /// Stops accepting and closes everything (for graceful shutdown): listeners, UDP
    /// sockets and TCP connections. Takes effect as the tasks next run; later `send`s fail
    /// with [`TransportError::Shutdown`]. Messages still queued on connections are dropped.
    ///
    /// The sink closes (its receiver returns `None`) once every task has ended, so a
    /// consumer can drain it to know the transport has fully stopped.
    pub fn shutdown(&self) {
        self.inner
            .live
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.inner.shutdown.send_replace(true);
    }

    /// Runs `f` on the live state, or fails if shut down.
    fn with_live<T>(&self, f: impl FnOnce(&Live) -> T) -> Result<T, TransportError> {
        let live = self
            .inner
            .live
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        live.as_ref().map(f).ok_or(TransportError::Shutdown)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        self.inner.shared.counters.snapshot()
    }
}

/// Counts and reports a datagram `send_all` could not send.
fn send_failed(
    counters: &Counters,
    failed: &mut Vec<(Peer, TransportError)>,
    peer: Peer,
    source: std::io::Error,
) {
    bump(&counters.send_errors);
    failed.push((peer, TransportError::Send { peer, source }));
}

/// Runs `task` until it ends or the transport shuts down (or every `Transports` is dropped).
async fn until_shutdown(mut shutdown: watch::Receiver<bool>, task: impl Future<Output = ()>) {
    tokio::select! {
        _ = shutdown.wait_for(|&stop| stop) => {}
        () = task => {}
    }
}
