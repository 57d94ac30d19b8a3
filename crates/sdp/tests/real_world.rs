//! Descriptions as real peers send them (RFC examples, Asterisk, Huawei and ZTE carrier
//! gateways, sipp, WebRTC-ish offers) and the errors broken ones produce.
//!
//! Addresses are from the documentation ranges; everything else is as captured.

use std::net::{IpAddr, SocketAddr};

use sihai_sdp::{
    AddressType, AudioStream, Codec, Direction, LocalAudio, RtpCodec, SdpError, SessionDescription,
    SyntaxProblem, build_answer,
};

fn parse(text: &str) -> SessionDescription {
    match SessionDescription::parse(text) {
        Ok(description) => description,
        Err(error) => panic!("{error}\n{text}"),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn pcmu(payload_type: u8) -> RtpCodec {
    RtpCodec {
        codec: Codec::Pcmu,
        payload_type,
    }
}

fn pcma(payload_type: u8) -> RtpCodec {
    RtpCodec {
        codec: Codec::Pcma,
        payload_type,
    }
}

/// RFC 4566 §5, with its session-level `a=recvonly` and multicast `c=`.
const RFC_4566_EXAMPLE: &str = "v=0\r
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r
s=SDP Seminar\r
i=A Seminar on the session description protocol\r
u=http://www.example.com/seminars/sdp.pdf\r
e=j.doe@example.com (Jane Doe)\r
c=IN IP4 224.2.17.12/127\r
t=2873397496 2873404696\r
a=recvonly\r
m=audio 49170 RTP/AVP 0\r
m=video 51372 RTP/AVP 99\r
a=rtpmap:99 h263-1998/90000\r
";

#[test]
fn rfc_4566_example() {
    let sdp = parse(RFC_4566_EXAMPLE);
    let origin = sdp.origin();
    assert_eq!(origin.username(), "jdoe");
    assert_eq!(origin.session_id(), 2890844526);
    assert_eq!(origin.session_version(), 2890842807);
    assert_eq!(origin.address_type(), AddressType::Ip4);
    assert_eq!(origin.address(), "10.47.16.5");
    assert_eq!(sdp.session_name(), Some("SDP Seminar"));
    assert_eq!(
        sdp.information(),
        Some("A Seminar on the session description protocol")
    );
    assert_eq!(sdp.uri(), Some("http://www.example.com/seminars/sdp.pdf"));
    assert_eq!(sdp.emails(), ["j.doe@example.com (Jane Doe)"]);
    assert_eq!(sdp.connection().unwrap().address(), "224.2.17.12/127");
    assert_eq!(sdp.timings()[0].start(), 2873397496);
    assert_eq!(sdp.timings()[0].stop(), 2873404696);
    assert_eq!(sdp.attributes()[0].name(), "recvonly");
    assert_eq!(sdp.media().len(), 2);
    assert_eq!(sdp.media()[1].kind(), "video");
    assert_eq!(
        sdp.media()[1].attribute("rtpmap").unwrap().value(),
        Some("99 h263-1998/90000")
    );

    assert_eq!(
        sdp.audio(),
        Some(AudioStream {
            index: 0,
            address: ip("224.2.17.12"),
            port: 49170,
            rtcp: None,
            codecs: vec![pcmu(0)],
            telephone_event: None,
            direction: Direction::RecvOnly,
            ptime: None,
            on_hold: false,
            secure: false,
            proto: "RTP/AVP".into(),
        })
    );
    // Written back out it is the same text: the example is already in canonical order.
    assert_eq!(sdp.to_string(), RFC_4566_EXAMPLE);
}

/// RFC 3264 §10.1: host names instead of addresses, which the relay cannot use.
#[test]
fn rfc_3264_example_with_host_names_has_no_usable_audio() {
    let sdp = parse(
        "v=0\r\no=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\r\ns=\r\n\
         c=IN IP4 host.atlanta.example.com\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 97\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:97 iLBC/8000\r\n\
         m=video 51372 RTP/AVP 31 32\r\na=rtpmap:31 H261/90000\r\na=rtpmap:32 MPV/90000\r\n",
    );
    assert_eq!(sdp.session_name(), Some(""));
    assert_eq!(sdp.origin().address(), "host.atlanta.example.com");
    assert_eq!(sdp.audio(), None);
    let relay = LocalAudio::new(ip("203.0.113.5"), 30000);
    assert_eq!(build_answer(&sdp, &relay, 1, 1), Err(SdpError::NoAudio));
}

#[test]
fn asterisk_offer() {
    let sdp = parse(
        "v=0\r\n\
         o=root 1955410497 1955410497 IN IP4 192.0.2.10\r\n\
         s=Asterisk PBX 16.2.1\r\n\
         c=IN IP4 192.0.2.10\r\n\
         t=0 0\r\n\
         m=audio 10478 RTP/AVP 0 8 3 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:3 GSM/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=maxptime:150\r\n\
         a=sendrecv\r\n",
    );
    assert_eq!(
        sdp.audio(),
        Some(AudioStream {
            index: 0,
            address: ip("192.0.2.10"),
            port: 10478,
            rtcp: None,
            codecs: vec![pcmu(0), pcma(8)],
            telephone_event: Some(101),
            direction: Direction::SendRecv,
            ptime: Some(20),
            on_hold: false,
            secure: false,
            proto: "RTP/AVP".into(),
        })
    );
    assert_eq!(sdp.media()[0].formats(), ["0", "8", "3", "101"]);
    assert_eq!(
        sdp.media()[0].attribute("maxptime").unwrap().value(),
        Some("150")
    );
}

#[test]
fn huawei_carrier_offer_prefers_pcma() {
    let sdp = parse(
        "v=0\r\n\
         o=HuaweiSoftX3000 1073741830 1073741830 IN IP4 198.51.100.20\r\n\
         s=Sip Call\r\n\
         c=IN IP4 198.51.100.21\r\n\
         t=0 0\r\n\
         m=audio 20394 RTP/AVP 8 0 18 4 101\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:18 G729/8000\r\n\
         a=fmtp:18 annexb=no\r\n\
         a=rtpmap:4 G723/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a=ptime:20\r\n\
         a=maxptime:40\r\n\
         a=sendrecv\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.address, ip("198.51.100.21"));
    assert_eq!(audio.port, 20394);
    assert_eq!(audio.codecs, [pcma(8), pcmu(0)]);
    assert_eq!(audio.telephone_event, Some(101));
    assert_eq!(audio.ptime, Some(20));
    assert_eq!(audio.direction, Direction::SendRecv);
    assert!(!audio.on_hold);

    let answer = build_answer(&sdp, &LocalAudio::new(ip("203.0.113.5"), 30000), 9, 1).unwrap();
    assert_eq!(answer.codec, Codec::Pcma);
    assert_eq!(answer.payload_type, 8);
    assert!(answer.sdp.contains("m=audio 30000 RTP/AVP 8 0 101\r\n"));
}

#[test]
fn zte_carrier_offer_with_bandwidth_and_lf_line_ends() {
    let sdp = parse(
        "v=0\n\
         o=ZTE 1234567 1234567 IN IP4 198.51.100.30\n\
         s=phone-call\n\
         c=IN IP4 198.51.100.31\n\
         b=AS:64\n\
         t=0 0\n\
         m=audio 40010 RTP/AVP 8 101\n\
         b=AS:80\n\
         a=rtpmap:8 PCMA/8000\n\
         a=rtpmap:101 telephone-event/8000\n\
         a=fmtp:101 0-15\n\
         a=ptime:20\n\
         a=sendrecv",
    );
    assert_eq!(sdp.bandwidths(), ["AS:64"]);
    assert_eq!(sdp.media()[0].bandwidths(), ["AS:80"]);
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.rtp_address(), "198.51.100.31:40010".parse().unwrap());
    assert_eq!(audio.codecs, [pcma(8)]);
    assert_eq!(audio.telephone_event, Some(101));
}

#[test]
fn sipp_default_offer_without_rtpmap() {
    let sdp = parse(
        "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.1.1\r\ns=-\r\nc=IN IP4 127.0.1.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.rtp_address(), "127.0.1.1:6000".parse().unwrap());
    assert_eq!(
        audio.rtcp_address(),
        Some("127.0.1.1:6001".parse().unwrap())
    );
    assert_eq!(audio.codecs, [pcmu(0)]);
    assert_eq!(audio.telephone_event, None);
    assert_eq!(audio.ptime, None);
}

#[test]
fn sipp_default_offer_with_rtpmap() {
    let sdp = parse(
        "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.1.1\r\ns=-\r\nc=IN IP4 127.0.1.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
    );
    assert_eq!(sdp.audio().unwrap().codecs, [pcmu(0)]);
}

#[test]
fn static_payload_types_without_rtpmap_are_recognised() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8 0 18\r\n",
    );
    assert_eq!(sdp.audio().unwrap().codecs, [pcma(8), pcmu(0)]);
}

#[test]
fn rtpmap_names_are_case_insensitive() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 5000 RTP/AVP 8 0 101\r\na=rtpmap:8 pcma/8000\r\na=rtpmap:0 Pcmu/8000\r\n\
         a=rtpmap:101 TELEPHONE-EVENT/8000\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.codecs, [pcma(8), pcmu(0)]);
    assert_eq!(audio.telephone_event, Some(101));
}

