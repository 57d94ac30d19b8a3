//! Dead media: the caller must send from the start, the phone from early media or the
//! answer on; a leg silent for the media timeout is reported, once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sihai_media::Law;
use sihai_relay::{Leg, LegMedia, MediaEvent};

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_silent_caller_times_out_once() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    assert_eq!(call.poll_timeout(), Some(t0 + TIMEOUT));
    call.handle_timeout(t0 + TIMEOUT - ms(1));
    assert!(events(&mut call).is_empty());
    call.handle_timeout(t0 + TIMEOUT);
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::MediaTimeout { leg: Leg::Caller }]
    );
    assert_eq!(call.poll_timeout(), None);
    call.handle_timeout(t0 + TIMEOUT * 2);
    assert!(events(&mut call).is_empty());
}

#[test]
fn packets_push_the_deadline_back() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    for step in 0..100u16 {
        let at = t0 + ms(20) * u32::from(step);
        call.handle_packet(
            at,
            CALLER_PORT,
            caller_sdp(),
            &audio(Law::Alaw, CALLER_SSRC, step, 0, 0),
        );
    }
    let last = t0 + ms(20) * 99;
    assert_eq!(call.poll_timeout(), Some(last + TIMEOUT));
    call.handle_timeout(t0 + TIMEOUT);
    assert!(events(&mut call).is_empty());
    call.handle_timeout(last + TIMEOUT);
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::MediaTimeout { leg: Leg::Caller }]
    );
}

#[test]
fn refused_and_malformed_packets_do_not_keep_a_leg_alive() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.handle_packet(
        t0,
        CALLER_PORT,
        caller_sdp(),
        &audio(Law::Alaw, CALLER_SSRC, 1, 0, 0),
    );
    let stranger = address("203.0.113.99:1000");
    call.handle_packet(
        t0 + ms(1000),
        CALLER_PORT,
        stranger,
        &audio(Law::Alaw, 5, 1, 0, 0),
    );
    call.handle_packet(t0 + ms(1000), CALLER_PORT, caller_sdp(), &[0x80, 0, 1]);
    assert_eq!(call.poll_timeout(), Some(t0 + TIMEOUT));
}

#[test]
fn the_phone_is_watched_from_early_media_or_the_answer() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    let keep_caller_alive = |call: &mut sihai_relay::CallMedia, at: Instant, sequence: u16| {
        call.handle_packet(
            at,
            CALLER_PORT,
            caller_sdp(),
            &audio(Law::Alaw, CALLER_SSRC, sequence, 0, 0),
        );
    };
    call.set_phone(phone_media(Law::Alaw), t0).unwrap();
    // Ringing for 40 s without a packet from the phone is fine.
    keep_caller_alive(&mut call, t0 + Duration::from_secs(25), 1);
    call.handle_timeout(t0 + Duration::from_secs(40));
    assert!(events(&mut call).is_empty());

    let answered = t0 + Duration::from_secs(40);
    call.bridge(answered);
    keep_caller_alive(&mut call, answered, 2);
    keep_caller_alive(&mut call, answered + Duration::from_secs(29), 3);
    drain(&mut call);
    assert_eq!(call.poll_timeout(), Some(answered + TIMEOUT));
    call.handle_timeout(answered + TIMEOUT);
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::MediaTimeout { leg: Leg::Phone }]
    );
}

#[test]
fn a_caller_silent_while_ringing_is_watched_again_from_the_answer() {
    // The caller's carrier sends nothing before the answer: reported while ringing
    // (the B2BUA lets that pass), and again if it stays silent once bridged.
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.set_phone(phone_media(Law::Alaw), t0).unwrap();
    call.handle_timeout(t0 + TIMEOUT);
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::MediaTimeout { leg: Leg::Caller }]
    );

    let answered = t0 + TIMEOUT + Duration::from_secs(5);
    call.bridge(answered);
    drain(&mut call);
    // The phone talks throughout; the caller stays silent.
    for step in 0..10u16 {
        call.handle_packet(
            answered + Duration::from_secs(3) * u32::from(step),
            PHONE_PORT,
            phone_sdp(),
            &audio(Law::Alaw, PHONE_SSRC, step, 0, 0),
        );
    }
    drain(&mut call);
    assert_eq!(call.poll_timeout(), Some(answered + TIMEOUT));
    call.handle_timeout(answered + TIMEOUT - ms(1));
    assert!(events(&mut call).is_empty());
    call.handle_timeout(answered + TIMEOUT);
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::MediaTimeout { leg: Leg::Caller }]
    );
}

#[test]
fn early_media_starts_the_watch_and_a_new_phone_restarts_it() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.set_phone(phone_media(Law::Alaw), t0).unwrap();
    call.pass_early_media(t0 + Duration::from_secs(1));
    // A packet before the watch started does not count as later than the watch.
    call.handle_packet(
        t0,
        PHONE_PORT,
        phone_sdp(),
        &audio(Law::Alaw, PHONE_SSRC, 1, 0, 0),
    );
    call.handle_timeout(t0 + Duration::from_millis(30_999));
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::MediaTimeout { leg: Leg::Caller }]
    );
    call.handle_timeout(t0 + Duration::from_secs(31));
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::MediaTimeout { leg: Leg::Phone }]
    );

    // The next phone is watched from the moment it is set, with its own report.
    let replaced = t0 + Duration::from_secs(35);
    let second = LegMedia {
        local_port: SECOND_PHONE_PORT,
        ..phone_media(Law::Alaw)
    };
    call.set_phone(second, replaced).unwrap();
    call.handle_timeout(replaced + TIMEOUT - ms(1));
    assert!(!events(&mut call).contains(&MediaEvent::MediaTimeout { leg: Leg::Phone }));
    call.handle_timeout(replaced + TIMEOUT);
    assert_eq!(
        events(&mut call),
        vec![MediaEvent::MediaTimeout { leg: Leg::Phone }]
    );
}

#[test]
fn rtcp_from_the_legs_address_keeps_it_alive() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.handle_packet(
        t0,
        CALLER_PORT,
        caller_natted(),
        &audio(Law::Alaw, CALLER_SSRC, 1, 0, 0),
    );
    let receiver_report = [0x80, 201, 0, 1, 0xCA, 0x11, 0xE7, 0x00];
    // From the NAT's address, another port (RTCP's own mapping): alive.
    let rtcp_source = address("198.51.100.7:61001");
    call.handle_packet(
        t0 + Duration::from_secs(20),
        CALLER_PORT + 1,
        rtcp_source,
        &receiver_report,
    );
    assert_eq!(call.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    // From another address: counted, but no sign of life.
    let elsewhere = address("203.0.113.1:61001");
    call.handle_packet(
        t0 + Duration::from_secs(40),
        CALLER_PORT + 1,
        elsewhere,
        &receiver_report,
    );
    assert_eq!(call.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    assert_eq!(call.stats().caller.rtcp_in, 2);
}
