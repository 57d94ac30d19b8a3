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
    /// Receive tasks aborted with their port, until the port is opened again: an aborted
    /// task lets go of its socket only when the runtime next gets to it, and until then
    /// the port cannot be bound again.
    closing: HashMap<u16, JoinHandle<()>>,
    /// Ports the core opened again before their previous socket was released; bound on
    /// a later turn.
    reopen: Vec<u16>,
    tx: mpsc::Sender<Datagram>,
    rx: mpsc::Receiver<Datagram>,
}

impl MediaSockets {
    pub(crate) fn new(address: IpAddr) -> MediaSockets {
        let (tx, rx) = mpsc::channel(QUEUE);
        MediaSockets {
            address,
            sockets: HashMap::new(),
            closing: HashMap::new(),
            reopen: Vec::new(),
            tx,
            rx,
        }
    }

    /// The next datagram; pending forever while no port is open.
    pub(crate) async fn recv(&mut self) -> Option<Datagram> {
        self.rx.recv().await
    }

    /// A datagram already queued, if any: the event loop takes a run of them per turn.
    pub(crate) fn try_recv(&mut self) -> Option<Datagram> {
        self.rx.try_recv().ok()
    }

    /// Opens and closes what the core asked for, and sends its relays' packets.
    pub(crate) fn apply(&mut self, core: &mut Core) {
        self.reopen_released();
        while let Some(event) = core.poll_port_event() {
            match event {
                PortEvent::Open(port) => {
                    for p in [port, port.saturating_add(1)] {
                        self.open(p);
                    }
                }
                PortEvent::Close(port) => {
                    for p in [port, port.saturating_add(1)] {
                        self.close(p);
                    }
                }
            }
        }
        while let Some(transmit) = core.poll_media_transmit() {
            if let Some(bound) = self.sockets.get(&transmit.from_port) {
                // Audio that cannot leave now is late anyway: never wait for the socket.
                // A plain non-blocking send, not tokio's `try_send_to`: that one fails
                // with WouldBlock until the reactor has seen the socket writable, so the
                // first packet out of a port opened in this turn (a welcome prompt's or
                // ringback's first frame) would be dropped.
                let to = socket2::SockAddr::from(transmit.to);
                if let Err(err) =
                    socket2::SockRef::from(&*bound.socket).send_to(&transmit.payload, &to)
                {
                    debug!(port = transmit.from_port, to = %transmit.to, %err, "RTP not sent");
                }
            }
            // The buffer goes back to its relay: no allocation per forwarded packet.
            core.recycle_media(transmit.from_port, transmit.payload);
        }
    }

    fn close(&mut self, port: u16) {
        self.reopen.retain(|&p| p != port);
        if let Some(bound) = self.sockets.remove(&port) {
            bound.task.abort();
            self.closing.insert(port, bound.task);
        }
    }

    /// Binds the ports whose previous socket has been released since they were asked
    /// for. Called every turn: nothing to do unless a port waits. (`closing` is pruned
    /// when its port is opened again, so it never outgrows the port range.)
    fn reopen_released(&mut self) {
        if self.reopen.is_empty() {
            return;
        }
        for port in std::mem::take(&mut self.reopen) {
            self.open(port);
        }
    }

