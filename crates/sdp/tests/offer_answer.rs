//! The relay's own offers and answers, checked as exact text and read back with the
//! parser, and a whole B2BUA exchange: caller offer, relay answer, relay offer to the
//! callee, callee answer, hold and resume.

use std::net::IpAddr;

use sihai_sdp::{
    AudioStream, Codec, Direction, LocalAudio, RtpCodec, SdpError, SessionDescription,
    accept_answer, build_answer, build_offer,
};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn parse(text: &str) -> SessionDescription {
    match SessionDescription::parse(text) {
        Ok(description) => description,
        Err(error) => panic!("{error}\n{text}"),
    }
}

fn relay() -> LocalAudio {
    LocalAudio::new(ip("203.0.113.5"), 30000)
}

#[test]
fn default_offer_text() {
    let offer = build_offer(&relay(), 42, 1).unwrap();
    assert_eq!(
        offer,
        "v=0\r\n\
         o=sihai 42 1 IN IP4 203.0.113.5\r\n\
         s=sihai\r\n\
         c=IN IP4 203.0.113.5\r\n\
         t=0 0\r\n\
         m=audio 30000 RTP/AVP 8 0 101\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    );
}

#[test]
fn ipv6_hold_offer_text_without_events_or_ptime() {
    let local = LocalAudio {
        address: ip("2001:db8::5"),
        port: 40000,
        codecs: vec![Codec::Pcmu],
        telephone_event: None,
        direction: Direction::SendOnly,
        ptime: None,
    };
    assert_eq!(
        build_offer(&local, 7, 3).unwrap(),
        "v=0\r\n\
         o=sihai 7 3 IN IP6 2001:db8::5\r\n\
         s=sihai\r\n\
         c=IN IP6 2001:db8::5\r\n\
         t=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=sendonly\r\n"
    );
}

#[test]
fn offer_reads_back_as_what_was_asked_for() {
    let offer = parse(&build_offer(&relay(), 42, 1).unwrap());
    assert_eq!(offer.origin().username(), "sihai");
    assert_eq!(offer.origin().session_id(), 42);
    assert_eq!(offer.origin().session_version(), 1);
    assert_eq!(
        offer.audio(),
        Some(AudioStream {
            index: 0,
            address: ip("203.0.113.5"),
            port: 30000,
            rtcp: None,
            codecs: vec![
                RtpCodec {
                    codec: Codec::Pcma,
                    payload_type: 8
                },
                RtpCodec {
                    codec: Codec::Pcmu,
                    payload_type: 0
                },
            ],
            telephone_event: Some(101),
            direction: Direction::SendRecv,
            ptime: Some(20),
            on_hold: false,
            secure: false,
            proto: "RTP/AVP".into(),
        })
    );
}

/// Video first, audio on hold (sendonly), a BFCP line last: the answer has three m=
/// lines in the same order, only the audio accepted.
const VIDEO_AUDIO_BFCP_OFFER: &str = "v=0\r\n\
    o=- 100 1 IN IP4 192.0.2.10\r\n\
    s=-\r\n\
    c=IN IP4 192.0.2.10\r\n\
    t=0 0\r\n\
    m=video 5002 RTP/AVP 34 96\r\n\
    a=rtpmap:96 H264/90000\r\n\
    m=audio 5000 RTP/AVP 0 8 3 101\r\n\
    a=rtpmap:101 telephone-event/8000\r\n\
    a=fmtp:101 0-15\r\n\
    a=sendonly\r\n\
    m=application 5004 UDP/BFCP *\r\n";

#[test]
fn answer_text_keeps_m_line_order_and_rejects_the_rest() {
    let offer = parse(VIDEO_AUDIO_BFCP_OFFER);
    let answer = build_answer(&offer, &relay(), 42, 1).unwrap();
    assert_eq!(
        answer.sdp,
        "v=0\r\n\
         o=sihai 42 1 IN IP4 203.0.113.5\r\n\
         s=sihai\r\n\
         c=IN IP4 203.0.113.5\r\n\
         t=0 0\r\n\
         m=video 0 RTP/AVP 34 96\r\n\
         m=audio 30000 RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=recvonly\r\n\
         m=application 0 UDP/BFCP *\r\n"
    );
    assert_eq!(answer.codec, Codec::Pcmu);
    assert_eq!(answer.payload_type, 0);
    assert_eq!(answer.telephone_event, Some(101));
    assert_eq!(answer.remote.index, 1);
    assert_eq!(
        answer.remote.rtp_address(),
        "192.0.2.10:5000".parse().unwrap()
    );
    assert!(answer.remote.on_hold);

    let read_back = parse(&answer.sdp);
    assert_eq!(read_back.media().len(), 3);
    assert!(read_back.media()[0].is_disabled());
    assert!(read_back.media()[2].is_disabled());
    assert_eq!(
        read_back.audio(),
        Some(AudioStream {
            index: 1,
            address: ip("203.0.113.5"),
            port: 30000,
            rtcp: None,
            codecs: vec![
                RtpCodec {
                    codec: Codec::Pcmu,
                    payload_type: 0
                },
                RtpCodec {
                    codec: Codec::Pcma,
                    payload_type: 8
                },
            ],
            telephone_event: Some(101),
            direction: Direction::RecvOnly,
            ptime: Some(20),
            on_hold: false,
            secure: false,
            proto: "RTP/AVP".into(),
        })
    );
}

#[test]
fn answer_to_a_single_codec_carrier_offer_text() {
    let offer = parse(
        "v=0\r\no=ZTE 1234567 1234567 IN IP4 198.51.100.30\r\ns=phone-call\r\n\
         c=IN IP4 198.51.100.31\r\nt=0 0\r\nm=audio 40010 RTP/AVP 8 101\r\n\
         a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
         a=ptime:20\r\na=sendrecv\r\n",
    );
    let local = LocalAudio {
        ptime: None,
        ..relay()
    };
    let answer = build_answer(&offer, &local, 5, 2).unwrap();
    assert_eq!(
        answer.sdp,
        "v=0\r\n\
         o=sihai 5 2 IN IP4 203.0.113.5\r\n\
         s=sihai\r\n\
         c=IN IP4 203.0.113.5\r\n\
         t=0 0\r\n\
         m=audio 30000 RTP/AVP 8 101\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=sendrecv\r\n"
    );
}

#[test]
fn answer_to_a_gsm_only_offer_is_no_common_codec() {
    let offer = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 5000 RTP/AVP 3 101\r\na=rtpmap:3 GSM/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    let error = build_answer(&offer, &relay(), 1, 1).unwrap_err();
    assert_eq!(
        error,
        SdpError::NoCommonCodec {
            formats: "3 101".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "none of the audio formats `3 101` is a codec we accept"
    );
}

#[test]
fn accept_a_phone_answer() {
    let local = relay();
    let answer = parse(
        "v=0\r\no=- 3827 3828 IN IP4 198.51.100.77\r\ns=SIP Call\r\nc=IN IP4 198.51.100.77\r\nt=0 0\r\n\
         m=audio 7078 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-11\r\na=rtcp:7079 IN IP4 198.51.100.77\r\n",
    );
    let negotiated = accept_answer(&local, &answer).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcmu);
    assert_eq!(negotiated.payload_type, 0);
    assert_eq!(negotiated.telephone_event, Some(101));
    assert_eq!(
        negotiated.remote.rtp_address(),
        "198.51.100.77:7078".parse().unwrap()
    );
    assert_eq!(
        negotiated.remote.rtcp,
        Some("198.51.100.77:7079".parse().unwrap())
    );
}

#[test]
fn accept_an_answer_that_lists_a_codec_we_did_not_offer_first() {
    let local = LocalAudio {
        codecs: vec![Codec::Pcma],
        ..relay()
    };
    // The phone answers with everything it has; only PCMA was ours.
    let answer = parse(
        "v=0\r\no=- 1 1 IN IP4 198.51.100.77\r\ns=-\r\nc=IN IP4 198.51.100.77\r\nt=0 0\r\n\
         m=audio 7078 RTP/AVP 18 0 8\r\n",
    );
    let negotiated = accept_answer(&local, &answer).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcma);
    assert_eq!(negotiated.payload_type, 8);
    assert_eq!(negotiated.telephone_event, None);
}

