//! Writing new messages: responses to requests (RFC 3261 §8.2.6), and the requests a
//! transaction layer or user agent originates (ACK for a non-2xx final response
//! §17.1.1.3, CANCEL §9.1, anything else from scratch).
//!
//! The builder writes straight into one buffer and records the spans as it goes, so the
//! result is a [`Message`] without a second parse.

use bytes::{BufMut, BytesMut};

use crate::header::HeaderName;
use crate::message::{ContentLength, Header, Message, Span, StartLine};
use crate::method::Method;

pub struct MessageBuilder {
    buf: BytesMut,
    start: StartLine,
    headers: Vec<Header>,
    headers_start: usize,
}

impl MessageBuilder {
    pub fn request(method: Method<'_>, uri: &str) -> MessageBuilder {
        let mut buf = BytesMut::with_capacity(512);
        let method_span = put(&mut buf, method.as_str());
        buf.put_u8(b' ');
        let uri_span = put(&mut buf, uri);
        buf.put_u8(b' ');
        let version = put(&mut buf, "SIP/2.0");
        buf.put_slice(b"\r\n");
        let headers_start = buf.len();
        MessageBuilder {
            buf,
            start: StartLine::Request {
                method: method_span,
                uri: uri_span,
                version,
            },
            headers: Vec::with_capacity(12),
            headers_start,
        }
    }

    pub fn response(code: u16, reason: &str) -> MessageBuilder {
        let mut buf = BytesMut::with_capacity(512);
        let version = put(&mut buf, "SIP/2.0");
        buf.put_u8(b' ');
        let code = code.clamp(100, 699);
        let mut digits = [0u8; 3];
        digits[0] = b'0' + (code / 100) as u8;
        digits[1] = b'0' + (code / 10 % 10) as u8;
        digits[2] = b'0' + (code % 10) as u8;
        buf.put_slice(&digits);
        buf.put_u8(b' ');
        let reason = put(&mut buf, reason);
        buf.put_slice(b"\r\n");
        let headers_start = buf.len();
        MessageBuilder {
            buf,
            start: StartLine::Response {
                version,
                code,
                reason,
            },
            headers: Vec::with_capacity(12),
            headers_start,
        }
    }

    /// A response to `request` per RFC 3261 §8.2.6: Via (all values, in order), From,
    /// Call-ID and CSeq copied; To copied with `to_tag` added when the request's To has
    /// no tag and the response is not a `100`. Headers the request lacks are left out,
    /// so that even a `400` to a request missing its Call-ID can be written.
    ///
    /// A provisional (101-199) or 2xx response to an INVITE forms a dialog, and gets the
    /// request's Record-Route values copied in order (§12.1.1): without them a proxy in
    /// front (the carrier's dispatcher) that record-routed would be bypassed by the
    /// caller's ACK and BYE.
    pub fn response_to(
        request: &Message,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> MessageBuilder {
        let mut b = MessageBuilder::response(code, reason);
        let forms_dialog = request.method() == Some(Method::Invite) && (101..300).contains(&code);
        for h in request.headers() {
            match h.name() {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    b = b.header(h.name(), h.value());
                }
                HeaderName::RecordRoute if forms_dialog => b = b.header(h.name(), h.value()),
                HeaderName::Timestamp if code == 100 => b = b.header(h.name(), h.value()),
                HeaderName::To => {
                    let has_tag = request.to().is_ok_and(|t| t.tag().is_some());
                    match to_tag {
                        Some(tag) if !has_tag && code > 100 => {
                            b = b.header_parts(HeaderName::To, &[h.value(), ";tag=", tag]);
                        }
                        _ => b = b.header(h.name(), h.value()),
                    }
                }
                _ => {}
            }
        }
        b
    }

    /// The ACK a client INVITE transaction sends for a non-2xx final response (§17.1.1.3):
    /// Request-URI, Call-ID, From, CSeq number, the top Via and the Route headers of the
    /// INVITE; To from the response (it carries the UAS tag).
    pub fn ack_for(invite: &Message, response: &Message) -> MessageBuilder {
        let mut b = MessageBuilder::request(Method::Ack, invite.request_uri().unwrap_or_default());
        if let Some(via) = invite.vias().next() {
            b = b.header(HeaderName::Via, via);
        }
        b = b.copy_first(invite, HeaderName::MaxForwards);
        b = b.copy_first(invite, HeaderName::From);
        b = b.copy_first(response, HeaderName::To);
        b = b.copy_first(invite, HeaderName::CallId);
        if let Ok(cseq) = invite.cseq() {
            b = b.header_parts(HeaderName::CSeq, &[&cseq.seq.to_string(), " ACK"]);
        }
        for route in invite.get_all(HeaderName::Route) {
            b = b.header(HeaderName::Route, route);
        }
        b
    }

