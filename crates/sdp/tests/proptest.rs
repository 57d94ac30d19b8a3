//! Properties over generated input:
//! - the parser never panics, on arbitrary text, on arbitrary bytes, or on "line soup"
//!   made of plausible and broken SDP lines;
//! - whatever it accepts, it writes back out so that parsing again gives an equal value,
//!   and a description generated in canonical order is written back byte for byte;
//! - nothing downstream of a successful parse panics either (audio, answer, accept);
//! - the relay's offers and answers read back as the streams they describe.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use proptest::sample::select;
use sihai_sdp::{
    Codec, Direction, LocalAudio, SdpError, SessionDescription, accept_answer, build_answer,
    build_offer,
};

fn address() -> impl Strategy<Value = &'static str> {
    select(vec![
        "192.0.2.1",
        "0.0.0.0",
        "::1",
        "::",
        "2001:db8::7",
        "host.example.com",
        "224.2.1.1/127",
        "x",
    ])
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9./:+*-]{0,8}"
}

fn payload_type() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "0", "8", "3", "18", "96", "97", "101", "127", "128", "x", "*"
        ])
        .prop_map(str::to_owned),
        any::<u8>().prop_map(|number| number.to_string()),
    ]
}

fn attribute_line() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            payload_type(),
            select(vec![
                "PCMU",
                "pcma",
                "PCMA",
                "telephone-event",
                "opus",
                "G729",
                ""
            ]),
            select(vec!["/8000", "/16000", "/8000/1", "/8000/2", "", "/x"]),
        )
            .prop_map(|(pt, name, clock)| format!("a=rtpmap:{pt} {name}{clock}")),
        (payload_type(), "[0-9,-]{0,8}").prop_map(|(pt, events)| format!("a=fmtp:{pt} {events}")),
        select(vec!["20", "30", "0", "20.5", "x", ""]).prop_map(|ms| format!("a=ptime:{ms}")),
        (
            any::<u16>(),
            select(vec![
                "",
                " IN IP4 192.0.2.9",
                " IN IP6 ::2",
                " IN",
                " TN x y"
            ])
        )
            .prop_map(|(port, rest)| format!("a=rtcp:{port}{rest}")),
        select(vec![
            "sendrecv", "sendonly", "recvonly", "inactive", "SENDONLY"
        ])
        .prop_map(|direction| format!("a={direction}")),
        ("[a-z-]{0,8}", proptest::option::of("[^\r\n]{0,12}")).prop_map(|(name, value)| {
            match value {
                Some(value) => format!("a={name}:{value}"),
                None => format!("a={name}"),
            }
        }),
    ]
}

fn sdp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v=0".to_owned()),
        (
            token(),
            any::<u64>(),
            any::<u64>(),
            select(vec!["IN", "in", "ATM"]),
            select(vec!["IP4", "IP6", "ip4", "X"]),
            address()
        )
            .prop_map(|(user, id, version, net, kind, address)| format!(
                "o={user} {id} {version} {net} {kind} {address}"
            )),
        "s=[^\r\n]{0,10}",
        (
            select(vec!["IN", "IN", "TN"]),
            select(vec!["IP4", "IP6", "IPX"]),
            address()
        )
            .prop_map(|(net, kind, address)| format!("c={net} {kind} {address}")),
        (
            select(vec![
                "audio",
                "audio",
                "AUDIO",
                "video",
                "application",
                "message"
            ]),
            prop_oneof![
                select(vec!["0", "5000", "5000/2", "abc", "70000", ""]).prop_map(str::to_owned),
                any::<u16>().prop_map(|port| port.to_string()),
            ],
            select(vec![
                "RTP/AVP",
                "RTP/AVP",
                "RTP/AVPF",
                "RTP/SAVP",
                "UDP/TLS/RTP/SAVPF",
                "udp",
                ""
            ]),
            prop::collection::vec(payload_type(), 0..6),
        )
            .prop_map(|(kind, port, proto, formats)| format!(
                "m={kind} {port} {proto} {}",
                formats.join(" ")
            )),
        attribute_line(),
        attribute_line(),
        attribute_line(),
        (any::<u64>(), any::<u64>()).prop_map(|(start, stop)| format!("t={start} {stop}")),
        Just("t=0 0".to_owned()),
        "[bikrzuep]=[^\r\n]{0,12}",
        "[dfghjlnqwxyA-Z]=[^\r\n]{0,12}",
        "[^\r\n]{0,20}",
    ]
}

