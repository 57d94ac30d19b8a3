//! `name-addr` and `addr-spec` with header parameters (RFC 3261 §20.10, §25.1): the
//! shape of From, To, Contact, Route and Record-Route values.

use thiserror::Error;

use crate::scan::{self, find_param, is_lws, is_token_char, quoted_len, trim_lws, trim_lws_start};
use crate::uri::{Uri, UriError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written: a quoted string (with its quotes) or tokens.
    pub display: Option<&'a str>,
    /// The URI text, without angle brackets.
    pub uri: &'a str,
    /// Header parameters (after the URI), starting at the first `;`, or empty.
    pub params: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameAddrError {
    #[error("empty address")]
    Empty,
    #[error("unterminated quoted display name")]
    UnterminatedQuote,
    #[error("display name is neither a quoted string nor tokens")]
    BadDisplayName,
    #[error("missing '>' after URI")]
    UnclosedAngle,
    #[error("white space inside <>")]
    SpaceInAngle,
    #[error("invalid URI: {0}")]
    Uri(#[from] UriError),
    #[error("malformed header parameter")]
    BadParam,
}

impl<'a> NameAddr<'a> {
    /// Parses and checks a value: its shape, the URI and every parameter.
    pub fn parse(value: &'a str) -> Result<NameAddr<'a>, NameAddrError> {
        let parts = NameAddr::locate(value)?;
        Uri::parse(parts.uri)?;
        check_params(parts.params)?;
        Ok(parts)
    }

    /// Finds the display name, URI and parameters without checking the URI or the
    /// parameters: for values already checked by [`NameAddr::parse`] (every message
    /// the daemon acts on went through `validate` first), where re-checking the URI on
    /// every From/To access was a sixth of a call's processing.
    pub fn locate(value: &'a str) -> Result<NameAddr<'a>, NameAddrError> {
        let value = trim_lws(value);
        if value.is_empty() {
            return Err(NameAddrError::Empty);
        }
        let (display, rest) = if value.starts_with('"') {
            let len = quoted_len(value).ok_or(NameAddrError::UnterminatedQuote)?;
            let rest = trim_lws_start(&value[len..]);
            if !rest.starts_with('<') {
                return Err(NameAddrError::BadDisplayName);
            }
            (Some(&value[..len]), rest)
        } else if let Some(lt) = value.find('<') {
            let display = trim_lws(&value[..lt]);
            // Tokens separated by white space; no LWS needed before '<' (RFC 4475 §3.1.1.6).
            if !display.bytes().all(|b| is_token_char(b) || is_lws(b)) {
                return Err(NameAddrError::BadDisplayName);
            }
            ((!display.is_empty()).then_some(display), &value[lt..])
        } else {
            // addr-spec: the URI runs to the first ';' (a URI with ';' must be in <>).
            let end = value.find(';').unwrap_or(value.len());
            return Ok(NameAddr {
                display: None,
                uri: trim_lws(&value[..end]),
                params: &value[end..],
            });
        };
        let inner = rest
            .strip_prefix('<')
            .ok_or(NameAddrError::BadDisplayName)?;
        let close = inner.find('>').ok_or(NameAddrError::UnclosedAngle)?;
        let uri = &inner[..close];
        if uri.bytes().any(is_lws) {
            return Err(NameAddrError::SpaceInAngle);
        }
        Ok(NameAddr {
            display,
            uri,
            params: trim_lws_start(&inner[close + 1..]),
        })
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").flatten()
    }

    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        find_param(self.params, name)
    }

    pub fn parsed_uri(&self) -> Result<Uri<'a>, UriError> {
        Uri::parse(self.uri)
    }
}

fn check_params(params: &str) -> Result<(), NameAddrError> {
    for param in scan::params(params) {
        param.map_err(|_| NameAddrError::BadParam)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = NameAddr::parse(r#""J \"R\" Rosenberg" <sip:jdrosen@example.com>;tag=98asjd8"#)
            .unwrap();
        assert_eq!(a.display, Some(r#""J \"R\" Rosenberg""#));
        assert_eq!(a.uri, "sip:jdrosen@example.com");
        assert_eq!(a.tag(), Some("98asjd8"));

        let a = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display, Some("caller"));
        assert_eq!(a.tag(), Some("323"));

        let a = NameAddr::parse("sip:user@example.com;tag=1;unknownparam").unwrap();
        assert_eq!(a.uri, "sip:user@example.com");
        assert_eq!(a.param("unknownparam"), Some(None));

        let a = NameAddr::parse("<sip:user@example.com;unknownparam>").unwrap();
        assert_eq!(a.uri, "sip:user@example.com;unknownparam");
        assert_eq!(a.params, "");
    }

    #[test]
    fn rejects() {
        assert_eq!(
            NameAddr::parse(r#""Mr. J. User <sip:j.user@example.com>"#),
            Err(NameAddrError::UnterminatedQuote)
        );
        assert_eq!(
            NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43"),
            Err(NameAddrError::BadDisplayName)
        );
        assert_eq!(
            NameAddr::parse(r#""Watson, Thomas" < sip:t.watson@example.org >"#),
            Err(NameAddrError::SpaceInAngle)
        );
        assert!(NameAddr::parse("<sip:a@b>;;;;").is_err());
        assert!(NameAddr::parse("<sip:a@b").is_err());
        assert!(NameAddr::parse("").is_err());
    }
}
