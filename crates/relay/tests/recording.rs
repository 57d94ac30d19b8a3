//! The recording tap: while recording is on and the call is bridged, one frame per
//! 20 ms of wall time with each side's decoded audio, silence where a side sent
//! nothing, each packet used once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sihai_media::Law;
use sihai_relay::{RecordedFrame, Source};

fn decoded(law: Law, sample: i16) -> [i16; 160] {
    [law.decode(law.encode(sample)); 160]
}

fn frames(call: &mut sihai_relay::CallMedia) -> Vec<RecordedFrame> {
    std::iter::from_fn(|| call.poll_recorded()).collect()
}

#[test]
fn both_sides_side_by_side_every_20_ms() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Ulaw, Law::Alaw, t0);
    call.set_recording(true, t0);
    let mut recorded = Vec::new();
    for slot in 0..10u16 {
        let at = t0 + ms(20) * u32::from(slot) + ms(5);
        let timestamp = 160 * u32::from(slot);
        call.handle_packet(
            at,
            CALLER_PORT,
            caller_sdp(),
            &audio(Law::Ulaw, CALLER_SSRC, slot, timestamp, 1000 + slot as i16),
        );
        // The phone skips every third slot (voice activity detection).
        if slot % 3 != 2 {
            call.handle_packet(
                at,
                PHONE_PORT,
                phone_sdp(),
                &audio(Law::Alaw, PHONE_SSRC, slot, timestamp, -3000),
            );
        }
        drain(&mut call);
        call.handle_timeout(t0 + ms(20) * u32::from(slot + 1));
        recorded.extend(frames(&mut call));
    }
    assert_eq!(recorded.len(), 10);
    for (slot, frame) in recorded.iter().enumerate() {
        assert_eq!(
            frame.caller,
            decoded(Law::Ulaw, 1000 + slot as i16),
            "slot {slot}"
        );
        let phone = if slot % 3 == 2 {
            [0; 160]
        } else {
            decoded(Law::Alaw, -3000)
        };
        assert_eq!(frame.phone, phone, "slot {slot}");
    }
}

#[test]
fn nothing_is_recorded_unless_on_and_bridged() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.set_phone(phone_media(Law::Alaw), t0).unwrap();
    call.set_recording(true, t0);
    call.play(Source::Ringback, t0);
    call.pass_early_media(t0 + ms(100));
    call.handle_packet(
        t0 + ms(110),
        PHONE_PORT,
        phone_sdp(),
        &audio(Law::Alaw, PHONE_SSRC, 1, 0, 500),
    );
    run_until(&mut call, t0 + ms(200));
    assert!(
        frames(&mut call).is_empty(),
        "ringing and early media are not recorded"
    );

    // Bridged at 200 ms: the first frame covers 200..220 ms.
    call.bridge(t0 + ms(200));
    assert_eq!(call.poll_timeout(), Some(t0 + ms(220)));
    run_until(&mut call, t0 + ms(300));
    assert_eq!(frames(&mut call).len(), 5);

    // Off: no more frames, and no timer for them.
    call.set_recording(false, t0 + ms(300));
    assert_eq!(call.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    call.handle_timeout(t0 + ms(400));
    assert!(frames(&mut call).is_empty());
}

#[test]
fn a_prompt_during_the_call_pauses_the_recording() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    call.set_recording(true, t0);
    call.handle_timeout(t0 + ms(40));
    assert_eq!(frames(&mut call).len(), 2);
    call.play(Source::Silence, t0 + ms(50));
    run_until(&mut call, t0 + ms(200));
    assert!(frames(&mut call).is_empty());
    call.bridge(t0 + ms(200));
    call.handle_timeout(t0 + ms(240));
    assert_eq!(frames(&mut call).len(), 2);
}

#[test]
fn a_packet_is_used_once_and_jitter_is_absorbed() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    call.set_recording(true, t0);
    // Two packets in the first slot (jitter), none in the second.
    call.handle_packet(
        t0 + ms(5),
        CALLER_PORT,
        caller_sdp(),
        &audio(Law::Alaw, CALLER_SSRC, 1, 0, 1000),
    );
    call.handle_packet(
        t0 + ms(15),
        CALLER_PORT,
        caller_sdp(),
        &audio(Law::Alaw, CALLER_SSRC, 2, 160, 2000),
    );
    call.handle_timeout(t0 + ms(20));
    call.handle_timeout(t0 + ms(40));
    call.handle_timeout(t0 + ms(60));
    let recorded = frames(&mut call);
    let callers: Vec<[i16; 160]> = recorded.iter().map(|frame| frame.caller).collect();
    assert_eq!(
        callers,
        vec![decoded(Law::Alaw, 1000), decoded(Law::Alaw, 2000), [0; 160]]
    );
}
