//! The B2BUA's side of the media plane: which relay ports each call holds, the SDP each
//! leg sees, and the per-call relay ([`sihai_relay::CallMedia`]).
//!
//! Every anchored call holds two port pairs from the pool: one the caller sends to, one
//! the phones send to. The caller's offer is answered by the relay (so the caller hears
//! ringback from us as early media, and later the phone through us), and the phones get
//! the relay's own offer. The daemon learns which ports to open and close from
//! [`PortEvent`]s and hands every datagram back through the B2BUA.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Instant;

use sihai_media::{Law, PortPool, Prompt};
use sihai_relay::{CallMedia, LegMedia, MediaTransmit, RelayConfig, Source};
use sihai_sdp::{Codec, LocalAudio, SdpError, SessionDescription};

/// How the relay is set up.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// The address written into every SDP we send (`c=`) and where the ports are bound.
    pub address: IpAddr,
    /// RTP ports (even) with their RTCP port above each.
    pub ports: RangeInclusive<u16>,
    pub relay: RelayConfig,
}

/// Recorded audio for the daemon to write, in order: a call's frames, then its end.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "frames pass through one queue in order with the end of their file; boxing \
              would allocate twice per 20 ms per recorded call"
)]
pub enum RecordingOutput {
    /// 20 ms of the call: the caller (left channel) and the phone (right channel).
    Frame {
        name: std::sync::Arc<str>,
        caller: [i16; 160],
        phone: [i16; 160],
    },
    /// The call ended: the file is complete.
    Finished { name: std::sync::Arc<str> },
}

/// Ports the daemon has to open or close: an RTP port and the RTCP port above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortEvent {
    Open(u16),
    Close(u16),
}