#[test]
fn telephone_event_with_fmtp_0_15() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
    );
    assert_eq!(sdp.audio().unwrap().telephone_event, Some(101));
    assert_eq!(
        sdp.media()[0].attribute("fmtp").unwrap().value(),
        Some("101 0-15")
    );
}

#[test]
fn dynamic_payload_type_for_pcmu() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 5000 RTP/AVP 96 97\r\na=rtpmap:96 PCMU/8000\r\na=rtpmap:97 telephone-event/8000\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.codecs, [pcmu(96)]);
    assert_eq!(audio.payload_type_of(Codec::Pcmu), Some(96));
    assert_eq!(audio.telephone_event, Some(97));

    let answer = build_answer(&sdp, &LocalAudio::new(ip("203.0.113.5"), 30000), 1, 1).unwrap();
    assert_eq!(answer.payload_type, 96);
    assert!(answer.sdp.contains("m=audio 30000 RTP/AVP 96 97\r\n"));
    assert!(answer.sdp.contains("a=rtpmap:96 PCMU/8000\r\n"));
    assert!(answer.sdp.contains("a=rtpmap:97 telephone-event/8000\r\n"));
}

#[test]
fn ipv6_connection() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n",
    );
    assert_eq!(sdp.origin().address_type(), AddressType::Ip6);
    assert_eq!(sdp.connection().unwrap().address_type(), AddressType::Ip6);
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.address, ip("::1"));
    assert_eq!(audio.rtp_address(), "[::1]:5004".parse().unwrap());
    assert!(!audio.on_hold);
}

