//! TCP: accepting and opening connections, framing their byte streams into messages, and
//! the table that lets any message for a peer reuse its open connection.
//!
//! RFC 3261 §18 has both sides reuse a connection whichever end opened it: responses go
//! back over the connection the request came in on, and requests to a peer we already
//! have a connection with go over it too. So every connection, inbound or outbound, is
//! registered under its remote address with the queue of its writer.
//!
//! Each connection is one task that polls a reader, a writer, an idle watchdog and the
//! shutdown signal together. Reader and writer are separate futures so a reader waiting on
//! a full sink never stops the writer, and the sink's consumer, which may be sending on
//! this very connection, cannot deadlock with it. When any of the four finishes the whole
//! connection is dropped, which closes the socket and removes its table entry.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use sihai_sip::framing::{Frame, FramingError, frame};
use sihai_sip::net::{Peer, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::error::TransportError;
use crate::stats::bump;
use crate::{Received, Shared};

/// How long `Transports::send` waits for an outbound TCP connection to be established.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages waiting for a connection's writer before `send` reports congestion. A
/// carrier trunk carries thousands of calls per second over one connection, and the
/// durability gate releases a commit interval's worth of final responses at once
/// (128 dropped BYE responses at 2,000 calls/s); the channel allocates as it fills,
/// so depth costs nothing on idle connections.
const QUEUE_DEPTH: usize = 8192;
const READ_CHUNK: usize = 8 * 1024;
/// Pause after an accept error (e.g. out of file descriptors) so it cannot spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
const PONG: &[u8] = b"\r\n";

/// Open connections by remote address, each with the queue of its writer.
#[derive(Default)]
pub(crate) struct Connections {
    map: Mutex<HashMap<SocketAddr, Writer>>,
    next_id: AtomicU64,
}

struct Writer {
    /// Tells this connection apart from a later one to the same address.
    id: u64,
    queue: mpsc::Sender<Bytes>,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Writer>> {
        // Nothing panics while holding the lock, and the map stays valid if it did.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn queue(&self, remote: SocketAddr) -> Option<mpsc::Sender<Bytes>> {
        self.lock().get(&remote).map(|w| w.queue.clone())
    }
}

/// One admitted connection: a place under `max_tcp_connections` and, once registered, its
/// table entry. Dropping it gives both back.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    entry: Option<(SocketAddr, u64)>,
}

impl Slot {
    fn reserve(shared: &Arc<Shared>) -> Option<Slot> {
        let limit = shared.max_tcp_connections;
        shared
            .counters
            .tcp_connections_open
            .fetch_update(Relaxed, Relaxed, |open| (open < limit).then_some(open + 1))
            .ok()?;
        Some(Slot {
            shared: Arc::clone(shared),
            entry: None,
        })
    }

    /// Makes `queue` the way to reach `remote`. With `replace` false a live connection
    /// already registered for `remote` wins and its queue is returned as the error.
    fn register(
        &mut self,
        remote: SocketAddr,
        queue: mpsc::Sender<Bytes>,
        replace: bool,
    ) -> Result<(), mpsc::Sender<Bytes>> {
        let connections = &self.shared.connections;
        let id = connections.next_id.fetch_add(1, Relaxed);
        let mut map = connections.lock();
        match map.entry(remote) {
            Entry::Occupied(existing) if !replace && !existing.get().queue.is_closed() => {
                return Err(existing.get().queue.clone());
            }
            Entry::Occupied(mut existing) => {
                existing.insert(Writer { id, queue });
            }
            Entry::Vacant(vacant) => {
                vacant.insert(Writer { id, queue });
            }
        }
        self.entry = Some((remote, id));
        Ok(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((remote, id)) = self.entry {
            let mut map = self.shared.connections.lock();
            if map.get(&remote).is_some_and(|w| w.id == id) {
                map.remove(&remote);
            }
        }
        self.shared
            .counters
            .tcp_connections_open
            .fetch_sub(1, Relaxed);
    }
}

/// Accepts connections on `listener` until cancelled at shutdown.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    local: SocketAddr,
    sink: mpsc::Sender<Received>,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%local, %error, "TCP accept failed");
                sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some(slot) = Slot::reserve(&shared) else {
            bump(&shared.counters.tcp_connections_refused);
            tracing::warn!(
                %remote,
                %local,
                limit = shared.max_tcp_connections,
                "refusing TCP connection: connection limit reached"
            );
            continue; // dropping `stream` closes it
        };
        bump(&shared.counters.tcp_connections_accepted);
        let local = stream.local_addr().unwrap_or(local);
        tracing::debug!(%remote, %local, "TCP connection accepted");
        // A new inbound connection from an address supersedes any older one from it.
        let _ = start(&shared, &sink, stream, remote, local, slot, true);
    }
}

/// Opens a connection to `remote` and returns its writer queue. If another task connected
/// to `remote` meanwhile, that connection is used and this one dropped.
pub(crate) async fn connect(
    shared: &Arc<Shared>,
    remote: SocketAddr,
    sink: mpsc::Sender<Received>,
) -> Result<mpsc::Sender<Bytes>, TransportError> {
    let limit = shared.max_tcp_connections;
    let slot = Slot::reserve(shared).ok_or(TransportError::TooManyConnections {
        addr: remote,
        limit,
    })?;
    let stream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(remote)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => {
            return Err(TransportError::Connect {
                addr: remote,
                source,
            });
        }
        Err(_) => {
            return Err(TransportError::ConnectTimeout {
                addr: remote,
                timeout: CONNECT_TIMEOUT,
            });
        }
    };
    let local = stream
        .local_addr()
        .map_err(|source| TransportError::Connect {
            addr: remote,
            source,
        })?;
    match start(shared, &sink, stream, remote, local, slot, false) {
        Ok(queue) => {
            bump(&shared.counters.tcp_connections_connected);
            tracing::debug!(%remote, %local, "TCP connection opened");
            Ok(queue)
        }
        Err(existing) => Ok(existing),
    }
}

