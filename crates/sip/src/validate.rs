//! What is wrong with a message, in the words of the response that says so.
//!
//! [`check_request`] runs the checks every element makes before acting on a request
//! (RFC 3261 §8.2, §16.3): a SIP/2.0 version, a parsable Request-URI, the mandatory
//! headers present once and well formed, CSeq agreeing with the method, and a
//! Content-Length that matches the body. The first fault found becomes the status code
//! and reason phrase of the answer, so an operator reading a trace sees exactly which
//! header a trunk got wrong. What the element *supports* (methods, URI schemes,
//! extensions) is the application's decision and is not judged here.

use std::borrow::Cow;
use std::fmt;

use crate::header::HeaderName;
use crate::message::{ContentLength, HeaderError, Message};
use crate::method::Method;
use crate::name_addr::NameAddr;
use crate::uri::{Scheme, Uri};
use crate::via::Via;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    /// A reason phrase naming the fault, e.g. `Missing Call-ID`.
    pub reason: Cow<'static, str>,
}

impl Fault {
    fn bad(reason: impl Into<Cow<'static, str>>) -> Fault {
        Fault {
            status: 400,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

fn header_fault(err: HeaderError) -> Fault {
    let (what, name) = match err {
        HeaderError::Missing(n) => ("Missing", n),
        HeaderError::Malformed(n) => ("Malformed", n),
        HeaderError::Repeated(n) => ("Repeated", n),
    };
    Fault::bad(format!("{what} {}", name.as_str().unwrap_or("header")))
}

/// Checks the SIP version: `SIP/2.0` (case-insensitive) is fine, another well-formed
/// version is `505`, anything else `400`.
fn check_version(version: &str) -> Result<(), Fault> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    // Compared as octets: the version is peer text, and a multi-byte character may
    // straddle offset 4 (slicing the `str` there would panic).
    let well_formed = version.len() > 4
        && version.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/")
        && version[4..].split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major
                    .bytes()
                    .chain(minor.bytes())
                    .all(|b| b.is_ascii_digit())
        });
    if well_formed {
        Err(Fault {
            status: 505,
            reason: "Version Not Supported".into(),
        })
    } else {
        Err(Fault::bad("Malformed SIP-Version"))
    }
}

/// The checks for a request, in the order that gives the most useful answer.
pub fn check_request(msg: &Message) -> Result<(), Fault> {
    let Some(method) = msg.method() else {
        return Err(Fault::bad("Not a request"));
    };
    check_version(msg.version())?;
    if msg.malformed_line().is_some() {
        return Err(Fault::bad("Malformed header line"));
    }
    check_vias(msg)?;
    msg.call_id().map_err(header_fault)?;
    check_from_to(msg)?;
    let cseq = msg.cseq().map_err(header_fault)?;
    if cseq.method.as_str() != method.as_str() {
        // An unknown method is reported as unimplemented before its CSeq is judged
        // (RFC 4475 §3.1.2.18).
        if matches!(method, Method::Extension(_)) {
            return Err(Fault {
                status: 501,
                reason: "Not Implemented".into(),
            });
        }
        return Err(Fault::bad("CSeq method does not match request method"));
    }
    msg.max_forwards().map_err(header_fault)?;
    check_content_length(msg)?;
    let uri_text = msg.request_uri().unwrap_or_default();
    let uri =
        Uri::parse(uri_text).map_err(|e| Fault::bad(format!("Malformed Request-URI: {e}")))?;
    if matches!(uri.scheme, Scheme::Sip | Scheme::Sips) && uri.headers.is_some() {
        return Err(Fault::bad("Request-URI must not carry headers"));
    }
    for name in [
        HeaderName::Contact,
        HeaderName::Route,
        HeaderName::RecordRoute,
    ] {
        for value in msg.values(name) {
            if name == HeaderName::Contact && value == "*" {
                continue;
            }
            NameAddr::parse(value).map_err(|_| header_fault(HeaderError::Malformed(name)))?;
        }
    }
    Ok(())
}

/// The checks for a response. A response that fails them cannot be matched to a
/// transaction safely and is dropped.
pub fn check_response(msg: &Message) -> Result<(), Fault> {
    if msg.is_request() {
        return Err(Fault::bad("Not a response"));
    }
    check_version(msg.version())?;
    check_vias(msg)?;
    msg.call_id().map_err(header_fault)?;
    check_from_to(msg)?;
    msg.cseq().map_err(header_fault)?;
    check_content_length(msg)
}

