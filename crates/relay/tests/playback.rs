//! Ringback, prompts and silence to the caller: one packet per ptime, exactly on the
//! grid; prompts end with an event and then silence of the network kind (nothing);
//! looping prompts loop; a late wake-up sends one packet on the wall-clock grid.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sihai_media::{Law, Prompt, Tone};
use sihai_relay::{CallMedia, MediaEvent, RelayConfig, Source};

fn prompt_of_frames(frames: usize) -> Prompt {
    let samples: Vec<i16> = (0..frames * 160)
        .map(|n| ((n * 37) % 20_000) as i16)
        .collect();
    Prompt::new(&samples)
}

#[test]
fn ringback_is_the_450_hz_cadence_one_packet_every_20_ms() {
    let t0 = Instant::now();
    for law in Law::ALL {
        let mut call = new_call(caller_media(law), t0);
        call.play(Source::Ringback, t0);
        let mut sent: Vec<(Instant, Sent)> = drain(&mut call)
            .into_iter()
            .map(|packet| (t0, packet))
            .collect();
        sent.extend(run_until(&mut call, t0 + Duration::from_secs(10) - ms(1)));
        // Ten seconds: two cadence periods, 500 packets.
        assert_eq!(sent.len(), 500);
        let mut reference = Tone::ringback();
        for (index, (at, packet)) in sent.iter().enumerate() {
            assert_eq!(*at, t0 + ms(20) * index as u32, "sent on the grid");
            assert_eq!(packet.fields.payload_type, law.payload_type());
            assert_eq!(packet.fields.marker, index == 0);
            assert_eq!(
                packet.payload,
                reference.next_frame_encoded(law),
                "frame {index}"
            );
        }
        for pair in sent.windows(2) {
            let (before, after) = (&pair[0].1.fields, &pair[1].1.fields);
            assert_eq!(after.sequence, before.sequence.wrapping_add(1));
            assert_eq!(after.timestamp.wrapping_sub(before.timestamp), 160);
        }
        // 1 s of tone, 4 s of silence.
        let loud = |packet: &Sent| {
            packet
                .payload
                .iter()
                .any(|&byte| law.decode(byte).abs() > 5000)
        };
        assert!(sent[..50].iter().all(|(_, packet)| loud(packet)));
        assert!(sent[50..250].iter().all(|(_, packet)| !loud(packet)));
        assert!(sent[250..300].iter().all(|(_, packet)| loud(packet)));
    }
}

