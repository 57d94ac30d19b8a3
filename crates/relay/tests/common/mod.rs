//! Helpers shared by the integration tests: a caller and phones, packet builders and
//! a way to read back what the relay sent.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sihai_media::{Law, RtpFields, RtpPacket, write_rtp_to_vec};
use sihai_relay::{CallMedia, LegMedia, MediaEvent, MediaTransmit, RelayConfig};

pub const CALLER_PORT: u16 = 20_000;
pub const PHONE_PORT: u16 = 20_002;
pub const SECOND_PHONE_PORT: u16 = 20_010;
pub const CALLER_EVENT_PT: u8 = 101;
pub const PHONE_EVENT_PT: u8 = 96;
pub const CALLER_SSRC: u32 = 0xCA11_E700;
pub const PHONE_SSRC: u32 = 0x0F0E_0000;

pub fn address(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The caller's SDP address (a private one, as behind NAT).
pub fn caller_sdp() -> SocketAddr {
    address("192.168.1.20:4000")
}

/// Where the caller's packets really come from.
pub fn caller_natted() -> SocketAddr {
    address("198.51.100.7:61000")
}

pub fn phone_sdp() -> SocketAddr {
    address("10.1.2.3:5004")
}

pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

pub fn caller_media(law: Law) -> LegMedia {
    LegMedia {
        local_port: CALLER_PORT,
        remote: Some(caller_sdp()),
        law,
        payload_type: law.payload_type(),
        telephone_event: Some(CALLER_EVENT_PT),
    }
}

pub fn phone_media(law: Law) -> LegMedia {
    LegMedia {
        local_port: PHONE_PORT,
        remote: Some(phone_sdp()),
        law,
        payload_type: law.payload_type(),
        telephone_event: Some(PHONE_EVENT_PT),
    }
}

pub fn new_call(caller: LegMedia, t0: Instant) -> CallMedia {
    CallMedia::new(RelayConfig::default(), caller, t0, 0x5EED).unwrap()
}

/// A call with a phone of `phone_law`, bridged at `t0`.
pub fn bridged(caller_law: Law, phone_law: Law, t0: Instant) -> CallMedia {
    let mut call = new_call(caller_media(caller_law), t0);
    call.set_phone(phone_media(phone_law), t0).unwrap();
    call.bridge(t0);
    call
}

pub fn rtp(fields: RtpFields, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_rtp_to_vec(&mut out, &fields, payload).unwrap();
    out
}

/// A 20 ms audio packet whose every sample is `sample`.
pub fn audio(law: Law, ssrc: u32, sequence: u16, timestamp: u32, sample: i16) -> Vec<u8> {
    rtp(
        RtpFields {
            marker: false,
            payload_type: law.payload_type(),
            sequence,
            timestamp,
            ssrc,
        },
        &[law.encode(sample); 160],
    )
}

/// One RFC 4733 telephone-event packet.
pub fn key_packet(
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    marker: bool,
    event: [u8; 4],
) -> Vec<u8> {
    rtp(
        RtpFields {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
        },
        &event,
    )
}

/// A packet the relay sent, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub from_port: u16,
    pub to: SocketAddr,
    pub fields: RtpFields,
    pub header_len: usize,
    pub payload: Vec<u8>,
}

pub fn read(transmit: &MediaTransmit) -> Sent {
    let packet = RtpPacket::parse(&transmit.payload).unwrap();
    Sent {
        from_port: transmit.from_port,
        to: transmit.to,
        fields: packet.fields(),
        header_len: packet.header_len(),
        payload: packet.payload().to_vec(),
    }
}

/// Everything the relay has queued, read back, buffers returned.
pub fn drain(call: &mut CallMedia) -> Vec<Sent> {
    let mut sent = Vec::new();
    while let Some(transmit) = call.poll_transmit() {
        sent.push(read(&transmit));
        call.recycle(transmit.payload);
    }
    sent
}

pub fn events(call: &mut CallMedia) -> Vec<MediaEvent> {
    std::iter::from_fn(|| call.poll_event()).collect()
}

/// Runs the call's timers until `until`, as the daemon would, collecting what it
/// sent along the way with the instant it was sent.
pub fn run_until(call: &mut CallMedia, until: Instant) -> Vec<(Instant, Sent)> {
    let mut sent = Vec::new();
    let mut wakeups = 0;
    while let Some(deadline) = call.poll_timeout() {
        if deadline > until {
            break;
        }
        wakeups += 1;
        assert!(
            wakeups < 1_000_000,
            "the timer does not move on from {deadline:?}"
        );
        call.handle_timeout(deadline);
        sent.extend(drain(call).into_iter().map(|packet| (deadline, packet)));
    }
    sent
}
