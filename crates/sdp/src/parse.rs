//! Text to [`SessionDescription`]: the RFC 4566 grammar, read liberally.
//!
//! SDP reaches sihai from carrier gateways, PBXs and desk phones, and a call must not
//! fail over something the relay never uses. So the parser accepts CRLF or bare LF,
//! skips blank lines, accepts session-level lines in any order, and keeps lines and
//! attributes it does not understand. It is strict only where a wrong guess would send
//! media to the wrong place: the `v=`, `o=`, `c=`, `t=` and `m=` lines must be well
//! formed, and session-level lines may not appear inside a media section.

use crate::description::{
    AddressType, Attribute, Connection, Media, Origin, SessionDescription, Timing, UnknownLine,
};
use crate::error::{SdpError, SyntaxProblem, excerpt};

pub(crate) fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(index, raw)| (index + 1, raw.strip_suffix('\r').unwrap_or(raw)))
        .filter(|(_, raw)| !raw.trim().is_empty());

    let (first_number, first) = lines.next().ok_or(SdpError::Empty)?;
    let (line_type, version) = split_line(first_number, first)?;
    if line_type != 'v' {
        return Err(syntax(
            first_number,
            SyntaxProblem::VersionNotFirst {
                text: excerpt(first),
            },
        ));
    }
    if version.trim() != "0" {
        return Err(syntax(
            first_number,
            SyntaxProblem::UnsupportedVersion {
                version: excerpt(version),
            },
        ));
    }

    let mut session = SessionLines::default();
    let mut media: Vec<Media> = Vec::new();
    for (number, raw) in lines {
        let (line_type, value) = split_line(number, raw)?;
        if line_type == 'm' {
            media.push(parse_media_line(value).map_err(|problem| syntax(number, problem))?);
            continue;
        }
        let placed = match media.last_mut() {
            None => session.take(line_type, value),
            Some(section) => take_media_line(section, line_type, value),
        };
        placed.map_err(|problem| syntax(number, problem))?;
    }

    let origin = session
        .origin
        .ok_or(SdpError::MissingLine { line_type: 'o' })?;
    Ok(SessionDescription {
        origin,
        session_name: session.session_name,
        information: session.information,
        uri: session.uri,
        emails: session.emails,
        phones: session.phones,
        connection: session.connection,
        bandwidths: session.bandwidths,
        timings: session.timings,
        time_zones: session.time_zones,
        encryption_key: session.encryption_key,
        attributes: session.attributes,
        unknown_lines: session.unknown_lines,
        media,
    })
}

fn syntax(line: usize, problem: SyntaxProblem) -> SdpError {
    SdpError::Syntax { line, problem }
}

/// Splits `<letter>=<value>`.
fn split_line(number: usize, raw: &str) -> Result<(char, &str), SdpError> {
    let not_typed = || syntax(number, SyntaxProblem::NotATypedLine { text: excerpt(raw) });
    let (key, value) = raw.split_once('=').ok_or_else(not_typed)?;
    let mut letters = key.chars();
    match (letters.next(), letters.next()) {
        (Some(letter), None) if letter.is_ascii_alphabetic() => Ok((letter, value)),
        _ => Err(not_typed()),
    }
}

/// The session-level lines seen so far.
#[derive(Default)]
struct SessionLines {
    origin: Option<Origin>,
    session_name: Option<String>,
    information: Option<String>,
    uri: Option<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    connection: Option<Connection>,
    bandwidths: Vec<String>,
    timings: Vec<Timing>,
    time_zones: Option<String>,
    encryption_key: Option<String>,
    attributes: Vec<Attribute>,
    unknown_lines: Vec<UnknownLine>,
}

impl SessionLines {
    fn take(&mut self, line_type: char, value: &str) -> Result<(), SyntaxProblem> {
        match line_type {
            'v' => return Err(SyntaxProblem::Duplicate { line_type }),
            'o' => set_once(&mut self.origin, line_type, parse_origin(value)?)?,
            's' => set_once(&mut self.session_name, line_type, value.to_owned())?,
            'i' => set_once(&mut self.information, line_type, value.to_owned())?,
            'u' => set_once(&mut self.uri, line_type, value.to_owned())?,
            'e' => self.emails.push(value.to_owned()),
            'p' => self.phones.push(value.to_owned()),
            'c' => set_once(&mut self.connection, line_type, parse_connection(value)?)?,
            'b' => self.bandwidths.push(value.to_owned()),
            't' => self.timings.push(parse_timing(value)?),
            'r' => self
                .timings
                .last_mut()
                .ok_or(SyntaxProblem::RepeatWithoutTiming)?
                .repeats
                .push(value.to_owned()),
            'z' => set_once(&mut self.time_zones, line_type, value.to_owned())?,
            'k' => set_once(&mut self.encryption_key, line_type, value.to_owned())?,
            'a' => self.attributes.push(parse_attribute(value)),
            _ => self.unknown_lines.push(UnknownLine {
                line_type,
                value: value.to_owned(),
            }),
        }
        Ok(())
    }
}

