//! RFC 3264 offer/answer from the relay's side.
//!
//! sihai anchors every call's media, so towards each leg it speaks for itself: it
//! offers its own relay address to the leg it calls ([`build_offer`], then
//! [`accept_answer`] on the reply) and answers the caller's offer with it
//! ([`build_answer`]). Only one audio stream is ever accepted; everything else in an
//! offer is rejected with port 0 as §6 prescribes, so the number and order of m= lines
//! always match.

use std::net::IpAddr;

use crate::audio::{AudioStream, Codec, Direction, NARROWBAND_CLOCK_RATE, RtpCodec};
use crate::description::{
    AddressType, Attribute, Connection, Media, Origin, SessionDescription, Timing,
};
use crate::error::SdpError;

/// The username and session name sihai writes in its own descriptions.
const SIHAI: &str = "sihai";

/// The only profile sihai offers: plain RTP.
const PLAIN_RTP: &str = "RTP/AVP";

/// RFC 4733 events sihai receives: DTMF 0-9, *, #, A-D (0-15) and flash (16).
const TELEPHONE_EVENTS: &str = "0-16";

/// Dynamic RTP payload types (RFC 3551 §6), the only place a telephone-event number of
/// our own may live without clashing with a static codec.
const DYNAMIC_PAYLOAD_TYPES: std::ops::RangeInclusive<u8> = 96..=127;

/// What the relay puts in its own offer or answer for one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAudio {
    /// The relay's media address for this leg.
    pub address: IpAddr,
    /// The relay's RTP port for this leg.
    pub port: u16,
    /// The codecs the relay accepts on this leg, best first. In an answer the offerer's
    /// order wins; this list only filters it.
    pub codecs: Vec<Codec>,
    /// Whether to carry RFC 4733 telephone-events, and under which payload type when
    /// offering (96-127). An answer always reuses the offer's number.
    pub telephone_event: Option<u8>,
    /// The directions the relay allows; an answer never grants more than this.
    pub direction: Direction,
    /// `a=ptime` to write, in milliseconds.
    pub ptime: Option<u32>,
}

impl LocalAudio {
    /// The usual setup for a Chinese carrier: PCMA then PCMU, telephone-event on 101,
    /// sendrecv, 20 ms packets.
    pub fn new(address: IpAddr, port: u16) -> LocalAudio {
        LocalAudio {
            address,
            port,
            codecs: vec![Codec::Pcma, Codec::Pcmu],
            telephone_event: Some(101),
            direction: Direction::SendRecv,
            ptime: Some(20),
        }
    }
}

/// The relay's answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer's text, CRLF line ends.
    pub sdp: String,
    /// The first codec of the answered audio line: the offerer's favourite among ours.
    pub codec: Codec,
    /// The payload type of [`Answer::codec`] on this leg (the offer's number).
    pub payload_type: u8,
    /// The telephone-event payload type, if both sides want events.
    pub telephone_event: Option<u8>,
    /// The offerer's stream that was answered: where the relay sends this leg's media.
    pub remote: AudioStream,
}

/// What the peer chose in its answer to our offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The first codec of the answer's audio line that we offered.
    pub codec: Codec,
    /// The payload type the peer listed for [`Negotiated::codec`], which is the one it
    /// expects to receive.
    pub payload_type: u8,
    /// The peer's telephone-event payload type, if we offered events and it accepted.
    pub telephone_event: Option<u8>,
    /// The peer's audio stream: where the relay sends this leg's media.
    pub remote: AudioStream,
}

