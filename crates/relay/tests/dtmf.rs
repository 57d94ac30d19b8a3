//! RFC 4733 key presses: one event per press whatever the retransmissions, from
//! either leg, forwarded to the phone only when bridged.

mod common;

use std::time::Instant;

use common::*;
use sihai_media::{Law, TelephoneEvent};
use sihai_relay::{Leg, LegMedia, MediaEvent, Source};

/// A whole key press as phones send it: three start packets, updates, three ends.
fn press(
    payload_type: u8,
    ssrc: u32,
    first_sequence: u16,
    timestamp: u32,
    key: u8,
) -> Vec<Vec<u8>> {
    let packet = |offset: u16, marker: bool, end: bool, duration: u16| {
        let event = TelephoneEvent {
            event: key,
            end,
            volume: 10,
            duration,
        };
        key_packet(
            payload_type,
            ssrc,
            first_sequence + offset,
            timestamp,
            marker,
            event.to_bytes(),
        )
    };
    vec![
        packet(0, true, false, 160),
        packet(1, true, false, 160),
        packet(2, true, false, 160),
        packet(3, false, false, 480),
        packet(4, false, false, 800),
        packet(5, false, true, 960),
        packet(6, false, true, 960),
        packet(7, false, true, 960),
    ]
}

#[test]
fn one_event_per_press_while_a_prompt_plays_and_nothing_forwarded() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.set_phone(phone_media(Law::Alaw), t0).unwrap();
    call.play(Source::Silence, t0);
    drain(&mut call);
    for packet in press(CALLER_EVENT_PT, CALLER_SSRC, 10, 8000, 1) {
        call.handle_packet(t0 + ms(5), CALLER_PORT, caller_sdp(), &packet);
    }
    for packet in press(CALLER_EVENT_PT, CALLER_SSRC, 18, 16_000, 11) {
        call.handle_packet(t0 + ms(6), CALLER_PORT, caller_sdp(), &packet);
    }
    assert_eq!(
        events(&mut call),
        vec![
            MediaEvent::Dtmf {
                key: '1',
                leg: Leg::Caller
            },
            MediaEvent::Dtmf {
                key: '#',
                leg: Leg::Caller
            },
        ]
    );
    assert!(drain(&mut call).is_empty(), "the phone hears nothing yet");
    assert_eq!(call.stats().caller.dtmf_keys, 2);
    assert_eq!(call.stats().dtmf_keys(), 2);
}

#[test]
fn bridged_keys_are_detected_and_forwarded() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Ulaw, Law::Alaw, t0);
    let packets = press(CALLER_EVENT_PT, CALLER_SSRC, 10, 8000, 9);
    for packet in &packets {
        call.handle_packet(t0, CALLER_PORT, caller_sdp(), packet);
    }
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::Dtmf {
            key: '9',
            leg: Leg::Caller
        }]
    );
    let to_phone = drain(&mut call);
    assert_eq!(
        to_phone.len(),
        packets.len(),
        "every retransmission passes on"
    );
    assert!(
        to_phone
            .iter()
            .all(|packet| packet.fields.payload_type == PHONE_EVENT_PT)
    );
    // All of one press keep one timestamp.
    assert!(
        to_phone
            .iter()
            .all(|packet| packet.fields.timestamp == to_phone[0].fields.timestamp)
    );
}

#[test]
fn the_phone_presses_keys_too() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.set_phone(phone_media(Law::Alaw), t0).unwrap();
    call.pass_early_media(t0);
    for packet in press(PHONE_EVENT_PT, PHONE_SSRC, 1, 0, 12) {
        call.handle_packet(t0, PHONE_PORT, phone_sdp(), &packet);
    }
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::Dtmf {
            key: 'A',
            leg: Leg::Phone
        }]
    );
    // Early media passes the phone's events on to the caller.
    assert_eq!(drain(&mut call).len(), 8);
    assert_eq!(call.stats().phone.dtmf_keys, 1);
}

#[test]
fn a_new_stream_starts_detection_afresh() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    let start = TelephoneEvent {
        event: 5,
        end: false,
        volume: 10,
        duration: 160,
    }
    .to_bytes();
    call.handle_packet(
        t0,
        CALLER_PORT,
        caller_sdp(),
        &key_packet(CALLER_EVENT_PT, 1, 1, 4000, true, start),
    );
    // The same timestamp from another SSRC (the caller's gateway restarted its
    // stream) is another press.
    call.handle_packet(
        t0,
        CALLER_PORT,
        caller_sdp(),
        &key_packet(CALLER_EVENT_PT, 2, 1, 4000, true, start),
    );
    assert_eq!(events(&mut call).len(), 2);
}

#[test]
fn truncated_events_are_malformed() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    let short = rtp_short(CALLER_EVENT_PT);
    call.handle_packet(t0, CALLER_PORT, caller_sdp(), &short);
    assert!(events(&mut call).is_empty());
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.stats().caller.malformed, 1);
}

#[test]
fn legs_without_telephone_event_send_no_keys() {
    let t0 = Instant::now();
    let caller = LegMedia {
        telephone_event: None,
        ..caller_media(Law::Alaw)
    };
    let mut call = new_call(caller, t0);
    for packet in press(CALLER_EVENT_PT, CALLER_SSRC, 1, 0, 1) {
        call.handle_packet(t0, CALLER_PORT, caller_sdp(), &packet);
    }
    assert!(events(&mut call).is_empty());
    assert_eq!(call.stats().caller.dropped_payload_type, 8);
}

fn rtp_short(payload_type: u8) -> Vec<u8> {
    let fields = sihai_media::RtpFields {
        marker: true,
        payload_type,
        sequence: 1,
        timestamp: 0,
        ssrc: CALLER_SSRC,
    };
    rtp(fields, &[1, 10, 0])
}