/// Why a caller's offer could not be anchored.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// 488: nothing the relay can carry (no PCMA/PCMU, SRTP only, no audio).
    #[error("unusable SDP offer: {0}")]
    Offer(#[from] SdpError),
    /// 503: every port pair is in use.
    #[error("no free RTP ports")]
    NoPorts,
    #[error("relay set-up: {0}")]
    Relay(#[from] sihai_relay::RelayError),
}

impl AnchorError {
    pub fn status(&self) -> u16 {
        match self {
            AnchorError::Offer(_) => 488,
            AnchorError::NoPorts | AnchorError::Relay(_) => 503,
        }
    }
}

/// One call's media: its ports, the SDP we send each side, and the relay.
#[derive(Debug)]
pub struct Anchor {
    pub caller_port: u16,
    pub phone_port: u16,
    /// Our answer to the caller's offer: the body of the 183 and of the 200.
    pub caller_sdp: String,
    /// Our offer to the phones: the body of each leg's INVITE.
    pub phone_sdp: String,
    phone_local: LocalAudio,
    pub relay: CallMedia,
}

/// The ports in use and what the daemon must open and close.
#[derive(Debug)]
pub struct MediaPlane<K> {
    settings: MediaSettings,
    pool: PortPool,
    by_port: HashMap<u16, K>,
    events: VecDeque<PortEvent>,
    transmits: VecDeque<MediaTransmit>,
    /// Packets of ended calls: relayed (to either leg) and dropped (for any reason).
    ended_packets_relayed: u64,
    ended_packets_dropped: u64,
}

impl<K: Copy> MediaPlane<K> {
    pub fn new(settings: MediaSettings) -> Result<MediaPlane<K>, sihai_media::PoolError> {
        let pool = PortPool::new(*settings.ports.start(), *settings.ports.end())?;
        Ok(MediaPlane {
            settings,
            pool,
            by_port: HashMap::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            ended_packets_relayed: 0,
            ended_packets_dropped: 0,
        })
    }

    /// The media timeout of calls anchored from now on (a reload changed it); calls
    /// already anchored keep theirs.
    pub fn set_media_timeout(&mut self, timeout: std::time::Duration) {
        self.settings.relay.media_timeout = timeout;
    }

    /// Ports free for new calls (pairs).
    pub fn available(&self) -> usize {
        self.pool.available()
    }

    /// Port pairs in the pool, free or not.
    pub fn capacity(&self) -> usize {
        self.pool.capacity()
    }

    /// Packets relayed and dropped by the calls released so far (a call's are added
    /// when it ends).
    pub fn ended_packets(&self) -> (u64, u64) {
        (self.ended_packets_relayed, self.ended_packets_dropped)
    }

    /// Answers the caller's `offer` and prepares the phones' offer, holding two port
    /// pairs for `call` until [`MediaPlane::release`].
    pub fn anchor(
        &mut self,
        call: K,
        offer: &str,
        now: Instant,
        seed: u64,
    ) -> Result<Anchor, AnchorError> {
        let offer = SessionDescription::parse(offer)?;
        let caller_port = self.pool.allocate().ok_or(AnchorError::NoPorts)?;
        let Some(phone_port) = self.pool.allocate() else {
            let _ = self.pool.release(caller_port);
            return Err(AnchorError::NoPorts);
        };
        let built = self.build(&offer, caller_port, phone_port, now, seed);
        match built {
            Ok(anchor) => {
                for port in [caller_port, phone_port] {
                    self.by_port.insert(port, call);
                    self.by_port.insert(port + 1, call);
                    self.events.push_back(PortEvent::Open(port));
                }
                Ok(anchor)
            }
            Err(error) => {
                let _ = self.pool.release(caller_port);
                let _ = self.pool.release(phone_port);
                Err(error)
            }
        }
    }

    fn build(
        &self,
        offer: &SessionDescription,
        caller_port: u16,
        phone_port: u16,
        now: Instant,
        seed: u64,
    ) -> Result<Anchor, AnchorError> {
        let address = self.settings.address;
        let answer =
            sihai_sdp::build_answer(offer, &LocalAudio::new(address, caller_port), seed, 1)?;
        let caller = LegMedia {
            local_port: caller_port,
            remote: Some(answer.remote.rtp_address()),
            law: law(answer.codec),
            payload_type: answer.payload_type,
            telephone_event: answer.telephone_event,
        };
        let relay = CallMedia::new(self.settings.relay, caller, now, seed)?;
        // The phones are offered the caller's codec first: no transcoding when they
        // can take it.
        let mut phone_local = LocalAudio::new(address, phone_port);
        phone_local.codecs.sort_by_key(|c| *c != answer.codec);
        let phone_sdp = sihai_sdp::build_offer(&phone_local, seed.rotate_left(17), 1)?;
        Ok(Anchor {
            caller_port,
            phone_port,
            caller_sdp: answer.sdp,
            phone_sdp,
            phone_local,
            relay,
        })
    }

    /// The call that holds `port` (RTP or RTCP).
    pub fn call_of(&self, port: u16) -> Option<K> {
        self.by_port.get(&port).copied()
    }

    /// Gives the anchor's ports back; the daemon closes them.
    pub fn release(&mut self, anchor: &Anchor) {
        let stats = anchor.relay.stats();
        self.ended_packets_relayed += stats.caller.packets_out + stats.phone.packets_out;
        self.ended_packets_dropped += stats.dropped();
        for port in [anchor.caller_port, anchor.phone_port] {
            self.by_port.remove(&port);
            self.by_port.remove(&(port + 1));
            if self.pool.release(port).is_ok() {
                self.events.push_back(PortEvent::Close(port));
            }
        }
    }

    /// Moves what the relay wants to send into the plane's queue.
    pub fn collect(&mut self, anchor: &mut Anchor) {
        while let Some(t) = anchor.relay.poll_transmit() {
            self.transmits.push_back(t);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.transmits.pop_front()
    }

    pub fn poll_port_event(&mut self) -> Option<PortEvent> {
        self.events.pop_front()
    }
}

impl Anchor {
    /// The phones ring: the caller hears `ringback` (the enterprise's 彩铃, looped) or,
    /// without one, the standard ringing tone.
    pub fn ringing(&mut self, ringback: Option<&Prompt>, now: Instant) {
        let source = match ringback {
            Some(prompt) => Source::Prompt {
                prompt: prompt.clone(),
                repeat: true,
            },
            None => Source::Ringback,
        };
        self.relay.play(source, now);
    }

    /// The ringing phone sent early media (`answer`, its 18x SDP): the caller hears the
    /// phone instead of our ringback. `false` (and nothing changes) if the SDP is not
    /// usable.
    pub fn phone_early_media(&mut self, answer: &str, now: Instant) -> bool {
        let Some(phone) = self.phone_leg(Some(answer)) else {
            return false;
        };
        if self.relay.set_phone(phone, now).is_err() {
            return false;
        }
        self.relay.pass_early_media(now);
        true
    }

    /// The phone leg as `answer` describes it, if it is usable.
    fn phone_leg(&self, answer: Option<&str>) -> Option<LegMedia> {
        let negotiated = answer
            .and_then(|text| SessionDescription::parse(text).ok())
            .and_then(|sdp| sihai_sdp::accept_answer(&self.phone_local, &sdp).ok())?;
        Some(LegMedia {
            local_port: self.phone_port,
            remote: Some(negotiated.remote.rtp_address()),
            law: law(negotiated.codec),
            payload_type: negotiated.payload_type,
            telephone_event: negotiated.telephone_event,
        })
    }

    /// A phone answered with `answer` (its 2xx body, if any): bridge caller and phone.
    pub fn answered(&mut self, answer: Option<&str>, now: Instant) {
        // No usable answer: our first offered codec, and wait for the phone's first
        // packet to learn where it is.
        let phone = self.phone_leg(answer).unwrap_or_else(|| {
            let codec = self
                .phone_local
                .codecs
                .first()
                .copied()
                .unwrap_or(Codec::Pcma);
            LegMedia {
                local_port: self.phone_port,
                remote: None,
                law: law(codec),
                payload_type: codec.payload_type(),
                telephone_event: None,
            }
        });
        if self.relay.set_phone(phone, now).is_ok() {
            self.relay.bridge(now);
        }
    }

    pub fn handle_packet(&mut self, now: Instant, port: u16, source: SocketAddr, packet: &[u8]) {
        self.relay.handle_packet(now, port, source, packet);
    }
}

fn law(codec: Codec) -> Law {
    match codec {
        Codec::Pcmu => Law::Ulaw,
        Codec::Pcma => Law::Alaw,
    }
}
