//! Each leg receives one RTP stream: our SSRC, sequence numbers one apart and
//! timestamps that follow wall time across prompt → bridge → prompt, with the marker
//! on the first packet after each switch, while the phone's own loss and reordering
//! stay visible.

mod common;

use std::time::Instant;

use common::*;
use sihai_media::{Law, Prompt};
use sihai_relay::{Leg, Source};

fn looping_prompt() -> Source {
    let samples: Vec<i16> = (0..1600).map(|n| ((n % 200) * 100) as i16).collect();
    Source::Prompt {
        prompt: Prompt::new(&samples),
        repeat: true,
    }
}

/// Checks one leg's stream: one SSRC, consecutive sequence numbers, timestamps 8 per
/// ms of sending time, markers exactly at `switches` (indexes).
fn assert_one_stream(sent: &[(Instant, Sent)], ssrc: u32, switches: &[usize]) {
    for (index, (_, packet)) in sent.iter().enumerate() {
        assert_eq!(packet.fields.ssrc, ssrc, "packet {index}");
        assert_eq!(
            packet.fields.marker,
            switches.contains(&index),
            "marker of packet {index}"
        );
    }
    for (index, pair) in sent.windows(2).enumerate() {
        let ((t_before, before), (t_after, after)) = (&pair[0], &pair[1]);
        assert_eq!(
            after.fields.sequence,
            before.fields.sequence.wrapping_add(1),
            "sequence after packet {index}"
        );
        let elapsed_ms = t_after.duration_since(*t_before).as_millis() as u32;
        assert_eq!(
            after.fields.timestamp.wrapping_sub(before.fields.timestamp),
            8 * elapsed_ms,
            "timestamp gap after packet {index}: 160 per 20 ms elapsed"
        );
    }
}

#[test]
fn prompt_then_bridge_then_prompt_is_one_stream_for_the_caller() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.set_phone(phone_media(Law::Alaw), t0).unwrap();
    let mut to_caller: Vec<(Instant, Sent)> = Vec::new();

    call.play(looping_prompt(), t0);
    to_caller.extend(drain(&mut call).into_iter().map(|packet| (t0, packet)));
    to_caller.extend(run_until(&mut call, t0 + ms(80)));
    assert_eq!(to_caller.len(), 5);

    call.bridge(t0 + ms(90));
    // The phone's stream has its own numbering, far from ours.
    for (step, at) in [100u64, 120, 140].into_iter().enumerate() {
        let step = step as u16;
        let packet = audio(
            Law::Alaw,
            PHONE_SSRC,
            40_000 + step,
            7_000_000 + 160 * u32::from(step),
            1000,
        );
        call.handle_packet(t0 + ms(at), PHONE_PORT, phone_sdp(), &packet);
        to_caller.extend(drain(&mut call).into_iter().map(|sent| (t0 + ms(at), sent)));
    }

    let t1 = t0 + ms(160);
    call.play(looping_prompt(), t1);
    to_caller.extend(drain(&mut call).into_iter().map(|packet| (t1, packet)));
    to_caller.extend(run_until(&mut call, t0 + ms(200)));

    assert_eq!(to_caller.len(), 11);
    assert!(
        to_caller
            .iter()
            .all(|(_, packet)| packet.from_port == CALLER_PORT)
    );
    assert_one_stream(&to_caller, call.ssrc(Leg::Caller), &[0, 5, 8]);
    // The bridged part carries the phone's audio.
    assert!(
        to_caller[5..8]
            .iter()
            .all(|(_, packet)| packet.payload == vec![Law::Alaw.encode(1000); 160])
    );
}

