//! One call's media, as a state machine the daemon drives: [`CallMedia`].
//!
//! The daemon owns the two UDP port pairs of the call, the clock and the timers. It
//! hands every datagram that arrives on the call's ports to
//! [`CallMedia::handle_packet`], sleeps until [`CallMedia::poll_timeout`] and then
//! calls [`CallMedia::handle_timeout`], and after each of these drains
//! [`CallMedia::poll_transmit`], [`CallMedia::poll_event`] and
//! [`CallMedia::poll_recorded`]. The call's signalling (the B2BUA) says what the caller
//! hears with [`CallMedia::play`], [`CallMedia::pass_early_media`] and
//! [`CallMedia::bridge`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sihai_media::rtp::FIXED_HEADER_LEN;
use sihai_media::{DtmfDetector, RtpPacket, is_rtcp, transcode_in_place, write_rtp_to_vec};

use crate::config::{Leg, LegMedia, RelayConfig, RelayError};
use crate::latch::{Admission, Latch};
use crate::playback::{Player, Source, Tick};
use crate::pool::BufferPool;
use crate::recording::{RecordedFrame, Recorder};
use crate::stats::{LegStats, MediaStats};
use crate::stream::{Forwarding, OutStream, StreamStart};

/// Packets waiting for the daemon; more means it stopped polling, and the newest are
/// dropped rather than growing memory.
pub const MAX_QUEUED_TRANSMITS: usize = 64;

/// Events waiting for the daemon, bounded for the same reason (a caller flooding key
/// presses must not grow memory either).
pub const MAX_QUEUED_EVENTS: usize = 64;

/// A packet to send: from our port `from_port` to `to`.
///
/// Give `payload` back with [`CallMedia::recycle`] once sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTransmit {
    /// Our local port to send from (the leg's RTP port), so the peer's symmetric
    /// RTP and NAT see the address it sends to.
    pub from_port: u16,
    /// The peer's address (latched, or from its SDP).
    pub to: SocketAddr,
    /// The RTP packet.
    pub payload: Vec<u8>,
}

/// Something the call's signalling needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaEvent {
    /// A DTMF key press (RFC 4733), reported once, when it starts.
    Dtmf {
        /// `0-9`, `*`, `#` or `A-D`.
        key: char,
        /// Who pressed it.
        leg: Leg,
    },
    /// A prompt played without `repeat` reached its end; nothing plays now.
    PlaybackFinished,
    /// The leg has sent nothing for the media timeout: hang up.
    MediaTimeout {
        /// The silent leg.
        leg: Leg,
    },
}

/// Who feeds the caller's stream, and whether the phone hears the caller.
#[derive(Debug, Clone)]
enum Mode {
    /// Nothing is sent to either leg.
    Idle,
    /// The caller hears the player; the phone hears nothing.
    Playing(Player),
    /// The caller hears the phone; the phone hears nothing.
    EarlyMedia,
    /// Both hear each other.
    Bridged,
}

/// The audio a forwarded packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Audio,
    TelephoneEvent,
}

/// The relay's view of the far end of one leg.
#[derive(Debug, Clone)]
struct Peer {
    media: LegMedia,
    latch: Latch,
    dtmf: DtmfDetector,
    /// The SSRC of the last packet, to restart DTMF detection with a new stream.
    last_ssrc: Option<u32>,
    /// Since when the leg must send (media timeout), if it must.
    watched_since: Option<Instant>,
    last_heard: Option<Instant>,
    timed_out: bool,
}

impl Peer {
    fn new(media: LegMedia, watched_since: Option<Instant>) -> Peer {
        Peer {
            media,
            latch: Latch::new(media.remote),
            dtmf: DtmfDetector::new(),
            last_ssrc: None,
            watched_since,
            last_heard: None,
            timed_out: false,
        }
    }

    fn watch(&mut self, now: Instant) {
        self.watched_since.get_or_insert(now);
    }

    /// Watches the leg afresh from `now` if it timed out already: its earlier report
    /// was for a phase the call has left.
    fn rewatch_if_timed_out(&mut self, now: Instant) {
        if self.timed_out {
            self.timed_out = false;
            self.watched_since = Some(now);
        }
    }

