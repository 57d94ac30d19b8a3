//! The relay's sockets: one UDP socket per RTP port and per RTCP port the core has
//! opened, a receive task each, and sending what the core's relays produce. Datagrams
//! go to the core on the same event loop, through one channel.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sihai_call::media::PortEvent;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::core::Core;

/// Larger than any RTP packet we relay; a longer datagram is not audio we carry.
const MAX_PACKET: usize = 2048;
/// Datagrams waiting for the core; beyond this they are dropped (audio, not signalling).
const QUEUE: usize = 16_384;

pub(crate) struct Datagram {
    pub port: u16,
    pub source: SocketAddr,
    pub data: Vec<u8>,
}

struct Bound {
    socket: Arc<UdpSocket>,
    task: JoinHandle<()>,
}

pub(crate) struct MediaSockets {
    address: IpAddr,
    sockets: HashMap<u16, Bound>,
    tx: mpsc::Sender<Datagram>,
    rx: mpsc::Receiver<Datagram>,
}

impl MediaSockets {
    pub(crate) fn new(address: IpAddr) -> MediaSockets {
        let (tx, rx) = mpsc::channel(QUEUE);
        MediaSockets {
            address,
            sockets: HashMap::new(),
            tx,
            rx,
        }
    }

    /// The next datagram; pending forever while no port is open.
    pub(crate) async fn recv(&mut self) -> Option<Datagram> {
        self.rx.recv().await
    }

    /// Opens and closes what the core asked for, and sends its relays' packets.
    pub(crate) fn apply(&mut self, core: &mut Core) {
        while let Some(event) = core.poll_port_event() {
            match event {
                PortEvent::Open(port) => {
                    for p in [port, port.saturating_add(1)] {
                        self.open(p);
                    }
                }
                PortEvent::Close(port) => {
                    for p in [port, port.saturating_add(1)] {
                        if let Some(bound) = self.sockets.remove(&p) {
                            bound.task.abort();
                        }
                    }
                }
            }
        }
        while let Some(transmit) = core.poll_media_transmit() {
            let Some(bound) = self.sockets.get(&transmit.from_port) else {
                continue;
            };
            // Audio that cannot leave now is late anyway: never wait for the socket.
            if let Err(err) = bound.socket.try_send_to(&transmit.payload, transmit.to) {
                debug!(port = transmit.from_port, to = %transmit.to, %err, "RTP not sent");
            }
        }
    }

    fn open(&mut self, port: u16) {
        if self.sockets.contains_key(&port) {
            return;
        }
        let addr = SocketAddr::new(self.address, port);
        let socket = match std::net::UdpSocket::bind(addr)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(UdpSocket::from_std)
        {
            Ok(socket) => Arc::new(socket),
            Err(err) => {
                // The call goes on; its audio on this port is lost. Logged so an
                // operator can free the range or narrow it.
                warn!(%addr, %err, "cannot bind an RTP port");
                return;
            }
        };
        let receiving = Arc::clone(&socket);
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_PACKET];
            loop {
                let Ok((len, source)) = receiving.recv_from(&mut buf).await else {
                    // Nothing to do about a failed receive but not spin on it.
                    tokio::task::yield_now().await;
                    continue;
                };
                let datagram = Datagram {
                    port,
                    source,
                    data: buf[..len].to_vec(),
                };
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(datagram) {
                    return;
                }
            }
        });
        self.sockets.insert(port, Bound { socket, task });
    }
}

impl Drop for MediaSockets {
    fn drop(&mut self) {
        for bound in self.sockets.values() {
            bound.task.abort();
        }
    }
}

/// Reads and encodes every `[[prompt]]` once, shared by all calls. A file that cannot be
/// read or decoded is logged and left out: calls that would play it hear the standard
/// ringing tone instead. Runs on the event loop at start and on reload.
pub(crate) fn load_prompts(config: &sihai_config::Config) -> HashMap<String, sihai_media::Prompt> {
    let mut prompts = HashMap::new();
    for prompt in &config.prompts {
        let loaded = std::fs::read(&prompt.file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| sihai_media::read_wav(&bytes).map_err(|e| e.to_string()));
        match loaded {
            Ok(audio) => {
                let encoded = sihai_media::Prompt::from_audio(&audio);
                debug!(name = %prompt.name, file = %prompt.file.display(), seconds = encoded.duration().as_secs_f32(), "prompt loaded");
                prompts.insert(prompt.name.clone(), encoded);
            }
            Err(err) => {
                warn!(name = %prompt.name, file = %prompt.file.display(), %err, "cannot load prompt; the ringing tone plays instead");
            }
        }
    }
    prompts
}