    /// A CANCEL for a pending INVITE (§9.1): same Request-URI, Call-ID, To, From, CSeq
    /// number, top Via and Route headers; CSeq method CANCEL.
    pub fn cancel_for(invite: &Message) -> MessageBuilder {
        let mut b =
            MessageBuilder::request(Method::Cancel, invite.request_uri().unwrap_or_default());
        if let Some(via) = invite.vias().next() {
            b = b.header(HeaderName::Via, via);
        }
        b = b.copy_first(invite, HeaderName::MaxForwards);
        b = b.copy_first(invite, HeaderName::From);
        b = b.copy_first(invite, HeaderName::To);
        b = b.copy_first(invite, HeaderName::CallId);
        if let Ok(cseq) = invite.cseq() {
            b = b.header_parts(HeaderName::CSeq, &[&cseq.seq.to_string(), " CANCEL"]);
        }
        for route in invite.get_all(HeaderName::Route) {
            b = b.header(HeaderName::Route, route);
        }
        b
    }

    fn copy_first(self, from: &Message, name: HeaderName) -> MessageBuilder {
        match from.header(name) {
            Some(v) => self.header(name, v),
            None => self,
        }
    }

    /// Appends a header with its canonical name. `Other` has no canonical name: use
    /// [`MessageBuilder::header_named`] for extension headers.
    pub fn header(self, name: HeaderName, value: &str) -> MessageBuilder {
        self.header_parts(name, &[value])
    }

    /// Appends a header whose value is the concatenation of `parts` (saves formatting
    /// into a temporary string).
    pub fn header_parts(mut self, name: HeaderName, parts: &[&str]) -> MessageBuilder {
        let spelled = name.as_str().unwrap_or("X-Unnamed");
        self.push_header(name, spelled, parts);
        self
    }

    /// Appends an extension header spelled as given.
    pub fn header_named(mut self, name: &str, value: &str) -> MessageBuilder {
        self.push_header(HeaderName::parse(name), name, &[value]);
        self
    }

    fn push_header(&mut self, name: HeaderName, spelled: &str, parts: &[&str]) {
        let line_start = self.buf.len();
        let name_span = put(&mut self.buf, spelled);
        self.buf.put_slice(b": ");
        let value_start = self.buf.len();
        for part in parts {
            self.buf.put_slice(sanitize(part).as_bytes());
        }
        let value = Span::new(value_start, self.buf.len());
        self.buf.put_slice(b"\r\n");
        self.headers.push(Header {
            name,
            name_span,
            value,
            line: Span::new(line_start, self.buf.len()),
        });
    }

    /// Finishes with a body: writes Content-Type and Content-Length, then the body.
    pub fn body(self, content_type: &str, body: &[u8]) -> Message {
        self.header(HeaderName::ContentType, content_type)
            .finish(body)
    }

    /// Finishes with no body (`Content-Length: 0`).
    pub fn build(self) -> Message {
        self.finish(&[])
    }

    fn finish(mut self, body: &[u8]) -> Message {
        let len = body.len().to_string();
        self.push_header(HeaderName::ContentLength, "Content-Length", &[&len]);
        self.buf.put_slice(b"\r\n");
        let head_end = self.buf.len();
        self.buf.put_slice(body);
        let total = self.buf.len();
        Message {
            buf: self.buf.freeze(),
            start: self.start,
            headers: self.headers,
            head_end: head_end as u32,
            headers_start: self.headers_start as u32,
            body: Span::new(head_end, total),
            content_length: ContentLength::Declared(body.len()),
            malformed_line: None,
        }
    }
}

fn put(buf: &mut BytesMut, s: &str) -> Span {
    let start = buf.len();
    buf.put_slice(sanitize(s).as_bytes());
    Span::new(start, buf.len())
}