    fn timeout_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.timed_out {
            return None;
        }
        let since = self.watched_since?;
        let last = self.last_heard.map_or(since, |heard| heard.max(since));
        last.checked_add(timeout)
    }
}

/// What goes out to the daemon, apart from the call state so that both can be
/// borrowed at once.
#[derive(Debug)]
struct Outbox {
    transmits: VecDeque<MediaTransmit>,
    events: VecDeque<MediaEvent>,
    pool: BufferPool,
    dropped_transmits: u64,
    dropped_events: u64,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            // Room for a packet each way and the odd event: a running call never
            // grows these, so the packet path never allocates.
            transmits: VecDeque::with_capacity(4),
            events: VecDeque::with_capacity(4),
            pool: BufferPool::default(),
            dropped_transmits: 0,
            dropped_events: 0,
        }
    }

    fn send(&mut self, stats: &mut LegStats, from_port: u16, to: SocketAddr, payload: Vec<u8>) {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.dropped_transmits += 1;
            self.pool.give_back(payload);
            return;
        }
        stats.packets_out += 1;
        stats.bytes_out += payload.len() as u64;
        self.transmits.push_back(MediaTransmit {
            from_port,
            to,
            payload,
        });
    }

    fn event(&mut self, event: MediaEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.dropped_events += 1;
            return;
        }
        self.events.push_back(event);
    }
}

/// One call's media: the caller's leg, the phone's leg, and what flows between them.
///
/// # Latching
///
/// A leg sends to where its packets come from (symmetric RTP, RFC 4961): the first
/// valid RTP packet on the leg's port fixes its address, whatever the SDP said, since
/// callers and phones behind NAT announce addresses nobody can reach. Until then the
/// SDP address is used; with neither, what would be sent is dropped and counted
/// ([`LegStats::dropped_no_destination`]). Packets from another source are then
/// dropped ([`LegStats::dropped_wrong_source`]) unless the latched source has been
/// silent for [`crate::RELATCH_AFTER`], in which case the new one takes over. Each
/// phone set with [`CallMedia::set_phone`] latches afresh.
///
/// # One stream per leg
///
/// Everything a leg receives (ringback, prompts, the other leg's audio) goes out as
/// one RTP stream with our own SSRC, consecutive sequence numbers and timestamps that
/// advance with wall time across every switch; the first packet after a switch
/// carries the marker bit. Forwarded packets keep their sender's spacing within a
/// talk spurt. See the `stream` module for the details.
///
/// # Transcoding and telephone-events
///
/// When the legs' laws differ, forwarded audio is converted byte by byte (PCMA ↔
/// PCMU); the payload type is always rewritten to the receiving leg's. Telephone-events
/// get the receiving leg's telephone-event payload type, or are dropped if it has
/// none. Packets are forwarded with a plain 12-byte header: CSRCs, header extensions
/// and padding belong to the sending leg's session and are not passed on. Payload
/// types a leg did not negotiate are dropped.
///
/// # DTMF
///
/// Telephone-events from either leg go through a detector that reports each key press
/// once ([`MediaEvent::Dtmf`]), whether or not they are forwarded (the caller's keys
/// reach the phone only when bridged).
///
/// # Media timeout
///
/// The caller must send from the start; the phone from the moment the call passes its
/// early media or is bridged. A leg that sent nothing (RTP, or RTCP from the leg's
/// address, which keeps a call on hold alive) for [`RelayConfig::media_timeout`]
/// raises [`MediaEvent::MediaTimeout`] once; a caller reported before the first bridge
/// is watched again from that bridge on, and reported again if still silent.
///
/// # RTCP
///
/// RTCP arriving on a leg's RTCP port, or multiplexed on its RTP port, is counted and
/// consumed, never forwarded: the far side's reports describe a stream whose SSRC,
/// sequence numbers and timestamps the relay rewrites, so they would be wrong on the
/// other leg. The relay does not send RTCP of its own yet; peers that insist on
/// receiving reports (few G.711 endpoints do) will not get them.
///
/// # Recording
///
/// With [`CallMedia::set_recording`] on and the call bridged, every 20 ms of wall time
/// yields a [`RecordedFrame`] with both sides' decoded audio (see the `recording`
/// module).
///
/// # Allocation
///
/// Outgoing packets are written into buffers the daemon hands back with
/// [`CallMedia::recycle`]; with that, forwarding and playing allocate nothing once a
/// call runs.
#[derive(Debug)]
pub struct CallMedia {
    ptime: Duration,
    samples_per_packet: u32,
    media_timeout: Duration,
    caller: Peer,
    phone: Option<Peer>,
    to_caller: OutStream,
    to_phone: OutStream,
    mode: Mode,
    recording: bool,
    /// The legs have been bridged at some point (the phone answered).
    answered: bool,
    recorder: Recorder,
    stats: MediaStats,
    outbox: Outbox,
}

