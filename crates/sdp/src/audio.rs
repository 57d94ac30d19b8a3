//! The one audio stream the relay carries, read out of a description.
//!
//! An m= section says a lot that the relay does not care about; [`AudioStream`] is the
//! part it does: where to send RTP and RTCP, which of our codecs (PCMU, PCMA) the peer
//! accepts and under which payload type numbers, whether it sends RFC 4733
//! telephone-events, and whether the call is on hold.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::description::{Attribute, Connection, Media, SessionDescription};

/// RTP payload types are 7 bits (RFC 3550 §5.1).
const MAX_PAYLOAD_TYPE: u8 = 127;

/// The clock rate of every codec the relay carries and of the telephone-events it
/// passes along with them.
pub const NARROWBAND_CLOCK_RATE: u32 = 8000;

/// The codecs the relay carries: G.711 in both laws (RFC 3551 §4.5.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8; what Chinese carriers prefer.
    Pcma,
}

impl Codec {
    /// Every supported codec.
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// The static payload type RFC 3551 assigns: 0 for PCMU, 8 for PCMA.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// 8000 Hz for both.
    pub fn clock_rate(self) -> u32 {
        NARROWBAND_CLOCK_RATE
    }

    /// The codec a static payload type stands for when no `a=rtpmap` names it.
    pub fn from_static_payload_type(payload_type: u8) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|codec| codec.payload_type() == payload_type)
    }

    /// The codec an `a=rtpmap` encoding names (case-insensitive), if it is one of ours:
    /// the clock rate must be 8000 and the channel count, if given, 1.
    fn from_encoding(encoding: &RtpMap<'_>) -> Option<Codec> {
        if encoding.clock_rate != NARROWBAND_CLOCK_RATE
            || encoding.channels.is_some_and(|channels| channels != "1")
        {
            return None;
        }
        Codec::ALL
            .into_iter()
            .find(|codec| codec.name().eq_ignore_ascii_case(encoding.name))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way media flows, from the point of view of the side that wrote the SDP
/// (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`, the default when no direction attribute is present.
    #[default]
    SendRecv,
    /// `a=sendonly`: the writer puts the other side on hold.
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    /// Every direction.
    pub const ALL: [Direction; 4] = [
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ];

    /// The attribute name, e.g. `sendonly`.
    pub fn attribute_name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an attribute name stands for (case-insensitive).
    pub fn from_attribute_name(name: &str) -> Option<Direction> {
        Direction::ALL
            .into_iter()
            .find(|direction| direction.attribute_name().eq_ignore_ascii_case(name))
    }

    /// Whether the writer sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The same flow seen from the other side, which is what an answer states:
    /// sendonly becomes recvonly and the other way round.
    pub fn reversed(self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// Media flows only the ways both allow.
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.attribute_name())
    }
}

/// A supported codec and the payload type number it travels under on this stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtpCodec {
    /// The codec.
    pub codec: Codec,
    /// Its payload type on this stream: usually the static one, but an `a=rtpmap` may
    /// map it to a dynamic number such as 96.
    pub payload_type: u8,
}

/// What the relay needs to know about the peer's audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioStream {
    /// Which m= line (0-based) this is.
    pub index: usize,
    /// Where to send RTP: the media-level `c=` if present, else the session-level one.
    pub address: IpAddr,
    /// The RTP port, never 0.
    pub port: u16,
    /// Where to send RTCP if the peer said so with `a=rtcp` (RFC 3605); `None` means
    /// the usual `port + 1` on [`AudioStream::address`].
    pub rtcp: Option<SocketAddr>,
    /// The supported codecs in the writer's preference order, each once (the first
    /// payload type listed for it wins). Unsupported formats (GSM, G.729...) are left out.
    pub codecs: Vec<RtpCodec>,
    /// The payload type of `telephone-event/8000` (RFC 4733), if listed.
    pub telephone_event: Option<u8>,
    /// The media-level direction attribute, else the session-level one, else sendrecv.
    pub direction: Direction,
    /// `a=ptime` in milliseconds, media-level else session-level.
    pub ptime: Option<u32>,
    /// Whether the writer put the call on hold: `c=` is 0.0.0.0 (RFC 2543 style) or
    /// `::`, or the direction is sendonly or inactive.
    pub on_hold: bool,
    /// The profile is secure RTP (`RTP/SAVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVP[F]`), which
    /// the relay cannot terminate: the caller answers such an offer with 488.
    pub secure: bool,
    /// The m= line's protocol as written, e.g. `RTP/AVP`.
    pub proto: String,
}