#[test]
fn media_level_connection_overrides_the_session_level_one() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 5000 RTP/AVP 0\r\nc=IN IP4 192.0.2.99\r\n",
    );
    assert_eq!(sdp.audio().unwrap().address, ip("192.0.2.99"));
}

#[test]
fn media_level_connection_without_a_session_level_one() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\nc=IN IP4 192.0.2.99\r\n",
    );
    assert_eq!(sdp.connection(), None);
    assert_eq!(sdp.audio().unwrap().address, ip("192.0.2.99"));
}

#[test]
fn video_before_audio() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=video 5002 RTP/AVP 34 96\r\na=rtpmap:96 H264/90000\r\nm=audio 5000 RTP/AVP 8\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.index, 1);
    assert_eq!(audio.port, 5000);
}

#[test]
fn disabled_audio_stream_is_skipped() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 0 RTP/AVP 0\r\nm=audio 5002 RTP/AVP 8\r\n",
    );
    assert!(sdp.media()[0].is_disabled());
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.index, 1);
    assert_eq!(audio.codecs, [pcma(8)]);

    let only_disabled = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
    );
    assert_eq!(only_disabled.audio(), None);
}

/// RFC 3605 §2.1's example attribute.
#[test]
fn rtcp_attribute_with_address() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 126.16.64.4\r\ns=-\r\nc=IN IP4 126.16.64.4\r\nt=0 0\r\n\
         m=audio 49170 RTP/AVP 0\r\na=rtcp:53021 IN IP4 126.16.64.4\r\n",
    );
    let audio = sdp.audio().unwrap();
    let expected: SocketAddr = "126.16.64.4:53021".parse().unwrap();
    assert_eq!(audio.rtcp, Some(expected));
    assert_eq!(audio.rtcp_address(), Some(expected));
}