#[test]
fn accept_an_answer_that_rejects_audio() {
    let answer = parse(
        "v=0\r\no=- 1 1 IN IP4 198.51.100.77\r\ns=-\r\nc=IN IP4 198.51.100.77\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\n",
    );
    assert_eq!(accept_answer(&relay(), &answer), Err(SdpError::NoAudio));
}

/// The whole exchange a 400-number call makes, with a hold and resume by the caller.
#[test]
fn b2bua_exchange_with_hold_and_resume() {
    // 1. The carrier offers PCMA, PCMU, G.729 and events.
    let caller_offer = parse(
        "v=0\r\no=HuaweiSoftX3000 1073741830 1073741830 IN IP4 198.51.100.20\r\ns=Sip Call\r\n\
         c=IN IP4 198.51.100.21\r\nt=0 0\r\nm=audio 20394 RTP/AVP 8 0 18 101\r\n\
         a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:18 G729/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
    );
    let leg_a = LocalAudio::new(ip("203.0.113.5"), 30000);
    let answer_a = build_answer(&caller_offer, &leg_a, 1000, 1).unwrap();
    assert_eq!(answer_a.codec, Codec::Pcma);

    // 2. The relay offers the callee exactly the codec the caller will send.
    let leg_b = LocalAudio {
        codecs: vec![answer_a.codec],
        ..LocalAudio::new(ip("203.0.113.5"), 30002)
    };
    let offer_b = build_offer(&leg_b, 2000, 1).unwrap();
    assert!(offer_b.contains("m=audio 30002 RTP/AVP 8 101\r\n"));

    // 3. The callee's answer.
    let callee_answer = parse(
        "v=0\r\no=- 77 77 IN IP4 198.51.100.77\r\ns=-\r\nc=IN IP4 198.51.100.77\r\nt=0 0\r\n\
         m=audio 7078 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    let negotiated_b = accept_answer(&leg_b, &callee_answer).unwrap();
    assert_eq!(negotiated_b.codec, answer_a.codec);
    assert_eq!(negotiated_b.telephone_event, Some(101));

    // 4. The caller puts the call on hold with a re-INVITE (version bumped, sendonly).
    let hold = parse(
        "v=0\r\no=HuaweiSoftX3000 1073741830 1073741831 IN IP4 198.51.100.20\r\ns=Sip Call\r\n\
         c=IN IP4 198.51.100.21\r\nt=0 0\r\nm=audio 20394 RTP/AVP 8 101\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n",
    );
    assert!(hold.origin().session_version() > caller_offer.origin().session_version());
    let hold_answer = build_answer(&hold, &leg_a, 1000, 2).unwrap();
    assert!(hold_answer.remote.on_hold);
    let ours = parse(&hold_answer.sdp).audio().unwrap();
    assert_eq!(ours.direction, Direction::RecvOnly);
    assert_eq!(parse(&hold_answer.sdp).origin().session_version(), 2);

    // 5. The relay passes the hold on to the callee with a sendonly re-offer.
    let hold_b = LocalAudio {
        direction: Direction::SendOnly,
        ..leg_b.clone()
    };
    let reoffer_b = parse(&build_offer(&hold_b, 2000, 2).unwrap());
    assert!(reoffer_b.audio().unwrap().on_hold);

    // 6. Resume: sendrecv again.
    let resume = parse(
        "v=0\r\no=HuaweiSoftX3000 1073741830 1073741832 IN IP4 198.51.100.20\r\ns=Sip Call\r\n\
         c=IN IP4 198.51.100.21\r\nt=0 0\r\nm=audio 20394 RTP/AVP 8 101\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
    );
    let resume_answer = build_answer(&resume, &leg_a, 1000, 3).unwrap();
    assert!(!resume_answer.remote.on_hold);
    assert_eq!(
        parse(&resume_answer.sdp).audio().unwrap().direction,
        Direction::SendRecv
    );
}