/// SplitMix64: spreads one seed into independent-looking 64-bit values.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stream's random SSRC, first sequence number and first timestamp (RFC 3550
/// §5.1 wants the latter two random too, against known-plaintext attacks on
/// encrypted media).
fn stream_start(seed: &mut u64) -> StreamStart {
    let first = splitmix64(seed);
    let second = splitmix64(seed);
    StreamStart {
        ssrc: (first >> 32) as u32,
        sequence: first as u16,
        timestamp: second as u32,
    }
}

impl CallMedia {
    /// The media of a new call, with the caller's leg as its SDP offer settled it.
    ///
    /// `ssrc_seed` determines our SSRCs and first sequence numbers and timestamps, so
    /// a test can predict them; the daemon passes a random value.
    pub fn new(
        config: RelayConfig,
        caller: LegMedia,
        now: Instant,
        ssrc_seed: u64,
    ) -> Result<CallMedia, RelayError> {
        config.validate()?;
        caller.validate_caller()?;
        let mut seed = ssrc_seed;
        let to_caller = OutStream::new(stream_start(&mut seed), now);
        let to_phone = OutStream::new(stream_start(&mut seed), now);
        Ok(CallMedia {
            ptime: config.ptime,
            samples_per_packet: config.samples_per_packet(),
            media_timeout: config.media_timeout,
            caller: Peer::new(caller, Some(now)),
            phone: None,
            to_caller,
            to_phone,
            mode: Mode::Idle,
            recording: false,
            answered: false,
            recorder: Recorder::default(),
            stats: MediaStats::default(),
            outbox: Outbox::new(),
        })
    }

    /// Sets the phone leg: the phone sending early media or answering. A phone set
    /// earlier is forgotten (its port, latch and DTMF state); its statistics stay in
    /// [`MediaStats::phone`].
    pub fn set_phone(&mut self, phone: LegMedia, now: Instant) -> Result<(), RelayError> {
        phone.validate_phone(&self.caller.media)?;
        let hears_phone = self.forwards(Leg::Phone);
        self.phone = Some(Peer::new(phone, hears_phone.then_some(now)));
        self.to_phone.switch();
        if hears_phone {
            self.to_caller.switch();
        }
        self.recorder.forget(Leg::Phone);
        Ok(())
    }

    /// Plays `source` to the caller from `now` on, replacing whatever the caller
    /// hears (a bridge included: the phone then hears nothing). The first packet is
    /// queued at once, the next every ptime.
    pub fn play(&mut self, source: Source, now: Instant) {
        self.to_caller.switch();
        let first_timestamp = self.to_caller.start_timestamp(now);
        self.mode = Mode::Playing(Player::new(source, now, first_timestamp));
        self.update_recorder(now);
        self.drive_playback(now);
    }

    /// Stops what plays; the caller hears nothing until told otherwise. Does nothing
    /// unless something plays.
    pub fn stop_playback(&mut self, now: Instant) {
        if matches!(self.mode, Mode::Playing(_)) {
            self.mode = Mode::Idle;
            self.to_caller.switch();
            self.update_recorder(now);
        }
    }