/// Registers the connection and spawns its task. `Err` carries the queue of an existing
/// connection that won (see [`Slot::register`]); `stream` is then dropped.
fn start(
    shared: &Arc<Shared>,
    sink: &mpsc::Sender<Received>,
    stream: TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    mut slot: Slot,
    replace: bool,
) -> Result<mpsc::Sender<Bytes>, mpsc::Sender<Bytes>> {
    let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
    slot.register(remote, queue.clone(), replace)?;
    let connection = Connection {
        shared: Arc::clone(shared),
        sink: sink.clone(),
        peer: Peer::new(Transport::Tcp, remote),
        local,
        queue: queue.clone(),
        activity: Activity::new(),
    };
    tokio::spawn(connection.run(stream, rx, slot));
    Ok(queue)
}

struct Connection {
    shared: Arc<Shared>,
    sink: mpsc::Sender<Received>,
    peer: Peer,
    local: SocketAddr,
    /// Our own handle on the writer queue, for keep-alive pongs.
    queue: mpsc::Sender<Bytes>,
    activity: Activity,
}

/// Why a connection ended.
enum End {
    PeerClosed { unframed: usize },
    Io(io::Error),
    Framing(FramingError),
    Idle,
    WriteStalled,
    SinkClosed,
    Shutdown,
}

impl Connection {
    async fn run(self, stream: TcpStream, rx: mpsc::Receiver<Bytes>, slot: Slot) {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(peer = %self.peer, %error, "could not set TCP_NODELAY");
        }
        let (reader, writer) = stream.into_split();
        let idle = self.shared.tcp_idle_timeout;
        let mut shutdown = self.shared.shutdown.clone();
        let end = tokio::select! {
            end = self.read_loop(reader) => end,
            end = self.write_loop(writer, rx) => end,
            () = self.activity.idle_for(idle) => End::Idle,
            _ = shutdown.wait_for(|&stop| stop) => End::Shutdown,
        };
        // The socket is closed by now (both halves dropped); free the slot and entry.
        drop(slot);
        self.log_end(end);
    }

    async fn read_loop(&self, mut reader: OwnedReadHalf) -> End {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            buf.reserve(READ_CHUNK);
            match reader.read_buf(&mut buf).await {
                Ok(0) => {
                    return End::PeerClosed {
                        unframed: buf.len(),
                    };
                }
                Ok(_) => self.activity.touch(),
                Err(error) => return End::Io(error),
            }
            // Framing is bounded by the limits, so `buf` cannot grow past them.
            loop {
                match frame(&buf, &self.shared.limits) {
                    Ok(None) => break,
                    Ok(Some(Frame::KeepAlive { len, pong })) => {
                        buf.advance(len);
                        if pong {
                            bump(&self.shared.counters.keepalive_pongs);
                            if self.queue.send(Bytes::from_static(PONG)).await.is_err() {
                                return End::Shutdown;
                            }
                        }
                    }
                    Ok(Some(Frame::Message { len })) => {
                        bump(&self.shared.counters.tcp_messages_received);
                        let received = Received {
                            data: buf.split_to(len).freeze(),
                            source: self.peer,
                            local: self.local,
                        };
                        if self.sink.send(received).await.is_err() {
                            return End::SinkClosed;
                        }
                    }
                    Err(error) => return End::Framing(error),
                }
            }
        }
    }

    async fn write_loop(&self, mut writer: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) -> End {
        // A peer that stops reading for as long as the idle timeout is as good as gone.
        let stall = self.shared.tcp_idle_timeout;
        while let Some(data) = rx.recv().await {
            match timeout(stall, writer.write_all(&data)).await {
                Ok(Ok(())) => self.activity.touch(),
                Ok(Err(error)) => return End::Io(error),
                Err(_) => return End::WriteStalled,
            }
        }
        // Unreachable while `self.queue` is alive; treat as a local close.
        End::Shutdown
    }

    fn log_end(&self, end: End) {
        let peer = self.peer;
        let counters = &self.shared.counters;
        match end {
            End::Framing(error) => {
                bump(&counters.framing_errors);
                tracing::warn!(%peer, %error, "closing TCP connection: cannot frame the stream");
            }
            End::Idle => {
                bump(&counters.tcp_idle_closed);
                tracing::debug!(%peer, "closing idle TCP connection");
            }
            End::WriteStalled => {
                tracing::warn!(%peer, "closing TCP connection: peer stopped reading");
            }
            End::PeerClosed { unframed: 0 } => {
                tracing::debug!(%peer, "TCP connection closed by peer")
            }
            End::PeerClosed { unframed } => {
                tracing::debug!(%peer, unframed, "TCP connection closed by peer mid-message");
            }
            End::Io(error) => tracing::debug!(%peer, %error, "TCP connection failed"),
            End::SinkClosed => tracing::debug!(%peer, "sink closed; closing TCP connection"),
            End::Shutdown => tracing::debug!(%peer, "TCP connection closed at shutdown"),
        }
    }
}

/// When a connection last moved bytes either way, shared by its reader and writer.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Relaxed);
    }

    /// Completes once `idle` has passed with no `touch`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            sleep_until(deadline).await;
        }
    }
}