impl AudioStream {
    /// Where to send RTP.
    pub fn rtp_address(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// Where to send RTCP: [`AudioStream::rtcp`] if given, else the next port up
    /// (`None` only when the RTP port is 65535 and there is no next port).
    pub fn rtcp_address(&self) -> Option<SocketAddr> {
        self.rtcp.or_else(|| {
            self.port
                .checked_add(1)
                .map(|port| SocketAddr::new(self.address, port))
        })
    }

    /// The payload type `codec` travels under on this stream, if the stream has it.
    pub fn payload_type_of(&self, codec: Codec) -> Option<u8> {
        self.codecs
            .iter()
            .find(|offered| offered.codec == codec)
            .map(|offered| offered.payload_type)
    }

    /// The supported codec behind payload type `payload_type` on this stream.
    pub fn codec_of(&self, payload_type: u8) -> Option<Codec> {
        self.codecs
            .iter()
            .find(|offered| offered.payload_type == payload_type)
            .map(|offered| offered.codec)
    }
}

/// Whether `proto` is an RTP profile the relay understands, and if so whether it is a
/// secure one. Anything else (`udp`, `TCP/MSRP`, `UDP/BFCP`) is not audio for the relay.
fn rtp_profile_is_secure(proto: &str) -> Option<bool> {
    const PLAIN: [&str; 2] = ["RTP/AVP", "RTP/AVPF"];
    const SECURE: [&str; 4] = [
        "RTP/SAVP",
        "RTP/SAVPF",
        "UDP/TLS/RTP/SAVP",
        "UDP/TLS/RTP/SAVPF",
    ];
    let is = |profiles: &[&str]| {
        profiles
            .iter()
            .any(|profile| profile.eq_ignore_ascii_case(proto))
    };
    if is(&PLAIN) {
        Some(false)
    } else if is(&SECURE) {
        Some(true)
    } else {
        None
    }
}

/// Summarises m= line `index` if it is a usable audio stream.
pub(crate) fn summarise(
    session: &SessionDescription,
    index: usize,
    media: &Media,
) -> Option<AudioStream> {
    if !media.kind.eq_ignore_ascii_case("audio") || media.port == 0 {
        return None;
    }
    let secure = rtp_profile_is_secure(&media.proto)?;
    let address = media
        .connection()
        .or(session.connection())
        .and_then(Connection::ip)?;

    let mut codecs: Vec<RtpCodec> = Vec::new();
    let mut telephone_event = None;
    for payload_type in media
        .formats
        .iter()
        .filter_map(|format| parse_payload_type(format))
    {
        let encoding = rtpmap_of(&media.attributes, payload_type);
        let codec = match &encoding {
            Some(encoding) => Codec::from_encoding(encoding),
            None => Codec::from_static_payload_type(payload_type),
        };
        if let Some(codec) = codec {
            if !codecs.iter().any(|known| known.codec == codec) {
                codecs.push(RtpCodec {
                    codec,
                    payload_type,
                });
            }
        } else if telephone_event.is_none()
            && encoding.is_some_and(|encoding| {
                encoding.name.eq_ignore_ascii_case("telephone-event")
                    && encoding.clock_rate == NARROWBAND_CLOCK_RATE
            })
        {
            telephone_event = Some(payload_type);
        }
    }

    let direction = direction_in(&media.attributes)
        .or_else(|| direction_in(&session.attributes))
        .unwrap_or_default();
    let ptime = ptime_in(&media.attributes).or_else(|| ptime_in(&session.attributes));
    Some(AudioStream {
        index,
        address,
        port: media.port,
        rtcp: media
            .attribute("rtcp")
            .and_then(Attribute::value)
            .and_then(|value| parse_rtcp(value, address)),
        codecs,
        telephone_event,
        direction,
        ptime,
        on_hold: address.is_unspecified()
            || matches!(direction, Direction::SendOnly | Direction::Inactive),
        secure,
        proto: media.proto.clone(),
    })
}

/// A payload type written as plain digits: `+0` or `0x08` are not payload types, even
/// though Rust's integer parser would read the first.
fn parse_payload_type(text: &str) -> Option<u8> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse()
        .ok()
        .filter(|&payload_type| payload_type <= MAX_PAYLOAD_TYPE)
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`.
struct RtpMap<'a> {
    name: &'a str,
    clock_rate: u32,
    channels: Option<&'a str>,
}

fn rtpmap_of(attributes: &[Attribute], payload_type: u8) -> Option<RtpMap<'_>> {
    attributes
        .iter()
        .filter(|attribute| attribute.name.eq_ignore_ascii_case("rtpmap"))
        .filter_map(|attribute| attribute.value.as_deref())
        .find_map(|value| {
            let (number, encoding) = value.trim().split_once(char::is_whitespace)?;
            if parse_payload_type(number)? != payload_type {
                return None;
            }
            let mut parts = encoding.trim().splitn(3, '/');
            let name = parts.next()?;
            let clock_rate = parts.next()?.trim().parse().ok()?;
            Some(RtpMap {
                name: name.trim(),
                clock_rate,
                channels: parts.next().map(str::trim),
            })
        })
}

fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes
        .iter()
        .find_map(|attribute| Direction::from_attribute_name(&attribute.name))
}

/// `a=ptime:<milliseconds>`; a fractional value such as `20.0` is cut to whole
/// milliseconds, and an unreadable one ignored.
fn ptime_in(attributes: &[Attribute]) -> Option<u32> {
    let value = attributes
        .iter()
        .find(|attribute| attribute.name.eq_ignore_ascii_case("ptime"))?
        .value
        .as_deref()?
        .trim();
    let whole = value.split_once('.').map_or(value, |(whole, _)| whole);
    whole.parse().ok().filter(|&ptime| ptime > 0)
}

/// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605); without an address the RTCP
/// goes to the RTP address. A malformed attribute is ignored: RTCP then uses port + 1.
fn parse_rtcp(value: &str, rtp_address: IpAddr) -> Option<SocketAddr> {
    let mut fields = value.split_whitespace();
    let port: u16 = fields.next()?.parse().ok()?;
    let address = match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (None, ..) => rtp_address,
        (Some(network_type), Some(_address_type), Some(address), None)
            if network_type.eq_ignore_ascii_case("IN") =>
        {
            address.parse().ok()?
        }
        _ => return None,
    };
    Some(SocketAddr::new(address, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(body: &str) -> Option<AudioStream> {
        let text = format!("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n{body}");
        SessionDescription::parse(&text).unwrap().audio()
    }

    #[test]
    fn codec_constants() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::Pcmu.name(), "PCMU");
        assert_eq!(Codec::Pcma.to_string(), "PCMA");
        assert_eq!(Codec::Pcma.clock_rate(), 8000);
        assert_eq!(Codec::from_static_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_static_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_static_payload_type(18), None);
    }

    #[test]
    fn direction_reversal_and_intersection() {
        use Direction::*;
        assert_eq!(SendRecv.reversed(), SendRecv);
        assert_eq!(SendOnly.reversed(), RecvOnly);
        assert_eq!(RecvOnly.reversed(), SendOnly);
        assert_eq!(Inactive.reversed(), Inactive);
        for direction in Direction::ALL {
            assert_eq!(direction.reversed().reversed(), direction);
            assert_eq!(direction.intersect(SendRecv), direction);
            assert_eq!(direction.intersect(Inactive), Inactive);
            assert_eq!(direction.intersect(direction), direction);
            assert_eq!(
                Direction::from_attribute_name(direction.attribute_name()),
                Some(direction)
            );
        }
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
        assert_eq!(Direction::from_attribute_name("SENDONLY"), Some(SendOnly));
        assert_eq!(Direction::from_attribute_name("ptime"), None);
        assert_eq!(Direction::default(), SendRecv);
    }

    #[test]
    fn profiles() {
        assert_eq!(rtp_profile_is_secure("RTP/AVP"), Some(false));
        assert_eq!(rtp_profile_is_secure("rtp/avpf"), Some(false));
        assert_eq!(rtp_profile_is_secure("RTP/SAVP"), Some(true));
        assert_eq!(rtp_profile_is_secure("UDP/TLS/RTP/SAVPF"), Some(true));
        assert_eq!(rtp_profile_is_secure("udp"), None);
        assert_eq!(rtp_profile_is_secure("TCP/RTP/AVP"), None);
    }

    #[test]
    fn rtpmap_decides_over_the_static_table() {
        // A (broken) rtpmap that calls PT 0 something else wins over RFC 3551.
        let audio =
            stream("c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0 8\r\na=rtpmap:0 G722/8000\r\n")
                .unwrap();
        assert_eq!(
            audio.codecs,
            [RtpCodec {
                codec: Codec::Pcma,
                payload_type: 8
            }]
        );
    }

    #[test]
    fn odd_rtpmaps_are_not_our_codecs() {
        let audio = stream(
            "c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 96 97 98 99 100\r\n\
             a=rtpmap:96 PCMU/16000\r\na=rtpmap:97 PCMA/8000/2\r\na=rtpmap:98 PCMA\r\n\
             a=rtpmap:99\r\na=rtpmap:100 telephone-event/48000\r\n",
        )
        .unwrap();
        assert!(audio.codecs.is_empty());
        assert_eq!(audio.telephone_event, None);
    }

    #[test]
    fn explicit_mono_channel_count_is_accepted() {
        let audio =
            stream("c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 97\r\na=rtpmap:97 pcmu/8000/1\r\n")
                .unwrap();
        assert_eq!(audio.payload_type_of(Codec::Pcmu), Some(97));
        assert_eq!(audio.codec_of(97), Some(Codec::Pcmu));
        assert_eq!(audio.codec_of(0), None);
    }

    #[test]
    fn formats_that_are_not_payload_types_are_skipped() {
        let audio =
            stream("c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP x 200 128 +0 -0 8\r\n").unwrap();
        assert_eq!(
            audio.codecs,
            [RtpCodec {
                codec: Codec::Pcma,
                payload_type: 8
            }]
        );
    }

    #[test]
    fn each_codec_is_listed_once_with_its_first_payload_type() {
        let audio =
            stream("c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 96 0 8\r\na=rtpmap:96 PCMU/8000\r\n")
                .unwrap();
        assert_eq!(
            audio.codecs,
            [
                RtpCodec {
                    codec: Codec::Pcmu,
                    payload_type: 96
                },
                RtpCodec {
                    codec: Codec::Pcma,
                    payload_type: 8
                }
            ]
        );
    }

    #[test]
    fn telephone_event_is_taken_at_8000_hz_only() {
        let audio = stream(
            "c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0 110 101\r\n\
             a=rtpmap:110 telephone-event/16000\r\na=rtpmap:101 Telephone-Event/8000\r\n",
        )
        .unwrap();
        assert_eq!(audio.telephone_event, Some(101));
    }

    #[test]
    fn rtpmap_of_a_payload_type_not_on_the_m_line_is_ignored() {
        let audio = stream(
            "c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:101 telephone-event/8000\r\n",
        )
        .unwrap();
        assert_eq!(audio.telephone_event, None);
    }

    #[test]
    fn ptime_forms() {
        let ptime = |value: &str| {
            stream(&format!(
                "c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\na=ptime:{value}\r\n"
            ))
            .unwrap()
            .ptime
        };
        assert_eq!(ptime("20"), Some(20));
        assert_eq!(ptime(" 30 "), Some(30));
        assert_eq!(ptime("20.0"), Some(20));
        assert_eq!(ptime("0"), None);
        assert_eq!(ptime("soon"), None);
        let session_level =
            stream("a=ptime:40\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n").unwrap();
        assert_eq!(session_level.ptime, Some(40));
    }

    #[test]
    fn rtcp_attribute_forms() {
        let rtp = "126.16.64.4".parse().unwrap();
        assert_eq!(
            parse_rtcp("53021 IN IP4 126.16.64.5", rtp),
            Some("126.16.64.5:53021".parse().unwrap())
        );
        assert_eq!(
            parse_rtcp("53021", rtp),
            Some("126.16.64.4:53021".parse().unwrap())
        );
        assert_eq!(
            parse_rtcp("53021 IN IP6 2001:db8::1", rtp),
            Some("[2001:db8::1]:53021".parse().unwrap())
        );
        assert_eq!(parse_rtcp("x", rtp), None);
        assert_eq!(parse_rtcp("53021 IN IP4", rtp), None);
        assert_eq!(parse_rtcp("53021 ATM NSAP 1", rtp), None);
        assert_eq!(parse_rtcp("53021 IN IP4 host.example.com", rtp), None);
        assert_eq!(parse_rtcp("53021 IN IP4 1.2.3.4 extra", rtp), None);
    }

    #[test]
    fn rtcp_address_defaults_to_the_next_port() {
        let mut audio = stream("c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n").unwrap();
        assert_eq!(audio.rtp_address(), "1.2.3.4:5000".parse().unwrap());
        assert_eq!(audio.rtcp_address(), Some("1.2.3.4:5001".parse().unwrap()));
        audio.port = u16::MAX;
        assert_eq!(audio.rtcp_address(), None);
        audio.rtcp = Some("5.6.7.8:9".parse().unwrap());
        assert_eq!(audio.rtcp_address(), Some("5.6.7.8:9".parse().unwrap()));
    }

    #[test]
    fn streams_without_an_ip_address_are_not_usable() {
        assert_eq!(stream("m=audio 5000 RTP/AVP 0\r\n"), None);
        assert_eq!(
            stream("c=IN IP4 media.example.com\r\nm=audio 5000 RTP/AVP 0\r\n"),
            None
        );
    }

    #[test]
    fn non_rtp_and_non_audio_sections_are_skipped() {
        let audio = stream(
            "c=IN IP4 1.2.3.4\r\nm=audio 5000 udp 0\r\nm=message 5002 TCP/MSRP *\r\nm=AUDIO 5004 RTP/AVP 0\r\n",
        )
        .unwrap();
        assert_eq!(audio.index, 2);
    }

    #[test]
    fn unspecified_ipv6_address_is_hold() {
        let audio = stream("c=IN IP6 ::\r\nm=audio 5000 RTP/AVP 0\r\n").unwrap();
        assert!(audio.on_hold);
        assert_eq!(audio.direction, Direction::SendRecv);
    }

    #[test]
    fn recvonly_is_not_hold() {
        let audio = stream("c=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\na=recvonly\r\n").unwrap();
        assert_eq!(audio.direction, Direction::RecvOnly);
        assert!(!audio.on_hold);
    }
}