    /// Forwards the phone's audio to the caller (early media: the phone's own
    /// ringback or announcement), instead of playing. The phone hears nothing yet.
    pub fn pass_early_media(&mut self, now: Instant) {
        match self.mode {
            Mode::EarlyMedia => return,
            Mode::Bridged => {}
            Mode::Idle | Mode::Playing(_) => self.to_caller.switch(),
        }
        self.mode = Mode::EarlyMedia;
        if let Some(phone) = &mut self.phone {
            phone.watch(now);
        }
        self.update_recorder(now);
    }

    /// Connects the legs both ways from `now` on (the phone answered).
    pub fn bridge(&mut self, now: Instant) {
        match self.mode {
            Mode::Bridged => return,
            Mode::EarlyMedia => {}
            Mode::Idle | Mode::Playing(_) => self.to_caller.switch(),
        }
        self.to_phone.switch();
        self.mode = Mode::Bridged;
        if let Some(phone) = &mut self.phone {
            phone.watch(now);
        }
        // A caller silent while the phones rang was reported then, and the B2BUA lets
        // that pass (carriers often send nothing before the answer); from the answer on
        // the silence counts again, or a caller whose network died would hold the call
        // until max_call_s.
        if !std::mem::replace(&mut self.answered, true) {
            self.caller.rewatch_if_timed_out(now);
        }
        self.update_recorder(now);
    }

    /// Turns the recording tap on or off. Frames are produced while it is on and the
    /// call is bridged, from `now` (or the moment of the bridge) on.
    pub fn set_recording(&mut self, on: bool, now: Instant) {
        self.recording = on;
        self.update_recorder(now);
    }

