//! Symmetric RTP: each leg's packets go to where that leg's packets come from, the
//! SDP address is only a starting point, strangers are refused, and a source that
//! fell silent for two seconds can be replaced.

mod common;

use common::*;
use sihai_media::Law;
use sihai_relay::{LegMedia, RELATCH_AFTER, Source};
use std::time::Instant;

#[test]
fn caller_receives_at_its_sdp_address_until_its_first_packet() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.play(Source::Silence, t0);
    let first = drain(&mut call);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].from_port, first[0].to),
        (CALLER_PORT, caller_sdp())
    );
    assert_eq!(call.stats().caller.latched, None);

    // The caller is behind NAT: its packets come from elsewhere, and so do ours now.
    call.handle_packet(
        t0 + ms(10),
        CALLER_PORT,
        caller_natted(),
        &audio(Law::Alaw, CALLER_SSRC, 1, 0, 0),
    );
    let sent = run_until(&mut call, t0 + ms(40));
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|(_, packet)| packet.to == caller_natted()));
    assert_eq!(call.stats().caller.latched, Some(caller_natted()));
    assert_eq!(call.stats().caller.packets_in, 1);
}

#[test]
fn with_no_address_at_all_packets_are_dropped_and_counted() {
    let t0 = Instant::now();
    let caller = LegMedia {
        remote: None,
        ..caller_media(Law::Ulaw)
    };
    let mut call = new_call(caller, t0);
    call.play(Source::Ringback, t0);
    assert!(drain(&mut call).is_empty());
    run_until(&mut call, t0 + ms(40));
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.stats().caller.dropped_no_destination, 3);
    assert_eq!(call.stats().caller.packets_out, 0);

    let source = address("[2001:db8::7]:50000");
    call.handle_packet(
        t0 + ms(50),
        CALLER_PORT,
        source,
        &audio(Law::Ulaw, 1, 1, 0, 0),
    );
    let sent = run_until(&mut call, t0 + ms(60));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.to, source);
}

#[test]
fn phone_leg_latches_too() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    let caller_packet = audio(Law::Alaw, CALLER_SSRC, 1, 0, 100);
    call.handle_packet(t0, CALLER_PORT, caller_sdp(), &caller_packet);
    assert_eq!(drain(&mut call)[0].to, phone_sdp());

    let phone_public = address("203.0.113.5:7078");
    call.handle_packet(
        t0,
        PHONE_PORT,
        phone_public,
        &audio(Law::Alaw, PHONE_SSRC, 9, 0, 0),
    );
    let to_caller = drain(&mut call);
    assert_eq!(to_caller.len(), 1);
    assert_eq!(
        (to_caller[0].from_port, to_caller[0].to),
        (CALLER_PORT, caller_sdp())
    );

    call.handle_packet(
        t0 + ms(20),
        CALLER_PORT,
        caller_sdp(),
        &audio(Law::Alaw, CALLER_SSRC, 2, 160, 100),
    );
    let to_phone = drain(&mut call);
    assert_eq!(
        (to_phone[0].from_port, to_phone[0].to),
        (PHONE_PORT, phone_public)
    );
    assert_eq!(call.stats().phone.latched, Some(phone_public));
}

#[test]
fn strangers_are_refused_until_the_latched_source_is_silent_for_two_seconds() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    let stranger = address("198.51.100.66:4000");
    call.handle_packet(
        t0,
        CALLER_PORT,
        caller_natted(),
        &audio(Law::Alaw, CALLER_SSRC, 1, 0, 0),
    );
    assert_eq!(drain(&mut call).len(), 1);

    // Within two seconds of the caller's last packet: refused, not forwarded.
    let last = t0 + ms(1000);
    call.handle_packet(
        last,
        CALLER_PORT,
        caller_natted(),
        &audio(Law::Alaw, CALLER_SSRC, 2, 160, 0),
    );
    drain(&mut call);
    call.handle_packet(
        last + ms(1999),
        CALLER_PORT,
        stranger,
        &audio(Law::Alaw, 666, 1, 0, 0),
    );
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.stats().caller.dropped_wrong_source, 1);
    assert_eq!(call.stats().caller.packets_in, 2);

    // Two silent seconds: the new source takes over (a NAT rebinding).
    call.handle_packet(
        last + RELATCH_AFTER,
        CALLER_PORT,
        stranger,
        &audio(Law::Alaw, 666, 2, 160, 0),
    );
    assert_eq!(drain(&mut call).len(), 1);
    let stats = call.stats().caller;
    assert_eq!((stats.latched, stats.relatched), (Some(stranger), 1));

    // And the phone's audio now goes there.
    call.handle_packet(
        last + RELATCH_AFTER,
        PHONE_PORT,
        phone_sdp(),
        &audio(Law::Alaw, PHONE_SSRC, 1, 0, 0),
    );
    assert_eq!(drain(&mut call)[0].to, stranger);
    // The old address is the stranger now.
    call.handle_packet(
        last + RELATCH_AFTER + ms(20),
        CALLER_PORT,
        caller_natted(),
        &audio(Law::Alaw, CALLER_SSRC, 3, 320, 0),
    );
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.stats().caller.dropped_wrong_source, 2);
}