fn take_media_line(media: &mut Media, line_type: char, value: &str) -> Result<(), SyntaxProblem> {
    match line_type {
        'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' => {
            return Err(SyntaxProblem::SessionLineInMedia { line_type });
        }
        'i' => set_once(&mut media.information, line_type, value.to_owned())?,
        'c' => media.connections.push(parse_connection(value)?),
        'b' => media.bandwidths.push(value.to_owned()),
        'k' => set_once(&mut media.encryption_key, line_type, value.to_owned())?,
        'a' => media.attributes.push(parse_attribute(value)),
        _ => media.unknown_lines.push(UnknownLine {
            line_type,
            value: value.to_owned(),
        }),
    }
    Ok(())
}

fn set_once<T>(slot: &mut Option<T>, line_type: char, value: T) -> Result<(), SyntaxProblem> {
    if slot.is_some() {
        return Err(SyntaxProblem::Duplicate { line_type });
    }
    *slot = Some(value);
    Ok(())
}

fn wrong_field_count(line_type: char, expected: &'static str, value: &str) -> SyntaxProblem {
    SyntaxProblem::WrongFieldCount {
        line_type,
        expected,
        text: excerpt(value),
    }
}

fn number<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<T, SyntaxProblem> {
    text.parse().map_err(|_| SyntaxProblem::NotANumber {
        field,
        value: excerpt(text),
    })
}

/// `IN`, the only network type there is.
fn check_network_type(text: &str) -> Result<(), SyntaxProblem> {
    if text.eq_ignore_ascii_case("IN") {
        Ok(())
    } else {
        Err(SyntaxProblem::UnknownNetworkType {
            value: excerpt(text),
        })
    }
}

