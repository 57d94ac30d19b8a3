//! The per-call RTP relay: every call's audio passes through sihai, which latches onto
//! callers and phones behind NAT, plays ringback and prompts to the caller, bridges
//! the two legs (converting PCMA ↔ PCMU when they disagree), picks up DTMF, taps the
//! audio for recording and notices when a leg goes silent.
//!
//! [`CallMedia`] is one call's media as a sans-IO state machine, like the rest of
//! sihai's cores: no sockets, no threads, no clock of its own. Every input carries
//! `now`; packets, events, recorded audio and the next wake-up are polled. The daemon
//! owns the sockets and the ports (from `sihai_media::PortPool`), so a test of
//! "30 seconds of ringback, an answer, a key press" runs in microseconds.
//!
//! - [`call`]: [`CallMedia`], the state machine, and what it hands out.
//! - [`config`]: [`RelayConfig`] and [`LegMedia`], checked once when handed over.
//! - `latch`: symmetric RTP, following the address packets come from.
//! - `stream`: one continuous RTP stream per leg across every switch.
//! - [`playback`]: ringback, prompts and silence on a wall-clock grid.
//! - [`recording`]: both sides' audio, 20 ms at a time.
//! - [`stats`]: what happened to the packets.
//! - `pool`: buffers recycled between the relay and the daemon.
//!
//! A call hears ringback, then the phone answers and the legs are bridged:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::{Duration, Instant};
//! use sihai_media::{Law, RtpFields, RtpPacket, write_rtp_to_vec};
//! use sihai_relay::{CallMedia, LegMedia, MediaEvent, RelayConfig, Source};
//!
//! let t0 = Instant::now();
//! let caller_sdp: SocketAddr = "192.168.1.20:4000".parse()?;
//! let caller = LegMedia {
//!     local_port: 20_000,
//!     remote: Some(caller_sdp),
//!     law: Law::Alaw,
//!     payload_type: 8,
//!     telephone_event: Some(101),
//! };
//! let mut call = CallMedia::new(RelayConfig::default(), caller, t0, 0x5EED)?;
//!
//! // Ringback: the first packet at once, to the SDP address, the next in 20 ms.
//! call.play(Source::Ringback, t0);
//! let ringback = call.poll_transmit().ok_or("no ringback")?;
//! assert_eq!((ringback.from_port, ringback.to), (20_000, caller_sdp));
//! assert_eq!(RtpPacket::parse(&ringback.payload)?.payload().len(), 160);
//! call.recycle(ringback.payload);
//! assert_eq!(call.poll_timeout(), Some(t0 + Duration::from_millis(20)));
//!
//! // A PCMU phone answers three seconds later.
//! let t1 = t0 + Duration::from_secs(3);
//! let phone_address: SocketAddr = "203.0.113.5:5004".parse()?;
//! let phone = LegMedia {
//!     local_port: 20_002,
//!     remote: Some(phone_address),
//!     law: Law::Ulaw,
//!     payload_type: 0,
//!     telephone_event: Some(101),
//! };
//! call.set_phone(phone, t1)?;
//! call.bridge(t1);
//!
//! // The caller's audio, from its NAT's public address, reaches the phone in PCMU...
//! let natted: SocketAddr = "198.51.100.7:61000".parse()?;
//! let fields = RtpFields { marker: false, payload_type: 8, sequence: 1, timestamp: 160, ssrc: 7 };
//! let mut datagram = Vec::new();
//! write_rtp_to_vec(&mut datagram, &fields, &[Law::Alaw.encode(1000); 160])?;
//! call.handle_packet(t1, 20_000, natted, &datagram);
//! let to_phone = call.poll_transmit().ok_or("nothing forwarded")?;
//! let forwarded = RtpPacket::parse(&to_phone.payload)?;
//! assert_eq!((to_phone.from_port, to_phone.to), (20_002, phone_address));
//! assert_eq!(forwarded.payload_type(), 0);
//! assert!(forwarded.payload().iter().all(|&byte| (Law::Ulaw.decode(byte) - 1000).abs() < 64));
//!
//! // ...and from now on the caller's leg answers to the NAT's address, not the SDP's.
//! assert_eq!(call.stats().caller.latched, Some(natted));
//!
//! // The caller presses 5.
//! let key = RtpFields { marker: true, payload_type: 101, sequence: 2, timestamp: 320, ssrc: 7 };
//! let mut datagram = Vec::new();
//! write_rtp_to_vec(&mut datagram, &key, &[5, 10, 0, 160])?;
//! call.handle_packet(t1, 20_000, natted, &datagram);
//! assert_eq!(call.poll_event(), Some(MediaEvent::Dtmf { key: '5', leg: sihai_relay::Leg::Caller }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod call;
pub mod config;
mod latch;
pub mod playback;
mod pool;
pub mod recording;
pub mod stats;
mod stream;

pub use call::{CallMedia, MAX_QUEUED_EVENTS, MAX_QUEUED_TRANSMITS, MediaEvent, MediaTransmit};
pub use config::{Leg, LegMedia, MAX_PTIME, MIN_PTIME, RelayConfig, RelayError};
pub use latch::RELATCH_AFTER;
pub use playback::Source;
pub use pool::BUFFER_CAPACITY;
pub use recording::{MAX_QUEUED_FRAMES, MAX_QUEUED_SAMPLES, RECORDING_FRAME, RecordedFrame};
pub use stats::{LegStats, MediaStats};
