//! Random datagrams on random ports from random sources at random times, mixed with
//! random instructions from the signalling. Whatever happens, nothing panics, every
//! packet goes from a leg's port to that leg's SDP or latched address, carries our
//! SSRC for that leg and one of its payload types in a plain header, and a wake-up
//! never asks to be woken again at or before the instant it ran.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use sihai_media::{Law, Prompt, RtpFields, write_rtp_to_vec};
use sihai_relay::{CallMedia, Leg, LegMedia, MediaEvent, RelayConfig, Source};

const OTHER_PHONE_PORT: u16 = SECOND_PHONE_PORT;

#[derive(Debug, Clone)]
enum Datagram {
    Garbage(Vec<u8>),
    Rtp {
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
enum Op {
    Packet {
        advance_ms: u64,
        port: u16,
        source: SocketAddr,
        datagram: Datagram,
    },
    Timeout {
        advance_ms: u64,
    },
    WakeAtDeadline,
    Rewind {
        ms: u64,
    },
    Play(u8),
    Stop,
    EarlyMedia,
    Bridge,
    SetPhone(bool, Law, Option<u8>),
    Recording(bool),
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(CALLER_PORT),
        Just(CALLER_PORT + 1),
        Just(PHONE_PORT),
        Just(PHONE_PORT + 1),
        Just(OTHER_PHONE_PORT),
        Just(OTHER_PHONE_PORT + 1),
        any::<u16>(),
    ]
}

fn source() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        Just(caller_sdp()),
        Just(caller_natted()),
        Just(phone_sdp()),
        Just(address("203.0.113.77:40000")),
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
    ]
}

fn datagram() -> impl Strategy<Value = Datagram> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Datagram::Garbage),
        4 => (
            prop_oneof![Just(0u8), Just(8), Just(96), Just(101), Just(13), 0u8..128],
            any::<u16>(),
            any::<u32>(),
            prop_oneof![Just(CALLER_SSRC), Just(PHONE_SSRC), any::<u32>()],
            any::<bool>(),
            prop_oneof![
                Just(vec![0xD5; 160]),
                prop::collection::vec(any::<u8>(), 0..8),
                prop::collection::vec(any::<u8>(), 0..400),
            ],
        )
            .prop_map(|(payload_type, sequence, timestamp, ssrc, marker, payload)| Datagram::Rtp {
                payload_type,
                sequence,
                timestamp,
                ssrc,
                marker,
                payload,
            }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u64..40, port(), source(), datagram()).prop_map(|(advance_ms, port, source, datagram)| Op::Packet {
            advance_ms,
            port,
            source,
            datagram
        }),
        3 => (0u64..3000).prop_map(|advance_ms| Op::Timeout { advance_ms }),
        3 => Just(Op::WakeAtDeadline),
        1 => (0u64..5000).prop_map(|ms| Op::Rewind { ms }),
        1 => (0u8..4).prop_map(Op::Play),
        1 => Just(Op::Stop),
        1 => Just(Op::EarlyMedia),
        1 => Just(Op::Bridge),
        1 => (any::<bool>(), prop_oneof![Just(Law::Alaw), Just(Law::Ulaw)], prop::option::of(96u8..128))
            .prop_map(|(second, law, event)| Op::SetPhone(second, law, event)),
        1 => any::<bool>().prop_map(Op::Recording),
    ]
}

fn encode(datagram: &Datagram) -> Vec<u8> {
    match datagram {
        Datagram::Garbage(bytes) => bytes.clone(),
        Datagram::Rtp {
            payload_type,
            sequence,
            timestamp,
            ssrc,
            marker,
            payload,
        } => {
            let mut out = Vec::new();
            let fields = RtpFields {
                marker: *marker,
                payload_type: *payload_type,
                sequence: *sequence,
                timestamp: *timestamp,
                ssrc: *ssrc,
            };
            write_rtp_to_vec(&mut out, &fields, payload).unwrap();
            out
        }
    }
}

fn source_for(kind: u8) -> Source {
    match kind {
        0 => Source::Ringback,
        1 => Source::Silence,
        2 => Source::Prompt {
            prompt: Prompt::new(&[1000; 500]),
            repeat: false,
        },
        _ => Source::Prompt {
            prompt: Prompt::new(&[-1000; 300]),
            repeat: true,
        },
    }
}

