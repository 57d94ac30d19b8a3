//! RTCP is consumed and counted, never forwarded and never latched onto; garbage on
//! a media port is counted and changes nothing.

mod common;

use std::time::Instant;

use common::*;
use sihai_media::Law;

const SENDER_REPORT: [u8; 28] = [
    0x80, 200, 0, 6, 0xCA, 0x11, 0xE7, 0x00, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0,
    0, 5,
];

#[test]
fn rtcp_on_the_rtcp_port_is_consumed() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    call.handle_packet(t0, CALLER_PORT + 1, caller_natted(), &SENDER_REPORT);
    call.handle_packet(t0, PHONE_PORT + 1, phone_sdp(), &SENDER_REPORT);
    // Even something that looks like RTP is RTCP on the RTCP port.
    call.handle_packet(
        t0,
        PHONE_PORT + 1,
        phone_sdp(),
        &audio(Law::Alaw, PHONE_SSRC, 1, 0, 0),
    );
    assert!(drain(&mut call).is_empty());
    let stats = call.stats();
    assert_eq!((stats.caller.rtcp_in, stats.phone.rtcp_in), (1, 2));
    assert_eq!((stats.caller.latched, stats.phone.latched), (None, None));
    assert_eq!((stats.caller.packets_in, stats.phone.packets_in), (0, 0));
}

#[test]
fn rtcp_multiplexed_on_the_rtp_port_is_consumed() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    call.handle_packet(t0, CALLER_PORT, caller_natted(), &SENDER_REPORT);
    assert!(drain(&mut call).is_empty());
    let stats = call.stats().caller;
    assert_eq!(stats.rtcp_in, 1);
    assert_eq!(stats.latched, None);
    assert_eq!(stats.malformed, 0);
}

#[test]
fn garbage_is_counted_and_latches_nothing() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    // STUN binding request (version bits 0), a truncated header, an empty datagram.
    let stun = [
        0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    for garbage in [&stun[..], &[0x80, 8, 0, 1][..], &[][..]] {
        call.handle_packet(t0, CALLER_PORT, caller_natted(), garbage);
    }
    assert!(drain(&mut call).is_empty());
    let stats = call.stats().caller;
    assert_eq!(stats.malformed, 3);
    assert_eq!(stats.latched, None);
    assert_eq!(call.stats().dropped(), 3);
}

#[test]
fn ports_of_no_leg_are_counted() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    for port in [CALLER_PORT - 1, PHONE_PORT + 2, 0, u16::MAX] {
        call.handle_packet(t0, port, caller_sdp(), &audio(Law::Alaw, 1, 1, 0, 0));
    }
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.stats().unknown_port, 4);
}