/// From and To in full, URI and parameters included: `Message::from`/`to` only locate
/// the parts, relying on this check having passed.
fn check_from_to(msg: &Message) -> Result<(), Fault> {
    for name in [HeaderName::From, HeaderName::To] {
        let value = msg.single(name).map_err(header_fault)?;
        NameAddr::parse(value).map_err(|_| header_fault(HeaderError::Malformed(name)))?;
    }
    Ok(())
}

fn check_vias(msg: &Message) -> Result<(), Fault> {
    let mut any = false;
    for via in msg.vias() {
        any = true;
        Via::parse(via).map_err(|_| header_fault(HeaderError::Malformed(HeaderName::Via)))?;
    }
    if any {
        Ok(())
    } else {
        Err(header_fault(HeaderError::Missing(HeaderName::Via)))
    }
}

fn check_content_length(msg: &Message) -> Result<(), Fault> {
    match msg.content_length() {
        ContentLength::Absent | ContentLength::Declared(_) => Ok(()),
        ContentLength::Invalid => Err(Fault::bad("Malformed Content-Length")),
        ContentLength::Conflicting => Err(Fault::bad("Conflicting Content-Length")),
        ContentLength::Exceeds { .. } => Err(Fault::bad("Content-Length exceeds body")),
    }
}

/// Whether a `400` (or any response) can be addressed at all: the top Via must parse,
/// since it is the only way back to the sender.
pub fn is_answerable(msg: &Message) -> bool {
    msg.is_request() && msg.top_via().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn check(s: &str) -> Result<(), Fault> {
        check_request(&Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap())
    }

    fn req(method: &str, extra: &str, cseq_method: &str) -> String {
        format!(
            "{method} sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\n\
             To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 {cseq_method}\r\n{extra}\r\n"
        )
    }

    #[test]
    fn good_request() {
        assert_eq!(check(&req("OPTIONS", "", "OPTIONS")), Ok(()));
    }

    #[test]
    fn faults_name_what_is_wrong() {
        let cases = [
            (
                req("OPTIONS", "", "INVITE"),
                400,
                "CSeq method does not match request method",
            ),
            (req("NEWMETHOD", "", "INVITE"), 501, "Not Implemented"),
            (
                req("OPTIONS", "Max-Forwards: x\r\n", "OPTIONS"),
                400,
                "Malformed Max-Forwards",
            ),
            (
                req("OPTIONS", "Content-Length: 5\r\n", "OPTIONS"),
                400,
                "Content-Length exceeds body",
            ),
            (
                req("OPTIONS", "Call-ID: y\r\n", "OPTIONS"),
                400,
                "Repeated Call-ID",
            ),
            (
                req("OPTIONS", "Contact: <sip:a@b>;;\r\n", "OPTIONS"),
                400,
                "Malformed Contact",
            ),
            (
                "OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/7.0/UDP h\r\n\r\n".to_string(),
                505,
                "Version Not Supported",
            ),
            (
                "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n".to_string(),
                400,
                "Missing Call-ID",
            ),
            // The accessors only locate From/To; validation must still read the URI
            // and the parameters.
            (
                "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                 From: <sip:c@d|e>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"
                    .to_string(),
                400,
                "Malformed From",
            ),
            (
                "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                 From: <sip:c@d>;tag=1\r\nTo: <sip:a@b>;;\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"
                    .to_string(),
                400,
                "Malformed To",
            ),
        ];
        for (text, status, reason) in cases {
            let fault = check(&text).unwrap_err();
            assert_eq!(
                (fault.status, fault.reason.as_ref()),
                (status, reason),
                "{text}"
            );
        }
        // A multi-byte character across offset 4 of the version is a 400, not a panic.
        for version in ["SIP\u{e9}/2.0", "SI\u{5f20}/2.0", "\u{5f20}\u{5f20}"] {
            let text = req("OPTIONS", "", "OPTIONS")
                .replace("SIP/2.0\r\nVia", &format!("{version}\r\nVia"));
            assert_eq!(
                check(&text).unwrap_err().reason,
                "Malformed SIP-Version",
                "{version}"
            );
        }
        let bad_uri = req("OPTIONS", "", "OPTIONS").replace("sip:a@b SIP", "sip:a@b;  lr SIP");
        assert_eq!(check(&bad_uri).unwrap_err().status, 400);
        let headers_in_ruri =
            req("OPTIONS", "", "OPTIONS").replace("sip:a@b SIP", "sip:a@b?Route=x SIP");
        assert_eq!(
            check(&headers_in_ruri).unwrap_err().reason,
            "Request-URI must not carry headers"
        );
    }
}
