//! URIs as SIP uses them (RFC 3261 §19.1, §25.1; RFC 3966 for `tel`): a borrowed view
//! over the text, validated character by character so that a Request-URI with white
//! space, brackets or a bad escape is refused instead of forwarded.
//!
//! Escapes are kept as written; [`unescape`] decodes one level (never recursively, RFC
//! 4475 §3.1.1.3) when a comparison needs the characters they stand for.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

use crate::scan::{self, Param};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    Sip,
    Sips,
    Tel,
    /// Any other absoluteURI scheme: syntactically fine, but not one we can route.
    Other(&'a str),
}

/// A parsed URI borrowing from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: Scheme<'a>,
    /// The user part (sip/sips) or the subscriber number (tel), still escaped.
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    /// Host name, IPv4 address or bracketed IPv6 reference; empty for tel and other schemes.
    pub host: &'a str,
    pub port: Option<u16>,
    /// The `;name=value` parameters, including the leading `;`, or empty.
    pub params: &'a str,
    /// The `?name=value&...` headers without the `?`, if present.
    pub headers: Option<&'a str>,
    /// The whole URI as written.
    pub text: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UriError {
    #[error("empty URI")]
    Empty,
    #[error("URI has no scheme")]
    NoScheme,
    #[error("invalid character {0:?} in URI")]
    BadChar(char),
    #[error("invalid escape sequence in URI")]
    BadEscape,
    #[error("URI has an empty host")]
    EmptyHost,
    #[error("invalid host in URI")]
    BadHost,
    #[error("invalid port in URI")]
    BadPort,
    #[error("malformed URI parameter")]
    BadParam,
    #[error("malformed user part")]
    BadUser,
}

impl<'a> Uri<'a> {
    pub fn parse(text: &'a str) -> Result<Uri<'a>, UriError> {
        if text.is_empty() {
            return Err(UriError::Empty);
        }
        let colon = text.find(':').ok_or(UriError::NoScheme)?;
        let scheme_text = &text[..colon];
        let valid_scheme = scheme_text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme_text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return Err(UriError::NoScheme);
        }
        let rest = &text[colon + 1..];
        let scheme = if scheme_text.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_text.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_text.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other(scheme_text)
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => parse_sip(scheme, rest, text),
            Scheme::Tel => parse_tel(rest, text),
            Scheme::Other(_) => {
                check_chars(rest, is_opaque_char)?;
                Ok(Uri {
                    scheme,
                    user: None,
                    password: None,
                    host: "",
                    port: None,
                    params: "",
                    headers: None,
                    text,
                })
            }
        }
    }

    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// A URI parameter by case-insensitive name; `Some(None)` for a flag like `lr`. An
    /// escape in a parameter name stands for its character (`%6C%72` is `lr`, RFC 4475
    /// §3.1.1.3); the value is returned as written, for [`unescape`] to decode once.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        uri_params(self.params)
            .map_while(Result::ok)
            .find(|p| unescape(p.name).eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }

    /// The user part with escapes decoded (one level).
    pub fn user_unescaped(&self) -> Option<Cow<'a, str>> {
        self.user.map(unescape)
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

fn parse_sip<'a>(scheme: Scheme<'a>, rest: &'a str, text: &'a str) -> Result<Uri<'a>, UriError> {
    // '@' cannot appear unescaped in host, parameters or headers, so the first one
    // ends the userinfo even when the user part contains ';' or '?' (RFC 4475 §3.1.1.9).
    let (userinfo, hostpart) = match rest.find('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, password) = match info.find(':') {
                Some(c) => (&info[..c], Some(&info[c + 1..])),
                None => (info, None),
            };
            if user.is_empty() {
                return Err(UriError::BadUser);
            }
            check_chars(user, is_user_char)?;
            if let Some(pw) = password {
                check_chars(pw, is_password_char)?;
            }
            (Some(user), password)
        }
    };
    let (hostport, after) = match hostpart.find([';', '?']) {
        Some(i) => (&hostpart[..i], &hostpart[i..]),
        None => (hostpart, ""),
    };
    let (host, port) = split_hostport(hostport)?;
    let (params, headers) = match after.find('?') {
        Some(q) => (&after[..q], Some(&after[q + 1..])),
        None => (after, None),
    };
    check_uri_params(params)?;
    if let Some(h) = headers {
        check_chars(h, |b| in_class(b, HEADERS))?;
    }
    Ok(Uri {
        scheme,
        user,
        password,
        host,
        port,
        params,
        headers,
        text,
    })
}