/// Builds a fresh offer from the relay, e.g. for the leg towards a phone:
///
/// ```text
/// v=0
/// o=sihai <session id> <version> IN IP4|IP6 <address>
/// s=sihai
/// c=IN IP4|IP6 <address>
/// t=0 0
/// m=audio <port> RTP/AVP <codecs...> <telephone-event>
/// a=rtpmap:<pt> <codec>/8000            (each codec, then telephone-event)
/// a=fmtp:<te> 0-16
/// a=ptime:<ms>                          (if set)
/// a=<direction>
/// ```
///
/// Fails with [`SdpError::NoLocalCodec`] if `local.codecs` is empty and with
/// [`SdpError::TelephoneEventPayloadType`] if the telephone-event payload type is not
/// dynamic. A codec listed twice is offered once.
pub fn build_offer(local: &LocalAudio, session_id: u64, version: u64) -> Result<String, SdpError> {
    let mut codecs: Vec<RtpCodec> = Vec::with_capacity(local.codecs.len());
    for &codec in &local.codecs {
        if !codecs.iter().any(|known| known.codec == codec) {
            codecs.push(RtpCodec {
                codec,
                payload_type: codec.payload_type(),
            });
        }
    }
    if codecs.is_empty() {
        return Err(SdpError::NoLocalCodec);
    }
    if let Some(payload_type) = local
        .telephone_event
        .filter(|payload_type| !DYNAMIC_PAYLOAD_TYPES.contains(payload_type))
    {
        return Err(SdpError::TelephoneEventPayloadType { payload_type });
    }
    let audio = audio_media(
        local.port,
        PLAIN_RTP,
        &codecs,
        local.telephone_event,
        local.ptime,
        local.direction,
    );
    let offer = relay_description(
        local.address,
        session_id,
        version,
        vec![Timing::PERMANENT],
        vec![audio],
    );
    Ok(offer.to_string())
}

/// Answers `offer` from the relay (RFC 3264 §6).
///
/// The answered stream is the first usable audio stream with plain RTP and a codec in
/// `local.codecs`. Its line lists those common codecs in the offerer's preference order
/// under the offer's payload type numbers, plus telephone-event under the offer's number
/// if both sides want it; its direction is the offer's reversed, limited to
/// `local.direction`. Every other m= line is rejected with port 0 and its formats
/// copied, so the answer has the same m= lines in the same order. The `t=` lines are
/// the offer's.
///
/// Fails (the caller then sends 488) with [`SdpError::NoCommonCodec`] if the plain RTP
/// audio offers none of our codecs, [`SdpError::SecureMedia`] if the only audio is
/// SRTP, and [`SdpError::NoAudio`] if there is no usable audio at all.
pub fn build_answer(
    offer: &SessionDescription,
    local: &LocalAudio,
    session_id: u64,
    version: u64,
) -> Result<Answer, SdpError> {
    let mut first_secure: Option<String> = None;
    let mut first_without_common_codec: Option<String> = None;
    let mut chosen: Option<(AudioStream, RtpCodec, Vec<RtpCodec>)> = None;
    for stream in offer.audio_streams() {
        if stream.secure {
            first_secure.get_or_insert_with(|| stream.proto.clone());
            continue;
        }
        let common: Vec<RtpCodec> = stream
            .codecs
            .iter()
            .filter(|offered| local.codecs.contains(&offered.codec))
            .copied()
            .collect();
        match common.first() {
            Some(&preferred) => {
                chosen = Some((stream, preferred, common));
                break;
            }
            None => {
                first_without_common_codec.get_or_insert_with(|| formats_of(offer, stream.index));
            }
        }
    }
    let Some((remote, preferred, common)) = chosen else {
        return Err(if let Some(formats) = first_without_common_codec {
            SdpError::NoCommonCodec { formats }
        } else if let Some(profile) = first_secure {
            SdpError::SecureMedia { profile }
        } else {
            SdpError::NoAudio
        });
    };

    let telephone_event = local.telephone_event.and(remote.telephone_event);
    let direction = remote.direction.reversed().intersect(local.direction);
    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(index, offered)| {
            if index == remote.index {
                audio_media(
                    local.port,
                    &offered.proto,
                    &common,
                    telephone_event,
                    local.ptime,
                    direction,
                )
            } else {
                Media::new(
                    offered.kind.clone(),
                    0,
                    offered.proto.clone(),
                    offered.formats.clone(),
                )
            }
        })
        .collect();
    let timings = if offer.timings.is_empty() {
        vec![Timing::PERMANENT]
    } else {
        offer.timings.clone()
    };
    let answer = relay_description(local.address, session_id, version, timings, media);
    Ok(Answer {
        sdp: answer.to_string(),
        codec: preferred.codec,
        payload_type: preferred.payload_type,
        telephone_event,
        remote,
    })
}