    /// A datagram that arrived on `local_port` (a leg's RTP port, or the RTCP port
    /// above it) from `source`. Never fails: what cannot be used is counted in
    /// [`CallMedia::stats`] and dropped.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        local_port: u16,
        source: SocketAddr,
        packet: &[u8],
    ) {
        let Some((leg, rtcp_port)) = self.leg_of_port(local_port) else {
            self.stats.unknown_port += 1;
            return;
        };
        if rtcp_port || is_rtcp(packet) {
            self.receive_rtcp(leg, now, source);
            return;
        }
        let Ok(rtp) = RtpPacket::parse(packet) else {
            self.leg_stats(leg).malformed += 1;
            return;
        };
        let stats = match leg {
            Leg::Caller => &mut self.stats.caller,
            Leg::Phone => &mut self.stats.phone,
        };
        let peer = match leg {
            Leg::Caller => &mut self.caller,
            Leg::Phone => match &mut self.phone {
                Some(phone) => phone,
                None => return,
            },
        };
        match peer.latch.admit(source, now) {
            Admission::Refused => {
                stats.dropped_wrong_source += 1;
                return;
            }
            Admission::Moved => stats.relatched += 1,
            Admission::Latched | Admission::Known => {}
        }
        peer.last_heard = Some(now);
        stats.packets_in += 1;
        stats.bytes_in += packet.len() as u64;
        if peer.last_ssrc != Some(rtp.ssrc()) {
            peer.dtmf.reset();
            peer.last_ssrc = Some(rtp.ssrc());
        }
        let payload_type = rtp.payload_type();
        let payload = if payload_type == peer.media.payload_type {
            self.recorder.push(leg, peer.media.law, rtp.payload());
            Payload::Audio
        } else if Some(payload_type) == peer.media.telephone_event {
            match peer.dtmf.feed(rtp.timestamp(), rtp.marker(), rtp.payload()) {
                Ok(Some(key)) => {
                    stats.dtmf_keys += 1;
                    self.outbox.event(MediaEvent::Dtmf { key, leg });
                }
                Ok(None) => {}
                Err(_) => {
                    stats.malformed += 1;
                    return;
                }
            }
            Payload::TelephoneEvent
        } else {
            stats.dropped_payload_type += 1;
            return;
        };
        if self.forwards(leg) {
            self.forward(now, leg, &rtp, payload);
        }
    }

    /// Plays the due tick, produces recorded frames and checks the media timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive_playback(now);
        self.recorder.tick(now);
        let timeout = self.media_timeout;
        for (leg, peer) in [
            (Leg::Caller, Some(&mut self.caller)),
            (Leg::Phone, self.phone.as_mut()),
        ] {
            let Some(peer) = peer else { continue };
            if peer
                .timeout_deadline(timeout)
                .is_some_and(|deadline| now >= deadline)
            {
                peer.timed_out = true;
                self.outbox.event(MediaEvent::MediaTimeout { leg });
            }
        }
    }

    /// When [`CallMedia::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let playback = match &self.mode {
            Mode::Playing(player) => player.deadline(self.ptime),
            Mode::Idle | Mode::EarlyMedia | Mode::Bridged => None,
        };
        let caller = self.caller.timeout_deadline(self.media_timeout);
        let phone = self
            .phone
            .as_ref()
            .and_then(|phone| phone.timeout_deadline(self.media_timeout));
        [playback, self.recorder.deadline(), caller, phone]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.outbox.transmits.pop_front()
    }

    /// Gives a sent packet's buffer back for a later packet.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        self.outbox.pool.give_back(buffer);
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.outbox.events.pop_front()
    }

    /// The next 20 ms of recorded audio.
    pub fn poll_recorded(&mut self) -> Option<RecordedFrame> {
        self.recorder.pop()
    }

    /// Counters and latched addresses.
    pub fn stats(&self) -> MediaStats {
        let mut stats = self.stats;
        stats.caller.latched = self.caller.latch.latched();
        stats.phone.latched = self.phone.as_ref().and_then(|phone| phone.latch.latched());
        stats.dropped_transmit_queue_full = self.outbox.dropped_transmits;
        stats.dropped_events = self.outbox.dropped_events;
        stats.dropped_recorded_frames = self.recorder.dropped_frames();
        stats
    }

    /// Our SSRC on the stream sent to `leg`.
    pub fn ssrc(&self, leg: Leg) -> u32 {
        match leg {
            Leg::Caller => self.to_caller.ssrc(),
            Leg::Phone => self.to_phone.ssrc(),
        }
    }

    /// Whether packets from `leg` go to the other leg now.
    fn forwards(&self, leg: Leg) -> bool {
        match (leg, &self.mode) {
            (_, Mode::Bridged) | (Leg::Phone, Mode::EarlyMedia) => true,
            (_, Mode::Idle | Mode::Playing(_)) | (Leg::Caller, Mode::EarlyMedia) => false,
        }
    }

    fn update_recorder(&mut self, now: Instant) {
        let running = self.recording && matches!(self.mode, Mode::Bridged);
        self.recorder.set_running(running, now);
    }

    fn leg_stats(&mut self, leg: Leg) -> &mut LegStats {
        match leg {
            Leg::Caller => &mut self.stats.caller,
            Leg::Phone => &mut self.stats.phone,
        }
    }

    /// The leg a local port belongs to, and whether it is the leg's RTCP port.
    fn leg_of_port(&self, port: u16) -> Option<(Leg, bool)> {
        let legs = [
            (Leg::Caller, Some(&self.caller)),
            (Leg::Phone, self.phone.as_ref()),
        ];
        legs.into_iter().find_map(|(leg, peer)| {
            let rtp_port = peer?.media.local_port;
            if port == rtp_port {
                Some((leg, false))
            } else if rtp_port.checked_add(1) == Some(port) {
                Some((leg, true))
            } else {
                None
            }
        })
    }

    fn receive_rtcp(&mut self, leg: Leg, now: Instant, source: SocketAddr) {
        self.leg_stats(leg).rtcp_in += 1;
        let peer = match leg {
            Leg::Caller => Some(&mut self.caller),
            Leg::Phone => self.phone.as_mut(),
        };
        // RTCP comes from the port above the peer's RTP port, which a NAT maps
        // anywhere: only the address must match.
        if let Some(peer) = peer
            && peer
                .latch
                .destination()
                .is_some_and(|destination| destination.ip() == source.ip())
        {
            peer.last_heard = Some(now);
        }
    }

    /// Sends a packet from `from` on to the other leg.
    fn forward(&mut self, now: Instant, from: Leg, rtp: &RtpPacket<'_>, payload: Payload) {
        let to = from.other();
        let from_law = match from {
            Leg::Caller => self.caller.media.law,
            Leg::Phone => match &self.phone {
                Some(phone) => phone.media.law,
                None => return,
            },
        };
        let target = match to {
            Leg::Caller => Some(&self.caller),
            Leg::Phone => self.phone.as_ref(),
        };
        let Some((target, destination)) =
            target.and_then(|peer| Some((peer.media, peer.latch.destination()?)))
        else {
            self.leg_stats(to).dropped_no_destination += 1;
            return;
        };
        let (payload_type, samples, table) = match payload {
            // G.711 carries one sample per byte.
            Payload::Audio => (
                target.payload_type,
                rtp.payload().len() as u32,
                from_law.transcode_table(target.law),
            ),
            Payload::TelephoneEvent => match target.telephone_event {
                Some(payload_type) => (payload_type, 0, None),
                None => {
                    self.leg_stats(to).dropped_no_telephone_event += 1;
                    return;
                }
            },
        };
        let stream = match to {
            Leg::Caller => &mut self.to_caller,
            Leg::Phone => &mut self.to_phone,
        };
        let fields = match stream.forward(now, &rtp.fields(), samples, payload_type) {
            Forwarding::Send(fields) => fields,
            Forwarding::OutOfSequence => {
                self.leg_stats(from).dropped_out_of_sequence += 1;
                return;
            }
        };
        let mut buffer = self.outbox.pool.take();
        if write_rtp_to_vec(&mut buffer, &fields, rtp.payload()).is_err() {
            // Payload types were checked when the leg was set; nothing to send.
            self.outbox.pool.give_back(buffer);
            return;
        }
        if let Some(table) = table {
            transcode_in_place(&mut buffer[FIXED_HEADER_LEN..], table);
        }
        let stats = match to {
            Leg::Caller => &mut self.stats.caller,
            Leg::Phone => &mut self.stats.phone,
        };
        self.outbox
            .send(stats, target.local_port, destination, buffer);
    }

    /// Sends the player's due packet, or ends a finished prompt.
    fn drive_playback(&mut self, now: Instant) {
        let Mode::Playing(player) = &mut self.mode else {
            return;
        };
        let samples = self.samples_per_packet;
        let Some(tick) = player.due(now, self.ptime, samples) else {
            return;
        };
        let index = match tick {
            Tick::Frame { index } => index,
            Tick::Finished => {
                self.mode = Mode::Idle;
                self.to_caller.switch();
                self.outbox.event(MediaEvent::PlaybackFinished);
                return;
            }
        };
        let Some(destination) = self.caller.latch.destination() else {
            self.stats.caller.dropped_no_destination += 1;
            return;
        };
        let media = self.caller.media;
        let fields = self.to_caller.originate(
            player.timestamp(index, samples),
            samples,
            media.payload_type,
        );
        let mut buffer = self.outbox.pool.take();
        if write_rtp_to_vec(&mut buffer, &fields, &[]).is_err() {
            // Payload types were checked when the leg was set; nothing to send.
            self.outbox.pool.give_back(buffer);
            return;
        }
        player.append_frame(index, samples, media.law, &mut buffer);
        self.outbox.send(
            &mut self.stats.caller,
            media.local_port,
            destination,
            buffer,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sihai_media::{Law, RtpFields};

    fn caller_media() -> LegMedia {
        LegMedia {
            local_port: 30_000,
            remote: Some("198.51.100.7:4000".parse().unwrap()),
            law: Law::Alaw,
            payload_type: 8,
            telephone_event: Some(101),
        }
    }

    fn phone_media() -> LegMedia {
        LegMedia {
            local_port: 30_002,
            remote: Some("10.1.2.3:5004".parse().unwrap()),
            law: Law::Alaw,
            payload_type: 8,
            telephone_event: Some(96),
        }
    }

    fn rtp(payload_type: u8, sequence: u16, timestamp: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let fields = RtpFields {
            marker: false,
            payload_type,
            sequence,
            timestamp,
            ssrc: 0xABCD,
        };
        write_rtp_to_vec(&mut out, &fields, payload).unwrap();
        out
    }

    #[test]
    fn seed_decides_ssrcs() {
        let t0 = Instant::now();
        let a = CallMedia::new(RelayConfig::default(), caller_media(), t0, 1).unwrap();
        let b = CallMedia::new(RelayConfig::default(), caller_media(), t0, 1).unwrap();
        let c = CallMedia::new(RelayConfig::default(), caller_media(), t0, 2).unwrap();
        assert_eq!(a.ssrc(Leg::Caller), b.ssrc(Leg::Caller));
        assert_eq!(a.ssrc(Leg::Phone), b.ssrc(Leg::Phone));
        assert_ne!(a.ssrc(Leg::Caller), a.ssrc(Leg::Phone));
        assert_ne!(a.ssrc(Leg::Caller), c.ssrc(Leg::Caller));
    }

    #[test]
    fn rejects_bad_config_and_legs() {
        let t0 = Instant::now();
        let config = RelayConfig {
            ptime: Duration::from_millis(5),
            ..RelayConfig::default()
        };
        assert!(matches!(
            CallMedia::new(config, caller_media(), t0, 0),
            Err(RelayError::InvalidPtime(_))
        ));
        let mut call = CallMedia::new(RelayConfig::default(), caller_media(), t0, 0).unwrap();
        let overlapping = LegMedia {
            local_port: 30_001,
            ..phone_media()
        };
        assert!(matches!(
            call.set_phone(overlapping, t0),
            Err(RelayError::PortsOverlap { .. })
        ));
        assert!(call.phone.is_none());
    }

    #[test]
    fn ports_map_to_legs() {
        let t0 = Instant::now();
        let mut call = CallMedia::new(RelayConfig::default(), caller_media(), t0, 0).unwrap();
        assert_eq!(call.leg_of_port(30_000), Some((Leg::Caller, false)));
        assert_eq!(call.leg_of_port(30_001), Some((Leg::Caller, true)));
        assert_eq!(call.leg_of_port(30_002), None);
        call.set_phone(phone_media(), t0).unwrap();
        assert_eq!(call.leg_of_port(30_002), Some((Leg::Phone, false)));
        assert_eq!(call.leg_of_port(30_003), Some((Leg::Phone, true)));
        assert_eq!(call.leg_of_port(29_999), None);
    }

    #[test]
    fn modes_decide_directions() {
        let t0 = Instant::now();
        let mut call = CallMedia::new(RelayConfig::default(), caller_media(), t0, 0).unwrap();
        let directions = |call: &CallMedia| (call.forwards(Leg::Caller), call.forwards(Leg::Phone));
        assert_eq!(directions(&call), (false, false));
        call.play(Source::Silence, t0);
        assert_eq!(directions(&call), (false, false));
        call.pass_early_media(t0);
        assert_eq!(directions(&call), (false, true));
        call.bridge(t0);
        assert_eq!(directions(&call), (true, true));
        call.pass_early_media(t0);
        assert_eq!(directions(&call), (false, true));
        call.play(Source::Silence, t0);
        call.stop_playback(t0);
        assert_eq!(directions(&call), (false, false));
    }

    #[test]
    fn phone_packets_before_any_phone_is_set_are_unknown() {
        let t0 = Instant::now();
        let mut call = CallMedia::new(RelayConfig::default(), caller_media(), t0, 0).unwrap();
        let packet = rtp(8, 1, 160, &[0xD5; 160]);
        call.handle_packet(t0, 30_002, "10.1.2.3:5004".parse().unwrap(), &packet);
        assert_eq!(call.stats().unknown_port, 1);
        assert_eq!(call.stats().phone, LegStats::default());
    }

    #[test]
    fn splitmix_is_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's reference code).
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut state), 0x6E78_9E6A_A1B9_65F4);
    }
}