fn parse_tel<'a>(rest: &'a str, text: &'a str) -> Result<Uri<'a>, UriError> {
    let (number, params) = match rest.find(';') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if number.is_empty() {
        return Err(UriError::BadUser);
    }
    check_chars(number, |b| {
        b.is_ascii_hexdigit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#')
    })?;
    check_uri_params(params)?;
    Ok(Uri {
        scheme: Scheme::Tel,
        user: Some(number),
        password: None,
        host: "",
        port: None,
        params,
        headers: None,
        text,
    })
}

/// Checks `*( ";" pname [ "=" pvalue ] )` (RFC 3261 §19.1.1, RFC 3966 §3). URI
/// parameters are not header parameters: no white space or quoted strings, but names and
/// values of `paramchar`s, which include `()/&$` (so `;x=(1)` is a legal parameter).
fn check_uri_params(params: &str) -> Result<(), UriError> {
    check_chars(params, |b| is_param_char(b) || matches!(b, b';' | b'='))?;
    for param in uri_params(params) {
        param?;
    }
    Ok(())
}

/// Iterates the parameters of a URI (`params` is empty or starts with `;`).
fn uri_params(params: &str) -> impl Iterator<Item = Result<Param<'_>, UriError>> {
    // Splitting on `;` leaves a first piece before the first `;`, which must be empty.
    let mut pieces = params.split(';');
    let lead = pieces.next().unwrap_or_default();
    let lead = (!lead.is_empty()).then_some(Err(UriError::BadParam));
    lead.into_iter().chain(pieces.map(|element| {
        let (name, value) = match element.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (element, None),
        };
        if name.is_empty() || value.is_some_and(|v| v.is_empty() || v.contains('=')) {
            return Err(UriError::BadParam);
        }
        Ok(Param { name, value })
    }))
}

/// Splits `host[:port]`, validating both.
pub fn split_hostport(hostport: &str) -> Result<(&str, Option<u16>), UriError> {
    if hostport.is_empty() {
        return Err(UriError::EmptyHost);
    }
    let (host, port) = if hostport.starts_with('[') {
        let close = hostport.find(']').ok_or(UriError::BadHost)?;
        let host = &hostport[..=close];
        let inner = &host[1..close];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(UriError::BadHost);
        }
        match &hostport[close + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or(UriError::BadHost)?)),
        }
    } else {
        match hostport.rfind(':') {
            Some(c) => (&hostport[..c], Some(&hostport[c + 1..])),
            None => (hostport, None),
        }
    };
    if !host.starts_with('[') {
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !host.starts_with(['-', '.']);
        if !valid {
            return Err(if host.is_empty() {
                UriError::EmptyHost
            } else {
                UriError::BadHost
            });
        }
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            scan::parse_u32(p)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or(UriError::BadPort)?,
        ),
    };
    Ok((host, port))
}

#[inline]
fn check_chars(s: &str, allowed: impl Fn(u8) -> bool) -> Result<(), UriError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let valid = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !valid {
                return Err(UriError::BadEscape);
            }
            i += 3;
            continue;
        }
        if !allowed(b) {
            let c = s[i..].chars().next().unwrap_or('?');
            return Err(UriError::BadChar(c));
        }
        i += 1;
    }
    Ok(())
}

/// Character classes of RFC 3261 §25.1 as bit sets, one lookup per byte: URIs appear
/// in the Request-URI, From, To, Contact and every Route, so they are checked often.
const UNRESERVED: u8 = 1;
const USER: u8 = 2;
const PASSWORD: u8 = 4;
const PARAM: u8 = 8;
const HEADERS: u8 = 16;
const OPAQUE: u8 = 32;

static CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let unreserved = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        let mut class = 0;
        if unreserved {
            class |= UNRESERVED | USER | PASSWORD | PARAM | HEADERS | OPAQUE;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            class |= USER;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            class |= PASSWORD;
        }
        if matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            class |= PARAM;
        }
        if matches!(
            b,
            b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'=' | b'&'
        ) {
            class |= HEADERS;
        }
        if matches!(
            b,
            b';' | b'/'
                | b'?'
                | b':'
                | b'@'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b'#'
                | b'['
                | b']'
        ) {
            class |= OPAQUE;
        }
        table[i] = class;
        i += 1;
    }
    table
};

#[inline]
fn in_class(b: u8, class: u8) -> bool {
    CLASSES[usize::from(b)] & class != 0
}

fn is_user_char(b: u8) -> bool {
    in_class(b, USER)
}

fn is_password_char(b: u8) -> bool {
    in_class(b, PASSWORD)
}

fn is_param_char(b: u8) -> bool {
    in_class(b, PARAM)
}

/// Characters of an opaque or hierarchical absoluteURI (RFC 3261 §25.1 `uric`).
fn is_opaque_char(b: u8) -> bool {
    in_class(b, OPAQUE)
}

/// Decodes `%HH` escapes once. Invalid escapes are left as written.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sip:4001234567:pw@gw.example.com:5080;transport=udp;lr?X=1").unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user, Some("4001234567"));
        assert_eq!(u.password, Some("pw"));
        assert_eq!(u.host, "gw.example.com");
        assert_eq!(u.port, Some(5080));
        assert_eq!(u.param("TRANSPORT"), Some(Some("udp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers, Some("X=1"));
    }

    #[test]
    fn ipv6_and_no_user() {
        let u = Uri::parse("sips:[2001:db8::10]:5061").unwrap();
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.user, None);
        assert_eq!(u.host, "[2001:db8::10]");
        assert_eq!(u.port, Some(5061));
    }

    #[test]
    fn user_with_semicolon_and_escapes() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.user_unescaped().unwrap(), "user;par=u@example.net");
        assert_eq!(unescape("n%61me=v%61lue%25%34%31"), "name=value%41");
    }

    #[test]
    fn uri_parameters_are_paramchars() {
        // pvalue = 1*paramchar: marks and `/&$+:[]` are legal, unlike in header parameters.
        let u = Uri::parse("sip:a@b;x=(1);rn=+86/10&$;gr=urn:uuid:f81d;lr").unwrap();
        assert_eq!(u.param("x"), Some(Some("(1)")));
        assert_eq!(u.param("rn"), Some(Some("+86/10&$")));
        assert_eq!(u.param("gr"), Some(Some("urn:uuid:f81d")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(
            Uri::parse("tel:+861;ext=(1)").unwrap().param("ext"),
            Some(Some("(1)"))
        );
        for bad in [
            "sip:a@b;",
            "sip:a@b;=1",
            "sip:a@b;x=",
            "sip:a@b;x=1=2",
            "sip:a@b;x;;y",
            "tel:1;",
            "sip:a@b;x=\"q\"",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn escaped_parameter_names() {
        let u =
            Uri::parse("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31").unwrap();
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.param("name"), Some(Some("v%61lue%25%34%31")));
        assert_eq!(unescape(u.param("name").flatten().unwrap()), "value%41");
        assert_eq!(u.param("value"), None);
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = Uri::parse("tel:+86-400-123-4567;phone-context=+86").unwrap();
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.user, Some("+86-400-123-4567"));
        let u = Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert_eq!(u.scheme, Scheme::Other("nobodyKnowsThisScheme"));
        assert!(Uri::parse("soap.beep://192.0.2.103:3002").is_ok());
    }

    #[test]
    fn rejects_illegal_uris() {
        for bad in [
            "",
            "sip:",
            "sip:user@",
            "sip:user@example.com; lr",
            "<sip:user@example.com>",
            "sip:user@exa mple.com",
            "sip:us%zzer@example.com",
            "sip:user@example.com:99999",
            "sip:user@example.com;;",
            "1sip:user@example.com",
            "sip:@example.com",
            "sip:user@[::1",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