#[test]
fn prompt_plays_once_then_reports_and_sends_nothing() {
    let t0 = Instant::now();
    let prompt = prompt_of_frames(4);
    let mut call = new_call(caller_media(Law::Ulaw), t0);
    call.play(
        Source::Prompt {
            prompt: prompt.clone(),
            repeat: false,
        },
        t0,
    );
    let mut sent = drain(&mut call);
    assert!(events(&mut call).is_empty());
    sent.extend(
        run_until(&mut call, t0 + ms(60))
            .into_iter()
            .map(|(_, packet)| packet),
    );
    assert_eq!(sent.len(), 4);
    for (index, packet) in sent.iter().enumerate() {
        assert_eq!(packet.payload, prompt.frame(Law::Ulaw, index).unwrap());
    }
    // The end is reported when the last frame has played out: 80 ms.
    assert_eq!(call.poll_timeout(), Some(t0 + ms(80)));
    call.handle_timeout(t0 + ms(80));
    assert_eq!(events(&mut call), vec![MediaEvent::PlaybackFinished]);
    assert!(drain(&mut call).is_empty());
    // Nothing more plays: the only timer left is the caller's media timeout.
    assert_eq!(call.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    assert!(run_until(&mut call, t0 + Duration::from_secs(20)).is_empty());
}

#[test]
fn repeating_prompt_loops_without_end() {
    let t0 = Instant::now();
    let prompt = prompt_of_frames(3);
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.play(
        Source::Prompt {
            prompt: prompt.clone(),
            repeat: true,
        },
        t0,
    );
    let mut sent = drain(&mut call);
    sent.extend(
        run_until(&mut call, t0 + ms(200))
            .into_iter()
            .map(|(_, packet)| packet),
    );
    assert_eq!(sent.len(), 11);
    for (index, packet) in sent.iter().enumerate() {
        assert_eq!(packet.payload, prompt.frame(Law::Alaw, index % 3).unwrap());
        assert_eq!(packet.fields.marker, index == 0, "a loop is not a switch");
    }
    assert!(events(&mut call).is_empty());
}

#[test]
fn late_wakeup_sends_one_packet_on_the_wall_clock_grid() {
    let t0 = Instant::now();
    let prompt = prompt_of_frames(10);
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.play(
        Source::Prompt {
            prompt: prompt.clone(),
            repeat: false,
        },
        t0,
    );
    let first = drain(&mut call).remove(0);
    // The daemon oversleeps by 55 ms: ticks 1 and 2 are missed, 3 is due.
    call.handle_timeout(t0 + ms(75));
    let late = drain(&mut call);
    assert_eq!(late.len(), 1, "no burst of missed frames");
    let late = &late[0];
    assert_eq!(late.fields.sequence, first.fields.sequence.wrapping_add(1));
    assert_eq!(
        late.fields.timestamp.wrapping_sub(first.fields.timestamp),
        3 * 160
    );
    assert_eq!(
        late.payload,
        prompt.frame(Law::Alaw, 3).unwrap(),
        "the audio of its time"
    );
    assert!(!late.fields.marker);
    assert_eq!(call.poll_timeout(), Some(t0 + ms(80)));
}

#[test]
fn ptime_of_30_ms_sends_240_samples_every_30_ms() {
    let t0 = Instant::now();
    let config = RelayConfig {
        ptime: ms(30),
        ..RelayConfig::default()
    };
    let mut call = CallMedia::new(config, caller_media(Law::Ulaw), t0, 1).unwrap();
    let prompt = prompt_of_frames(3);
    call.play(
        Source::Prompt {
            prompt: prompt.clone(),
            repeat: false,
        },
        t0,
    );
    let mut sent: Vec<(Instant, Sent)> = drain(&mut call)
        .into_iter()
        .map(|packet| (t0, packet))
        .collect();
    sent.extend(run_until(&mut call, t0 + ms(100)));
    let times: Vec<Duration> = sent.iter().map(|(at, _)| at.duration_since(t0)).collect();
    assert_eq!(times, vec![ms(0), ms(30)]);
    let audio: Vec<u8> = sent
        .iter()
        .flat_map(|(_, packet)| packet.payload.clone())
        .collect();
    let expected: Vec<u8> = (0..3)
        .flat_map(|index| prompt.frame(Law::Ulaw, index).unwrap().to_vec())
        .collect();
    assert_eq!(audio, expected);
    assert_eq!(
        sent[1]
            .1
            .fields
            .timestamp
            .wrapping_sub(sent[0].1.fields.timestamp),
        240
    );
    assert_eq!(events(&mut call), vec![MediaEvent::PlaybackFinished]);
}

#[test]
fn play_replaces_what_plays_without_a_finished_event() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.play(Source::Ringback, t0);
    let mut sent = drain(&mut call);
    sent.extend(
        run_until(&mut call, t0 + ms(40))
            .into_iter()
            .map(|(_, packet)| packet),
    );
    let prompt = prompt_of_frames(2);
    call.play(
        Source::Prompt {
            prompt: prompt.clone(),
            repeat: false,
        },
        t0 + ms(50),
    );
    sent.extend(drain(&mut call));
    assert!(events(&mut call).is_empty());
    assert_eq!(sent.len(), 4);
    assert!(sent[3].fields.marker);
    assert_eq!(sent[3].payload, prompt.frame(Law::Alaw, 0).unwrap());
    assert_eq!(
        sent[3].fields.sequence,
        sent[2].fields.sequence.wrapping_add(1)
    );
    // The prompt's grid starts at its own start: next packet at 70 ms.
    assert_eq!(call.poll_timeout(), Some(t0 + ms(70)));
    assert_eq!(
        sent[3]
            .fields
            .timestamp
            .wrapping_sub(sent[2].fields.timestamp),
        160
    );
}

#[test]
fn stop_playback_stops_sending() {
    let t0 = Instant::now();
    let mut call = new_call(caller_media(Law::Alaw), t0);
    call.play(Source::Silence, t0);
    assert_eq!(drain(&mut call)[0].payload, vec![Law::Alaw.silence(); 160]);
    call.stop_playback(t0 + ms(10));
    assert!(run_until(&mut call, t0 + Duration::from_secs(5)).is_empty());
    assert!(events(&mut call).is_empty());
    // Stopping when nothing plays changes nothing.
    call.set_phone(phone_media(Law::Alaw), t0).unwrap();
    call.bridge(t0 + Duration::from_secs(5));
    call.stop_playback(t0 + Duration::from_secs(5));
    call.handle_packet(
        t0 + Duration::from_secs(5),
        PHONE_PORT,
        phone_sdp(),
        &audio(Law::Alaw, PHONE_SSRC, 1, 0, 0),
    );
    assert_eq!(drain(&mut call).len(), 1, "still bridged");
}

#[test]
fn playback_goes_to_the_caller_only() {
    let t0 = Instant::now();
    let mut call = bridged(Law::Alaw, Law::Alaw, t0);
    call.play(Source::Ringback, t0 + ms(5));
    let mut sent = drain(&mut call);
    sent.extend(
        run_until(&mut call, t0 + ms(500))
            .into_iter()
            .map(|(_, packet)| packet),
    );
    assert_eq!(sent.len(), 25);
    assert!(
        sent.iter()
            .all(|packet| packet.from_port == CALLER_PORT && packet.to == caller_sdp())
    );
    assert_eq!(call.stats().phone.packets_out, 0);
}