/// Reads the peer's answer to the offer built from `offered`: the first codec on the
/// answer's audio line that we offered, the peer's telephone-event payload type (if we
/// offered events), and where to send media.
///
/// Fails with [`SdpError::NoAudio`] if the answer rejected the audio (port 0) or has no
/// usable address, [`SdpError::SecureMedia`] if it switched to SRTP, and
/// [`SdpError::NoCommonCodec`] if it chose none of our codecs.
pub fn accept_answer(
    offered: &LocalAudio,
    answer: &SessionDescription,
) -> Result<Negotiated, SdpError> {
    let remote = answer.audio().ok_or(SdpError::NoAudio)?;
    if remote.secure {
        return Err(SdpError::SecureMedia {
            profile: remote.proto,
        });
    }
    let Some(&chosen) = remote
        .codecs
        .iter()
        .find(|answered| offered.codecs.contains(&answered.codec))
    else {
        return Err(SdpError::NoCommonCodec {
            formats: formats_of(answer, remote.index),
        });
    };
    Ok(Negotiated {
        codec: chosen.codec,
        payload_type: chosen.payload_type,
        telephone_event: offered.telephone_event.and(remote.telephone_event),
        remote,
    })
}

/// The formats of m= line `index`, for an error message.
fn formats_of(description: &SessionDescription, index: usize) -> String {
    description
        .media
        .get(index)
        .map(|media| media.formats.join(" "))
        .unwrap_or_default()
}

/// The session part every description from the relay shares.
fn relay_description(
    address: IpAddr,
    session_id: u64,
    version: u64,
    timings: Vec<Timing>,
    media: Vec<Media>,
) -> SessionDescription {
    let address_type = AddressType::of(address);
    SessionDescription {
        origin: Origin {
            username: SIHAI.to_owned(),
            session_id,
            session_version: version,
            address_type,
            address: address.to_string(),
        },
        session_name: Some(SIHAI.to_owned()),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection {
            address_type,
            address: address.to_string(),
        }),
        bandwidths: Vec::new(),
        timings,
        time_zones: None,
        encryption_key: None,
        attributes: Vec::new(),
        unknown_lines: Vec::new(),
        media,
    }
}