fn parse_address_type(text: &str) -> Result<AddressType, SyntaxProblem> {
    if text.eq_ignore_ascii_case("IP4") {
        Ok(AddressType::Ip4)
    } else if text.eq_ignore_ascii_case("IP6") {
        Ok(AddressType::Ip6)
    } else {
        Err(SyntaxProblem::UnknownAddressType {
            value: excerpt(text),
        })
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
fn parse_origin(value: &str) -> Result<Origin, SyntaxProblem> {
    const EXPECTED: &str = "`<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`";
    let fields: Vec<&str> = value.split_whitespace().collect();
    // Some gateways put a space in the username; the other five fields are fixed, so
    // they are read from the end and whatever precedes them is the username.
    let Some(split) = fields.len().checked_sub(5).filter(|&split| split > 0) else {
        return Err(wrong_field_count('o', EXPECTED, value));
    };
    let (username, fixed) = fields.split_at(split);
    let [
        session_id,
        session_version,
        network_type,
        address_type,
        address,
    ] = fixed
    else {
        return Err(wrong_field_count('o', EXPECTED, value));
    };
    check_network_type(network_type)?;
    Ok(Origin {
        username: username.join(" "),
        session_id: number("o= sess-id", session_id)?,
        session_version: number("o= sess-version", session_version)?,
        address_type: parse_address_type(address_type)?,
        address: (*address).to_owned(),
    })
}

/// `c=<nettype> <addrtype> <connection-address>`.
fn parse_connection(value: &str) -> Result<Connection, SyntaxProblem> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [network_type, address_type, address] = fields.as_slice() else {
        return Err(wrong_field_count(
            'c',
            "`<nettype> <addrtype> <connection-address>`",
            value,
        ));
    };
    check_network_type(network_type)?;
    Ok(Connection {
        address_type: parse_address_type(address_type)?,
        address: (*address).to_owned(),
    })
}

/// `t=<start-time> <stop-time>`.
fn parse_timing(value: &str) -> Result<Timing, SyntaxProblem> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [start, stop] = fields.as_slice() else {
        return Err(wrong_field_count('t', "`<start-time> <stop-time>`", value));
    };
    Ok(Timing {
        start: number("t= start-time", start)?,
        stop: number("t= stop-time", stop)?,
        repeats: Vec::new(),
    })
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`; a line without formats is
/// accepted because rejected streams are sometimes written that way.
fn parse_media_line(value: &str) -> Result<Media, SyntaxProblem> {
    let mut fields = value.split_whitespace();
    let (Some(kind), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(wrong_field_count(
            'm',
            "`<media> <port> <proto> <fmt> ...`",
            value,
        ));
    };
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(number("m= number of ports", count)?)),
        None => (port, None),
    };
    let mut media = Media::new(
        kind.to_owned(),
        number("m= port", port)?,
        proto.to_owned(),
        fields.map(str::to_owned).collect(),
    );
    media.port_count = port_count;
    Ok(media)
}

/// `a=<name>` or `a=<name>:<value>`; never fails, an odd attribute is simply kept.
fn parse_attribute(value: &str) -> Attribute {
    match value.split_once(':') {
        Some((name, value)) => Attribute::with_value(name, value.to_owned()),
        None => Attribute::property(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem_at(text: &str) -> (usize, SyntaxProblem) {
        match parse(text) {
            Err(SdpError::Syntax { line, problem }) => (line, problem),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\n";

    #[test]
    fn minimal_description_parses() {
        let sdp = parse(HEAD).unwrap();
        assert_eq!(sdp.origin().username(), "-");
        assert_eq!(sdp.origin().session_id(), 1);
        assert_eq!(sdp.origin().session_version(), 2);
        assert_eq!(sdp.origin().address_type(), AddressType::Ip4);
        assert_eq!(sdp.origin().address(), "192.0.2.1");
        assert_eq!(sdp.session_name(), Some("-"));
        assert!(sdp.media().is_empty());
        assert!(sdp.timings().is_empty());
    }

    #[test]
    fn empty_and_blank_bodies_are_empty() {
        assert_eq!(parse(""), Err(SdpError::Empty));
        assert_eq!(parse("\r\n\r\n  \n"), Err(SdpError::Empty));
    }

    #[test]
    fn byte_order_mark_and_blank_lines_are_skipped_but_counted() {
        let (line, problem) = problem_at("\u{feff}v=0\r\n\r\no=- x 1 IN IP4 a\r\n");
        assert_eq!(line, 3);
        assert!(matches!(
            problem,
            SyntaxProblem::NotANumber {
                field: "o= sess-id",
                ..
            }
        ));
    }

    #[test]
    fn version_must_come_first_and_be_zero() {
        let (line, problem) = problem_at("o=- 1 1 IN IP4 a\r\nv=0\r\n");
        assert_eq!(line, 1);
        assert!(matches!(problem, SyntaxProblem::VersionNotFirst { .. }));
        let (line, problem) = problem_at("v=1\r\n");
        assert_eq!(line, 1);
        assert_eq!(
            problem,
            SyntaxProblem::UnsupportedVersion {
                version: "1".into()
            }
        );
        let (line, problem) = problem_at(&format!("{HEAD}v=0\r\n"));
        assert_eq!(line, 4);
        assert_eq!(problem, SyntaxProblem::Duplicate { line_type: 'v' });
    }

    #[test]
    fn origin_is_required() {
        assert_eq!(
            parse("v=0\r\ns=-\r\n"),
            Err(SdpError::MissingLine { line_type: 'o' })
        );
    }

    #[test]
    fn origin_username_may_contain_spaces() {
        let sdp = parse("v=0\r\no=Sonus UAC 7 8 IN IP4 10.0.0.1\r\n").unwrap();
        assert_eq!(sdp.origin().username(), "Sonus UAC");
        assert_eq!(sdp.origin().session_id(), 7);
    }

    #[test]
    fn origin_with_too_few_fields_is_refused() {
        let (line, problem) = problem_at("v=0\r\no=- 1 IN IP4 10.0.0.1\r\n");
        assert_eq!(line, 2);
        assert!(matches!(
            problem,
            SyntaxProblem::WrongFieldCount { line_type: 'o', .. }
        ));
        let (_, problem) = problem_at("v=0\r\no=\r\n");
        assert!(matches!(
            problem,
            SyntaxProblem::WrongFieldCount { line_type: 'o', .. }
        ));
    }

    #[test]
    fn unknown_network_and_address_types_are_refused() {
        let (line, problem) = problem_at("v=0\r\no=- 1 1 ATM NSAP 47.0005\r\n");
        assert_eq!(line, 2);
        assert_eq!(
            problem,
            SyntaxProblem::UnknownNetworkType {
                value: "ATM".into()
            }
        );
        let (line, problem) = problem_at(&format!("{HEAD}c=IN IPX 1.2.3.4\r\n"));
        assert_eq!(line, 4);
        assert_eq!(
            problem,
            SyntaxProblem::UnknownAddressType {
                value: "IPX".into()
            }
        );
    }

    #[test]
    fn network_and_address_types_are_case_insensitive() {
        let sdp = parse(&format!("{HEAD}c=in ip6 ::1\r\n")).unwrap();
        let connection = sdp.connection().unwrap();
        assert_eq!(connection.address_type(), AddressType::Ip6);
        assert_eq!(connection.ip(), Some("::1".parse().unwrap()));
    }

    #[test]
    fn connection_keeps_multicast_suffix_and_host_names() {
        let sdp = parse(&format!("{HEAD}c=IN IP4 224.2.17.12/127\r\n")).unwrap();
        let connection = sdp.connection().unwrap();
        assert_eq!(connection.address(), "224.2.17.12/127");
        assert_eq!(connection.ip(), Some("224.2.17.12".parse().unwrap()));
        let sdp = parse(&format!("{HEAD}c=IN IP4 media.example.com\r\n")).unwrap();
        assert_eq!(sdp.connection().unwrap().ip(), None);
    }

    #[test]
    fn connection_needs_three_fields() {
        let (line, problem) = problem_at(&format!("{HEAD}c=IN IP4\r\n"));
        assert_eq!(line, 4);
        assert!(matches!(
            problem,
            SyntaxProblem::WrongFieldCount { line_type: 'c', .. }
        ));
    }

    #[test]
    fn timing_needs_two_numbers_and_collects_repeats() {
        let sdp = parse(&format!(
            "{HEAD}t=3034423619 3042462419\r\nr=604800 3600 0 90000\r\nt=0 0\r\n"
        ))
        .unwrap();
        assert_eq!(sdp.timings().len(), 2);
        assert_eq!(sdp.timings()[0].start(), 3034423619);
        assert_eq!(sdp.timings()[0].stop(), 3042462419);
        assert_eq!(sdp.timings()[0].repeats(), ["604800 3600 0 90000"]);
        assert!(sdp.timings()[1].repeats().is_empty());

        let (line, problem) = problem_at(&format!("{HEAD}t=0\r\n"));
        assert_eq!(line, 4);
        assert!(matches!(
            problem,
            SyntaxProblem::WrongFieldCount { line_type: 't', .. }
        ));
        let (_, problem) = problem_at(&format!("{HEAD}t=now 0\r\n"));
        assert!(matches!(
            problem,
            SyntaxProblem::NotANumber {
                field: "t= start-time",
                ..
            }
        ));
        let (line, problem) = problem_at(&format!("{HEAD}r=1 2 3\r\n"));
        assert_eq!(line, 4);
        assert_eq!(problem, SyntaxProblem::RepeatWithoutTiming);
    }

    #[test]
    fn media_line_fields() {
        let sdp = parse(&format!(
            "{HEAD}m=video 49170/2 RTP/AVP 31 32\r\nm=audio 0 RTP/AVP\r\n"
        ))
        .unwrap();
        let video = &sdp.media()[0];
        assert_eq!(video.kind(), "video");
        assert_eq!(video.port(), 49170);
        assert_eq!(video.port_count(), Some(2));
        assert_eq!(video.proto(), "RTP/AVP");
        assert_eq!(video.formats(), ["31", "32"]);
        let audio = &sdp.media()[1];
        assert!(audio.is_disabled());
        assert!(audio.formats().is_empty());
    }

    #[test]
    fn bad_media_lines_are_refused_with_their_line_number() {
        let (line, problem) = problem_at(&format!("{HEAD}m=audio\r\n"));
        assert_eq!(line, 4);
        assert!(matches!(
            problem,
            SyntaxProblem::WrongFieldCount { line_type: 'm', .. }
        ));
        let (line, problem) = problem_at(&format!("{HEAD}t=0 0\r\nm=audio abc RTP/AVP 0\r\n"));
        assert_eq!(line, 5);
        assert_eq!(
            problem,
            SyntaxProblem::NotANumber {
                field: "m= port",
                value: "abc".into()
            }
        );
        let (_, problem) = problem_at(&format!("{HEAD}m=audio 65536 RTP/AVP 0\r\n"));
        assert!(matches!(
            problem,
            SyntaxProblem::NotANumber {
                field: "m= port",
                ..
            }
        ));
        let (_, problem) = problem_at(&format!("{HEAD}m=audio 5000/x RTP/AVP 0\r\n"));
        assert!(matches!(
            problem,
            SyntaxProblem::NotANumber {
                field: "m= number of ports",
                ..
            }
        ));
    }

    #[test]
    fn lines_that_are_not_typed_are_refused() {
        for bad in ["hello", "ab=c", "=x", "1=x", "é=x"] {
            let (line, problem) = problem_at(&format!("{HEAD}{bad}\r\n"));
            assert_eq!(line, 4, "{bad}");
            assert!(
                matches!(problem, SyntaxProblem::NotATypedLine { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn session_lines_inside_media_are_refused() {
        for line_type in ['v', 'o', 's', 'u', 'e', 'p', 't', 'r', 'z'] {
            let (line, problem) =
                problem_at(&format!("{HEAD}m=audio 1 RTP/AVP 0\r\n{line_type}=x\r\n"));
            assert_eq!(line, 5);
            assert_eq!(problem, SyntaxProblem::SessionLineInMedia { line_type });
        }
    }

    #[test]
    fn single_lines_may_not_repeat() {
        for (again, line_type) in [
            ("o=- 1 1 IN IP4 a", 'o'),
            ("s=x", 's'),
            ("i=x", 'i'),
            ("u=x", 'u'),
            ("c=IN IP4 1.1.1.1", 'c'),
            ("z=x", 'z'),
            ("k=x", 'k'),
        ] {
            let text = format!("{HEAD}i=a\r\nu=b\r\nc=IN IP4 1.1.1.1\r\nz=c\r\nk=d\r\n{again}\r\n");
            let (line, problem) = problem_at(&text);
            assert_eq!(line, 9, "{again}");
            assert_eq!(problem, SyntaxProblem::Duplicate { line_type });
        }
        for again in ["i=x", "k=x"] {
            let text = format!("{HEAD}m=audio 1 RTP/AVP 0\r\ni=a\r\nk=b\r\n{again}\r\n");
            let (line, _) = problem_at(&text);
            assert_eq!(line, 7);
        }
    }

    #[test]
    fn unknown_lines_and_attributes_are_kept() {
        let sdp = parse(&format!(
            "{HEAD}b=AS:64\r\nx=session extra\r\na=ice-ufrag:abc\r\nm=audio 1 RTP/AVP 0\r\n\
             b=TIAS:64000\r\nk=prompt\r\nc=IN IP4 1.1.1.1\r\nc=IN IP4 2.2.2.2\r\ny=media extra\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\na=\r\na=:odd\r\n"
        ))
        .unwrap();
        assert_eq!(sdp.bandwidths(), ["AS:64"]);
        assert_eq!(sdp.unknown_lines()[0].line_type(), 'x');
        assert_eq!(sdp.unknown_lines()[0].value(), "session extra");
        assert_eq!(sdp.attribute("ICE-UFRAG").unwrap().value(), Some("abc"));
        let media = &sdp.media()[0];
        assert_eq!(media.bandwidths(), ["TIAS:64000"]);
        assert_eq!(media.encryption_key(), Some("prompt"));
        assert_eq!(media.connections().len(), 2);
        assert_eq!(media.connection().unwrap().address(), "1.1.1.1");
        assert_eq!(media.unknown_lines()[0].line_type(), 'y');
        let crypto = media.attribute("crypto").unwrap();
        assert_eq!(crypto.value(), Some("1 AES_CM_128_HMAC_SHA1_80 inline:x"));
        assert_eq!(media.attributes()[1].name(), "");
        assert_eq!(media.attributes()[1].value(), None);
        assert_eq!(media.attributes()[2].name(), "");
        assert_eq!(media.attributes()[2].value(), Some("odd"));
    }

    #[test]
    fn line_ends_may_be_lf_crlf_or_missing_at_the_end() {
        let crlf = parse("v=0\r\no=- 1 1 IN IP4 a\r\ns=x\r\n").unwrap();
        let lf = parse("v=0\no=- 1 1 IN IP4 a\ns=x\n").unwrap();
        let unterminated = parse("v=0\r\no=- 1 1 IN IP4 a\r\ns=x").unwrap();
        assert_eq!(crlf, lf);
        assert_eq!(crlf, unterminated);
        assert_eq!(crlf.session_name(), Some("x"));
    }

    #[test]
    fn free_text_values_are_kept_verbatim() {
        let sdp = parse("v=0\r\no=- 1 1 IN IP4 a\r\ns= \r\ni=  two  spaces \r\n").unwrap();
        assert_eq!(sdp.session_name(), Some(" "));
        assert_eq!(sdp.information(), Some("  two  spaces "));
    }
}