fn media_line() -> impl Strategy<Value = String> {
    (
        select(vec![
            "audio",
            "audio",
            "audio",
            "AUDIO",
            "video",
            "application",
        ]),
        prop_oneof![
            4 => (1..=u16::MAX).prop_map(|port| port.to_string()),
            1 => select(vec!["0", "5000/2", "abc", "70000"]).prop_map(str::to_owned),
        ],
        select(vec![
            "RTP/AVP",
            "RTP/AVP",
            "RTP/AVP",
            "RTP/AVPF",
            "RTP/SAVP",
            "UDP/TLS/RTP/SAVPF",
            "udp",
        ]),
        prop::collection::vec(payload_type(), 0..6),
    )
        .prop_map(|(kind, port, proto, formats)| {
            format!("m={kind} {port} {proto} {}", formats.join(" "))
        })
}

fn media_section() -> impl Strategy<Value = Vec<String>> {
    (
        media_line(),
        prop::collection::vec(
            prop_oneof![
                6 => attribute_line(),
                1 => address().prop_map(|address| format!("c=IN IP4 {address}")),
                1 => "[bik]=[^\r\n]{0,12}",
                1 => "[dfghjlnqwxyA-Z]=[^\r\n]{0,12}",
            ],
            0..8,
        ),
    )
        .prop_map(|(m_line, mut rest)| {
            rest.insert(0, m_line);
            rest
        })
}

/// Mostly well-formed descriptions with odd content (so that many parse and reach
/// the audio summary and the answer), now and then with one arbitrary line inserted,
/// joined with CRLF or LF, sometimes without a final line break.
fn line_soup() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.95),
        prop::option::weighted(0.8, address()),
        prop::collection::vec(
            prop_oneof![
                3 => attribute_line(),
                1 => "[bikuepzk]=[^\r\n]{0,12}",
                1 => "[dfghjlnqwxyA-Z]=[^\r\n]{0,12}",
                1 => (any::<u64>(), any::<u64>()).prop_map(|(start, stop)| format!("t={start} {stop}")),
            ],
            0..4,
        ),
        prop::collection::vec(media_section(), 0..4),
        prop::option::weighted(0.3, (any::<prop::sample::Index>(), sdp_line())),
        select(vec!["\r\n", "\n"]),
        prop::bool::ANY,
    )
        .prop_map(
            |(head, connection, session, media, corruption, separator, terminated)| {
                let mut lines: Vec<String> = Vec::new();
                if head {
                    lines.push("v=0".into());
                    lines.push("o=- 1 1 IN IP4 192.0.2.1".into());
                    lines.push("s=-".into());
                }
                if let Some(address) = connection {
                    lines.push(format!("c=IN IP4 {address}"));
                }
                lines.extend(session);
                lines.extend(media.into_iter().flatten());
                if let Some((index, line)) = corruption {
                    lines.insert(index.index(lines.len() + 1), line);
                }
                let mut text = lines.join(separator);
                if terminated {
                    text.push_str(separator);
                }
                text
            },
        )
}

fn relay_address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|bits| IpAddr::V4(Ipv4Addr::from(bits))),
        any::<u128>().prop_map(|bits| IpAddr::V6(Ipv6Addr::from(bits))),
    ]
}

fn direction() -> impl Strategy<Value = Direction> {
    select(Direction::ALL.to_vec())
}