    fn open(&mut self, port: u16) {
        if self.sockets.contains_key(&port) {
            return;
        }
        // Reopened (the pool hands ports out round robin; under a saturated event loop a
        // port can come round before the task of its previous call is gone): bind it
        // once that socket is released, on a later turn.
        if self
            .closing
            .get(&port)
            .is_some_and(|task| !task.is_finished())
        {
            if !self.reopen.contains(&port) {
                self.reopen.push(port);
            }
            return;
        }
        self.closing.remove(&port);
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

/// Reads and encodes every `[[prompt]]` once, shared by all calls: a file's WAV from the
/// disk, an uploaded recording's from `audio` (the store) by its digest. One that cannot
/// be read or decoded is logged and left out: calls that would play it hear the
/// standard ringing tone instead. Blocking (files, the store, resampling): run on the
/// blocking pool, never on the event loop.
///
/// An uploaded recording is content-addressed, so once encoded it is kept in `cache` by
/// its digest: every API write reloads the configuration, and re-reading and
/// re-encoding every enterprise's recordings each time would cost the cores the calls
/// run on. The cache keeps only the digests the configuration names.
pub(crate) fn load_prompts(
    config: &sihai_config::Config,
    audio: &dyn sihai_store::AudioStore,
    cache: &std::sync::Mutex<HashMap<String, sihai_media::Prompt>>,
) -> HashMap<String, sihai_media::Prompt> {
    use sihai_config::PromptSource;
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut named = std::collections::HashSet::new();
    let mut prompts = HashMap::new();
    for prompt in &config.prompts {
        if let PromptSource::Audio(digest) = &prompt.source {
            named.insert(digest.clone());
            if let Some(encoded) = cache.get(digest) {
                prompts.insert(prompt.name.clone(), encoded.clone());
                continue;
            }
        }
        let (origin, loaded) = match &prompt.source {
            PromptSource::File(file) => (
                file.display().to_string(),
                std::fs::read(file).map_err(|e| e.to_string()),
            ),
            PromptSource::Audio(digest) => (
                digest.clone(),
                match audio.audio(digest) {
                    Ok(Some(wav)) => Ok(wav),
                    Ok(None) => Err("no such recording in the store".to_owned()),
                    Err(e) => Err(e.to_string()),
                },
            ),
        };
        let decoded =
            loaded.and_then(|bytes| sihai_media::read_wav(&bytes).map_err(|e| e.to_string()));
        match decoded {
            Ok(audio) => {
                let encoded = sihai_media::Prompt::from_audio(&audio);
                debug!(name = %prompt.name, %origin, seconds = encoded.duration().as_secs_f32(), "prompt loaded");
                if let PromptSource::Audio(digest) = &prompt.source {
                    cache.insert(digest.clone(), encoded.clone());
                }
                prompts.insert(prompt.name.clone(), encoded);
            }
            Err(err) => {
                warn!(name = %prompt.name, %origin, %err, "cannot load prompt; the ringing tone plays instead");
            }
        }
    }
    cache.retain(|digest, _| named.contains(digest));
    prompts
}

/// Open recordings, written as the core hands over 20 ms of a call at a time. Each is
/// a stereo WAV (caller left, phone right) whose header is rewritten every second, so
/// a crash loses at most the last second.
pub(crate) struct Recorders {
    dir: std::path::PathBuf,
    open: HashMap<Arc<str>, sihai_media::WavRecorder<std::io::BufWriter<std::fs::File>>>,
    /// Recordings that failed once: their later frames are dropped, not retried.
    failed: std::collections::HashSet<Arc<str>>,
}

impl Recorders {
    pub(crate) fn new(dir: std::path::PathBuf) -> Recorders {
        Recorders {
            dir,
            open: HashMap::new(),
            failed: std::collections::HashSet::new(),
        }
    }

    /// Where recordings started from now on are written (a reload changed it);
    /// recordings already open stay where they are.
    pub(crate) fn set_dir(&mut self, dir: &std::path::Path) {
        if self.dir != dir {
            self.dir = dir.to_path_buf();
        }
    }

    pub(crate) fn apply(&mut self, core: &mut Core) {
        use sihai_call::media::RecordingOutput;
        while let Some(output) = core.poll_recording() {
            match output {
                RecordingOutput::Frame {
                    name,
                    caller,
                    phone,
                } => {
                    if self.failed.contains(&name) {
                        continue;
                    }
                    if !self.open.contains_key(&name) {
                        match self.create(&name) {
                            Ok(recorder) => {
                                self.open.insert(name.clone(), recorder);
                            }
                            Err(err) => {
                                warn!(recording = %name, %err, "cannot create the recording");
                                self.failed.insert(name);
                                continue;
                            }
                        }
                    }
                    if let Some(recorder) = self.open.get_mut(&name)
                        && let Err(err) = recorder.write_frame(&caller, &phone)
                    {
                        warn!(recording = %name, %err, "recording stopped");
                        self.open.remove(&name);
                        self.failed.insert(name);
                    }
                }
                RecordingOutput::Finished { name } => {
                    self.failed.remove(&name);
                    if let Some(recorder) = self.open.remove(&name) {
                        let seconds = recorder.duration().as_secs_f32();
                        match recorder.finish() {
                            Ok(_) => debug!(recording = %name, seconds, "recording complete"),
                            Err(err) => {
                                warn!(recording = %name, %err, "cannot complete the recording")
                            }
                        }
                    }
                }
            }
        }
    }

    fn create(
        &self,
        name: &str,
    ) -> Result<sihai_media::WavRecorder<std::io::BufWriter<std::fs::File>>, String> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        sihai_media::WavRecorder::new(std::io::BufWriter::new(file))
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Deletes recordings older than their enterprise keeps them: everything under
/// `dir/<enterprise>/<YYYY-MM-DD>/` whose day is more than `retention_days` before
/// `today`. Returns the day directories removed. Directories that are not days, and
/// enterprises not listed, are left alone.
pub(crate) fn sweep_recordings(
    dir: &std::path::Path,
    retention: &[(String, u32)],
    today: jiff::civil::Date,
) -> Vec<std::path::PathBuf> {
    let mut removed = Vec::new();
    for (enterprise, days) in retention {
        let Ok(entries) = std::fs::read_dir(dir.join(enterprise)) else {
            continue;
        };
        let Ok(oldest_kept) = today.checked_sub(jiff::Span::new().days(i64::from(*days))) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(day) = name
                .to_str()
                .and_then(|n| n.parse::<jiff::civil::Date>().ok())
            else {
                continue;
            };
            if day < oldest_kept {
                let path = entry.path();
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => removed.push(path),
                    Err(err) => {
                        warn!(path = %path.display(), %err, "cannot delete expired recordings")
                    }
                }
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use sihai_store::StoreError;

    /// A store of recordings that counts its reads.
    #[derive(Default)]
    struct CountingAudio {
        wav: Vec<u8>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl sihai_store::AudioStore for CountingAudio {
        fn put_audio(&self, _: &[u8], _: jiff::Timestamp) -> Result<String, StoreError> {
            unreachable!("loading prompts stores nothing")
        }
        fn audio(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(Some(self.wav.clone()))
        }
        fn sweep_audio(&self, _: jiff::Timestamp) -> Result<usize, StoreError> {
            Ok(0)
        }
    }

    #[test]
    fn an_uploaded_recording_is_read_and_encoded_once_across_reloads() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/sihai.toml");
        let mut config = sihai_config::Config::load(std::path::Path::new(sample))
            .expect("the sample configuration");
        let digest = |n: u8| format!("sha256:{}", format!("{n:02x}").repeat(32));
        let prompt = |name: &str, d: String| sihai_config::PromptConfig {
            name: name.into(),
            enterprise: None,
            source: sihai_config::PromptSource::Audio(d),
        };
        config.prompts = vec![prompt("hold", digest(1)), prompt("welcome", digest(2))];
        let store = CountingAudio {
            wav: sihai_media::encode_wav_mono(&[1000; 1600]),
            ..CountingAudio::default()
        };
        let reads = || store.reads.load(std::sync::atomic::Ordering::Relaxed);
        let cache = std::sync::Mutex::default();
        assert_eq!(load_prompts(&config, &store, &cache).len(), 2);
        assert_eq!(reads(), 2);
        // A reload with the same recordings reads none of them again.
        assert_eq!(load_prompts(&config, &store, &cache).len(), 2);
        assert_eq!(reads(), 2);
        // One replaced: only it is read, and the old one leaves the cache.
        config.prompts[1] = prompt("welcome", digest(3));
        assert_eq!(load_prompts(&config, &store, &cache).len(), 2);
        assert_eq!(reads(), 3);
        let cached = cache.lock().unwrap();
        assert!(cached.contains_key(&digest(3)) && !cached.contains_key(&digest(2)));
    }

    #[tokio::test]
    async fn a_port_reopened_before_its_socket_is_released_is_bound_on_a_later_turn() {
        let mut sockets = MediaSockets::new("127.0.0.1".parse().unwrap());
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        sockets.open(port);
        assert!(sockets.sockets.contains_key(&port));
        // Closed and opened again in the same turn: the aborted task still holds the
        // socket, so binding now would fail and the call would lose its audio.
        sockets.close(port);
        sockets.open(port);
        assert!(!sockets.sockets.contains_key(&port));
        assert_eq!(sockets.reopen, [port]);
        for _ in 0..100 {
            tokio::task::yield_now().await;
            sockets.reopen_released();
            if sockets.sockets.contains_key(&port) {
                break;
            }
        }
        assert!(sockets.sockets.contains_key(&port), "bound once released");
        assert!(sockets.reopen.is_empty() && sockets.closing.is_empty());
        // Ours again: nobody else can bind it.
        assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_err());
        // Closed while waiting to be reopened: it stays closed.
        sockets.close(port);
        sockets.open(port);
        sockets.close(port);
        for _ in 0..100 {
            tokio::task::yield_now().await;
            sockets.reopen_released();
        }
        assert!(!sockets.sockets.contains_key(&port));
        assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok());
    }

    #[test]
    fn the_sweeper_deletes_only_days_past_each_enterprises_retention() {
        let dir = tempfile::tempdir().unwrap();
        for (enterprise, day) in [
            ("acme", "2026-08-01"),
            ("acme", "2026-11-01"),
            ("acme", "notes"),
            ("globex", "2026-11-20"),
            ("globex", "2026-11-22"),
            ("unlisted", "2020-01-01"),
        ] {
            let d = dir.path().join(enterprise).join(day);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("call.wav"), b"RIFF").unwrap();
        }
        let today: jiff::civil::Date = "2026-11-23".parse().unwrap();
        let mut removed = sweep_recordings(
            dir.path(),
            &[("acme".into(), 90), ("globex".into(), 2)],
            today,
        );
        removed.sort();
        assert_eq!(
            removed,
            vec![
                dir.path().join("acme/2026-08-01"),
                dir.path().join("globex/2026-11-20"),
            ]
        );
        for kept in [
            "acme/2026-11-01",
            "acme/notes",
            "globex/2026-11-22",
            "unlisted/2020-01-01",
        ] {
            assert!(dir.path().join(kept).exists(), "{kept}");
        }
    }
}
