//! The parsed form of a session description (RFC 4566 §5), owned and immutable.
//!
//! Every line of the input is kept, including the ones sihai never reads (`b=`, `k=`,
//! `z=`, ICE and crypto attributes, unknown type letters), so that the description can
//! be logged or written back out with [`std::fmt::Display`] without losing anything. The
//! writer uses the order RFC 4566 prescribes and CRLF line ends, so parsing what it
//! wrote gives back an equal value.
//!
//! Fields are private: a value comes from [`SessionDescription::parse`] or from this
//! crate's offer/answer builders, which never put a line break inside a field.

use std::fmt;
use std::net::IpAddr;

use crate::audio::{self, AudioStream};
use crate::error::SdpError;

/// Address family of an `o=` or `c=` line (the network type is always `IN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressType {
    /// `IP4`
    Ip4,
    /// `IP6`
    Ip6,
}

impl AddressType {
    /// The SDP token, `IP4` or `IP6`.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressType::Ip4 => "IP4",
            AddressType::Ip6 => "IP6",
        }
    }

    /// The family of `address`.
    pub fn of(address: IpAddr) -> AddressType {
        match address {
            IpAddr::V4(_) => AddressType::Ip4,
            IpAddr::V6(_) => AddressType::Ip6,
        }
    }
}

impl fmt::Display for AddressType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `o=` line: who made the description and which version of it this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub(crate) username: String,
    pub(crate) session_id: u64,
    pub(crate) session_version: u64,
    pub(crate) address_type: AddressType,
    pub(crate) address: String,
}

impl Origin {
    /// The username, `-` when the creator has none.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Identifies the session; stays the same across re-offers.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Grows with each changed description (RFC 3264 §8): an unchanged version in a
    /// re-INVITE means unchanged media.
    pub fn session_version(&self) -> u64 {
        self.session_version
    }

    /// The family of [`Origin::address`]. The network type is always `IN`.
    pub fn address_type(&self) -> AddressType {
        self.address_type
    }

    /// The creator's address as written: an IP literal or a host name.
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// A `c=` line: where media goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub(crate) address_type: AddressType,
    pub(crate) address: String,
}

impl Connection {
    /// The family of the address. The network type is always `IN`.
    pub fn address_type(&self) -> AddressType {
        self.address_type
    }

    /// The address as written, which may be a host name or carry a multicast
    /// `/ttl/count` suffix.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The address as an IP literal, without any multicast suffix; `None` for a host
    /// name, which the relay cannot send to without a resolver.
    pub fn ip(&self) -> Option<IpAddr> {
        let host = self.address.split('/').next().unwrap_or_default();
        host.parse().ok()
    }
}

/// An `a=` line: `a=<name>` (a property) or `a=<name>:<value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
}

impl Attribute {
    /// Everything before the first `:`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything after the first `:`, `None` for a property attribute such as
    /// `a=sendrecv`.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    pub(crate) fn property(name: &str) -> Attribute {
        Attribute {
            name: name.to_owned(),
            value: None,
        }
    }

    pub(crate) fn with_value(name: &str, value: String) -> Attribute {
        Attribute {
            name: name.to_owned(),
            value: Some(value),
        }
    }
}

/// A `t=` line with the `r=` lines that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub(crate) start: u64,
    pub(crate) stop: u64,
    pub(crate) repeats: Vec<String>,
}

impl Timing {
    /// `t=0 0`: a permanent session, what every SIP call uses.
    pub(crate) const PERMANENT: Timing = Timing {
        start: 0,
        stop: 0,
        repeats: Vec::new(),
    };

    /// NTP start time, 0 for unbounded.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// NTP stop time, 0 for unbounded.
    pub fn stop(&self) -> u64 {
        self.stop
    }

    /// The values of the `r=` lines, as written.
    pub fn repeats(&self) -> &[String] {
        &self.repeats
    }
}

/// A line whose type letter RFC 4566 does not define, kept so that it is not lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLine {
    pub(crate) line_type: char,
    pub(crate) value: String,
}

impl UnknownLine {
    /// The type letter.
    pub fn line_type(&self) -> char {
        self.line_type
    }

    /// Everything after the `=`.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub(crate) kind: String,
    pub(crate) port: u16,
    pub(crate) port_count: Option<u16>,
    pub(crate) proto: String,
    pub(crate) formats: Vec<String>,
    pub(crate) information: Option<String>,
    pub(crate) connections: Vec<Connection>,
    pub(crate) bandwidths: Vec<String>,
    pub(crate) encryption_key: Option<String>,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) unknown_lines: Vec<UnknownLine>,
}

