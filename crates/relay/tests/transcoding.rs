//! PCMA ↔ PCMU conversion between legs that disagree, payload types rewritten to the
//! receiving leg's, telephone-events re-typed or dropped, and nothing of the sending
//! leg's session (CSRCs, extensions, padding, odd payload types) passed on.

mod common;

use std::time::Instant;

use common::*;
use sihai_media::{ALAW_TO_ULAW, Law, RtpFields, ULAW_TO_ALAW};
use sihai_relay::LegMedia;

fn every_byte() -> Vec<u8> {
    (0..=255u8).collect()
}

fn fields(payload_type: u8, ssrc: u32) -> RtpFields {
    RtpFields {
        marker: false,
        payload_type,
        sequence: 1,
        timestamp: 0,
        ssrc,
    }
}

#[test]
fn pcmu_caller_and_pcma_phone_are_converted_both_ways() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Ulaw, Law::Alaw, t0);
    call.handle_packet(
        t0,
        CALLER_PORT,
        caller_sdp(),
        &rtp(fields(0, CALLER_SSRC), &every_byte()),
    );
    let to_phone = drain(&mut call);
    assert_eq!(to_phone.len(), 1);
    assert_eq!(to_phone[0].fields.payload_type, 8);
    let expected: Vec<u8> = every_byte()
        .iter()
        .map(|&byte| ULAW_TO_ALAW[usize::from(byte)])
        .collect();
    assert_eq!(to_phone[0].payload, expected);

    call.handle_packet(
        t0,
        PHONE_PORT,
        phone_sdp(),
        &rtp(fields(8, PHONE_SSRC), &every_byte()),
    );
    let to_caller = drain(&mut call);
    assert_eq!(to_caller[0].fields.payload_type, 0);
    let expected: Vec<u8> = every_byte()
        .iter()
        .map(|&byte| ALAW_TO_ULAW[usize::from(byte)])
        .collect();
    assert_eq!(to_caller[0].payload, expected);
}

#[test]
fn same_law_is_forwarded_untouched_with_the_receivers_payload_type() {
    let t0 = Instant::now();
    // The phone negotiated PCMU under a dynamic payload type.
    let mut call = new_call(caller_media(Law::Ulaw), t0);
    let phone = LegMedia {
        payload_type: 98,
        ..phone_media(Law::Ulaw)
    };
    call.set_phone(phone, t0).unwrap();
    call.bridge(t0);
    call.handle_packet(
        t0,
        CALLER_PORT,
        caller_sdp(),
        &rtp(fields(0, CALLER_SSRC), &every_byte()),
    );
    let to_phone = drain(&mut call);
    assert_eq!(to_phone[0].fields.payload_type, 98);
    assert_eq!(to_phone[0].payload, every_byte());

    // The phone's packets are recognised by its own payload type, 98...
    call.handle_packet(
        t0,
        PHONE_PORT,
        phone_sdp(),
        &rtp(fields(98, PHONE_SSRC), &every_byte()),
    );
    let to_caller = drain(&mut call);
    assert_eq!(to_caller[0].fields.payload_type, 0);
    assert_eq!(to_caller[0].payload, every_byte());
    // ...and 0 from it is a payload type it never negotiated.
    call.handle_packet(
        t0,
        PHONE_PORT,
        phone_sdp(),
        &rtp(fields(0, PHONE_SSRC), &every_byte()),
    );
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.stats().phone.dropped_payload_type, 1);
}

#[test]
fn telephone_events_take_the_receivers_payload_type() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Ulaw, Law::Alaw, t0);
    let event = [3, 10, 0, 160];
    let packet = key_packet(CALLER_EVENT_PT, CALLER_SSRC, 1, 0, true, event);
    call.handle_packet(t0, CALLER_PORT, caller_sdp(), &packet);
    let to_phone = drain(&mut call);
    assert_eq!(to_phone.len(), 1);
    assert_eq!(to_phone[0].fields.payload_type, PHONE_EVENT_PT);
    assert_eq!(to_phone[0].payload, event, "never transcoded");
    assert!(to_phone[0].fields.marker);

    let packet = key_packet(PHONE_EVENT_PT, PHONE_SSRC, 1, 0, true, [11, 10, 0, 160]);
    call.handle_packet(t0, PHONE_PORT, phone_sdp(), &packet);
    let to_caller = drain(&mut call);
    assert_eq!(to_caller[0].fields.payload_type, CALLER_EVENT_PT);
}

#[test]
fn telephone_events_are_dropped_for_a_leg_without_them() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    let phone = LegMedia {
        telephone_event: None,
        ..phone_media(Law::Alaw)
    };
    call.set_phone(phone, t0).unwrap();
    call.bridge(t0);
    let packet = key_packet(CALLER_EVENT_PT, CALLER_SSRC, 1, 0, true, [3, 10, 0, 160]);
    call.handle_packet(t0, CALLER_PORT, caller_sdp(), &packet);
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.stats().phone.dropped_no_telephone_event, 1);
    // The key itself was still heard.
    assert_eq!(call.stats().caller.dtmf_keys, 1);
}

#[test]
fn csrcs_extensions_and_padding_are_not_passed_on() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Ulaw, t0);
    let mut packet = rtp(fields(8, CALLER_SSRC), &[]);
    packet[0] |= 0x20 | 0x10 | 1; // padding, extension, one CSRC
    packet.extend_from_slice(&[0, 0, 0, 42]);
    packet.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
    packet.extend_from_slice(&[Law::Alaw.silence(); 160]);
    packet.extend_from_slice(&[0, 0, 3]);
    call.handle_packet(t0, CALLER_PORT, caller_sdp(), &packet);
    let to_phone = drain(&mut call);
    assert_eq!(to_phone[0].header_len, 12);
    let converted = ALAW_TO_ULAW[usize::from(Law::Alaw.silence())];
    assert_eq!(to_phone[0].payload, vec![converted; 160]);
}

#[test]
fn other_payload_types_are_dropped_but_keep_the_leg_alive() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    // Comfort noise (RFC 3389), never negotiated.
    call.handle_packet(
        t0,
        CALLER_PORT,
        caller_natted(),
        &rtp(fields(13, CALLER_SSRC), &[40]),
    );
    assert!(drain(&mut call).is_empty());
    let stats = call.stats().caller;
    assert_eq!(stats.dropped_payload_type, 1);
    assert_eq!(stats.packets_in, 1);
    assert_eq!(stats.latched, Some(caller_natted()));
}