#[test]
fn a_new_phone_latches_afresh() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    let first_phone = address("203.0.113.5:7078");
    call.handle_packet(
        t0,
        PHONE_PORT,
        first_phone,
        &audio(Law::Alaw, PHONE_SSRC, 1, 0, 0),
    );
    drain(&mut call);
    assert_eq!(call.stats().phone.latched, Some(first_phone));

    // The hunt moves on to another phone, announced at its SDP address.
    let second_sdp = address("10.9.9.9:6000");
    let second = LegMedia {
        local_port: SECOND_PHONE_PORT,
        remote: Some(second_sdp),
        ..phone_media(Law::Alaw)
    };
    let t1 = t0 + ms(500);
    call.set_phone(second, t1).unwrap();
    assert_eq!(call.stats().phone.latched, None);
    call.handle_packet(
        t1,
        CALLER_PORT,
        caller_sdp(),
        &audio(Law::Alaw, CALLER_SSRC, 1, 0, 0),
    );
    let to_phone = drain(&mut call);
    assert_eq!(
        (to_phone[0].from_port, to_phone[0].to),
        (SECOND_PHONE_PORT, second_sdp)
    );

    // Stragglers on the first phone's port belong to nobody now.
    call.handle_packet(
        t1,
        PHONE_PORT,
        first_phone,
        &audio(Law::Alaw, PHONE_SSRC, 2, 160, 0),
    );
    assert!(drain(&mut call).is_empty());
    assert_eq!(call.stats().unknown_port, 1);

    // The second phone's packets latch its leg, from wherever they come.
    let second_public = address("203.0.113.77:40000");
    call.handle_packet(
        t1 + ms(20),
        SECOND_PHONE_PORT,
        second_public,
        &audio(Law::Alaw, 77, 1, 0, 0),
    );
    assert_eq!(drain(&mut call)[0].to, caller_sdp());
    assert_eq!(call.stats().phone.latched, Some(second_public));
}

#[test]
fn a_new_phone_on_the_same_port_forgets_the_old_latch() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    let first_phone = address("203.0.113.5:7078");
    call.handle_packet(
        t0,
        PHONE_PORT,
        first_phone,
        &audio(Law::Alaw, PHONE_SSRC, 1, 0, 0),
    );
    drain(&mut call);
    let second_sdp = address("10.9.9.9:6000");
    call.set_phone(
        LegMedia {
            remote: Some(second_sdp),
            ..phone_media(Law::Alaw)
        },
        t0 + ms(100),
    )
    .unwrap();
    call.handle_packet(
        t0 + ms(100),
        CALLER_PORT,
        caller_sdp(),
        &audio(Law::Alaw, CALLER_SSRC, 1, 0, 0),
    );
    assert_eq!(drain(&mut call)[0].to, second_sdp);
    // The new phone's first packet latches the shared port; the old phone's
    // stragglers are then strangers.
    call.handle_packet(
        t0 + ms(120),
        PHONE_PORT,
        second_sdp,
        &audio(Law::Alaw, 5, 1, 0, 0),
    );
    call.handle_packet(
        t0 + ms(140),
        PHONE_PORT,
        first_phone,
        &audio(Law::Alaw, PHONE_SSRC, 2, 160, 0),
    );
    assert_eq!(call.stats().phone.latched, Some(second_sdp));
    assert_eq!(call.stats().phone.dropped_wrong_source, 1);
}