impl Media {
    /// A section with only its `m=` line, as the parser sees it before the rest.
    pub(crate) fn new(kind: String, port: u16, proto: String, formats: Vec<String>) -> Media {
        Media {
            kind,
            port,
            port_count: None,
            proto,
            formats,
            information: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            encryption_key: None,
            attributes: Vec::new(),
            unknown_lines: Vec::new(),
        }
    }

    /// `audio`, `video`, `application`, ...
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The transport port; 0 means the stream is disabled or rejected.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `/<number of ports>` suffix of the port, if any.
    pub fn port_count(&self) -> Option<u16> {
        self.port_count
    }

    /// The transport protocol, e.g. `RTP/AVP`.
    pub fn proto(&self) -> &str {
        &self.proto
    }

    /// The media formats (RTP payload types for RTP profiles), in preference order.
    pub fn formats(&self) -> &[String] {
        &self.formats
    }

    /// The `i=` line.
    pub fn information(&self) -> Option<&str> {
        self.information.as_deref()
    }

    /// The first media-level `c=` line, which overrides the session-level one.
    pub fn connection(&self) -> Option<&Connection> {
        self.connections.first()
    }

    /// Every media-level `c=` line (several only for layered multicast).
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    /// The values of the `b=` lines, as written.
    pub fn bandwidths(&self) -> &[String] {
        &self.bandwidths
    }

    /// The value of the `k=` line, as written.
    pub fn encryption_key(&self) -> Option<&str> {
        self.encryption_key.as_deref()
    }

    /// Every `a=` line, in order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The first attribute called `name` (ASCII case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find_attribute(&self.attributes, name)
    }

    /// Lines with a type letter RFC 4566 does not define.
    pub fn unknown_lines(&self) -> &[UnknownLine] {
        &self.unknown_lines
    }

    /// Port 0: the stream was disabled by the offerer or rejected by the answerer.
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub(crate) origin: Origin,
    pub(crate) session_name: Option<String>,
    pub(crate) information: Option<String>,
    pub(crate) uri: Option<String>,
    pub(crate) emails: Vec<String>,
    pub(crate) phones: Vec<String>,
    pub(crate) connection: Option<Connection>,
    pub(crate) bandwidths: Vec<String>,
    pub(crate) timings: Vec<Timing>,
    pub(crate) time_zones: Option<String>,
    pub(crate) encryption_key: Option<String>,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) unknown_lines: Vec<UnknownLine>,
    pub(crate) media: Vec<Media>,
}

impl SessionDescription {
    /// Parses SDP as carried in a SIP body: CRLF or bare LF line ends, a missing final
    /// line end and blank lines are tolerated; lines and attributes sihai does not know
    /// are kept, never rejected. Errors say which line and why.
    pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
        crate::parse::parse(text)
    }

    /// The `o=` line.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The `s=` line; some devices leave it out, so it is optional here.
    pub fn session_name(&self) -> Option<&str> {
        self.session_name.as_deref()
    }

    /// The session-level `i=` line.
    pub fn information(&self) -> Option<&str> {
        self.information.as_deref()
    }

    /// The `u=` line.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }

    /// The `e=` lines.
    pub fn emails(&self) -> &[String] {
        &self.emails
    }

    /// The `p=` lines.
    pub fn phones(&self) -> &[String] {
        &self.phones
    }

    /// The session-level `c=` line, used by every media section without its own.
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// The values of the session-level `b=` lines, as written.
    pub fn bandwidths(&self) -> &[String] {
        &self.bandwidths
    }

    /// The `t=` lines, each with its `r=` lines.
    pub fn timings(&self) -> &[Timing] {
        &self.timings
    }

    /// The value of the `z=` line, as written.
    pub fn time_zones(&self) -> Option<&str> {
        self.time_zones.as_deref()
    }

    /// The value of the session-level `k=` line, as written.
    pub fn encryption_key(&self) -> Option<&str> {
        self.encryption_key.as_deref()
    }

    /// The session-level `a=` lines, in order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The first session-level attribute called `name` (ASCII case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find_attribute(&self.attributes, name)
    }

    /// Session-level lines with a type letter RFC 4566 does not define.
    pub fn unknown_lines(&self) -> &[UnknownLine] {
        &self.unknown_lines
    }

    /// Every `m=` section, in order.
    pub fn media(&self) -> &[Media] {
        &self.media
    }

    /// The first usable audio stream, summarised for the relay: an `audio` m= line with
    /// a non-zero port, an RTP profile (`RTP/AVP`, `RTP/AVPF`, or a secure one, which is
    /// reported with [`AudioStream::secure`] set) and an IP address in its `c=`.
    pub fn audio(&self) -> Option<AudioStream> {
        self.audio_streams().next()
    }

    /// Every usable audio stream, in m= line order.
    pub(crate) fn audio_streams(&self) -> impl Iterator<Item = AudioStream> + '_ {
        self.media
            .iter()
            .enumerate()
            .filter_map(|(index, media)| audio::summarise(self, index, media))
    }
}