#[test]
fn rtcp_attribute_with_port_only() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 49170 RTP/AVP 0\r\na=rtcp:49999\r\n",
    );
    assert_eq!(
        sdp.audio().unwrap().rtcp,
        Some("192.0.2.1:49999".parse().unwrap())
    );
}

#[test]
fn session_level_sendonly_is_inherited_and_means_hold() {
    let sdp = parse(
        "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\n\
         m=audio 5000 RTP/AVP 0\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.direction, Direction::SendOnly);
    assert!(audio.on_hold);
}

#[test]
fn media_level_direction_overrides_session_level() {
    let sdp = parse(
        "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\n\
         m=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.direction, Direction::SendRecv);
    assert!(!audio.on_hold);
}

#[test]
fn inactive_means_hold() {
    let sdp = parse(
        "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 5000 RTP/AVP 0\r\na=inactive\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.direction, Direction::Inactive);
    assert!(audio.on_hold);
}

#[test]
fn rfc_2543_hold_with_zero_address() {
    let sdp = parse(
        "v=0\r\no=- 1 3 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.address, ip("0.0.0.0"));
    assert_eq!(audio.direction, Direction::SendRecv);
    assert!(audio.on_hold);
}

#[test]
fn srtp_offer_is_reported_as_secure_and_refused_by_the_answer() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 5000 RTP/SAVP 8 0\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n",
    );
    let audio = sdp.audio().unwrap();
    assert!(audio.secure);
    assert_eq!(audio.proto, "RTP/SAVP");
    assert_eq!(audio.codecs, [pcma(8), pcmu(0)]);
    assert_eq!(
        build_answer(&sdp, &LocalAudio::new(ip("203.0.113.5"), 30000), 1, 1),
        Err(SdpError::SecureMedia {
            profile: "RTP/SAVP".into()
        })
    );
}

#[test]
fn unknown_lines_and_attributes_are_kept_and_ignored() {
    let text = "v=0\r\n\
        o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        c=IN IP4 192.0.2.7\r\n\
        b=CT:128\r\n\
        t=0 0\r\n\
        z=2882844526 -1h 2898848070 0\r\n\
        k=prompt\r\n\
        a=ice-lite\r\n\
        a=msid-semantic: WMS\r\n\
        m=audio 9000 RTP/AVPF 111 8 0 126\r\n\
        b=AS:64\r\n\
        k=clear:secret\r\n\
        a=ice-ufrag:8hhY\r\n\
        a=ice-pwd:asd88fgpdd777uzjYhagZg\r\n\
        a=candidate:1 1 UDP 2130706431 192.0.2.7 9000 typ host\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=rtpmap:126 telephone-event/8000\r\n\
        a=rtcp-mux\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n\
        a=sendrecv\r\n\
        y=something from the future\r\n";
    let sdp = parse(text);
    assert_eq!(sdp.time_zones(), Some("2882844526 -1h 2898848070 0"));
    assert_eq!(sdp.encryption_key(), Some("prompt"));
    assert_eq!(sdp.attribute("ice-lite").unwrap().value(), None);
    assert_eq!(
        sdp.attribute("msid-semantic").unwrap().value(),
        Some(" WMS")
    );
    let media = &sdp.media()[0];
    assert_eq!(media.encryption_key(), Some("clear:secret"));
    assert_eq!(media.unknown_lines()[0].line_type(), 'y');
    assert_eq!(media.attributes().len(), 8);

    let audio = sdp.audio().unwrap();
    assert_eq!(audio.codecs, [pcma(8), pcmu(0)]);
    assert_eq!(audio.telephone_event, Some(126));
    assert!(!audio.secure);
    assert_eq!(audio.proto, "RTP/AVPF");
    // Nothing is lost: the text is already in canonical order, so it comes back as is.
    assert_eq!(sdp.to_string(), text);
}

fn syntax_error(text: &str) -> (usize, SyntaxProblem, String) {
    match SessionDescription::parse(text) {
        Err(error @ SdpError::Syntax { .. }) => {
            let message = error.to_string();
            let SdpError::Syntax { line, problem } = error else {
                unreachable!()
            };
            (line, problem, message)
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn missing_version_line() {
    let (line, problem, message) = syntax_error("o=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n");
    assert_eq!(line, 1);
    assert!(matches!(problem, SyntaxProblem::VersionNotFirst { .. }));
    assert_eq!(
        message,
        "SDP line 1: SDP must start with `v=0`, found `o=- 1 1 IN IP4 192.0.2.1`"
    );
}

#[test]
fn missing_origin_line() {
    let error = SessionDescription::parse("v=0\r\ns=-\r\nt=0 0\r\n").unwrap_err();
    assert_eq!(error, SdpError::MissingLine { line_type: 'o' });
    assert_eq!(error.to_string(), "SDP has no `o=` line");
}

#[test]
fn bad_media_line() {
    let (line, problem, message) =
        syntax_error("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 5000\r\n");
    assert_eq!(line, 5);
    assert!(matches!(
        problem,
        SyntaxProblem::WrongFieldCount { line_type: 'm', .. }
    ));
    assert_eq!(
        message,
        "SDP line 5: `m=` needs `<media> <port> <proto> <fmt> ...`, found `audio 5000`"
    );
}

#[test]
fn media_port_not_a_number() {
    let (line, problem, message) = syntax_error(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=audio fifty RTP/AVP 0\r\n",
    );
    assert_eq!(line, 6);
    assert_eq!(
        problem,
        SyntaxProblem::NotANumber {
            field: "m= port",
            value: "fifty".into()
        }
    );
    assert_eq!(message, "SDP line 6: m= port `fifty` is not a valid number");
}

#[test]
fn unknown_network_type() {
    let (line, problem, message) =
        syntax_error("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=TN RFC2543 5551234\r\n");
    assert_eq!(line, 4);
    assert_eq!(
        problem,
        SyntaxProblem::UnknownNetworkType { value: "TN".into() }
    );
    assert_eq!(
        message,
        "SDP line 4: unknown network type `TN`, only IN is defined"
    );
}

#[test]
fn error_line_numbers_count_blank_lines_and_work_with_lf() {
    let (line, _, _) = syntax_error("v=0\n\no=- 1 1 IN IP4 192.0.2.1\n\ns=-\nm=audio x RTP/AVP 0");
    assert_eq!(line, 6);
}

#[test]
fn a_hostile_line_is_quoted_only_in_part() {
    let long = format!("v=0\r\n{}\r\n", "x".repeat(10_000));
    let (_, _, message) = syntax_error(&long);
    assert!(message.len() < 200, "{message}");
}