/// A value that came from a peer or a config file must not be able to end its line and
/// inject headers: CR and LF become spaces.
fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    if has_line_end(s.as_bytes()) {
        std::borrow::Cow::Owned(s.replace(['\r', '\n'], " "))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Whether `bytes` holds a CR or LF, eight bytes at a time. Every header value of every
/// message we send passes here and values are short: a char-set `contains` was 7 % of a
/// call's processing, memchr2's set-up on short values still 4 %.
fn has_line_end(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Non-zero iff some byte of `word` is zero (the classic SWAR test).
    let has_zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if has_zero_byte(word ^ (ONES * u64::from(b'\r')))
            || has_zero_byte(word ^ (ONES * u64::from(b'\n')))
        {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b == b'\r' || b == b'\n')
}

/// The RFC 3261 §21 reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn parse(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    const INVITE: &str = "INVITE sip:4001234567@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n\
        Route: <sip:p1.example;lr>\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:4001234567@127.0.0.1>\r\n\
        From: <sip:13800138000@carrier.example>;tag=abc\r\n\
        Call-ID: call-1\r\n\
        CSeq: 7 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn line_ends_are_found_wherever_they_are() {
        for len in 0..40 {
            let clean = "a".repeat(len);
            assert!(!has_line_end(clean.as_bytes()), "{len}");
            for at in 0..len {
                for end in [b'\r', b'\n'] {
                    let mut dirty = clean.clone().into_bytes();
                    dirty[at] = end;
                    assert!(has_line_end(&dirty), "{len} {at} {end}");
                }
            }
        }
        // Bytes next to CR/LF in value (0x0c, 0x0e, 0x0b, 0x09, 0x8d) are not line ends.
        assert!(!has_line_end(&[
            0x0c, 0x0e, 0x0b, 0x09, 0x8d, 0x8a, 0x0c, 0x0e, 0x0b
        ]));
    }

    #[test]
    fn response_copies_the_right_headers() {
        let req = parse(INVITE);
        let resp = MessageBuilder::response_to(&req, 486, reason_phrase(486), Some("t1"))
            .header(HeaderName::Server, "sihai")
            .build();
        assert_eq!(resp.status(), Some(486));
        assert_eq!(resp.reason(), Some("Busy Here"));
        assert_eq!(resp.vias().count(), 2);
        assert_eq!(resp.to().unwrap().tag(), Some("t1"));
        assert_eq!(resp.from().unwrap().tag(), Some("abc"));
        assert_eq!(resp.call_id(), Ok("call-1"));
        assert_eq!(resp.cseq().unwrap().seq, 7);
        assert_eq!(resp.header(HeaderName::Route), None);
        // What was built parses back to the same thing.
        let reparsed = Message::parse(resp.as_bytes().clone()).unwrap();
        assert_eq!(reparsed.canonical(), resp.canonical());
        // A 100 never gets a To tag.
        let trying = MessageBuilder::response_to(&req, 100, "Trying", Some("t1")).build();
        assert_eq!(trying.to().unwrap().tag(), None);
    }

    #[test]
    fn dialog_forming_responses_to_an_invite_copy_record_route_in_order() {
        let req = parse(
            "INVITE sip:400@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
             Record-Route: <sip:p1.example;lr;ftag=x>\r\nRecord-Route: <sip:p2.example;lr>\r\n\
             From: <sip:a@b>;tag=abc\r\nTo: <sip:400@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let rr = |m: &Message| {
            m.values(HeaderName::RecordRoute)
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let expected = vec![
            "<sip:p1.example;lr;ftag=x>".to_string(),
            "<sip:p2.example;lr>".to_string(),
        ];
        for code in [180, 183, 200] {
            let resp = MessageBuilder::response_to(&req, code, "x", Some("t")).build();
            assert_eq!(rr(&resp), expected, "{code}");
        }
        // No dialog from a 100 or a failure: nothing to route.
        for code in [100, 486, 503] {
            let resp = MessageBuilder::response_to(&req, code, "x", Some("t")).build();
            assert!(rr(&resp).is_empty(), "{code}");
        }
    }

    #[test]
    fn ack_and_cancel() {
        let req = parse(INVITE);
        let resp = MessageBuilder::response_to(&req, 404, "Not Found", Some("uas")).build();
        let ack = MessageBuilder::ack_for(&req, &resp).build();
        assert_eq!(ack.method(), Some(Method::Ack));
        assert_eq!(ack.request_uri(), req.request_uri());
        assert_eq!(
            ack.vias().collect::<Vec<_>>(),
            vec!["SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1"]
        );
        assert_eq!(ack.to().unwrap().tag(), Some("uas"));
        assert_eq!(ack.cseq().unwrap().seq, 7);
        assert_eq!(ack.cseq().unwrap().method, Method::Ack);
        assert_eq!(ack.header(HeaderName::Route), Some("<sip:p1.example;lr>"));
        let cancel = MessageBuilder::cancel_for(&req).build();
        assert_eq!(cancel.cseq().unwrap().method, Method::Cancel);
        assert_eq!(cancel.to().unwrap().tag(), None);
        assert_eq!(
            Message::parse(cancel.as_bytes().clone())
                .unwrap()
                .canonical(),
            cancel.canonical()
        );
    }

    #[test]
    fn body_and_injection_safety() {
        let m = MessageBuilder::request(Method::Options, "sip:a@b")
            .header(HeaderName::Subject, "evil\r\nVia: injected")
            .header_named("X-Test", "1")
            .body("application/sdp", b"v=0\r\n");
        assert_eq!(m.count(HeaderName::Via), 0);
        assert_eq!(m.header_named("x-test"), Some("1"));
        assert_eq!(&m.body()[..], b"v=0\r\n");
        let reparsed = Message::parse(m.as_bytes().clone()).unwrap();
        assert_eq!(reparsed.content_length(), ContentLength::Declared(5));
        assert_eq!(reparsed.canonical(), m.canonical());
    }
}