#[test]
fn the_phone_hears_one_stream_across_interruptions_of_the_bridge() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Ulaw), t0);
    call.set_phone(phone_media(Law::Ulaw), t0).unwrap();
    call.bridge(t0 + ms(90));
    let mut to_phone: Vec<(Instant, Sent)> = Vec::new();
    let send = |call: &mut sihai_relay::CallMedia, at: u64, sequence: u16| {
        let timestamp = 3_000_000 + 8 * at as u32;
        let packet = audio(Law::Ulaw, CALLER_SSRC, sequence, timestamp, -500);
        call.handle_packet(t0 + ms(at), CALLER_PORT, caller_sdp(), &packet);
        let sent = drain(call);
        let to_phone: Vec<Sent> = sent
            .into_iter()
            .filter(|packet| packet.from_port == PHONE_PORT)
            .collect();
        to_phone
            .into_iter()
            .map(|packet| (t0 + ms(at), packet))
            .collect::<Vec<_>>()
    };
    for (index, at) in [100, 120, 140].into_iter().enumerate() {
        to_phone.extend(send(&mut call, at, 10 + index as u16));
    }
    // A prompt to the caller interrupts the bridge; the caller's audio is not passed on.
    call.play(Source::Silence, t0 + ms(150));
    assert!(send(&mut call, 160, 13).is_empty());
    call.bridge(t0 + ms(200));
    for (index, at) in [220, 240].into_iter().enumerate() {
        to_phone.extend(send(&mut call, at, 14 + index as u16));
    }
    assert_eq!(to_phone.len(), 5);
    assert_one_stream(&to_phone, call.ssrc(Leg::Phone), &[0, 3]);
    assert_ne!(call.ssrc(Leg::Phone), call.ssrc(Leg::Caller));
}

#[test]
fn loss_and_reordering_on_the_phone_side_stay_visible() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    let mut mapped = Vec::new();
    // 500 lost; 503 before 502.
    for sequence in [499u16, 501, 503, 502, 504] {
        let timestamp = 10_000 + 160 * u32::from(sequence - 499);
        let packet = audio(Law::Alaw, PHONE_SSRC, sequence, timestamp, 0);
        call.handle_packet(t0, PHONE_PORT, phone_sdp(), &packet);
        mapped.extend(drain(&mut call));
    }
    let base = &mapped[0].fields;
    let relative: Vec<(u16, u32)> = mapped
        .iter()
        .map(|packet| {
            (
                packet.fields.sequence.wrapping_sub(base.sequence),
                packet.fields.timestamp.wrapping_sub(base.timestamp),
            )
        })
        .collect();
    assert_eq!(
        relative,
        vec![(0, 0), (2, 320), (4, 640), (3, 480), (5, 800)]
    );
}

#[test]
fn answer_with_a_new_ssrc_after_early_media_continues_the_stream() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.set_phone(phone_media(Law::Alaw), t0).unwrap();
    call.play(Source::Ringback, t0);
    let mut to_caller: Vec<(Instant, Sent)> = drain(&mut call)
        .into_iter()
        .map(|packet| (t0, packet))
        .collect();
    call.pass_early_media(t0 + ms(10));
    // The phone's early media (its own ringback), then its answer from a new SSRC.
    let phone_packets = [
        (20u64, 1u32, 100u16, 0u32),
        (40, 1, 101, 160),
        (60, 2, 7, 90_000),
        (80, 2, 8, 90_160),
    ];
    for (at, ssrc, sequence, timestamp) in phone_packets {
        if at == 60 {
            call.bridge(t0 + ms(60));
        }
        let packet = audio(Law::Alaw, ssrc, sequence, timestamp, 0);
        call.handle_packet(t0 + ms(at), PHONE_PORT, phone_sdp(), &packet);
        to_caller.extend(drain(&mut call).into_iter().map(|sent| (t0 + ms(at), sent)));
    }
    assert_one_stream(&to_caller, call.ssrc(Leg::Caller), &[0, 1, 3]);
}

#[test]
fn a_phone_burst_never_makes_the_next_prompt_go_back_in_time() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    // Five packets at once (the phone's buffer flushed): 100 ms of audio in no time.
    for step in 0..5u16 {
        let packet = audio(Law::Alaw, PHONE_SSRC, step, 160 * u32::from(step), 0);
        call.handle_packet(t0 + ms(20), PHONE_PORT, phone_sdp(), &packet);
    }
    let burst = drain(&mut call);
    call.play(Source::Silence, t0 + ms(40));
    let prompt = drain(&mut call);
    let last = &burst[4].fields;
    let first = &prompt[0].fields;
    assert_eq!(first.sequence, last.sequence.wrapping_add(1));
    // Not at the wall clock (+20 ms), but after the end of the burst's audio.
    assert_eq!(first.timestamp.wrapping_sub(last.timestamp), 160);
    assert!(first.marker);
}