fn local_audio() -> impl Strategy<Value = LocalAudio> {
    (
        relay_address(),
        1..=u16::MAX,
        prop::collection::vec(select(Codec::ALL.to_vec()), 1..4),
        proptest::option::of(96u8..=127),
        direction(),
        proptest::option::of(1u32..200),
    )
        .prop_map(
            |(address, port, codecs, telephone_event, direction, ptime)| LocalAudio {
                address,
                port,
                codecs,
                telephone_event,
                direction,
                ptime,
            },
        )
}

/// Checks everything a caller may do with an accepted description.
fn exercise(description: &SessionDescription) {
    let written = description.to_string();
    assert_eq!(
        SessionDescription::parse(&written).as_ref(),
        Ok(description),
        "{written}"
    );
    let relay = LocalAudio::new("203.0.113.5".parse().unwrap(), 30000);
    if let Some(audio) = description.audio() {
        assert_ne!(audio.port, 0);
        assert!(audio.index < description.media().len());
        let _ = audio.rtcp_address();
    }
    if let Ok(answer) = build_answer(description, &relay, 1, 1) {
        let parsed = SessionDescription::parse(&answer.sdp).unwrap();
        assert_eq!(parsed.media().len(), description.media().len());
        let ours = parsed.audio().unwrap();
        assert_eq!(ours.index, answer.remote.index);
        assert_eq!(ours.codecs[0].codec, answer.codec);
        assert_eq!(ours.codecs[0].payload_type, answer.payload_type);
        assert_eq!(ours.telephone_event, answer.telephone_event);
        for (index, media) in parsed.media().iter().enumerate() {
            assert_eq!(media.is_disabled(), index != answer.remote.index);
        }
    }
    let _ = accept_answer(&relay, description);
}