/// The relay's audio section: codecs, then telephone-event, each with its rtpmap.
fn audio_media(
    port: u16,
    proto: &str,
    codecs: &[RtpCodec],
    telephone_event: Option<u8>,
    ptime: Option<u32>,
    direction: Direction,
) -> Media {
    let mut formats: Vec<String> = Vec::with_capacity(codecs.len() + 1);
    let mut attributes: Vec<Attribute> = Vec::with_capacity(codecs.len() + 4);
    for rtp in codecs {
        formats.push(rtp.payload_type.to_string());
        attributes.push(Attribute::with_value(
            "rtpmap",
            format!(
                "{} {}/{}",
                rtp.payload_type,
                rtp.codec.name(),
                rtp.codec.clock_rate()
            ),
        ));
    }
    if let Some(payload_type) = telephone_event {
        formats.push(payload_type.to_string());
        attributes.push(Attribute::with_value(
            "rtpmap",
            format!("{payload_type} telephone-event/{NARROWBAND_CLOCK_RATE}"),
        ));
        attributes.push(Attribute::with_value(
            "fmtp",
            format!("{payload_type} {TELEPHONE_EVENTS}"),
        ));
    }
    if let Some(ptime) = ptime {
        attributes.push(Attribute::with_value("ptime", ptime.to_string()));
    }
    attributes.push(Attribute::property(direction.attribute_name()));
    let mut media = Media::new("audio".to_owned(), port, proto.to_owned(), formats);
    media.attributes = attributes;
    media
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay() -> LocalAudio {
        LocalAudio::new("203.0.113.5".parse().unwrap(), 30000)
    }

    fn offer(body: &str) -> SessionDescription {
        SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{body}"
        ))
        .unwrap()
    }

    #[test]
    fn offer_refuses_an_empty_codec_list() {
        let mut local = relay();
        local.codecs.clear();
        assert_eq!(build_offer(&local, 1, 1), Err(SdpError::NoLocalCodec));
    }

    #[test]
    fn offer_refuses_a_static_telephone_event_payload_type() {
        let mut local = relay();
        for payload_type in [0, 8, 95, 128] {
            local.telephone_event = Some(payload_type);
            assert_eq!(
                build_offer(&local, 1, 1),
                Err(SdpError::TelephoneEventPayloadType { payload_type })
            );
        }
        for payload_type in [96, 127] {
            local.telephone_event = Some(payload_type);
            assert!(build_offer(&local, 1, 1).is_ok());
        }
    }

    #[test]
    fn offer_lists_a_repeated_codec_once() {
        let mut local = relay();
        local.codecs = vec![Codec::Pcmu, Codec::Pcmu, Codec::Pcma];
        local.telephone_event = None;
        let text = build_offer(&local, 1, 1).unwrap();
        assert!(text.contains("m=audio 30000 RTP/AVP 0 8\r\n"), "{text}");
    }

    #[test]
    fn answer_prefers_plain_audio_over_an_earlier_secure_line() {
        let offer = offer(
            "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n\
             m=audio 4002 RTP/AVP 0\r\n",
        );
        let answer = build_answer(&offer, &relay(), 1, 1).unwrap();
        assert_eq!(answer.remote.index, 1);
        assert_eq!(answer.remote.port, 4002);
        assert!(
            answer
                .sdp
                .contains("m=audio 0 RTP/SAVP 0\r\nm=audio 30000 RTP/AVP 0\r\n")
        );
    }

    #[test]
    fn answer_skips_audio_without_a_common_codec_for_a_later_one() {
        let offer = offer("m=audio 4000 RTP/AVP 18\r\nm=audio 4002 RTP/AVP 8\r\n");
        let answer = build_answer(&offer, &relay(), 1, 1).unwrap();
        assert_eq!(answer.remote.index, 1);
        assert_eq!(answer.codec, Codec::Pcma);
    }

    #[test]
    fn answer_errors_in_order_of_usefulness() {
        let no_codec_and_secure = offer("m=audio 4000 RTP/SAVP 0\r\nm=audio 4002 RTP/AVP 18 4\r\n");
        assert_eq!(
            build_answer(&no_codec_and_secure, &relay(), 1, 1),
            Err(SdpError::NoCommonCodec {
                formats: "18 4".into()
            })
        );
        let secure_only = offer("m=audio 4000 RTP/SAVPF 0\r\n");
        assert_eq!(
            build_answer(&secure_only, &relay(), 1, 1),
            Err(SdpError::SecureMedia {
                profile: "RTP/SAVPF".into()
            })
        );
        let video_only = offer("m=video 4000 RTP/AVP 31\r\n");
        assert_eq!(
            build_answer(&video_only, &relay(), 1, 1),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn answer_respects_the_local_codec_list() {
        let offer = offer("m=audio 4000 RTP/AVP 0 8\r\n");
        let mut local = relay();
        local.codecs = vec![Codec::Pcma];
        let answer = build_answer(&offer, &local, 1, 1).unwrap();
        assert_eq!(answer.codec, Codec::Pcma);
        assert!(answer.sdp.contains("m=audio 30000 RTP/AVP 8\r\n"));
        local.codecs.clear();
        assert!(matches!(
            build_answer(&offer, &local, 1, 1),
            Err(SdpError::NoCommonCodec { .. })
        ));
    }

    #[test]
    fn answer_direction_table() {
        use Direction::*;
        for (offered, local, expected) in [
            (SendRecv, SendRecv, SendRecv),
            (SendOnly, SendRecv, RecvOnly),
            (RecvOnly, SendRecv, SendOnly),
            (Inactive, SendRecv, Inactive),
            (SendRecv, RecvOnly, RecvOnly),
            (SendRecv, SendOnly, SendOnly),
            (RecvOnly, RecvOnly, Inactive),
            (SendOnly, Inactive, Inactive),
        ] {
            let offer = offer(&format!("m=audio 4000 RTP/AVP 0\r\na={offered}\r\n"));
            let mut relay = relay();
            relay.direction = local;
            let answer = build_answer(&offer, &relay, 1, 1).unwrap();
            let parsed = SessionDescription::parse(&answer.sdp).unwrap();
            let ours = parsed.audio().unwrap();
            assert_eq!(ours.direction, expected, "{offered} with local {local}");
        }
    }

    #[test]
    fn answer_copies_the_offer_timing() {
        let offer = SessionDescription::parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=3034423619 3042462419\r\nm=audio 4000 RTP/AVP 0\r\n",
        )
        .unwrap();
        let answer = build_answer(&offer, &relay(), 1, 1).unwrap();
        assert!(answer.sdp.contains("t=3034423619 3042462419\r\n"));
        let without_timing = SessionDescription::parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n",
        )
        .unwrap();
        let answer = build_answer(&without_timing, &relay(), 1, 1).unwrap();
        assert!(answer.sdp.contains("t=0 0\r\n"));
    }

    #[test]
    fn answer_keeps_the_avpf_profile() {
        let offer = offer("m=audio 4000 RTP/AVPF 0\r\n");
        let answer = build_answer(&offer, &relay(), 1, 1).unwrap();
        assert!(answer.sdp.contains("m=audio 30000 RTP/AVPF 0\r\n"));
    }

    #[test]
    fn answer_without_telephone_event_when_either_side_lacks_it() {
        let with_events =
            offer("m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        let mut local = relay();
        local.telephone_event = None;
        let answer = build_answer(&with_events, &local, 1, 1).unwrap();
        assert_eq!(answer.telephone_event, None);
        assert!(!answer.sdp.contains("telephone-event"));
        let without_events = offer("m=audio 4000 RTP/AVP 0\r\n");
        let answer = build_answer(&without_events, &relay(), 1, 1).unwrap();
        assert_eq!(answer.telephone_event, None);
        assert!(!answer.sdp.contains("telephone-event"));
    }

    #[test]
    fn accepting_an_answer_errors() {
        let local = relay();
        let rejected = offer("m=audio 0 RTP/AVP 0\r\n");
        assert_eq!(accept_answer(&local, &rejected), Err(SdpError::NoAudio));
        let secure = offer("m=audio 4000 RTP/SAVP 0\r\n");
        assert_eq!(
            accept_answer(&local, &secure),
            Err(SdpError::SecureMedia {
                profile: "RTP/SAVP".into()
            })
        );
        let other_codec = offer("m=audio 4000 RTP/AVP 18\r\n");
        assert_eq!(
            accept_answer(&local, &other_codec),
            Err(SdpError::NoCommonCodec {
                formats: "18".into()
            })
        );
        let mut pcmu_only = relay();
        pcmu_only.codecs = vec![Codec::Pcmu];
        let pcma = offer("m=audio 4000 RTP/AVP 8\r\n");
        assert!(matches!(
            accept_answer(&pcmu_only, &pcma),
            Err(SdpError::NoCommonCodec { .. })
        ));
    }

    #[test]
    fn accepting_an_answer_ignores_events_we_did_not_offer() {
        let mut local = relay();
        local.telephone_event = None;
        let answer = offer("m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        let negotiated = accept_answer(&local, &answer).unwrap();
        assert_eq!(negotiated.telephone_event, None);
        assert_eq!(negotiated.remote.telephone_event, Some(101));
    }
}