impl std::str::FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SessionDescription::parse(text)
    }
}

fn find_attribute<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes
        .iter()
        .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
}

/// Writes one `<type>=<value>` line.
fn line(f: &mut fmt::Formatter<'_>, line_type: char, value: impl fmt::Display) -> fmt::Result {
    write!(f, "{line_type}={value}\r\n")
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.address_type, self.address)
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}:{value}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl fmt::Display for Media {
    /// Writes the section in RFC 4566 order: m, i, c, b, k, a, then unknown lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        if let Some(information) = &self.information {
            line(f, 'i', information)?;
        }
        for connection in &self.connections {
            line(f, 'c', connection)?;
        }
        for bandwidth in &self.bandwidths {
            line(f, 'b', bandwidth)?;
        }
        if let Some(key) = &self.encryption_key {
            line(f, 'k', key)?;
        }
        for attribute in &self.attributes {
            line(f, 'a', attribute)?;
        }
        for unknown in &self.unknown_lines {
            line(f, unknown.line_type, &unknown.value)?;
        }
        Ok(())
    }
}

impl fmt::Display for SessionDescription {
    /// Writes the description in RFC 4566 order with CRLF line ends:
    /// v, o, s, i, u, e, p, c, b, t (each with its r), z, k, a, unknown lines, then
    /// each media section.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        line(f, 'v', 0)?;
        let origin = &self.origin;
        line(
            f,
            'o',
            format_args!(
                "{} {} {} IN {} {}",
                origin.username,
                origin.session_id,
                origin.session_version,
                origin.address_type,
                origin.address
            ),
        )?;
        if let Some(name) = &self.session_name {
            line(f, 's', name)?;
        }
        if let Some(information) = &self.information {
            line(f, 'i', information)?;
        }
        if let Some(uri) = &self.uri {
            line(f, 'u', uri)?;
        }
        for email in &self.emails {
            line(f, 'e', email)?;
        }
        for phone in &self.phones {
            line(f, 'p', phone)?;
        }
        if let Some(connection) = &self.connection {
            line(f, 'c', connection)?;
        }
        for bandwidth in &self.bandwidths {
            line(f, 'b', bandwidth)?;
        }
        for timing in &self.timings {
            line(f, 't', format_args!("{} {}", timing.start, timing.stop))?;
            for repeat in &timing.repeats {
                line(f, 'r', repeat)?;
            }
        }
        if let Some(zones) = &self.time_zones {
            line(f, 'z', zones)?;
        }
        if let Some(key) = &self.encryption_key {
            line(f, 'k', key)?;
        }
        for attribute in &self.attributes {
            line(f, 'a', attribute)?;
        }
        for unknown in &self.unknown_lines {
            line(f, unknown.line_type, &unknown.value)?;
        }
        for media in &self.media {
            write!(f, "{media}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::*;

    /// Free text as a line value may hold it: anything but a line break.
    fn text() -> impl Strategy<Value = String> {
        "[^\r\n]{0,16}"
    }

    /// A field of a space-separated line: no whitespace, not empty.
    fn field() -> impl Strategy<Value = String> {
        "[!-~]{1,12}"
    }

    fn address_type() -> impl Strategy<Value = AddressType> {
        select(vec![AddressType::Ip4, AddressType::Ip6])
    }

    fn connection() -> impl Strategy<Value = Connection> {
        (address_type(), field()).prop_map(|(address_type, address)| Connection {
            address_type,
            address,
        })
    }

    fn attribute() -> impl Strategy<Value = Attribute> {
        // A name never holds `:`, which would move the split point.
        ("[^\r\n:]{0,10}", proptest::option::of(text()))
            .prop_map(|(name, value)| Attribute { name, value })
    }

    /// Letters RFC 4566 does not define, so they come back as unknown lines.
    fn unknown_line() -> impl Strategy<Value = UnknownLine> {
        ("[dfghjlnqwxyA-Z]", text()).prop_map(|(letter, value)| UnknownLine {
            line_type: letter.chars().next().unwrap_or('x'),
            value,
        })
    }

    fn timing() -> impl Strategy<Value = Timing> {
        (
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(text(), 0..3),
        )
            .prop_map(|(start, stop, repeats)| Timing {
                start,
                stop,
                repeats,
            })
    }

    fn media() -> impl Strategy<Value = Media> {
        (
            (
                field(),
                any::<u16>(),
                proptest::option::of(any::<u16>()),
                field(),
                prop::collection::vec(field(), 0..5),
            ),
            (
                proptest::option::of(text()),
                prop::collection::vec(connection(), 0..3),
                prop::collection::vec(text(), 0..2),
                proptest::option::of(text()),
                prop::collection::vec(attribute(), 0..6),
                prop::collection::vec(unknown_line(), 0..2),
            ),
        )
            .prop_map(
                |(
                    (kind, port, port_count, proto, formats),
                    (information, connections, bandwidths, encryption_key, attributes, unknown),
                )| Media {
                    kind,
                    port,
                    port_count,
                    proto,
                    formats,
                    information,
                    connections,
                    bandwidths,
                    encryption_key,
                    attributes,
                    unknown_lines: unknown,
                },
            )
    }

    fn origin() -> impl Strategy<Value = Origin> {
        (
            prop::collection::vec("[!-~]{1,6}", 1..3),
            any::<u64>(),
            any::<u64>(),
            address_type(),
            field(),
        )
            .prop_map(
                |(username, session_id, session_version, address_type, address)| Origin {
                    username: username.join(" "),
                    session_id,
                    session_version,
                    address_type,
                    address,
                },
            )
    }

    fn session_description() -> impl Strategy<Value = SessionDescription> {
        (
            (
                origin(),
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(text()),
                prop::collection::vec(text(), 0..2),
                prop::collection::vec(text(), 0..2),
                proptest::option::of(connection()),
            ),
            (
                prop::collection::vec(text(), 0..2),
                prop::collection::vec(timing(), 0..3),
                proptest::option::of(text()),
                proptest::option::of(text()),
                prop::collection::vec(attribute(), 0..5),
                prop::collection::vec(unknown_line(), 0..2),
                prop::collection::vec(media(), 0..4),
            ),
        )
            .prop_map(
                |(
                    (origin, session_name, information, uri, emails, phones, connection),
                    (bandwidths, timings, time_zones, encryption_key, attributes, unknown, media),
                )| SessionDescription {
                    origin,
                    session_name,
                    information,
                    uri,
                    emails,
                    phones,
                    connection,
                    bandwidths,
                    timings,
                    time_zones,
                    encryption_key,
                    attributes,
                    unknown_lines: unknown,
                    media,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn parse_of_display_gives_back_the_description(description in session_description()) {
            let written = description.to_string();
            prop_assert!(written.ends_with("\r\n"));
            prop_assert!(!written.replace("\r\n", "").contains('\n'));
            prop_assert_eq!(SessionDescription::parse(&written), Ok(description));
        }

        #[test]
        fn audio_summary_never_panics_on_generated_descriptions(description in session_description()) {
            if let Some(audio) = description.audio() {
                prop_assert!(audio.index < description.media.len());
                prop_assert_ne!(audio.port, 0);
            }
        }
    }

    #[test]
    fn display_writes_rfc_4566_order() {
        let text = "v=0\r\no=a b 1 2 IN IP6 ::1\r\ns=S\r\ni=I\r\nu=U\r\ne=E\r\np=P\r\n\
                    c=IN IP4 1.2.3.4\r\nb=B\r\nt=1 2\r\nr=R\r\nt=0 0\r\nz=Z\r\nk=K\r\na=A\r\nx=X\r\n\
                    m=audio 5/2 RTP/AVP 0\r\ni=MI\r\nc=IN IP4 5.6.7.8\r\nb=MB\r\nk=MK\r\na=MA:v\r\ny=MY\r\n";
        let description = SessionDescription::parse(text).unwrap();
        assert_eq!(description.to_string(), text);
        // Out of order on input, canonical on output.
        let shuffled = "v=0\r\na=A\r\nt=1 2\r\nk=K\r\nx=X\r\nr=R\r\ns=S\r\nz=Z\r\nb=B\r\ni=I\r\n\
                        c=IN IP4 1.2.3.4\r\nt=0 0\r\np=P\r\ne=E\r\nu=U\r\no=a b 1 2 IN IP6 ::1\r\n\
                        m=audio 5/2 RTP/AVP 0\r\ny=MY\r\na=MA:v\r\nk=MK\r\nb=MB\r\nc=IN IP4 5.6.7.8\r\ni=MI\r\n";
        assert_eq!(
            SessionDescription::parse(shuffled).unwrap().to_string(),
            text
        );
    }
}