/// Checks every queued packet against the legs as they are now.
fn check_transmits(
    call: &mut CallMedia,
    caller: &LegMedia,
    phone: Option<&LegMedia>,
) -> Result<(), TestCaseError> {
    let stats = call.stats();
    while let Some(transmit) = call.poll_transmit() {
        let (leg, media, latched) = if transmit.from_port == caller.local_port {
            (Leg::Caller, caller, stats.caller.latched)
        } else {
            let phone =
                phone.ok_or_else(|| TestCaseError::fail("sent from a phone port with no phone"))?;
            prop_assert_eq!(transmit.from_port, phone.local_port);
            (Leg::Phone, phone, stats.phone.latched)
        };
        let allowed = latched.or(media.remote);
        prop_assert_eq!(
            Some(transmit.to),
            allowed,
            "to {:?}, leg {:?}",
            transmit.to,
            leg
        );
        let sent = read(&transmit);
        prop_assert_eq!(sent.header_len, 12);
        prop_assert_eq!(sent.fields.ssrc, call.ssrc(leg));
        let payload_type = sent.fields.payload_type;
        prop_assert!(
            payload_type == media.payload_type || Some(payload_type) == media.telephone_event,
            "payload type {} for {:?}",
            payload_type,
            leg
        );
        call.recycle(transmit.payload);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_traffic_never_panics_or_misroutes(
        caller_law in prop_oneof![Just(Law::Alaw), Just(Law::Ulaw)],
        caller_has_sdp in any::<bool>(),
        ptime_ms in prop_oneof![Just(20u64), Just(10), Just(30), Just(60)],
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let t0 = Instant::now() + Duration::from_secs(3600);
        let caller = LegMedia {
            remote: caller_has_sdp.then(caller_sdp),
            ..caller_media(caller_law)
        };
        let config = RelayConfig { ptime: ms(ptime_ms), ..RelayConfig::default() };
        let mut call = CallMedia::new(config, caller, t0, 99).unwrap();
        let mut phone: Option<LegMedia> = None;
        let mut now = t0;
        // The caller's timeouts reported before the first bridge, and after it.
        let mut timeouts_seen = [0, 0];
        let mut bridged = false;
        for op in ops {
            match op {
                Op::Packet { advance_ms, port, source, datagram } => {
                    now += ms(advance_ms);
                    call.handle_packet(now, port, source, &encode(&datagram));
                }
                Op::Timeout { advance_ms } => {
                    now += ms(advance_ms);
                    call.handle_timeout(now);
                    prop_assert!(call.poll_timeout().is_none_or(|next| next > now));
                }
                Op::WakeAtDeadline => {
                    if let Some(deadline) = call.poll_timeout() {
                        now = now.max(deadline);
                        call.handle_timeout(now);
                        prop_assert!(call.poll_timeout().is_none_or(|next| next > now));
                    }
                }
                Op::Rewind { ms: back } => {
                    now -= ms(back);
                    call.handle_timeout(now);
                }
                Op::Play(kind) => call.play(source_for(kind), now),
                Op::Stop => call.stop_playback(now),
                Op::EarlyMedia => call.pass_early_media(now),
                Op::Bridge => {
                    call.bridge(now);
                    bridged = true;
                }
                Op::SetPhone(second, law, telephone_event) => {
                    let media = LegMedia {
                        local_port: if second { OTHER_PHONE_PORT } else { PHONE_PORT },
                        remote: (!second).then(phone_sdp),
                        law,
                        payload_type: law.payload_type(),
                        telephone_event,
                    };
                    call.set_phone(media, now).unwrap();
                    phone = Some(media);
                }
                Op::Recording(on) => call.set_recording(on, now),
            }
            check_transmits(&mut call, &caller, phone.as_ref())?;
            while let Some(event) = call.poll_event() {
                if let MediaEvent::Dtmf { key, .. } = event {
                    prop_assert!(sihai_media::DTMF_KEYS.contains(&key));
                }
                if matches!(event, MediaEvent::MediaTimeout { leg: Leg::Caller }) {
                    timeouts_seen[usize::from(bridged)] += 1;
                }
            }
            while call.poll_recorded().is_some() {}
        }
        prop_assert!(
            timeouts_seen[0] <= 1 && timeouts_seen[1] <= 1,
            "the caller's timeout is reported once before the answer and once after: {:?}",
            timeouts_seen
        );
    }

    #[test]
    fn the_callers_stream_never_jumps_whatever_the_switches(
        switches in prop::collection::vec((0u8..5, 0u64..20, any::<bool>()), 100),
    ) {
        let t0 = Instant::now();
        let mut call = new_call(caller_media(Law::Alaw), t0);
        call.set_phone(phone_media(Law::Alaw), t0).unwrap();
        let mut sent: Vec<(Instant, Sent)> = Vec::new();
        let mut phone_ssrc = PHONE_SSRC;
        let mut phone_sequence: u16 = 65_000;
        let mut phone_timestamp: u32 = u32::MAX - 2000;
        // The phone sends every 20 ms all along; the signalling switches in between.
        for (slot, (switch, offset_ms, new_ssrc)) in switches.into_iter().enumerate() {
            let slot_start = t0 + ms(20) * slot as u32;
            let switch_at = slot_start + ms(offset_ms);
            sent.extend(run_until(&mut call, switch_at));
            match switch {
                0 => call.play(Source::Ringback, switch_at),
                1 => call.play(source_for(2), switch_at),
                2 => call.pass_early_media(switch_at),
                3 => call.bridge(switch_at),
                _ => call.stop_playback(switch_at),
            }
            sent.extend(drain(&mut call).into_iter().map(|packet| (switch_at, packet)));
            let phone_at = slot_start + ms(19);
            sent.extend(run_until(&mut call, phone_at));
            if new_ssrc {
                phone_ssrc = phone_ssrc.wrapping_add(1);
            }
            let packet = audio(Law::Alaw, phone_ssrc, phone_sequence, phone_timestamp, 0);
            phone_sequence = phone_sequence.wrapping_add(1);
            phone_timestamp = phone_timestamp.wrapping_add(160);
            call.handle_packet(phone_at, PHONE_PORT, phone_sdp(), &packet);
            sent.extend(drain(&mut call).into_iter().map(|packet| (phone_at, packet)));
        }
        for pair in sent.windows(2) {
            let ((t_before, before), (t_after, after)) = (&pair[0], &pair[1]);
            prop_assert_eq!(after.fields.sequence, before.fields.sequence.wrapping_add(1));
            let step = after.fields.timestamp.wrapping_sub(before.fields.timestamp);
            let elapsed = t_after.duration_since(*t_before).as_millis() as u32;
            // Never back, never overlapping the previous packet's 160 samples, never
            // further ahead than the time that passed.
            prop_assert!(step >= 160, "step {} after {} ms", step, elapsed);
            prop_assert!(step <= 8 * elapsed + 160, "step {} after {} ms", step, elapsed);
        }
    }
}