/// The line soup must reach the code it is meant to exercise: enough of it parses,
/// has usable audio and gets answered, or the round-trip property above says little.
#[test]
fn line_soup_reaches_deep_enough() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let relay = LocalAudio::new("203.0.113.5".parse().unwrap(), 30000);
    let (mut parsed, mut with_audio, mut answered) = (0, 0, 0);
    for _ in 0..2000 {
        let text = line_soup().new_tree(&mut runner).unwrap().current();
        let Ok(description) = SessionDescription::parse(&text) else {
            continue;
        };
        parsed += 1;
        if description.audio().is_some() {
            with_audio += 1;
        }
        if build_answer(&description, &relay, 1, 1).is_ok() {
            answered += 1;
        }
    }
    eprintln!("parsed {parsed}, with audio {with_audio}, answered {answered} of 2000");
    assert!(parsed >= 600, "only {parsed} of 2000 parsed");
    assert!(with_audio >= 200, "only {with_audio} of 2000 had audio");
    assert!(answered >= 30, "only {answered} of 2000 were answered");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        if let Ok(description) = SessionDescription::parse(&text) {
            exercise(&description);
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(description) = SessionDescription::parse(&text) {
            exercise(&description);
        }
    }

    #[test]
    fn whatever_parses_round_trips(text in line_soup()) {
        if let Ok(description) = SessionDescription::parse(&text) {
            exercise(&description);
        }
    }

    #[test]
    fn own_offer_reads_back_as_described(local in local_audio(), session_id in any::<u64>(), version in any::<u64>()) {
        let text = build_offer(&local, session_id, version).unwrap();
        let offer = SessionDescription::parse(&text).unwrap();
        prop_assert_eq!(offer.to_string(), text.clone());
        prop_assert_eq!(offer.origin().session_id(), session_id);
        prop_assert_eq!(offer.origin().session_version(), version);
        let audio = offer.audio().unwrap();
        prop_assert_eq!(audio.address, local.address);
        prop_assert_eq!(audio.port, local.port);
        let mut expected: Vec<Codec> = Vec::new();
        for codec in &local.codecs {
            if !expected.contains(codec) {
                expected.push(*codec);
            }
        }
        let offered: Vec<Codec> = audio.codecs.iter().map(|rtp| rtp.codec).collect();
        prop_assert_eq!(&offered, &expected);
        for rtp in &audio.codecs {
            prop_assert_eq!(rtp.payload_type, rtp.codec.payload_type());
        }
        prop_assert_eq!(audio.telephone_event, local.telephone_event);
        prop_assert_eq!(audio.direction, local.direction);
        prop_assert_eq!(audio.ptime, local.ptime);
        prop_assert_eq!(
            audio.on_hold,
            local.address.is_unspecified()
                || matches!(local.direction, Direction::SendOnly | Direction::Inactive)
        );

        // Answering our own offer with the same setup agrees on our first codec.
        let answer = build_answer(&offer, &local, 1, 1).unwrap();
        prop_assert_eq!(answer.codec, expected[0]);
        let negotiated = accept_answer(&local, &SessionDescription::parse(&answer.sdp).unwrap()).unwrap();
        prop_assert_eq!(negotiated.codec, expected[0]);
        prop_assert_eq!(negotiated.telephone_event, local.telephone_event);
    }

    #[test]
    fn answer_reads_back_as_the_offer_intersected_with_ours(
        offered in prop::collection::vec((select(Codec::ALL.to_vec()), prop::bool::ANY), 1..4),
        other_formats in prop::collection::vec(select(vec![3u8, 4, 18, 9]), 0..3),
        offer_events in proptest::option::of(96u8..=109),
        offer_direction in direction(),
        video_first in prop::bool::ANY,
        local in local_audio(),
    ) {
        // Each codec under its static number or, when flagged, a dynamic one with rtpmap.
        let mut formats: Vec<String> = Vec::new();
        let mut rtpmaps = String::new();
        for (slot, (codec, dynamic)) in offered.iter().enumerate() {
            let payload_type = if *dynamic { 110 + slot as u8 } else { codec.payload_type() };
            formats.push(payload_type.to_string());
            if *dynamic {
                rtpmaps.push_str(&format!("a=rtpmap:{payload_type} {}/8000\r\n", codec.name()));
            }
        }
        formats.extend(other_formats.iter().map(u8::to_string));
        if let Some(payload_type) = offer_events {
            formats.push(payload_type.to_string());
            rtpmaps.push_str(&format!("a=rtpmap:{payload_type} telephone-event/8000\r\n"));
        }
        let video = if video_first { "m=video 5002 RTP/AVP 34\r\n" } else { "" };
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{video}\
             m=audio 5000 RTP/AVP {}\r\n{rtpmaps}a={offer_direction}\r\n",
            formats.join(" ")
        );
        let offer = SessionDescription::parse(&text).unwrap();
        let remote = offer.audio().unwrap();
        let common: Vec<_> = remote
            .codecs
            .iter()
            .filter(|rtp| local.codecs.contains(&rtp.codec))
            .copied()
            .collect();

        match build_answer(&offer, &local, 9, 9) {
            Err(error) => {
                prop_assert!(common.is_empty(), "{error}");
                let is_no_common_codec = matches!(error, SdpError::NoCommonCodec { .. });
                prop_assert!(is_no_common_codec, "{}", error);
            }
            Ok(answer) => {
                let parsed = SessionDescription::parse(&answer.sdp).unwrap();
                let ours = parsed.audio().unwrap();
                prop_assert_eq!(ours.index, usize::from(video_first));
                prop_assert_eq!(&ours.codecs, &common);
                prop_assert_eq!(answer.codec, common[0].codec);
                prop_assert_eq!(answer.payload_type, common[0].payload_type);
                let events = local.telephone_event.and(offer_events);
                prop_assert_eq!(ours.telephone_event, events);
                prop_assert_eq!(answer.telephone_event, events);
                prop_assert_eq!(ours.direction, offer_direction.reversed().intersect(local.direction));
                prop_assert_eq!(ours.address, local.address);
                prop_assert_eq!(ours.port, local.port);
                prop_assert_eq!(answer.remote, remote);
                if video_first {
                    prop_assert!(parsed.media()[0].is_disabled());
                    prop_assert_eq!(parsed.media()[0].formats(), ["34"]);
                }
            }
        }
    }
}
